"""Every estimator, single node and Spark (driver path and distributed path), on the shapes
real exports have: tiny data, identical rows, fewer distinct points than k, one feature,
a constant feature, NaN. No crash; the reported number of clusters is the number of labels
assigned; fewer clusters than asked is warned about; bad values are named.

The exact references: scikit-learn's DBSCAN and KMeans, scipy's Ward cut.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from partitions import same_partition
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import DBSCAN as SkDBSCAN
from sklearn.exceptions import ConvergenceWarning

from custseg.cluster import (
    DBSCAN,
    HDBSCAN,
    Hierarchical,
    KMeans,
    SparkDBSCAN,
    SparkHDBSCAN,
    SparkHierarchical,
    SparkKMeans,
)
from custseg.errors import ParameterError

_rng = np.random.default_rng(7)
SHAPES = {
    "tiny": _rng.normal(size=(12, 3)),
    "identical": np.ones((50, 3)),
    "three_distinct": np.repeat(
        np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]]), [100, 60, 40], axis=0
    ),
    "one_feature": np.r_[_rng.normal(0, 0.3, 40), _rng.normal(6, 0.3, 30)][:, None],
    "constant_feature": np.c_[
        np.r_[_rng.normal(0, 0.3, (40, 2)), _rng.normal(6, 0.3, (30, 2))], np.full(70, 3.0)
    ],
}
ASKED = 4  # more than three_distinct and identical hold

SINGLE = {
    "dbscan": lambda: DBSCAN(eps=1.0, min_samples=3),
    "hierarchical": lambda: Hierarchical(n_clusters=ASKED),
    "hdbscan": lambda: HDBSCAN(min_cluster_size=5),
    "kmeans": lambda: KMeans(k=ASKED),
}
SPARK = {
    "dbscan": lambda rows: SparkDBSCAN(eps=1.0, min_samples=3, maxDriverRows=rows),
    "hierarchical": lambda rows: SparkHierarchical(n_clusters=ASKED, maxDriverRows=rows),
    "hdbscan": lambda rows: SparkHDBSCAN(min_cluster_size=5, maxDriverRows=rows),
    "kmeans": lambda rows: SparkKMeans(k=ASKED, maxDriverRows=rows),
}
ASKS_K = {"hierarchical", "kmeans"}


def n_labels(labels: np.ndarray) -> int:
    return int(np.unique(labels[labels >= 0]).size)


def expected_clusters(method: str, X: np.ndarray) -> int | None:
    """The exact algorithm's number of clusters where it is a plain function of the data."""
    distinct = np.unique(X, axis=0).shape[0]
    if method in ASKS_K:
        return min(ASKED, distinct)
    if method == "dbscan":
        return n_labels(SkDBSCAN(eps=1.0, min_samples=3).fit(X).labels_)
    return None


def check_fit(
    method: str, X: np.ndarray, labels: np.ndarray, n_clusters: int, caught: list
) -> None:
    assert labels.shape == (X.shape[0],)
    assert n_clusters == n_labels(labels)
    expected = expected_clusters(method, X)
    if expected is not None:
        assert n_clusters == expected
    fewer = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    if method in ASKS_K and n_clusters < ASKED:
        assert fewer and f"({n_clusters}) found smaller than" in str(fewer[0].message)
    elif method in ASKS_K:
        assert not fewer


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", SINGLE)
def test_single_node_on_every_shape(method: str, shape: str) -> None:
    X = SHAPES[shape]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SINGLE[method]().fit(X)
    check_fit(method, X, model.labels_, model.n_clusters_, caught)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    if method == "dbscan":
        assert same_partition(model.labels_, SkDBSCAN(eps=1.0, min_samples=3).fit(X).labels_)
    if method == "hierarchical" and np.unique(X, axis=0).shape[0] >= ASKED:
        ref = fcluster(linkage(X, "ward"), ASKED, criterion="maxclust")
        assert same_partition(model.labels_, ref)


@pytest.mark.spark
@pytest.mark.parametrize("path", ["driver", "distributed"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", SPARK)
def test_spark_on_every_shape(spark, method: str, shape: str, path: str) -> None:
    X = SHAPES[shape]
    df = spark.createDataFrame([(row.tolist(),) for row in X], "features array<double>")
    max_rows = 100_000 if path == "driver" else 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SPARK[method](max_rows).fit(df)
    labels = np.array([r.prediction for r in model.transform(df).orderBy("features").collect()])
    order = np.lexsort(X.T[::-1])
    check_fit(method, X[order], labels, model.clusterer.n_clusters_, caught)


def test_nan_named_single_node() -> None:
    import pandas as pd

    X = pd.DataFrame({"spend": [1.0, np.nan, 3.0, np.inf], "units": [1.0, 2.0, 3.0, 4.0]})
    for make in SINGLE.values():
        with pytest.raises(
            ParameterError, match=r"NaN or infinite values in 2 of 4 rows \('spend': 2\)"
        ):
            make().fit(X)


@pytest.mark.spark
@pytest.mark.parametrize("path", ["driver", "distributed"])
@pytest.mark.parametrize("method", SPARK)
def test_nan_named_spark(spark, method: str, path: str) -> None:
    from pyspark.ml.feature import VectorAssembler

    rows = [(float(i), float(i % 7)) for i in range(40)] + [
        (float("nan"), 1.0),
        (2.0, float("inf")),
    ]
    df = spark.createDataFrame(rows, "spend double, units double")
    df = VectorAssembler(
        inputCols=["spend", "units"], outputCol="features", handleInvalid="keep"
    ).transform(df)
    max_rows = 100_000 if path == "driver" else 5
    with pytest.raises(
        ParameterError,
        match=r"featuresCol 'features' holds NaN or infinite values in 2 of 42 rows "
        r"\('spend': 1, 'units': 1\)",
    ):
        SPARK[method](max_rows).fit(df)
