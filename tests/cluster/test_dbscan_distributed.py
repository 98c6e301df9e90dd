"""The distributed SparkDBSCAN (above maxDriverRows) against scikit-learn's DBSCAN.

Every fit here goes through the distributed path (maxDriverRows below the data
size) with small ``partitionRows``, so the data is cut into many boxes and the
halo copies, the cross-box core counts and the merge of local clusters all
matter. The check is scikit-learn's: core points and noise identical, core
points in the same clusters up to relabelling, each border point in a cluster
that has a core point within eps of it.

Fits are few and small: the data sets sit side by side in one space (scaled to
eps = 1, padded with zero columns to a common dimension, shifted far apart), so
one fit checks them all, and each fit serves many assertions.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from partitions import same_partition
from sklearn.cluster import DBSCAN as SkDBSCAN
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.neighbors import NearestNeighbors

from custseg.cluster import DBSCAN, SparkDBSCAN, SparkDBSCANModel
from custseg.cluster.dbscan._core_linker import CoreLinker
from custseg.cluster.dbscan._frames import HALO, OWN, PART
from custseg.cluster.dbscan._kernels import (
    core_counts,
    count_own,
    count_within,
    local_clusters,
    nearest_core,
    nearest_listed_core,
)
from custseg.cluster.dbscan._partitioning import (
    box_loads,
    build_partitioner,
    candidate_leaves,
    choose_partitioner,
    partition_keys,
    spark_hash_int,
    task_slots,
)
from custseg.cluster.dbscan._passes import box_pass
from custseg.cluster.dbscan._thinning import distance_to_sampled
from custseg.errors import ParameterError


def customer_like(n: int, dims: int, seed: int) -> np.ndarray:
    """Scaled customer features: segments of log-normal spend / counts, plus stragglers."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    centres = rng.normal(0.0, 2.0, size=(3, dims))
    spread = np.array([0.35, 0.5, 0.7])[segment][:, None]
    X = np.exp(centres[segment] * 0.5 + rng.normal(0.0, 1.0, size=(n, dims)) * spread)
    X[: n // 20] *= rng.uniform(3, 10, size=(n // 20, dims))  # heavy tail: outliers
    X = np.log1p(X)
    return (X - X.mean(axis=0)) / X.std(axis=0)


def eps_for(X: np.ndarray, min_samples: int, quantile: float = 0.6) -> float:
    """An eps that makes some points core and some not (a k-distance quantile)."""
    dist = NearestNeighbors(n_neighbors=min_samples).fit(X).kneighbors(X)[0][:, -1]
    return float(np.quantile(dist, quantile))


def full_graph_components(X: np.ndarray, eps: float) -> np.ndarray:
    """Components of the whole eps-graph (every neighbour list), numbered by first row."""
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import radius_neighbors_graph

    components = connected_components(radius_neighbors_graph(X, eps), directed=False)[1]
    _, first = np.unique(components, return_index=True)
    mapping = np.empty(first.size, dtype=np.int64)
    mapping[components[np.sort(first)]] = np.arange(first.size)
    return mapping[components]


def grid(n: int, dims: int = 2) -> np.ndarray:
    axes = np.meshgrid(*[np.arange(n, dtype=float)] * dims)
    return np.column_stack([axis.ravel() for axis in axes])


def padded(pieces: list[tuple[np.ndarray, float]], dims: int) -> np.ndarray:
    """Data sets side by side: each scaled to eps = 1, padded with zero columns to ``dims``
    and shifted far from the others along the first axis.

    Zero columns and shifts change no distance inside a piece, and pieces lie
    far apart: DBSCAN of the whole is DBSCAN of each piece, so one fit checks them all.
    """
    blocks = []
    for i, (X, eps) in enumerate(pieces):
        block = np.zeros((len(X), dims))
        block[:, : X.shape[1]] = X / eps
        block[:, 0] += 1_000.0 * i
        blocks.append(block)
    return np.vstack(blocks)


MIN_SAMPLES = 6


def _pieces() -> dict[str, tuple[np.ndarray, float]]:
    rng = np.random.default_rng(7)
    customers_2d = customer_like(240, 2, 11)
    customers_8d = customer_like(240, 8, 12)
    customers_12d = customer_like(240, 12, 13)
    return {
        "blobs": (make_blobs(240, centers=4, cluster_std=0.8, random_state=1)[0], 0.5),
        "moons": (make_moons(200, noise=0.08, random_state=1)[0], 0.1),
        "circles": (make_circles(200, noise=0.05, factor=0.5, random_state=1)[0], 0.1),
        # many duplicates: 80 points, each present once or four times
        "duplicates": (
            np.repeat(make_blobs(80, centers=3, random_state=4)[0], [1, 4] * 40, axis=0),
            0.4,
        ),
        # every neighbour exactly eps away: a face point has exactly min_samples
        # (itself and 5 neighbours at eps), an edge point one fewer
        "grid_ties": (grid(5, 3), 1.0),
        "customers_2d": (customers_2d, eps_for(customers_2d, MIN_SAMPLES)),
        "customers_8d": (customers_8d, eps_for(customers_8d, MIN_SAMPLES)),
        "customers_12d": (customers_12d, eps_for(customers_12d, MIN_SAMPLES)),
        "single_dense_blob": (rng.normal(0.0, 0.05, size=(200, 3)), 0.1),
        "all_noise": (rng.uniform(0.0, 100.0, size=(30, 2)), 0.5),
    }


PIECES = _pieces()
ALL_X = padded(list(PIECES.values()), 12)
PIECE_OF = np.repeat(np.arange(len(PIECES)), [len(X) for X, _ in PIECES.values()])
ONE_D = np.array([[0.0], [0.5], [1.0], [1.5], [5.0], [5.5], [6.0], [10.0]])


def assert_dbscan_equivalent(
    X: np.ndarray, eps: float, min_samples: int, labels: np.ndarray, is_core: np.ndarray
) -> None:
    """scikit-learn's result: core and noise identical, same core partition, valid borders."""
    ref = SkDBSCAN(eps=eps, min_samples=min_samples).fit(X)
    ref_core = np.zeros(len(X), dtype=bool)
    ref_core[ref.core_sample_indices_] = True
    np.testing.assert_array_equal(is_core, ref_core)
    np.testing.assert_array_equal(labels == -1, ref.labels_ == -1)
    assert same_partition(labels[ref_core], ref.labels_[ref_core])
    border = np.flatnonzero(~ref_core & (labels != -1))
    if border.size:
        neighbours = NearestNeighbors(radius=eps).fit(X[ref_core]).radius_neighbors(X[border])[1]
        core_labels = labels[ref_core]
        for row, near in zip(border, neighbours, strict=True):
            assert labels[row] in set(core_labels[near].tolist()), f"border row {row}"


def dataframe(spark, X: np.ndarray):
    rows = [(i, X[i].tolist()) for i in range(len(X))]
    return spark.createDataFrame(rows, "id long, features array<double>")


def labelled(out) -> tuple[np.ndarray, np.ndarray]:
    out = out.orderBy("id").toPandas()
    return out["segment"].to_numpy(dtype=np.int64), out["is_core"].to_numpy(dtype=bool)


# -- numpy kernels (no Spark) ---------------------------------------------------------------
def test_partitioner_balances_a_skewed_sample() -> None:
    rng = np.random.default_rng(0)
    dense = rng.normal(0.0, 0.05, size=(2_000, 8))  # half the rows in one tight blob
    spread = rng.uniform(-6, 6, size=(2_000, 8))
    sample = np.vstack([dense, spread])
    partitioner = build_partitioner(sample, 16, eps=0.6)
    counts = np.bincount(partitioner.route(sample), minlength=partitioner.n_leaves)
    assert partitioner.n_leaves == 16
    assert counts.max() <= 2 * counts.mean()
    # the boxes tile the space: every row has exactly one, and its own box is "near" it
    rows, leaves = partitioner.near_leaves(sample[:500], 0.6)
    own = partitioner.route(sample[:500])
    assert set(zip(range(500), own.tolist(), strict=True)) <= set(
        zip(rows.tolist(), leaves.tolist(), strict=True)
    )


def test_more_boxes_only_where_quicker() -> None:
    """Never fewer boxes than partitionRows asks for (a task's memory); more where the sample
    shows they are quicker on the task slots: well-separated data splits to keep both slots
    busy, a dense blob whose halos would copy most rows keeps the fewest boxes."""
    rng = np.random.default_rng(3)
    dense = rng.normal(0.0, 0.1, size=(16_000, 8))  # every row within eps of any cut
    assert choose_partitioner(dense, 1, 0.6, slots=2).n_leaves == 1
    assert choose_partitioner(dense, 16, 0.6, slots=2).n_leaves == 16
    apart = rng.normal(0.0, 0.05, size=(16, 500, 8)) + 10.0 * np.arange(16)[:, None, None]
    apart = apart.reshape(-1, 8)
    assert box_loads(build_partitioner(apart, 16, 0.6), apart, 0.6).sum() == len(apart)
    assert choose_partitioner(apart, 1, 0.6, slots=2).n_leaves == 2
    assert choose_partitioner(apart, 1, 0.6, slots=None).n_leaves == 1  # slots unknown
    assert candidate_leaves(1, 2) == [1, 2, 4, 8]
    assert candidate_leaves(13, 2) == [13]
    assert candidate_leaves(3, None) == [3]
    # rows near boxes, in chunks, with one radius per row
    finest = build_partitioner(dense, 16, eps=0.6)
    rows, leaves = finest.near_leaves(dense[:300], 0.6)
    radius = np.where(np.arange(300) % 2 == 0, 0.6, 0.0)
    rows_r, leaves_r = finest.near_leaves(dense[:300], radius)
    pairs = set(zip(rows.tolist(), leaves.tolist(), strict=True))
    pairs_r = set(zip(rows_r.tolist(), leaves_r.tolist(), strict=True))
    own = set(zip(range(300), finest.route(dense[:300]).tolist(), strict=True))
    assert pairs_r == {(r, leaf) for r, leaf in pairs if r % 2 == 0} | own


def test_task_slots_from_the_master() -> None:
    class Conf:
        def __init__(self, values: dict[str, str]) -> None:
            self.values = values

        def get(self, key: str, default: str | None = None) -> str | None:
            return self.values.get(key, default)

    class Session:
        def __init__(self, **values: str) -> None:
            self.conf = Conf({k.replace("_", "."): v for k, v in values.items()})

    assert task_slots(Session(spark_master="local[2]")) == 2
    assert task_slots(Session(spark_master="local[3,2]")) == 3  # [N, maxFailures]
    assert task_slots(Session(spark_master="local")) == 1
    assert task_slots(Session(spark_master="local[*]")) == (os.cpu_count() or 1)
    assert task_slots(Session(spark_master="local-cluster[2,1,1024]")) == 2
    assert task_slots(Session(spark_master="spark://h:7077", spark_default_parallelism="48")) == 48
    assert task_slots(Session(spark_master="yarn")) is None


def test_partition_keys_give_each_box_its_own_task() -> None:
    for n in (1, 2, 3, 7, 40):
        keys = partition_keys(n)
        assert np.unique(keys).size == n
        np.testing.assert_array_equal(np.sort(np.mod(spark_hash_int(keys), n)), np.arange(n))


def test_core_counts_add_up_with_the_halo_and_eps_is_inclusive() -> None:
    from scipy.spatial import cKDTree

    # own [0, 0] and [1, 0]; the halo row [2, 0] is exactly eps from the second
    own = np.array([[0.0, 0.0], [1.0, 0.0]])
    halo = np.array([[2.0, 0.0], [5.0, 5.0]])
    counts = core_counts(own, 1.0, 3)
    np.testing.assert_array_equal(counts, [2, 2])  # exact below min_samples
    counts += count_within(cKDTree(halo), halo, own, 3, 1.0)
    np.testing.assert_array_equal(counts >= 3, [False, True])
    np.testing.assert_array_equal(core_counts(own, 1.0, 1), [1, 1])
    np.testing.assert_array_equal(core_counts(np.vstack([own] * 3), 1.0, 3), [3] * 6)  # capped


def test_nearest_core_of_non_core_rows_from_their_neighbour_lists() -> None:
    """count_own keeps the exact neighbour lists of rows short of min_samples; their nearest
    core within eps comes from them (a grid of ties leaves some lists to the fallback query)."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(8)
    X = np.vstack([rng.normal(0.0, 0.3, size=(1_500, 3)), rng.uniform(-3, 3, size=(1_500, 3))])
    ties = np.column_stack([grid(6), np.zeros(36)]) + 20.0  # every neighbour exactly eps away
    for points, eps, min_samples in ((X, 0.35, 6), (ties, 1.0, 5)):
        own = count_own(points, eps, min_samples)
        full = cdist(points, points, "sqeuclidean") <= eps * eps
        np.testing.assert_array_equal(own.counts, np.minimum(full.sum(axis=1), min_samples))
        core = own.counts >= min_samples
        rows = np.flatnonzero(~core)
        assert 0 < rows.size < len(points)
        nearest, dist = nearest_listed_core(points, own, core, rows, eps)
        sq = np.where(full[rows][:, core], cdist(points[rows], points[core], "sqeuclidean"), np.inf)
        expected = np.where(np.isfinite(sq.min(axis=1)), np.sqrt(sq.min(axis=1)), np.inf)
        np.testing.assert_allclose(dist, expected, rtol=1e-12)
        hit = nearest >= 0
        np.testing.assert_array_equal(hit, np.isfinite(expected))
        assert core[nearest[hit]].all()


def test_nearest_core_is_inclusive_and_flags_coinciding_rows() -> None:
    cores = np.array([[0.0], [3.0]])
    labels, is_core = nearest_core(
        np.array([[0.0], [1.0], [1.6], [4.0]]), cores, np.array([7, 8]), 1.0
    )
    np.testing.assert_array_equal(labels, [7, 7, -1, 8])
    np.testing.assert_array_equal(is_core, [True, False, False, False])


def test_kernels_answer_each_row_in_its_own_order() -> None:
    """The kernels query in spatial order; every answer must come back to its own row."""
    from scipy.spatial import cKDTree
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0.0, 0.3, size=(1_500, 4)), rng.uniform(-2, 2, size=(1_500, 4))])
    X = X[rng.permutation(len(X))]
    owned = rng.random(len(X)) < 0.7
    eps, min_samples = 0.4, 5
    expected = np.minimum((cdist(X[owned], X) <= eps).sum(axis=1), min_samples)
    assert 0 < (expected >= min_samples).sum() < expected.size
    halo = X[~owned]
    counts = core_counts(X[owned], eps, min_samples)
    counts += count_within(cKDTree(halo), halo, X[owned], min_samples, eps)
    np.testing.assert_array_equal(np.minimum(counts, min_samples), expected)

    cores, core_labels, rows = X[:600], np.arange(600) % 7, X[600:]
    dist = cdist(rows, cores)
    nearest = dist.argmin(axis=1)
    within = dist[np.arange(len(rows)), nearest] <= eps
    labels, is_core = nearest_core(rows, cores, core_labels, eps)
    np.testing.assert_array_equal(labels, np.where(within, core_labels[nearest], -1))
    assert not is_core.any()

    # an approximate nearest sampled row: a true distance, at most 3x the nearest (APPROX 2)
    sampled, query = np.arange(len(X)) % 5 == 0, np.arange(len(X)) % 5 != 0
    nearest_sampled = cdist(X[query], X[sampled]).min(axis=1)
    got = distance_to_sampled(X, sampled, query, eps)
    found = np.isfinite(got)
    assert found.mean() > 0.5
    assert (got[found] >= nearest_sampled[found] - 1e-12).all()
    assert (got[found] <= 3 * nearest_sampled[found] + 1e-12).all()


def test_local_clusters_match_the_full_neighbour_lists() -> None:
    """Fragments + fragment links give the components the full eps-graph gives."""
    rng = np.random.default_rng(0)
    dense = rng.normal(0.0, 0.1, size=(800, 3))  # large fragments
    sparse = rng.uniform(-2.0, 2.0, size=(800, 3))  # small, pooled fragments
    ties = np.column_stack([grid(12), np.zeros(144)]) + 10.0  # neighbours exactly eps apart
    X = np.vstack([dense, sparse, ties])[rng.permutation(1_744)]
    expected = full_graph_components(X, 0.2)
    np.testing.assert_array_equal(local_clusters(X, 0.2), expected)
    np.testing.assert_array_equal(local_clusters(ties, 1.0), np.zeros(144))


def test_linker_finds_every_cluster_each_halo_core_reaches() -> None:
    """Against all pairs: halo cores of many small home clusters (ball queries) and of a few
    large ones (pair counts), own clusters large and small, points exactly eps apart."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(1)
    for trial, eps in enumerate([0.2, 0.3, 0.15, 0.25]):
        own = np.vstack(
            [
                rng.normal(0.0, 0.3, size=(1_500, 3)),
                rng.uniform(-3.0, 3.0, size=(1_000, 3)),
                rng.normal(1.5, 0.1, size=(200, 3)),
            ]
        )
        nodes = 1_000 + 7 * local_clusters(own, eps)
        halo = np.vstack([rng.normal(0.2, 0.3, size=(1_000, 3)), rng.uniform(-3, 3, (600, 3))])
        halo[:40] = own[:40] + np.array([eps, 0.0, 0.0])  # ties at eps
        if trial % 2:
            home = rng.choice(4, size=len(halo), p=[0.6, 0.3, 0.05, 0.05])
        else:
            home = rng.integers(0, 300, size=len(halo))
        a, b = CoreLinker(own, nodes, eps).links(halo, home)
        rows, cols = np.nonzero(cdist(halo, own, "sqeuclidean") <= eps * eps)
        expected = set(zip(home[rows].tolist(), nodes[cols].tolist(), strict=True))
        assert set(zip(a.tolist(), b.tolist(), strict=True)) == expected
        assert len(a) == len(expected)  # distinct


def test_box_passes_stream_in_chunks_and_boxes_share_a_partition() -> None:
    """The first pass over a partition holding two boxes, fed in small Arrow-like batches with a
    tiny halo chunk, gives what it gives with one chunk; own rows after a box's halo are refused."""
    import pandas as pd

    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(0.0, 0.4, size=(400, 2)), rng.uniform(-3, 3, size=(200, 2))])
    eps, min_samples = 0.3, 5
    partitioner = build_partitioner(X, 4, eps)
    keys = partition_keys(4)
    rows, leaves = partitioner.near_leaves(X, eps)
    own = partitioner.route(X)
    frame = pd.DataFrame(
        {
            "id": rows.astype(np.int64),
            PART: keys[leaves].astype(np.int32),
            "kind": np.where(leaves == own[rows], OWN, HALO).astype(np.int32),
            "x0": X[rows, 0],
            "x1": X[rows, 1],
        }
    )
    two_boxes = frame[frame[PART].isin(keys[:2])].sort_values([PART, "kind"], kind="stable")

    def run(chunk_rows: int, batch_rows: int) -> pd.DataFrame:
        kernel = box_pass(partitioner, keys, eps, min_samples, 2, 0.0, chunk_rows)
        batches = [two_boxes.iloc[i : i + batch_rows] for i in range(0, len(two_boxes), batch_rows)]
        return pd.concat(list(kernel(iter(batches))), ignore_index=True)

    whole, streamed = run(10**9, 10**9), run(5, 7)
    pd.testing.assert_frame_equal(streamed, whole)
    assert set(whole[PART]) == set(keys[:2].tolist())
    # the core flags are the full data's
    counts = (np.linalg.norm(X[whole["id"]][:, None] - X[None], axis=2) <= eps).sum(axis=1)
    np.testing.assert_array_equal(whole["is_core"].to_numpy(), counts >= min_samples)
    kernel = box_pass(partitioner, keys, eps, min_samples, 2, 0.0, 100)
    one_box = two_boxes[two_boxes[PART] == keys[0]]
    with pytest.raises(RuntimeError, match="own rows arrived after its other rows"):
        list(kernel(iter([one_box.sort_values("kind", ascending=False)])))
    with pytest.raises(RuntimeError, match="rows arrived in two runs"):
        list(kernel(iter([two_boxes.sort_values("kind", kind="stable")])))


