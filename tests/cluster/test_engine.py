"""Which engine fits: exact on the driver up to an estimated size, the distributed path above,
and the approximate paths' agreement with the exact algorithm."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

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
from custseg.cluster._common.engine import (
    EXACT_COSTS,
    MEMORY_SHARE,
    agreement,
    describe,
    driver_limit,
    exact_bytes,
)
from custseg.cluster._common.one_executor import executor_limit, parse_memory
from custseg.errors import ParameterError

GIB = 2**30


def test_the_limit_is_the_memory_budget_over_the_bytes_per_row():
    cost = EXACT_COSTS["dbscan"]
    per_row = cost.per_row + 8 * cost.per_value
    limit = driver_limit("dbscan", 8, memory=4 * GIB)
    assert limit.rows == int(MEMORY_SHARE * 4 * GIB // per_row)
    assert f"{per_row:,} bytes per row x 8 features" in limit.reason
    # More features or more neighbours per row: fewer rows fit.
    assert driver_limit("dbscan", 64, memory=4 * GIB).rows < limit.rows
    assert (
        driver_limit("hdbscan", 8, neighbours=500, memory=4 * GIB).rows
        < driver_limit("hdbscan", 8, neighbours=5, memory=4 * GIB).rows
    )


def test_ward_and_hdbscan_are_capped_by_their_time_and_a_set_limit_wins():
    limit = driver_limit("hierarchical", 4, memory=64 * GIB)
    assert limit.rows == EXACT_COSTS["hierarchical"].max_rows
    assert "rows squared" in limit.reason
    assert driver_limit("hierarchical", 4, configured=123).rows == 123
    assert driver_limit("hdbscan", 2, neighbours=5, memory=64 * GIB).rows == 200_000


@pytest.fixture(scope="module")
def blobs(spark):
    X, _ = make_blobs(n_samples=1_500, centers=4, n_features=3, cluster_std=0.8, random_state=3)
    return X, spark.createDataFrame([(x.tolist(),) for x in X], ["features"])


EXACT = [
    (lambda: SparkKMeans(k=4), lambda: KMeans(k=4)),
    (lambda: SparkHierarchical(n_clusters=4), lambda: Hierarchical(n_clusters=4)),
    (lambda: SparkHDBSCAN(min_cluster_size=40), lambda: HDBSCAN(min_cluster_size=40)),
    (lambda: SparkDBSCAN(eps=0.6, min_samples=8), lambda: DBSCAN(eps=0.6, min_samples=8)),
]


@pytest.mark.parametrize(
    ("spark_est", "single"), EXACT, ids=["kmeans", "ward", "hdbscan", "dbscan"]
)
def test_below_the_estimated_limit_the_exact_algorithm_runs_and_says_so(
    blobs, spark_est, single, caplog
):
    X, df = blobs
    with caplog.at_level(logging.INFO, logger="custseg.cluster._common.engine"):
        model = spark_est().fit(df)
    report = model.clusterer.fit_report_
    assert report["engine"] == "single-node" and report["exact"] and report["rows"] == 1_500
    assert report["driver_limit"] >= 1_500 and report["features"] == 3
    np.testing.assert_array_equal(model.clusterer.labels_, single().fit(X).labels_)
    assert "single-node, exact; 1,500 rows <= the driver limit" in caplog.text


@pytest.mark.parametrize(
    ("make", "exact"),
    [
        (lambda: SparkKMeans(k=4, maxDriverRows=0), False),
        (lambda: SparkHierarchical(n_clusters=4, maxDriverRows=0), False),
        (lambda: SparkHDBSCAN(min_cluster_size=40, maxDriverRows=0), False),
        (lambda: SparkDBSCAN(eps=0.6, min_samples=8, maxDriverRows=0), True),
    ],
    ids=["kmeans", "ward", "hdbscan", "dbscan"],
)
def test_above_the_limit_the_distributed_path_is_tagged(blobs, make, exact, tmp_path):
    _, df = blobs
    model = make().fit(df)
    report = model.clusterer.fit_report_
    assert report["engine"] == "spark" and report["exact"] is exact
    assert report["why"] == "1,500 rows > the driver limit (maxDriverRows=0)"
    if exact:
        assert "agreement_ari" not in report and describe(report) == "Spark, exact"
    else:
        assert 0.8 <= report["agreement_ari"] <= 1.0 and report["agreement_rows"] == 1_500
        assert describe(report).startswith("Spark, approximate (ARI ")
    model.save(str(tmp_path / "m"))
    assert type(model).load(str(tmp_path / "m")).clusterer.fit_report_ == report


def test_agreement_is_the_ari_against_an_independent_exact_fit():
    X, _ = make_blobs(n_samples=2_000, centers=5, n_features=4, cluster_std=2.5, random_state=5)
    # Models fitted on a tenth of the rows: close to the exact answer on all, not equal to it.
    ward = Hierarchical(n_clusters=5).fit(X[:200])
    expected = adjusted_rand_score(
        fcluster(linkage(X, "ward"), 5, criterion="maxclust"), ward.predict(X)
    )
    assert 0.0 < expected < 1.0
    assert agreement(Hierarchical(), ward, X, 1.0) == pytest.approx(expected)
    rough = KMeans(k=5).fit(X[:200])
    exact = SkKMeans(n_clusters=5, n_init=10, random_state=0).fit(X)
    assert agreement(KMeans(), rough, X, 1.0) == pytest.approx(
        adjusted_rand_score(exact.labels_, rough.predict(X)), abs=0.02
    )


def test_density_parameters_are_scaled_to_the_sample():
    assert DBSCAN(eps=0.5, min_samples=40).params_for_sample(10.0) == {
        "eps": 0.5,
        "min_samples": 4,
    }
    assert HDBSCAN(min_cluster_size=500, min_samples=50).params_for_sample(10.0) == {
        "min_cluster_size": 50,
        "min_samples": 5,
    }


# -- the exact fit on one executor -------------------------------------------------
def test_the_executor_limit_reads_the_python_memory_an_executor_is_given():
    per_row = exact_bytes("dbscan", 1, 8)
    assert executor_limit("dbscan", 8, stated_memory="4g").rows == 4 * GIB // per_row
    assert executor_limit("dbscan", 8, stated_memory="2048").rows == 2 * GIB // per_row  # MiB
    assert executor_limit("dbscan", 8, stated_memory="512m").rows == 2**29 // per_row
    unset = executor_limit("dbscan", 8, stated_memory=None)
    assert unset.rows == 0 and "spark.executor.pyspark.memory is not set" in unset.reason
    # The time caps hold on an executor too; a set value wins.
    assert executor_limit("hierarchical", 4, stated_memory="64g").rows == 100_000
    assert executor_limit("kmeans", 4, configured=77, stated_memory="64g").rows == 77
    with pytest.raises(ParameterError, match="'lots'"):
        parse_memory("lots")


@pytest.mark.parametrize(
    ("spark_est", "single"), EXACT, ids=["kmeans", "ward", "hdbscan", "dbscan"]
)
def test_above_the_driver_limit_one_executor_fits_exactly_and_says_where(
    blobs, spark_est, single, tmp_path
):
    """maxDriverRows=0 keeps the rows off the driver; the exact algorithm runs in one Spark
    task (a Python worker: another process than this one) and gives the single-node labels."""
    X, df = blobs
    model = spark_est().setMaxDriverRows(0).setMaxExecutorRows(10_000).fit(df)
    report = model.clusterer.fit_report_
    assert report["engine"] == "single-node" and report["exact"] and report["on"] == "one executor"
    assert report["pid"] != os.getpid() and report["rows"] == 1_500
    assert report["why"] == (
        "1,500 rows > the driver limit (maxDriverRows=0) and <= one executor's "
        "(maxExecutorRows=10,000)"
    )
    assert describe(report) == "single-node, exact, on one executor"
    np.testing.assert_array_equal(model.clusterer.labels_, single().fit(X).labels_)
    predicted = model.transform(df).select("prediction").toPandas()["prediction"].to_numpy()
    np.testing.assert_array_equal(predicted, single().fit(X).predict(X))
    model.save(str(tmp_path / "m"))
    assert type(model).load(str(tmp_path / "m")).clusterer.fit_report_ == report


def test_one_executor_fit_refuses_bad_rows_and_carries_warnings_back(spark):
    bad = spark.createDataFrame([([0.0, 1.0],), ([float("nan"), 1.0],), ([2.0, 3.0],)], ["f"])
    with pytest.raises(ParameterError, match="NaN"):
        SparkKMeans(k=2, featuresCol="f", maxDriverRows=0, maxExecutorRows=100).fit(bad)
    same = spark.createDataFrame([([1.0, 1.0],)] * 20, ["f"])
    with pytest.warns(UserWarning, match="fewer"):
        SparkKMeans(k=3, featuresCol="f", maxDriverRows=0, maxExecutorRows=100).fit(same)
