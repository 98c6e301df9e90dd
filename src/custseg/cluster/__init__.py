"""Clustering: DBSCAN, hierarchical, HDBSCAN and k-means, single node and on Spark.

Single-node estimators follow scikit-learn (``fit(X)`` sets ``labels_``,
noise = -1; ``predict`` assigns new customers); the Spark ones follow
pyspark.ml (``fit(df)`` returns a model whose ``transform(df)`` adds the
prediction column). Every fitted estimator round-trips through
``to_dict`` / ``from_dict`` (numpy arrays and JSON-able values), and every
Spark model through ``save`` / ``load``.

>>> from custseg.cluster import DBSCAN
>>> DBSCAN(eps=0.5, min_samples=2).fit([[0.0], [0.3], [9.0]]).labels_
array([ 0,  0, -1])
"""

from ._dbscan import DBSCAN, SparkDBSCAN, SparkDBSCANModel, k_distance_curve, knee_point
from ._hdbscan import HDBSCAN, SparkHDBSCAN, SparkHDBSCANModel
from ._hierarchical import Hierarchical, SparkHierarchical, SparkHierarchicalModel
from ._kmeans import KMeans, SparkKMeans, SparkKMeansModel

__all__ = [
    "DBSCAN",
    "HDBSCAN",
    "Hierarchical",
    "KMeans",
    "SparkDBSCAN",
    "SparkDBSCANModel",
    "SparkHDBSCAN",
    "SparkHDBSCANModel",
    "SparkHierarchical",
    "SparkHierarchicalModel",
    "SparkKMeans",
    "SparkKMeansModel",
    "k_distance_curve",
    "knee_point",
]