# -- Spark, local[2] ------------------------------------------------------------------------
@pytest.mark.spark
def test_matches_sklearn_on_every_shape(spark) -> None:
    """One fit over all pieces (2-D shapes, duplicates, ties, customers in 2/8/12-D, a dense
    blob, pure noise), cut into 13 boxes: many cores near a border need their halo counts."""
    df = dataframe(spark, ALL_X)
    model = SparkDBSCAN(
        eps=1.0,
        min_samples=MIN_SAMPLES,
        predictionCol="segment",
        maxDriverRows=100,
        partitionRows=150,
    ).fit(df)
    assert model.summary.numBoxes == 13
    # the fit's own labels: transform of the training DataFrame and the summary
    labels, is_core = labelled(model.transform(df))
    assert model.hasSummary and model.summary.numClusters == int(labels.max()) + 1
    assert_dbscan_equivalent(ALL_X, 1.0, MIN_SAMPLES, labels, is_core)
    for piece, (X, eps) in enumerate(PIECES.values()):  # each piece is its own DBSCAN
        rows = np.equal(PIECE_OF, piece)
        assert_dbscan_equivalent(X, eps, MIN_SAMPLES, labels[rows], is_core[rows])
    assert not is_core[np.equal(PIECE_OF, list(PIECES).index("all_noise"))].any()
    summary = model.summary.predictions
    assert summary.columns == ["id", "features", "segment", "is_core"]
    np.testing.assert_array_equal(labelled(summary)[0], labels)
    # every core point kept: the model alone (what save stores) reproduces the labels,
    # and so does transform of another DataFrame (the UDF path)
    assert model.getCoreCover() == 0.0 and model.summary.numCorePoints == is_core.sum()
    clusterer = model.clusterer
    assert isinstance(clusterer, DBSCAN)
    np.testing.assert_array_equal(clusterer.components_, ALL_X[is_core])
    np.testing.assert_array_equal(clusterer.predict(ALL_X), labels)
    again, again_core = labelled(model.transform(dataframe(spark, ALL_X)))
    np.testing.assert_array_equal(again, labels)
    np.testing.assert_array_equal(again_core, is_core)
    # the box keys rely on Spark's own hash partitioning of int columns
    from pyspark.sql import functions as F

    hashed = spark.range(200).select(F.hash(F.col("id").cast("int")).alias("h")).toPandas()
    np.testing.assert_array_equal(hashed["h"].to_numpy(), spark_hash_int(np.arange(200)))


