"""DBSCAN kernel against scikit-learn, hand-worked labels, and the eps diagnostics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from partitions import same_partition
from sklearn.cluster import DBSCAN as SkDBSCAN
from sklearn.datasets import make_blobs, make_circles, make_moons

from custseg.cluster import DBSCAN, k_distance_curve, knee_point
from custseg.cluster._common import base
from custseg.cluster.dbscan import _kernels as kernels
from custseg.cluster.dbscan import estimator as dbscan_estimator
from custseg.errors import ModelError


def assert_matches_sklearn(X: np.ndarray, eps: float, min_samples: int) -> DBSCAN:
    ours = DBSCAN(eps=eps, min_samples=min_samples).fit(X)
    ref = SkDBSCAN(eps=eps, min_samples=min_samples).fit(X)
    np.testing.assert_array_equal(ours.core_sample_indices_, ref.core_sample_indices_)
    np.testing.assert_array_equal(ours.labels_ == -1, ref.labels_ == -1)
    core = ours.core_sample_indices_
    assert same_partition(ours.labels_[core], ref.labels_[core])
    np.testing.assert_array_equal(ours.components_, X[core])
    assert ours.n_clusters_ == len(set(ref.labels_[core].tolist()))
    return ours


def grid(n: int) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    return np.column_stack([xs.ravel(), ys.ravel()])


DATASETS = {
    "blobs": (make_blobs(800, centers=4, cluster_std=0.8, random_state=1)[0], 0.5, 10),
    "blobs_5d": (make_blobs(600, n_features=5, centers=3, random_state=2)[0], 1.2, 8),
    "moons": (make_moons(600, noise=0.08, random_state=1)[0], 0.1, 6),
    "circles": (make_circles(600, noise=0.05, factor=0.5, random_state=1)[0], 0.1, 5),
    "uniform_noise": (np.random.default_rng(0).uniform(size=(400, 2)), 0.05, 4),
    "one_d": (np.array([[0.0], [0.5], [1.0], [1.5], [5.0], [5.5], [6.0], [10.0]]), 0.5, 3),
    # every neighbour exactly eps away: inclusive radius decides the result
    "grid_exactly_eps": (grid(6), 1.0, 5),
    "grid_half_steps": (grid(5) / 2.0, 0.5, 3),
    "duplicates": (
        np.repeat(make_blobs(150, centers=3, random_state=4)[0], [1, 3] * 75, axis=0),
        0.4,
        5,
    ),
}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_matches_sklearn(name: str) -> None:
    X, eps, min_samples = DATASETS[name]
    assert_matches_sklearn(X, eps, min_samples)


@pytest.mark.parametrize("min_samples", [1, 2, 15])
def test_matches_sklearn_min_samples(min_samples: int) -> None:
    X = make_moons(300, noise=0.1, random_state=3)[0]
    assert_matches_sklearn(X, 0.15, min_samples)


def test_hand_worked_one_d() -> None:
    X = np.array([[0.0], [0.5], [1.0], [1.5], [5.0], [5.5], [6.0], [10.0]])
    model = DBSCAN(eps=0.5, min_samples=3).fit(X)
    # cores 0.5, 1.0 and 5.5 (exactly eps apart counts); 0 and 1.5, 5 and 6 are borders
    np.testing.assert_array_equal(model.core_sample_indices_, [1, 2, 5])
    np.testing.assert_array_equal(model.labels_, [0, 0, 0, 0, 1, 1, 1, -1])
    np.testing.assert_array_equal(model.fit_predict(X), model.labels_)


def test_duplicates_make_core_points() -> None:
    X = np.array([[0.0], [0.0], [0.0], [3.0]])
    model = DBSCAN(eps=0.1, min_samples=3).fit(X)
    np.testing.assert_array_equal(model.labels_, [0, 0, 0, -1])
    np.testing.assert_array_equal(model.core_sample_indices_, [0, 1, 2])


def test_all_noise() -> None:
    X = np.arange(5, dtype=float)[:, None] * 10
    model = DBSCAN(eps=1.0, min_samples=2).fit(X)
    assert model.n_clusters_ == 0 and (model.labels_ == -1).all()
    assert model.components_.shape == (0, 1)
    np.testing.assert_array_equal(model.predict([[0.0], [3.0]]), [-1, -1])
    restored = DBSCAN.from_dict(model.to_dict())
    np.testing.assert_array_equal(restored.predict(X), model.labels_)


def test_chunked_queries_match_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny query chunks (and threads) and tiny large fragments: the result must not change."""
    X = make_moons(500, noise=0.06, random_state=7)[0]
    whole = DBSCAN(eps=0.12, min_samples=5).fit(X)
    curve = k_distance_curve(X, 5)
    monkeypatch.setattr(kernels, "QUERY_CHUNK", 7)
    monkeypatch.setattr(kernels, "LARGE_FRAGMENT", 3)  # many fragments get own trees
    monkeypatch.setattr(dbscan_estimator, "_QUERY_CHUNK", 7)
    monkeypatch.setattr(base, "_MIN_THREADED_ROWS", 0)  # thread even this small input
    chunked = DBSCAN(eps=0.12, min_samples=5).fit(X)
    np.testing.assert_array_equal(chunked.labels_, whole.labels_)
    np.testing.assert_array_equal(chunked.predict(X), whole.labels_)
    np.testing.assert_array_equal(k_distance_curve(X, 5), curve)
    assert_matches_sklearn(X, 0.12, 5)


