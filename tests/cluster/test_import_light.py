"""Importing custseg.cluster and fitting the single-node estimators never imports pyspark.

Run in a fresh interpreter: in this test process pyspark is already loaded by other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import custseg

SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np

    import custseg.cluster
    from custseg.cluster import DBSCAN, HDBSCAN, Hierarchical, KMeans, k_distance_curve, knee_point

    X = np.random.default_rng(0).normal(size=(60, 2))
    DBSCAN(eps=0.5, min_samples=3).fit(X)
    HDBSCAN(min_cluster_size=5).fit(X)
    Hierarchical(n_clusters=2).fit(X)
    KMeans(k=2).fit(X)
    knee_point(k_distance_curve(X, 3))
    loaded = sorted(m for m in sys.modules if m == "pyspark" or m.startswith("pyspark."))
    assert not loaded, loaded[:5]
    print("light")
    """
)


def test_single_node_clustering_does_not_import_pyspark() -> None:
    src = os.path.dirname(os.path.dirname(custseg.__file__))  # the custseg under test
    path = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "light"


def test_spark_names_load_on_first_use() -> None:
    import custseg.cluster as cluster

    assert set(cluster.__all__) <= set(dir(cluster))
    assert cluster.SparkDBSCAN.__name__ == "SparkDBSCAN"
    assert cluster.SparkKMeansModel.__module__ == "custseg.cluster.kmeans.spark"
