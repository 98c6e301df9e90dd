"""Clustering: DBSCAN, hierarchical, HDBSCAN and k-means, single node and on Spark.

Single-node estimators follow scikit-learn (``fit(X)`` sets ``labels_``,
noise = -1; ``predict`` assigns new customers); the Spark ones follow
pyspark.ml (``fit(df)`` returns a model whose ``transform(df)`` adds the
prediction column). Each method is a package (``dbscan``, ``hdbscan``,
``hierarchical``, ``kmeans``) holding ``estimator.py`` (numpy / scipy only) and
``spark.py``; the Spark names load lazily, so importing this package (and the
single-node estimators) does not import pyspark. Every fitted estimator round-trips through
``to_dict`` / ``from_dict`` (numpy arrays and JSON-able values), and every
Spark model through ``save`` / ``load``.

>>> from custseg.cluster import DBSCAN
>>> DBSCAN(eps=0.5, min_samples=2).fit([[0.0], [0.3], [9.0]]).labels_
array([ 0,  0, -1])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .dbscan.estimator import DBSCAN, k_distance_curve, knee_point
from .hdbscan.estimator import HDBSCAN
from .hierarchical.estimator import Hierarchical
from .kmeans.estimator import KMeans

if TYPE_CHECKING:
    from .dbscan.spark import SparkDBSCAN, SparkDBSCANModel
    from .hdbscan.spark import SparkHDBSCAN, SparkHDBSCANModel
    from .hierarchical.spark import SparkHierarchical, SparkHierarchicalModel
    from .kmeans.spark import SparkKMeans, SparkKMeansModel

# The Spark estimators import pyspark: they are loaded on first use (PEP 562), so that a
# single-node user never pays for (or needs) pyspark.
_SPARK_MODULES = {
    "SparkDBSCAN": "dbscan.spark",
    "SparkDBSCANModel": "dbscan.spark",
    "SparkHDBSCAN": "hdbscan.spark",
    "SparkHDBSCANModel": "hdbscan.spark",
    "SparkHierarchical": "hierarchical.spark",
    "SparkHierarchicalModel": "hierarchical.spark",
    "SparkKMeans": "kmeans.spark",
    "SparkKMeansModel": "kmeans.spark",
}

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


def __getattr__(name: str) -> Any:
    module = _SPARK_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