def test_border_point_takes_nearest_core() -> None:
    # Cores 0.4..1.2 and 2.95..3.75 form two clusters. The border point 2.1 is within
    # eps of 1.2 (0.9 away) and of 2.95 (0.85 away): it joins the nearer core's cluster,
    # the rule predict uses. scikit-learn gives it to whichever cluster it visits first.
    X = np.array([[0.0], [0.4], [0.8], [1.2], [2.1], [2.95], [3.35], [3.75], [4.15]])
    model = DBSCAN(eps=1.0, min_samples=4).fit(X)
    np.testing.assert_array_equal(model.core_sample_indices_, [1, 2, 3, 5, 6, 7])
    np.testing.assert_array_equal(model.labels_, [0, 0, 0, 0, 1, 1, 1, 1, 1])
    assert SkDBSCAN(eps=1.0, min_samples=4).fit(X).labels_[4] == 0


def test_predict_reproduces_training_labels() -> None:
    X = make_moons(400, noise=0.1, random_state=5)[0]
    model = DBSCAN(eps=0.12, min_samples=6).fit(X)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    labels, is_core = model.predict_outputs(X)
    np.testing.assert_array_equal(np.flatnonzero(is_core), model.core_sample_indices_)


def test_predict_new_points() -> None:
    X = np.array([[0.0], [0.5], [1.0], [1.5], [5.0], [5.5], [6.0], [10.0]])
    model = DBSCAN(eps=0.5, min_samples=3).fit(X)
    # nearest core within eps (inclusive) -> its cluster; farther -> noise
    new = np.array([[0.2], [1.5], [1.51], [5.0], [4.99], [8.0], [5.5]])
    np.testing.assert_array_equal(model.predict(new), [0, 0, -1, 1, -1, -1, 1])
    _, is_core = model.predict_outputs(new)
    np.testing.assert_array_equal(is_core, [False, False, False, False, False, False, True])


def test_to_dict_round_trip() -> None:
    X, _ = make_blobs(300, centers=3, random_state=0)
    model = DBSCAN(eps=0.7, min_samples=5).fit(X)
    state = model.to_dict()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    assert set(arrays) == {"components", "core_labels"}
    meta = json.loads(json.dumps({k: v for k, v in state.items() if k not in arrays}))
    restored = DBSCAN.from_dict({**meta, **arrays})
    assert (
        restored.eps == 0.7
        and restored.min_samples == 5
        and restored.n_clusters_ == model.n_clusters_
    )
    new = X + np.random.default_rng(0).normal(scale=0.3, size=X.shape)
    np.testing.assert_array_equal(restored.predict(new), model.predict(new))
    np.testing.assert_array_equal(restored.predict(X), model.labels_)


def test_from_dict_refuses_another_method() -> None:
    state = DBSCAN(eps=1.0, min_samples=2).fit([[0.0], [1.0]]).to_dict()
    state["method"] = "kmeans"
    with pytest.raises(ModelError, match="expected 'dbscan'"):
        DBSCAN.from_dict(state)


def test_predict_before_fit() -> None:
    with pytest.raises(ModelError, match="not fitted"):
        DBSCAN(eps=1.0).predict([[0.0]])


# -- k-distance curve and knee ------------------------------------------------------
def test_k_distance_curve_matches_brute_force() -> None:
    from scipy.spatial.distance import cdist

    X = make_blobs(200, centers=3, random_state=3)[0]
    for k in (1, 2, 5):
        expected = np.sort(np.sort(cdist(X, X), axis=1)[:, k - 1])
        np.testing.assert_allclose(k_distance_curve(X, k), expected, rtol=1e-12, atol=1e-12)


def test_k_distance_curve_is_the_core_threshold() -> None:
    """A point is core at eps exactly when its k-distance (k = min_samples) is <= eps."""
    X = make_moons(300, noise=0.1, random_state=2)[0]
    curve = k_distance_curve(X, 6)
    eps = float(np.median(curve))
    n_core = DBSCAN(eps=eps, min_samples=6).fit(X).core_sample_indices_.size
    assert n_core == int((curve <= eps).sum())


def test_knee_of_a_hockey_stick() -> None:
    curve = np.concatenate([np.linspace(0.1, 0.2, 90), np.linspace(0.5, 5.0, 10)])
    index, eps = knee_point(curve)
    assert index == 89 and eps == pytest.approx(0.2)


def test_knee_on_blobs_separates_noise() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack(
        [
            make_blobs(500, centers=3, cluster_std=0.3, random_state=0)[0],
            rng.uniform(-12, 12, size=(25, 2)),
        ]
    )
    _, eps = knee_point(k_distance_curve(X, 5))
    labels = DBSCAN(eps=eps, min_samples=5).fit(X).labels_
    assert len(set(labels[:500].tolist()) - {-1}) == 3


@pytest.mark.parametrize(
    ("curve", "expected"),
    [
        ([0.7], (0, 0.7)),
        ([0.2, 0.9], (0, 0.2)),
        ([1.0, 1.0, 1.0, 1.0], (1, 1.0)),  # flat: the median point
        ([1.0, 2.0, 3.0, 4.0, 5.0], (2, 3.0)),  # linear: no bend
        ([0.0, 0.0, 0.0, 0.0, 2.0], (4, 2.0)),  # knee at 0 -> first positive value
        ([0.0, 0.0, 0.0], (1, 0.0)),  # all zero stays zero
    ],
)
def test_knee_point_robust(curve: list[float], expected: tuple[int, float]) -> None:
    index, eps = knee_point(curve)
    assert (index, eps) == (expected[0], pytest.approx(expected[1]))
