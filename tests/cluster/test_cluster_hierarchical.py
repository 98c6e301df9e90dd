"""Hierarchical clustering: scipy's partition at the same k, k by silhouette, predict and
to_dict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from partitions import same_partition
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, silhouette_score

from custseg.cluster import Hierarchical
from custseg.cluster.hierarchical import estimator as hierarchical_estimator
from custseg.errors import ParameterError


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    return make_blobs(400, centers=4, cluster_std=0.6, random_state=3)


@pytest.mark.parametrize("k", [2, 3, 5, 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_ward_equals_scipy(k: int, seed: int) -> None:
    # Unstructured data: every cut is a real test of the merge order.
    X = np.random.default_rng(seed).normal(size=(300, 4))
    ours = Hierarchical(n_clusters=k, linkage="ward").fit(X)
    ref = fcluster(linkage(X, "ward"), k, "maxclust")
    assert same_partition(ours.labels_, ref)
    assert ours.n_clusters_ == k


@pytest.mark.parametrize("method", ["complete", "average", "single"])
def test_other_linkages_equal_scipy(method: str) -> None:
    X = np.random.default_rng(5).normal(size=(200, 3))
    ours = Hierarchical(n_clusters=4, linkage=method).fit(X)
    assert same_partition(ours.labels_, fcluster(linkage(X, method), 4, "maxclust"))


def test_linkage_matrix_is_scipy_format() -> None:
    X = np.random.default_rng(2).normal(size=(50, 3))
    model = Hierarchical(n_clusters=3).fit(X)
    Z = model.linkage_matrix_
    assert Z.shape == (49, 4)
    np.testing.assert_allclose(Z[:, 2], linkage(X, "ward")[:, 2])


def test_k_chosen_by_silhouette(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = blobs
    model = Hierarchical(k_range=(2, 8)).fit(X)
    assert model.n_clusters_ == 4
    assert sorted(model.silhouette_by_k_) == list(range(2, 9))
    assert max(model.silhouette_by_k_, key=model.silhouette_by_k_.get) == 4
    assert adjusted_rand_score(y, model.labels_) == pytest.approx(1.0)


def test_silhouette_on_a_seeded_sample(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    a = Hierarchical(k_range=(2, 6), silhouette_sample=120, random_state=7).fit(X)
    b = Hierarchical(k_range=(2, 6), silhouette_sample=120, random_state=7).fit(X)
    full = Hierarchical(k_range=(2, 6)).fit(X)
    assert a.silhouette_by_k_ == b.silhouette_by_k_
    assert a.silhouette_by_k_ != full.silhouette_by_k_
    assert a.n_clusters_ == 4


def test_k_range_clipped_to_the_data() -> None:
    X = np.array([[0.0], [0.1], [5.0], [5.1]])
    model = Hierarchical(k_range=(2, 10)).fit(X)
    assert set(model.silhouette_by_k_) <= {2, 3}
    assert model.n_clusters_ == 2


def test_labels_ordered_by_decreasing_size() -> None:
    X = np.vstack([np.zeros((5, 2)), np.full((20, 2), 10.0), np.full((10, 2), 20.0)])
    X += np.random.default_rng(0).normal(scale=0.1, size=X.shape)
    labels = Hierarchical(n_clusters=3).fit(X).labels_
    np.testing.assert_array_equal(np.bincount(labels), [20, 10, 5])
    assert labels[5] == 0 and labels[25] == 1 and labels[0] == 2


def test_predict_and_centroids(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    model = Hierarchical(n_clusters=4).fit(X)
    for k in range(4):
        np.testing.assert_allclose(model.cluster_centers_[k], X[model.labels_ == k].mean(axis=0))
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    # New points: the nearest centroid's cluster
    np.testing.assert_array_equal(model.predict(model.cluster_centers_ + 1e-3), np.arange(4))


def test_predict_keeps_training_labels_where_centroids_disagree() -> None:
    # Single linkage chains along a line: the nearest centroid disagrees for the chain's end,
    # but a training row still gets its training label.
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0], [20.0], [21.0]])
    model = Hierarchical(n_clusters=2, linkage="single").fit(X)
    np.testing.assert_array_equal(model.labels_, [0] * 8 + [1] * 2)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert model.predict([[7.0001]])[0] == 0 and model.predict([[14.0]])[0] == 1


def test_to_dict_round_trip(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    model = Hierarchical(k_range=(2, 5)).fit(X)
    state = model.to_dict()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    assert {"cluster_centers", "linkage_matrix", "train_points", "train_labels"} <= set(arrays)
    meta = json.loads(json.dumps({k: v for k, v in state.items() if k not in arrays}))
    restored = Hierarchical.from_dict({**meta, **arrays})
    assert restored.k_range == (2, 5) and restored.silhouette_by_k_ == model.silhouette_by_k_
    np.testing.assert_array_equal(restored.predict(X), model.labels_)
    new = np.random.default_rng(1).normal(scale=5, size=(50, 2))
    np.testing.assert_array_equal(restored.predict(new), model.predict(new))


def test_pairwise_linkages_are_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hierarchical_estimator, "MAX_PAIRWISE_ROWS", 10)
    X = np.random.default_rng(0).normal(size=(11, 2))
    with pytest.raises(
        ParameterError, match=r"linkage 'complete' .* limited to 10 customers; the data has 11"
    ):
        Hierarchical(n_clusters=2, linkage="complete").fit(X)
    Hierarchical(n_clusters=2, linkage="ward").fit(X)  # ward needs no distance matrix


def test_single_customer() -> None:
    model = Hierarchical(n_clusters=1).fit([[1.0, 2.0]])
    np.testing.assert_array_equal(model.labels_, [0])


def test_k_choice_skips_fragmenting_k_and_matches_scipy_silhouettes():
    # Four groups of 60 and six far-away singletons: high k would peel off the singletons.
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0], [6, 0], [0, 6], [6, 6]], dtype=float)
    X = np.vstack(
        [c + rng.normal(0, 0.5, (60, 2)) for c in centres] + [rng.uniform(20, 60, (6, 2))]
    )
    min_size = 10
    model = Hierarchical(k_range=(2, 12), min_segment_size=min_size).fit(X)
    Z = linkage(X, "ward")
    expected_scores, expected_skipped = {}, []
    for k in range(2, 13):
        labels = fcluster(Z, k, criterion="maxclust")
        if (np.unique(labels, return_counts=True)[1] < min_size).sum() > 2:
            expected_skipped.append(k)
        else:
            expected_scores[k] = silhouette_score(X, labels)
    assert model.skipped_k_ == expected_skipped and expected_skipped
    assert model.silhouette_by_k_ == pytest.approx(expected_scores)
    assert model.n_clusters_ == max(expected_scores, key=expected_scores.get)
