"""Reading what the pipeline wrote, without Spark, for the dashboard and the report.

``source`` says where to look, ``gold`` reads the lakehouse (or catalog)
tables, ``runs`` reads MLflow, ``summary`` condenses both into the headline
figures and the recommendation.
"""
