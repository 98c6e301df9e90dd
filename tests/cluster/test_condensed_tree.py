"""The weighted condensed tree behind the distributed HDBSCAN, against exact HDBSCAN on points.

fast_hdbscan's unweighted ``clusters_from_spanning_tree`` is the reference: on the same
spanning tree with unit weights the labels must be its labels, and a weighted vertex must
behave exactly like as many points joined to it below every tree edge.
"""

from __future__ import annotations

import numpy as np
import pytest
from fast_hdbscan.hdbscan import clusters_from_spanning_tree
from partitions import assert_same_partition
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import cdist

from custseg.cluster.hdbscan._condensed_tree import weighted_hdbscan


def mutual_reachability_tree(X: np.ndarray, min_samples: int) -> np.ndarray:
    """Exact HDBSCAN's minimum spanning tree ``(n - 1, 3)`` of mutual reachability."""
    distances = cdist(X, X)
    core = np.sort(distances, axis=1)[:, min_samples - 1]
    reach = np.maximum(distances, np.maximum(core[:, None], core[None, :]))
    np.fill_diagonal(reach, 0.0)
    tree = minimum_spanning_tree(reach).tocoo()
    return np.column_stack([tree.row, tree.col, tree.data]).astype(np.float64)


def blobs_2d(rng: np.random.Generator) -> np.ndarray:
    centres = rng.uniform(-6, 6, (6, 2))
    spreads = rng.uniform(0.2, 1.0, 6)
    sizes = rng.integers(20, 150, 6)
    parts = [rng.normal(c, s, (n, 2)) for c, s, n in zip(centres, spreads, sizes, strict=True)]
    return np.concatenate([*parts, rng.uniform(-8, 8, (40, 2))])


@pytest.mark.parametrize("seed", range(6))
def test_unit_weights_give_hdbscans_labels(seed):
    rng = np.random.default_rng(seed)
    X = blobs_2d(rng)
    mst = mutual_reachability_tree(X, min_samples=4)
    min_cluster_size = int(rng.integers(5, 40))
    expected = clusters_from_spanning_tree(mst, min_cluster_size=min_cluster_size)[0]
    got, births = weighted_hdbscan(mst, np.ones(len(X)), min_cluster_size)
    assert expected.max() >= 1  # there is structure to agree on
    assert_same_partition(np.asarray(expected), got)
    assert births.size == got.max() + 1 and (births > 0).all()


@pytest.mark.parametrize("seed", range(6))
def test_a_weighted_vertex_counts_like_its_points(seed):
    """Vertex v of weight w == w points tied to v by edges shorter than every tree edge."""
    rng = np.random.default_rng(100 + seed)
    X = blobs_2d(rng)
    mst = mutual_reachability_tree(X, min_samples=4)
    min_cluster_size = int(rng.integers(10, 60))
    weights = rng.integers(1, min_cluster_size, len(X))  # every vertex lighter than a cluster
    first = np.concatenate([[0], np.cumsum(weights)[:-1]])
    short = mst[:, 2].min() * 1e-3
    ties = [(first[v], first[v] + j, short) for v in range(len(X)) for j in range(1, weights[v])]
    expanded = np.concatenate(
        [
            np.column_stack(
                [first[mst[:, 0].astype(int)], first[mst[:, 1].astype(int)], mst[:, 2]]
            ),
            np.asarray(ties, dtype=np.float64).reshape(-1, 3),
        ]
    )
    points = np.asarray(clusters_from_spanning_tree(expanded, min_cluster_size=min_cluster_size)[0])
    got, _ = weighted_hdbscan(mst, weights, min_cluster_size)
    assert points.max() >= 1
    assert_same_partition(points[first], got)


def test_a_deep_chain_of_heavy_vertices_is_one_cluster():
    """Two far-apart chains of 30,000 vertices, each heavier than min_cluster_size, joining one
    at a time: two clusters, not a tree 30,000 levels deep (fast_hdbscan overflowed the stack)."""
    n = 30_000
    step = np.arange(1, n)
    chain = np.column_stack([step - 1, step, 1.0 + step * 1e-5])
    mst = np.concatenate([chain, chain + [n, n, 0.0], [[0, n, 100.0]]])
    labels, births = weighted_hdbscan(mst, np.full(2 * n, 150.0), 50)
    assert_same_partition(np.repeat([0, 1], n), labels)
    np.testing.assert_array_equal(births, [100.0, 100.0])


def test_fewer_than_two_vertices_are_noise():
    labels, births = weighted_hdbscan(np.zeros((0, 3)), np.array([80.0]), 10)
    np.testing.assert_array_equal(labels, [-1])
    assert births.size == 0
