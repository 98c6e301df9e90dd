"""SparkHierarchical above maxDriverRows: weighted Ward on micro-clusters, checked against exact
Ward.

- the weighted Ward kernel equals fastcluster's Ward when every weight is 1, and equals Ward on
  the points repeated ``weight`` times (the weights are honoured);
- the distributed fit agrees with exact single-node Ward at the same k (ARI >= 0.9), chooses k
  by silhouette when n_clusters is None, labels the training rows as it summarised them, saves
  and loads, and refuses a linkage it cannot do in one clear line;
- the same fit runs on ``local-cluster[2,1,1024]`` and through Spark Connect.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, is_valid_linkage
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from custseg.cluster import Hierarchical, SparkHierarchical, SparkHierarchicalModel
from custseg.cluster.hierarchical._distributed import cut_weighted, weighted_ward_linkage
from custseg.errors import ParameterError

N_ROWS = 3000
MAX_DRIVER_ROWS = 500  # far below N_ROWS: every Spark fit here takes the distributed path
MICRO_CLUSTERS = 300


def blob_data(n: int = N_ROWS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """5 Gaussian blobs of different spreads in 6-D plus 2% uniform noise (truth -1)."""
    rng = np.random.default_rng(seed)
    n_noise = n // 50
    X, y = make_blobs(
        n - n_noise,
        n_features=6,
        centers=5,
        cluster_std=[0.4, 0.6, 0.8, 1.0, 0.5],
        center_box=(-8, 8),
        random_state=seed,
    )
    noise = rng.uniform(-10, 10, size=(n_noise, 6))
    order = rng.permutation(n)
    return np.vstack([X, noise])[order], np.concatenate([y, np.full(n_noise, -1)])[order]


# -- the kernel (no Spark) -------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_ward_with_unit_weights_equals_fastcluster(seed: int) -> None:
    import fastcluster

    X = np.random.default_rng(seed).normal(size=(400, 5))  # unstructured: every merge matters
    ours = weighted_ward_linkage(X, np.ones(len(X)))
    ref = np.asarray(fastcluster.linkage_vector(X, method="ward"))
    np.testing.assert_array_equal(ours[:, [0, 1, 3]], ref[:, [0, 1, 3]])
    np.testing.assert_allclose(ours[:, 2], ref[:, 2], rtol=1e-12, atol=1e-12)
    for k in (2, 5, 17):
        ours_cut = cut_weighted(ours, k, np.ones(len(X)))
        assert adjusted_rand_score(ours_cut, fcluster(ref, k, "maxclust")) == 1.0


def test_weighted_ward_equals_ward_on_repeated_points() -> None:
    import fastcluster

    rng = np.random.default_rng(4)
    points, weights = rng.normal(size=(80, 3)), rng.integers(1, 7, size=80)
    ours = weighted_ward_linkage(points, weights)
    repeated = np.asarray(
        fastcluster.linkage_vector(np.repeat(points, weights, axis=0), method="ward")
    )
    # Copies of a point merge first at height 0; the last 79 merges are the weighted tree's.
    np.testing.assert_allclose(ours[:, 2], repeated[-79:, 2], rtol=1e-10)
    assert not np.allclose(ours[:, 2], weighted_ward_linkage(points, np.ones(80))[:, 2])
    assert is_valid_linkage(ours)


def test_cut_weighted_numbers_clusters_by_weight() -> None:
    points = np.array([[0.0], [0.1], [10.0], [10.1], [20.0]])
    weights = np.array([1.0, 1.0, 50.0, 50.0, 7.0])
    labels = cut_weighted(weighted_ward_linkage(points, weights), 3, weights)
    np.testing.assert_array_equal(labels, [2, 2, 0, 0, 1])


def test_a_single_micro_cluster_is_one_cluster() -> None:
    assert weighted_ward_linkage(np.zeros((1, 3)), np.array([9.0])).shape == (0, 4)
    np.testing.assert_array_equal(cut_weighted(np.empty((0, 4)), 1, np.array([9.0])), [0])


# -- the distributed fit on local[2] ---------------------------------------------------
@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return blob_data()


@pytest.fixture(scope="module")
def df(spark, data):
    X, _ = data
    rows = [(i, X[i].tolist()) for i in range(len(X))]
    return spark.createDataFrame(rows, "id long, features array<double>").repartition(3)


@pytest.fixture(scope="module")
def fitted_k5(df) -> SparkHierarchicalModel:
    return SparkHierarchical(
        n_clusters=5,
        maxDriverRows=MAX_DRIVER_ROWS,
        numMicroClusters=MICRO_CLUSTERS,
        predictionCol="segment",
    ).fit(df)


def labels_by_id(model: SparkHierarchicalModel, df) -> np.ndarray:
    scored = model.transform(df).select("id", model.getPredictionCol()).toPandas().sort_values("id")
    return scored[model.getPredictionCol()].to_numpy()


@pytest.mark.spark
def test_distributed_ward_agrees_with_exact_ward(df, data, fitted_k5) -> None:
    X, truth = data
    clusterer = fitted_k5.clusterer
    assert isinstance(clusterer, Hierarchical)
    assert clusterer.micro_centers_ is not None  # the distributed path ran
    assert int(clusterer.micro_weights_.sum()) == N_ROWS
    assert clusterer.micro_centers_.shape[0] <= MICRO_CLUSTERS
    labels = labels_by_id(fitted_k5, df)
    exact = Hierarchical(n_clusters=5).fit(X).labels_
    assert adjusted_rand_score(exact, labels) >= 0.9
    assert adjusted_rand_score(truth, labels) >= adjusted_rand_score(truth, exact) - 0.02
    # Segments numbered by decreasing size, centroids of their customers.
    sizes = np.bincount(labels)
    assert (np.diff(sizes) <= 0).all() and sizes.size == clusterer.n_clusters_ == 5
    np.testing.assert_allclose(clusterer.cluster_centers_[0], X[labels == 0].mean(axis=0))


@pytest.mark.spark
def test_transform_labels_training_rows_as_summarised(df, data, fitted_k5) -> None:
    X, _ = data
    clusterer = fitted_k5.clusterer
    labels = labels_by_id(fitted_k5, df)
    np.testing.assert_array_equal(labels, clusterer.predict(X))
    # Each micro-cluster's segment, weighted by its customers, gives the segment sizes.
    sizes = np.bincount(clusterer.micro_labels_, weights=clusterer.micro_weights_)
    np.testing.assert_array_equal(sizes, np.bincount(labels))


@pytest.mark.spark
def test_upper_dendrogram_kept(fitted_k5) -> None:
    clusterer = fitted_k5.clusterer
    Z = clusterer.linkage_matrix_
    assert is_valid_linkage(Z)
    assert Z.shape == (clusterer.micro_centers_.shape[0] - 1, 4)
    assert np.all(np.diff(Z[:, 2]) >= 0)


@pytest.mark.spark
def test_n_clusters_none_chooses_k_as_exact_ward_does(spark) -> None:
    # No noise here: the silhouette peaks inside k_range (with noise it keeps rising with k).
    X, _ = make_blobs(2000, n_features=5, centers=4, cluster_std=1.2, random_state=7)
    df = spark.createDataFrame([(X[i].tolist(),) for i in range(len(X))], "features array<double>")
    model = SparkHierarchical(
        k_range=[2, 7], maxDriverRows=MAX_DRIVER_ROWS, numMicroClusters=MICRO_CLUSTERS
    ).fit(df)
    clusterer = model.clusterer
    assert sorted(clusterer.silhouette_by_k_) == list(range(2, 8))
    best = max(clusterer.silhouette_by_k_, key=clusterer.silhouette_by_k_.get)
    assert clusterer.n_clusters_ == best == 4
    exact = Hierarchical(k_range=(2, 7)).fit(X)
    assert exact.n_clusters_ == 4
    # Up to the planted k the scores agree; past it, which blob splits is a near-tie.
    for k in range(2, 5):
        assert clusterer.silhouette_by_k_[k] == pytest.approx(exact.silhouette_by_k_[k], abs=0.03)


@pytest.mark.spark
def test_save_load_round_trip(df, data, fitted_k5, tmp_path) -> None:
    X, _ = data
    fitted_k5.save(tmp_path / "model")
    loaded = SparkHierarchical.load(tmp_path / "model")
    assert isinstance(loaded, SparkHierarchicalModel)
    assert loaded.getNumMicroClusters() == MICRO_CLUSTERS
    np.testing.assert_array_equal(labels_by_id(loaded, df), labels_by_id(fitted_k5, df))
    np.testing.assert_array_equal(
        loaded.clusterer.linkage_matrix_, fitted_k5.clusterer.linkage_matrix_
    )
    again = Hierarchical.from_dict(fitted_k5.clusterer.to_dict())
    np.testing.assert_array_equal(again.predict(X[:50]), fitted_k5.clusterer.predict(X[:50]))


@pytest.mark.spark
def test_scores_through_the_pyfunc_segmenter(data, fitted_k5, tmp_path) -> None:
    import pandas as pd

    from custseg.segment.scaling import FeatureScaler
    from custseg.segment.segmenter import Segmenter
    from custseg.tracking import SEGMENTER_ARTIFACT, SegmenterModel

    X, _ = data
    names = [f"x{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=names)
    scaler = FeatureScaler.fit_pandas(frame, names, [])
    clusterer = fitted_k5.clusterer
    segment_map = {label: 10 + label for label in range(clusterer.n_clusters_)}
    Segmenter("hierarchical", scaler, clusterer, segment_map).save(tmp_path / "segmenter")
    pyfunc = SegmenterModel()
    pyfunc.load_context(
        type("Context", (), {"artifacts": {SEGMENTER_ARTIFACT: str(tmp_path / "segmenter")}})()
    )
    scored = pyfunc.predict(None, frame.iloc[:200])["segment"].to_numpy()
    expected = clusterer.predict(scaler.transform_pandas(frame.iloc[:200])) + 10
    np.testing.assert_array_equal(scored, expected)


@pytest.mark.spark
@pytest.mark.parametrize("linkage", ["single", "average"])
def test_linkage_other_than_ward_refused_on_the_large_path(df, linkage: str) -> None:
    estimator = SparkHierarchical(n_clusters=3, linkage=linkage, maxDriverRows=MAX_DRIVER_ROWS)
    with pytest.raises(ParameterError, match=f"linkage '{linkage}' .*supports 'ward'") as info:
        estimator.fit(df)
    assert "\n" not in str(info.value)


@pytest.mark.spark
def test_complete_linkage_above_the_pairwise_limit_gets_the_large_paths_advice(spark) -> None:
    # Above the single-node pairwise limit (20,000) too, the advice is the large path's:
    # 'single' is not on offer there.
    df = spark.range(20_001).selectExpr(
        "array(cast(id AS double), cast(id % 7 AS double)) AS features"
    )
    estimator = SparkHierarchical(n_clusters=3, linkage="complete", maxDriverRows=100)
    with pytest.raises(
        ParameterError, match=r"linkage 'complete' is not supported by the distributed path"
    ) as info:
        estimator.fit(df)
    assert "'single'" not in str(info.value)


@pytest.mark.spark
def test_null_features_refused_on_the_large_path(spark) -> None:
    # Nulls only past the rows the driver path looks at: the large path must catch them.
    rows = [(i, [float(i % 7), float(i % 5)] if i < 500 or i % 97 else None) for i in range(1000)]
    df = spark.createDataFrame(rows, "id long, features array<double>").coalesce(1)
    estimator = SparkHierarchical(n_clusters=2, maxDriverRows=100, numMicroClusters=20)
    with pytest.raises(ParameterError, match=r"featuresCol 'features' is null in 5 of 1000 rows"):
        estimator.fit(df)


def test_partition_summaries_and_unplaceable_rows() -> None:
    import pyarrow as pa

    from custseg.cluster.hierarchical._summaries import _partition_summariser

    centers = np.array([[0.0, 0.0], [10.0, 10.0]])
    batches = [
        pa.record_batch({"f": pa.array([[1.0, 0.0], [9.0, 10.0], None], pa.list_(pa.float64()))}),
        pa.record_batch(
            {"f": pa.array([[11.0, 10.0], [0.0, 1.0, 2.0], [np.nan, 0.0], [0.0, -1.0]])}
        ),
    ]
    (out,) = list(_partition_summariser(centers)(iter(batches)))
    rows = {r["micro"]: r for r in out.to_pylist()}
    assert rows[0]["n"] == 2 and (rows[0]["ls_0"], rows[0]["ls_1"]) == (1.0, -1.0)
    assert rows[0]["ss"] == 2.0
    assert rows[1]["n"] == 2 and (rows[1]["ls_0"], rows[1]["ls_1"]) == (20.0, 20.0)
    assert rows[1]["ss"] == 81 + 100 + 121 + 100
    assert rows[-1]["n"] == 2  # the null row and the NaN row
    assert rows[-2]["n"] == 1  # the row of length 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"numMicroClusters": 1}, r"numMicroClusters must be an integer >= 2, got 1"),
        ({"numMicroClusters": 2.5}, r"numMicroClusters must be an integer >= 2, got 2.5"),
    ],
)
def test_bad_num_micro_clusters(params: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        SparkHierarchical(**params)


@pytest.mark.spark
def test_n_clusters_above_the_micro_clusters(df) -> None:
    estimator = SparkHierarchical(n_clusters=30, maxDriverRows=MAX_DRIVER_ROWS, numMicroClusters=20)
    with pytest.raises(
        ParameterError, match=r"n_clusters \(30\) exceeds the number of micro-clusters \(20\)"
    ):
        estimator.fit(df)


# -- other engines ------------------------------------------------------------------------
ENGINE_PARAMS = {
    "n_clusters": 5,
    "maxDriverRows": MAX_DRIVER_ROWS,
    "numMicroClusters": MICRO_CLUSTERS,
    "predictionCol": "segment",
}


def check_engine_labels(labels: dict[str, np.ndarray], X: np.ndarray) -> None:
    exact = Hierarchical(n_clusters=5).fit(X).labels_
    assert set(np.unique(labels["segment"])) == set(range(5))  # no nulls (-2), five segments
    assert adjusted_rand_score(exact, labels["segment"]) >= 0.9


@pytest.mark.spark
@pytest.mark.slow
def test_distributed_fit_on_local_cluster(data, local_cluster_fits) -> None:
    """Fitted in the batched local-cluster application of tests/cluster/conftest.py."""
    check_engine_labels(local_cluster_fits["hierarchical"], data[0])


@pytest.mark.spark
@pytest.mark.slow
def test_distributed_fit_through_spark_connect(data, connect_fits) -> None:
    check_engine_labels(connect_fits["hierarchical"], data[0])
