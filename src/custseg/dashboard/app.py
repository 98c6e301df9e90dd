"""The Streamlit entry script: `streamlit run app.py` (what `custseg dashboard` starts).

The lakehouse root and the MLflow store come from environment variables set by
:func:`custseg.dashboard.server.serve` (``CUSTSEG_LAKEHOUSE``, ``MLFLOW_TRACKING_URI``, ...).
One page per file under ``views/``, wired with ``st.navigation``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from custseg.dashboard import ui

PAGES = Path(__file__).parent / "views"

st.set_page_config(
    page_title="custseg: customer segments", page_icon=":material/donut_small:", layout="wide"
)

navigation = st.navigation(
    [
        st.Page(
            PAGES / "overview.py",
            title="Overview",
            icon=":material/dashboard:",
            url_path="overview",
            default=True,
        ),
        st.Page(
            PAGES / "segments.py", title="Segments", icon=":material/category:", url_path="segments"
        ),
        st.Page(
            PAGES / "methods.py", title="Methods", icon=":material/balance:", url_path="methods"
        ),
        st.Page(
            PAGES / "explore.py",
            title="Explore",
            icon=":material/scatter_plot:",
            url_path="explore",
        ),
        st.Page(
            PAGES / "customers.py", title="Customers", icon=":material/group:", url_path="customers"
        ),
        st.Page(PAGES / "runs.py", title="Runs", icon=":material/history:", url_path="runs"),
    ]
)
ui.sidebar(ui.source())
navigation.run()
