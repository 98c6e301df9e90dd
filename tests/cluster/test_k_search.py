"""The coarse-to-fine k search finds the k an exhaustive search finds, up to 100 clusters."""

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, silhouette_score

from custseg.cluster import Hierarchical, KMeans
from custseg.cluster._common.k_search import FULL_GRID_MAX, choose_k_by_silhouette, k_grid


def test_short_ranges_are_scored_in_full():
    assert k_grid(2, 10) == list(range(2, 11))
    assert k_grid(5, 5 + FULL_GRID_MAX - 1) == list(range(5, 5 + FULL_GRID_MAX))


@pytest.mark.parametrize(("low", "high"), [(2, 100), (2, 18), (3, 250), (40, 100)])
def test_wide_ranges_get_a_geometric_grid_with_both_ends(low, high):
    grid = k_grid(low, high)
    assert grid[0] == low and grid[-1] == high
    assert all(b > a for a, b in zip(grid, grid[1:], strict=False))
    # Each step is at most about 20% (rounding adds at most one k).
    assert all(b <= round(a * 1.2) + 1 for a, b in zip(grid, grid[1:], strict=False))
    assert len(grid) < high - low + 1


def _exhaustive_best(X, Z, low, high):
    """Every k scored, independently of custseg: scipy's cut and scikit-learn's silhouette."""
    scores = {
        k: silhouette_score(X, fcluster(Z, k, criterion="maxclust")) for k in range(low, high + 1)
    }
    return max(scores, key=lambda k: (scores[k], -k)), scores


@pytest.mark.parametrize("n_centers", [7, 23, 41, 67, 93])
def test_coarse_to_fine_finds_the_exhaustive_best_k(n_centers):
    X, _ = make_blobs(
        n_samples=20 * n_centers,
        centers=n_centers,
        n_features=4,
        cluster_std=0.4,
        center_box=(-60, 60),
        random_state=n_centers,
    )
    Z = linkage(X, "ward")
    expected, exhaustive = _exhaustive_best(X, Z, 2, 100)

    def labels_for_k(k):
        return fcluster(Z, k, criterion="maxclust")

    best, scores, labels, skipped = choose_k_by_silhouette(X, labels_for_k, (2, 100), 10**6, 0)
    assert best == expected and not skipped
    assert len(scores) <= 35  # a fraction of the 99 an exhaustive search scores
    assert scores == pytest.approx({k: exhaustive[k] for k in scores})
    np.testing.assert_array_equal(labels, labels_for_k(best))


@pytest.mark.parametrize("estimator", [Hierarchical, KMeans])
def test_one_hundred_separated_groups_are_found(estimator):
    grid = np.stack(np.meshgrid(np.arange(10), np.arange(10)), -1).reshape(-1, 2) * 10.0
    X, truth = make_blobs(n_samples=3000, centers=grid, cluster_std=0.5, random_state=0)
    model = estimator(k_range=(2, 120)).fit(X)
    assert model.n_clusters_ == 100
    assert adjusted_rand_score(truth, model.labels_) == pytest.approx(1.0)
    assert len(model.silhouette_by_k_) <= 35


def test_fragmenting_k_are_skipped_and_the_search_still_ends():
    X, _ = make_blobs(n_samples=400, centers=4, cluster_std=0.5, random_state=1)
    Z = linkage(X, "ward")
    best, scores, _, skipped = choose_k_by_silhouette(
        X, lambda k: fcluster(Z, k, criterion="maxclust"), (2, 60), 10**6, 0, min_segment_size=20
    )
    assert best == 4
    assert skipped and min(skipped) > 4 and not set(skipped) & set(scores)
