"""The interactive dashboard (Streamlit + Plotly) over the gold tables and the MLflow store.

Spark-free on purpose, so it opens in seconds: tables are read with pyarrow
from the lakehouse's live version folders, MLflow through its client.

>>> from custseg.dashboard.server import serve
>>> serve(load_config(), host="127.0.0.1", port=8501)       # what `custseg dashboard` runs

Importing this package imports neither Streamlit nor Spark; ``app.py`` is
the Streamlit entry script; the tables and MLflow are read by ``custseg.store``,
shared with the report, and the figures drawn by ``custseg.charts``.
"""
