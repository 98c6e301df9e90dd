"""custseg: customer segmentation on Apache Spark.

Importing the package never starts Spark: every stage takes the Spark
session as an argument.
"""

__version__ = "0.1.0"
