"""SparkHDBSCAN above maxDriverRows: the summarised distributed path against exact HDBSCAN.

The agreement thresholds are the issue's (ARI >= 0.9 against exact HDBSCAN with the same
parameters, noise shares within 2 percentage points), on a small blob mixture and on
customer-like features; ``maxDriverRows`` is set small so the distributed path runs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from custseg.cluster import HDBSCAN, SparkHDBSCAN, SparkHDBSCANModel
from custseg.cluster.hdbscan import _cells as cells
from custseg.cluster.hdbscan._cells import HALO_BUDGET, make_plan
from custseg.cluster.hdbscan._split_tree import SplitTree, box_distance, build_split_tree
from custseg.errors import ModelError, ParameterError

PARAMS = {"min_cluster_size": 30, "min_samples": 10}


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """Five 8-D Gaussian blobs of different spreads and 2% uniform noise (the benchmark's shape)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-6, 6, size=(5, 8))
    stds = np.array([0.3, 0.5, 0.8, 1.2, 0.4])
    which = rng.choice(5, size=n, p=[0.35, 0.25, 0.2, 0.15, 0.05])
    X = centres[which] + rng.standard_normal((n, 8)) * stds[which][:, None]
    noise = rng.random(n) < 0.02
    X[noise] = rng.uniform(-8, 8, size=(int(noise.sum()), 8))
    return X


def customer_like(n: int, seed: int = 1) -> np.ndarray:
    """Nine log-normal customer features in four groups of different spread, logged and scaled."""
    rng = np.random.default_rng(seed)
    centres = np.array(
        [
            [12, 600, 400, 10, 2, 6, 100, 9, 4],
            [3, 2500, 800, 40, 3, 2, 1250, 3, 2],
            [150, 6000, 60, 300, 1, 1, 6000, 2, 1],
            [40, 1500, 200, 25, 2, 4, 400, 6, 3],
        ],
        dtype=float,
    )
    spreads = np.array([0.10, 0.15, 0.25, 0.35])
    which = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    X = np.log1p(centres[which] * np.exp(rng.normal(0, 1, (n, 9)) * spreads[which][:, None]))
    outliers = rng.random(n) < 0.01
    X[outliers] += rng.normal(0, 1.5, (int(outliers.sum()), 9))
    return (X - X.mean(axis=0)) / X.std(axis=0)


def frame(spark, X: np.ndarray):
    data = pd.DataFrame({"id": np.arange(len(X)), "features": [row.tolist() for row in X]})
    return spark.createDataFrame(data, "id long, features array<double>")


def distributed_labels(spark, X: np.ndarray, **extra) -> tuple[np.ndarray, SparkHDBSCANModel]:
    df = frame(spark, X)
    model = SparkHDBSCAN(**PARAMS, maxDriverRows=500, predictionCol="segment", **extra).fit(df)
    scored = model.transform(df).select("id", "segment").toPandas().sort_values("id")
    return scored["segment"].to_numpy(np.int64), model


def assert_agrees(exact: np.ndarray, got: np.ndarray) -> None:
    ari = adjusted_rand_score(exact, got)
    noise_gap = abs(float((exact < 0).mean()) - float((got < 0).mean()))
    assert ari >= 0.9, f"ARI against exact HDBSCAN {ari:.3f} < 0.9"
    assert noise_gap <= 0.02, f"noise shares differ by {noise_gap:.3%}"


# -- the k-d split tree (no Spark) ----------------------------------------------------
def test_split_tree_is_balanced_and_leaves_lie_in_their_boxes():
    X = blobs(2048, seed=3)
    tree = build_split_tree(X, depth=4)
    leaf = tree.leaf_of(X)
    counts = np.bincount(leaf, minlength=16)
    assert counts.sum() == 2048 and counts.min() >= 120 and counts.max() <= 136  # median splits
    lo, hi = tree.boxes(4, X.shape[1])
    assert np.allclose(box_distance(X, lo[leaf], hi[leaf]), 0.0)
    # Cells are subtrees: the top two levels' boxes contain their leaves' points.
    lo2, hi2 = tree.boxes(2, X.shape[1])
    assert np.allclose(box_distance(X, lo2[leaf >> 2], hi2[leaf >> 2]), 0.0)


def test_split_tree_survives_constant_features():
    X = np.zeros((64, 3))
    tree = build_split_tree(X, depth=3)
    assert np.all(tree.leaf_of(X) == tree.leaf_of(X)[0])


def test_split_tree_divides_features_tied_at_the_median():
    """Integer-valued features (a 4x4x4 grid, rows repeated 1-3 times): the lower median
    often equals a node's largest value, and "<=" would then send every row left, level
    after level. Deep enough, every leaf holds copies of one row only."""
    grid = np.array(list(itertools.product(range(4), repeat=3)), dtype=float)
    X = np.repeat(grid, [1 + (i % 3) for i in range(len(grid))], axis=0)
    X = X[np.random.default_rng(0).permutation(len(X))]
    leaf = build_split_tree(X, depth=9).leaf_of(X)
    for one in np.unique(leaf):
        assert len(np.unique(X[leaf == one], axis=0)) == 1, X[leaf == one]
    assert np.unique(leaf).size == len(grid)


def test_small_data_gets_a_bubble_per_customer():
    """Below maxBubbles the summary does not summarise: each customer is its own bubble."""
    X = blobs(300, seed=5)
    plan = make_plan(X, n_rows=300, min_samples=5, max_bubbles=65_536)
    assert np.bincount(plan.tree.leaf_of(X)).max() == 1


def test_halos_of_sparse_cells_are_capped_by_the_budget(monkeypatch):
    """Planned for 10^7 customers (64 cells), a cell of sparse noise would get a halo radius
    that reaches most of the space; capped, no halo holds more than HALO_BUDGET times its
    cell's own rows (on the sample), and no radius is larger than without the cap."""
    X = blobs(20_000, seed=4)
    plan = make_plan(X, n_rows=10_000_000, min_samples=10, max_bubbles=1024)
    cell = plan.cell_of_leaf(plan.tree.leaf_of(X))
    assert plan.n_cells == 64
    own = np.bincount(cell, minlength=plan.n_cells)
    halo = np.array(
        [
            (
                (box_distance(X, plan.cell_lo[c], plan.cell_hi[c]) <= plan.halo[c]) & (cell != c)
            ).sum()
            for c in range(plan.n_cells)
        ]
    )
    assert (halo <= HALO_BUDGET * own + 1).all(), (halo / own).max()
    monkeypatch.setattr(cells, "HALO_BUDGET", 1e9)
    uncapped = make_plan(X, n_rows=10_000_000, min_samples=10, max_bubbles=1024)
    assert (plan.halo > 0).all() and (plan.halo <= uncapped.halo).all()
    assert (plan.halo < uncapped.halo).any()  # the cap bites on this data


def test_summarised_hdbscan_round_trips_and_refuses_inconsistent_state():
    tree = SplitTree(np.array([0, 1, 1]), np.array([0.0, -1.0, 1.0]))
    model = HDBSCAN.from_bubbles(
        {"min_cluster_size": 5, "min_samples": None},
        tree.dims,
        tree.values,
        np.array([0, 0, -1, 1]),
        np.array([4, 3, 1, 6]),
        n_features=2,
    )
    X = np.array([[-1.0, -2.0], [-1.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    np.testing.assert_array_equal(model.predict(X), [0, 0, -1, 1])
    again = HDBSCAN.from_dict(model.to_dict())
    np.testing.assert_array_equal(again.predict(X), [0, 0, -1, 1])
    assert again.is_summarised and again.n_clusters_ == 2
    # A refit on the driver replaces the summarised state (predict no longer goes by bubble).
    refit = again.set_params(min_cluster_size=2).fit(np.vstack([X, X + 0.01]))
    assert not refit.is_summarised and refit.labels_.shape == (8,)
    with pytest.raises(ModelError, match="inconsistent HDBSCAN bubble state"):
        HDBSCAN.from_bubbles({}, tree.dims, tree.values, np.zeros(3), np.zeros(3), n_features=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"maxBubbles": 1}, "maxBubbles must be an integer >= 4, got 1"),
        ({"maxBubbles": 2.5}, "maxBubbles must be an integer >= 4, got 2.5"),
        ({"maxBubbles": "many"}, "maxBubbles must be an integer >= 4, got 'many'"),
        ({"min_cluster_size": 1}, "min_cluster_size must be an integer >= 2, got 1"),
        ({"min_samples": 0}, "min_samples must be None or an integer >= 2, got 0"),
    ],
)
def test_bad_params_are_refused_by_name(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        SparkHDBSCAN(**kwargs)
    with pytest.raises(ParameterError, match=message):
        SparkHDBSCAN().setParams(**kwargs)


# -- the distributed path on local[2] ------------------------------------------------
@pytest.mark.spark
def test_blobs_agree_with_exact_hdbscan(spark):
    X = blobs(4000)
    got, model = distributed_labels(spark, X)
    assert model.clusterer.is_summarised  # the distributed path ran
    assert model.clusterer.leaf_counts_.sum() == len(X)  # every customer in exactly one bubble
    assert_agrees(HDBSCAN(**PARAMS).fit(X).labels_, got)


@pytest.mark.spark
def test_customer_like_features_agree_with_exact_hdbscan(spark):
    X = customer_like(4000)
    got, model = distributed_labels(spark, X)
    assert model.clusterer.is_summarised
    exact = HDBSCAN(**PARAMS).fit(X).labels_
    assert exact.max() >= 1  # the data has structure to agree on
    assert_agrees(exact, got)


@pytest.mark.spark
def test_save_load_round_trip_keeps_labels(spark, tmp_path):
    X = blobs(1500, seed=5)
    got, model = distributed_labels(spark, X, maxBubbles=256)
    assert model.clusterer.split_tree_.n_leaves <= 256
    model.save(tmp_path / "model")
    loaded = SparkHDBSCAN.load(tmp_path / "model")
    assert isinstance(loaded, SparkHDBSCANModel) and loaded.getMaxBubbles() == 256
    # The pyfunc scorer's rule (predict on the driver) and transform give the training labels.
    np.testing.assert_array_equal(loaded.clusterer.predict(X), got)
    again = loaded.transform(frame(spark, X)).select("id", "segment").toPandas().sort_values("id")
    np.testing.assert_array_equal(again["segment"].to_numpy(np.int64), got)


@pytest.mark.spark
def test_non_finite_features_are_refused_with_their_count(spark):
    X = blobs(800, seed=2)
    X[[3, 50]] = np.nan
    with pytest.raises(ParameterError, match="NaN or infinite values in 2 of 800 rows"):
        SparkHDBSCAN(**PARAMS, maxDriverRows=100).fit(frame(spark, X))


# -- other engines (fitted once per engine for all tests/cluster modules: see conftest.py) ----
ENGINE_PARAMS = {**PARAMS, "maxDriverRows": 300}


def engine_data() -> np.ndarray:
    return blobs(2000, seed=4)


@pytest.mark.spark
@pytest.mark.slow
def test_local_cluster_runs_the_distributed_path(local_cluster_fits):
    assert_agrees(
        HDBSCAN(**PARAMS).fit(engine_data()).labels_, local_cluster_fits["hdbscan"]["prediction"]
    )


@pytest.mark.spark
@pytest.mark.slow
def test_spark_connect_runs_the_distributed_path(connect_fits):
    assert_agrees(
        HDBSCAN(**PARAMS).fit(engine_data()).labels_, connect_fits["hdbscan"]["prediction"]
    )