@pytest.mark.spark
def test_thinned_model_one_d_and_vectors(spark, tmp_path) -> None:
    """More core points than maxModelPoints (and a vector column): the fit's labels and the
    exact transform of new rows match DBSCAN, the saved model keeps a thinned set of core
    points and says how far it can be off. The hand-worked 1-D set rides along (padded)."""
    from pyspark.ml.linalg import Vectors

    blobs = make_blobs(300, n_features=3, centers=3, cluster_std=0.6, random_state=5)[0]
    X = padded([(blobs, 0.6), (ONE_D, 0.5)], 3)
    min_samples = 3
    # partitionRows 60: 6 boxes (on 2 task slots, 12 would copy more halo rows)
    df = spark.createDataFrame(
        [(i, Vectors.dense(X[i]), f"c{i}") for i in range(len(X))], ["id", "vec", "name"]
    )
    model = SparkDBSCAN(
        eps=1.0,
        min_samples=min_samples,
        featuresCol="vec",
        predictionCol="segment",
        maxDriverRows=50,
        partitionRows=60,
        maxModelPoints=150,
    ).fit(df)
    assert model.summary.numBoxes == 6
    scored = model.transform(df).orderBy("id").toPandas()
    assert list(scored.columns) == ["id", "vec", "name", "segment", "is_core"]
    assert scored["name"].tolist() == [f"c{i}" for i in range(len(X))]
    labels = scored["segment"].to_numpy(dtype=np.int64)
    is_core = scored["is_core"].to_numpy(dtype=bool)
    assert_dbscan_equivalent(X, 1.0, min_samples, labels, is_core)
    # 1-D: cores 0.5, 1.0 and 5.5 (exactly eps apart counts); 10 is noise
    one_d = slice(len(blobs), None)
    assert same_partition(labels[one_d], np.array([0, 0, 0, 0, 1, 1, 1, -1]))
    np.testing.assert_array_equal(labels[one_d] == -1, [0, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(is_core[one_d], [0, 1, 1, 0, 0, 1, 0, 0])
    # new rows (another DataFrame): the exact distributed assignment
    fresh = spark.createDataFrame(
        [(i, Vectors.dense(X[i]), "x") for i in range(len(X))], ["id", "vec", "name"]
    )
    fresh_labels, fresh_core = labelled(model.transform(fresh))
    np.testing.assert_array_equal(fresh_labels, labels)
    np.testing.assert_array_equal(fresh_core, is_core)

    cover = model.getCoreCover()
    kept = model.clusterer.components_
    assert 0.0 < cover <= 1.0 and 0 < len(kept) <= 150
    assert model.summary.numCorePoints == is_core.sum() > 150
    model.save(tmp_path / "model")
    loaded = SparkDBSCANModel.load(tmp_path / "model")
    assert loaded.getCoreCover() == cover and not loaded.hasSummary
    approx = loaded.clusterer.predict(X)
    # a row the saved model clusters gets its DBSCAN cluster (kept points are true cores) ...
    clustered = approx != -1
    np.testing.assert_array_equal(approx[clustered], labels[clustered])
    # ... and a row it calls noise but DBSCAN does not lies within eps + cover of the kept points
    missed = ~clustered & (labels != -1)
    if missed.any():
        dist = NearestNeighbors(n_neighbors=1).fit(kept).kneighbors(X[missed])[0][:, 0]
        assert (dist > 1.0).all() and (dist <= 1.0 + cover + 1e-12).all()


@pytest.mark.spark
def test_bad_rows_are_refused(spark) -> None:
    bad = spark.createDataFrame(
        [(i, None if i == 33 else [float(i), 0.0]) for i in range(40)], "id long, f array<double>"
    )
    with pytest.raises(ParameterError, match=re.escape("featuresCol 'f' is null in 1 of 40 rows")):
        SparkDBSCAN(eps=1.0, min_samples=2, featuresCol="f", maxDriverRows=5).fit(bad)


@pytest.mark.spark
def test_fewer_rows_than_min_samples(spark) -> None:
    """As on the driver path: refused with the figures, never a silent all-noise result."""
    df = dataframe(spark, np.arange(24, dtype=float).reshape(12, 2))
    with pytest.raises(
        ParameterError, match=re.escape("min_samples (20) exceeds the number of customers (12)")
    ):
        SparkDBSCAN(eps=1.0, min_samples=20, maxDriverRows=4).fit(df)


def test_param_validation() -> None:
    with pytest.raises(
        ParameterError, match=re.escape("partitionRows must be an integer >= 1, got 0")
    ):
        SparkDBSCAN(eps=0.5, partitionRows=0)
    with pytest.raises(
        ParameterError, match=re.escape("maxModelPoints must be an integer >= 1, got -3")
    ):
        SparkDBSCAN(eps=0.5, maxModelPoints=-3)


# -- other engines: separate executor processes, and Spark Connect --------------------------
# tests/cluster/conftest.py runs these fits with the other modules' in one application per engine.
ENGINE_X = customer_like(160, 8, 21)
ENGINE_MIN_SAMPLES = 6
ENGINE_EPS = eps_for(ENGINE_X, ENGINE_MIN_SAMPLES)
# fewer model points than core points: the checkpoint, the keyed partitions and the
# fit's own labels all run on the engine
ENGINE_PARAMS = {
    "eps": ENGINE_EPS,
    "min_samples": ENGINE_MIN_SAMPLES,
    "predictionCol": "segment",
    "maxDriverRows": 50,
    "partitionRows": 50,  # at least 4 boxes
    "maxModelPoints": 20,
}


@pytest.mark.spark
@pytest.mark.slow
def test_matches_sklearn_on_local_cluster(local_cluster_fits) -> None:
    out = local_cluster_fits["dbscan"]
    assert_dbscan_equivalent(
        ENGINE_X, ENGINE_EPS, ENGINE_MIN_SAMPLES, out["segment"], out["is_core"]
    )


@pytest.mark.spark
@pytest.mark.slow
def test_matches_sklearn_through_spark_connect(connect_fits) -> None:
    out = connect_fits["dbscan"]
    assert_dbscan_equivalent(
        ENGINE_X, ENGINE_EPS, ENGINE_MIN_SAMPLES, out["segment"], out["is_core"]
    )
