"""HDBSCAN against the hdbscan package, and the k-means baseline."""

from __future__ import annotations

import json
import warnings

import hdbscan
import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_moons
from sklearn.metrics import adjusted_rand_score

from custseg.cluster import HDBSCAN, KMeans


@pytest.fixture(scope="module")
def noisy_moons() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack(
        [make_moons(400, noise=0.07, random_state=0)[0], rng.uniform(-1.5, 2.5, (40, 2))]
    )


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)


# -- HDBSCAN -------------------------------------------------------------------------
@pytest.mark.parametrize(("min_cluster_size", "min_samples"), [(10, None), (15, 5), (25, 2)])
def test_hdbscan_follows_scikit_learn_min_samples(
    noisy_moons: np.ndarray, min_cluster_size: int, min_samples: int | None
) -> None:
    """min_samples counts the customer itself, as scikit-learn's HDBSCAN does (the hdbscan
    package, which does not, is given min_samples - 1)."""
    from sklearn.cluster import HDBSCAN as SkHDBSCAN

    ours = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples).fit(noisy_moons)
    ref = SkHDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True)
    ref_labels = ref.fit(noisy_moons).labels_
    # Same noise, same clusters; the two implementations may break a tie for a border
    # point differently, hence ARI rather than identical labels.
    np.testing.assert_array_equal(ours.labels_ == -1, ref_labels == -1)
    assert adjusted_rand_score(ours.labels_, ref_labels) > 0.99
    assert ours.n_clusters_ == ref_labels.max() + 1


@pytest.mark.parametrize("min_samples", [3, 6, 11])
def test_hdbscan_min_samples_on_real_tabular_data(min_samples: int) -> None:
    """The same convention on the (scaled) wine data: scikit-learn's labels exactly."""
    from sklearn.cluster import HDBSCAN as SkHDBSCAN
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(load_wine().data)
    ours = HDBSCAN(min_cluster_size=10, min_samples=min_samples).fit(X).labels_
    ref = SkHDBSCAN(min_cluster_size=10, min_samples=min_samples, copy=True).fit(X).labels_
    np.testing.assert_array_equal(ours == -1, ref == -1)
    assert adjusted_rand_score(ours, ref) > 0.98


def test_hdbscan_predict(noisy_moons: np.ndarray) -> None:
    model = HDBSCAN(min_cluster_size=15).fit(noisy_moons)
    np.testing.assert_array_equal(model.predict(noisy_moons), model.labels_)
    new = noisy_moons[:60] + 0.01
    expected, _ = hdbscan.approximate_predict(model.clusterer_, new)
    np.testing.assert_array_equal(model.predict(new), expected)


def test_hdbscan_to_dict_round_trip(noisy_moons: np.ndarray) -> None:
    model = HDBSCAN(min_cluster_size=15, min_samples=5).fit(noisy_moons)
    state = model.to_dict()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    assert set(arrays) == {"clusterer_pickle"} and arrays["clusterer_pickle"].dtype == np.uint8
    meta = json.loads(json.dumps({k: v for k, v in state.items() if k not in arrays}))
    restored = HDBSCAN.from_dict({**meta, **arrays})
    assert restored.min_samples == 5
    np.testing.assert_array_equal(restored.labels_, model.labels_)
    new = noisy_moons[::7] + 0.02
    np.testing.assert_array_equal(restored.predict(new), model.predict(new))


# -- KMeans --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    centers = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8], [8, 8, 8]], dtype=float)
    return make_blobs(600, centers=centers, cluster_std=0.8, random_state=11)


def test_kmeans_recovers_blobs(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = blobs
    model = KMeans(k=5).fit(X)
    assert adjusted_rand_score(y, model.labels_) > 0.95
    assert model.cluster_centers_.shape == (5, 3)


def test_kmeans_k_by_silhouette(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = blobs
    model = KMeans(k_range=(2, 8)).fit(X)
    assert model.n_clusters_ == 5
    assert sorted(model.silhouette_by_k_) == list(range(2, 9))
    assert adjusted_rand_score(y, model.labels_) > 0.95


def test_kmeans_labels_by_size_and_predict() -> None:
    X = np.vstack([np.zeros((5, 2)), np.full((20, 2), 10.0), np.full((10, 2), 20.0)])
    X += np.random.default_rng(0).normal(scale=0.1, size=X.shape)
    model = KMeans(k=3).fit(X)
    np.testing.assert_array_equal(np.bincount(model.labels_), [20, 10, 5])
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_array_equal(model.fit_predict(X), model.labels_)


def test_kmeans_deterministic(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    a, b = KMeans(k=4, random_state=3).fit(X), KMeans(k=4, random_state=3).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_kmeans_to_dict_round_trip(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    model = KMeans(k_range=(3, 6), random_state=2).fit(X)
    state = model.to_dict()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    assert set(arrays) == {"cluster_centers"}
    meta = json.loads(json.dumps({k: v for k, v in state.items() if k not in arrays}))
    restored = KMeans.from_dict({**meta, **arrays})
    assert restored.get_params() == {**model.get_params(), "k_range": (3, 6)}
    np.testing.assert_array_equal(restored.predict(X), model.labels_)
