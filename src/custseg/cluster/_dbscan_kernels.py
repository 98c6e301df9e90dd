"""The exact DBSCAN kernels (numpy / scipy, one core): core flags, local clusters, nearest core.

They run inside Spark tasks on one box of the distributed fit (``_dbscan_spark``) and,
on all rows at once, in the single-node :class:`~custseg.cluster.DBSCAN`. Memory and
time follow the rows, never the full neighbour lists (thousands of rows each in a
dense blob): core flags come from a k-NN query bounded at eps, clusters from each
row's few nearest cores plus bounded queries between fragments.

Exact comparisons at eps: distances within a relative 1e-9 of eps are settled with the
squared distance summed dimension by dimension against eps * eps, the comparison
scikit-learn's trees make.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._neighbours import inverse, spatial_order

# Relative band around eps inside which a distance is re-checked exactly.
TIE_BAND = 1e-9
# Query rows per k-NN call (bounds the (rows x min_samples) result arrays).
QUERY_CHUNK = 8_192
# k-d tree leaf size (64 measured fastest for 8-D k-NN queries at eps's scale).
LEAF_SIZE = 64
# Approximation factor of the first, filtering k-NN pass (scipy's ``eps``): the rows it
# returns are true neighbours at true distances, so "k-th within eps" is still a proof.
APPROX = 2.0
# Nearest core points linked per row when building fragments of the local clusters.
FRAGMENT_NEIGHBOURS = 8
# Fragments this large get their own tree; smaller ones are pooled in one.
LARGE_FRAGMENT = 64


# -- exact distance tests ---------------------------------------------------------------------
def sq_distances(point: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Squared distances summed dimension by dimension (scikit-learn's trees' order)."""
    total = np.zeros(rows.shape[0])
    for j in range(rows.shape[1]):
        diff = rows[:, j] - point[j]
        total += diff * diff
    return total


def _in_tie_band(dist: np.ndarray, eps: float) -> np.ndarray:
    return np.isfinite(dist) & (np.abs(dist - eps) <= eps * TIE_BAND)


# -- kernels ------------------------------------------------------------------------------------
def core_flags(X: np.ndarray, owned: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """Is each owned row of X a core point (at least min_samples rows of X within eps)?

    X holds the owned rows and their halo: every row within eps of an owned row.
    A k-NN query bounded at eps finds the min_samples-th neighbour; rows whose
    distance falls in the tie band are counted exactly. An approximate query
    (``APPROX``: it may skip nearer rows, but the distances it returns are true
    ones) settles most core points several times faster; only the rows it
    leaves undecided get the exact query. Queries run in spatial order
    (``_neighbours``); the flags come back in row order.
    """
    from scipy.spatial import cKDTree

    owned_rows = np.flatnonzero(owned)
    if min_samples <= 1:
        return np.ones(owned_rows.size, dtype=bool)
    if X.shape[0] < min_samples:
        return np.zeros(owned_rows.size, dtype=bool)
    order = spatial_order(X[owned_rows])
    queries = X[owned_rows[order]]
    tree = cKDTree(X, leafsize=LEAF_SIZE)
    reach = eps * (1.0 + 4 * TIE_BAND)
    kth = _kth_distance(tree, queries, min_samples, reach, APPROX)
    undecided = np.flatnonzero((kth > eps) | _in_tie_band(kth, eps))
    if undecided.size:
        kth[undecided] = _kth_distance(tree, queries[undecided], min_samples, reach, 0.0)
    is_core = kth <= eps
    eps_sq = eps * eps
    for i in np.flatnonzero(_in_tie_band(kth, eps)):
        candidates = tree.query_ball_point(queries[i], reach)
        within = sq_distances(queries[i], X[candidates]) <= eps_sq
        is_core[i] = int(np.count_nonzero(within)) >= min_samples
    return is_core[inverse(order)]


def _kth_distance(
    tree: Any, queries: np.ndarray, k: int, reach: float, approx: float
) -> np.ndarray:
    """Distance to the k-th nearest row of the tree (inf beyond reach), in chunks."""
    kth = np.empty(queries.shape[0])
    for start in range(0, queries.shape[0], QUERY_CHUNK):
        dist, _ = tree.query(
            queries[start : start + QUERY_CHUNK], k=k, eps=approx, distance_upper_bound=reach
        )
        kth[start : start + dist.shape[0]] = dist.reshape(dist.shape[0], -1)[:, -1]
    return kth


def local_clusters(cores: np.ndarray, eps: float) -> np.ndarray:
    """Connected components of the core points' eps-graph, numbered by first row.

    Never lists whole neighbourhoods (thousands of rows each in a dense blob):

    1. edges to each row's few nearest core points within eps give fragments;
    2. two fragments are joined when some row of one has a row of the other
       within eps: a row asks each large fragment near it for its nearest member
       (one bounded k-NN query), and the pooled small fragments for all members
       within eps (few: small fragments live where points are sparse).

    The rows are worked on in spatial order (``_neighbours``) and numbered in
    their given order.
    """
    from scipy.spatial import cKDTree

    n = cores.shape[0]
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    order = spatial_order(cores)
    cores = cores[order]
    reach = eps * (1.0 + 4 * TIE_BAND)
    tree = cKDTree(cores, leafsize=LEAF_SIZE)
    k = min(FRAGMENT_NEIGHBOURS, n)
    rows_parts, cols_parts = [], []
    for start in range(0, n, QUERY_CHUNK):
        # approximate neighbours are still true edges: fragments only need some of them
        dist, idx = tree.query(
            cores[start : start + QUERY_CHUNK], k=k, eps=APPROX, distance_upper_bound=reach
        )
        dist, idx = dist.reshape(dist.shape[0], -1), idx.reshape(idx.shape[0], -1)
        row, col = np.nonzero(np.isfinite(dist))
        row_idx, nbr = start + row, idx[row, col]
        ok = _exactly_within(cores, row_idx, nbr, dist[row, col], eps)
        rows_parts.append(row_idx[ok])
        cols_parts.append(nbr[ok])
    fragment = _components(n, np.concatenate(rows_parts), np.concatenate(cols_parts))

    sizes = np.bincount(fragment)
    large = np.flatnonzero(sizes >= LARGE_FRAGMENT)
    small_rows = np.flatnonzero(sizes[fragment] < LARGE_FRAGMENT)
    a_parts, b_parts = [], []
    for frag in large:
        members = np.flatnonzero(fragment == frag)
        lower, upper = cores[members].min(axis=0), cores[members].max(axis=0)
        gap = np.maximum(np.maximum(lower - cores, cores - upper), 0.0)
        near = np.flatnonzero(
            (np.einsum("nd,nd->n", gap, gap) <= reach * reach) & (fragment != frag)
        )
        if near.size == 0:
            continue
        frag_tree = cKDTree(cores[members], leafsize=32)
        dist, idx = frag_tree.query(cores[near], k=1, distance_upper_bound=reach)
        found = np.isfinite(dist)
        near, nearest, dist = near[found], members[idx[found]], dist[found]
        ok = _exactly_within(cores, near, nearest, dist, eps)
        # a row in the tie band whose nearest member is just beyond eps: check all members near it
        for row in near[~ok & _in_tie_band(dist, eps)]:
            candidates = members[frag_tree.query_ball_point(cores[row], reach)]
            ok[near == row] = bool((sq_distances(cores[row], cores[candidates]) <= eps * eps).any())
        a_parts.append(fragment[near[ok]])
        b_parts.append(np.full(int(ok.sum()), frag))
    if small_rows.size:
        small_tree = cKDTree(cores[small_rows], leafsize=32)
        for start in range(0, n, QUERY_CHUNK):
            block = np.arange(start, min(n, start + QUERY_CHUNK))
            hits = small_tree.query_ball_point(cores[block], reach)
            lengths = np.fromiter((len(h) for h in hits), dtype=np.int64, count=block.size)
            if not lengths.sum():
                continue
            row_idx = np.repeat(block, lengths)
            nbr = small_rows[np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])]
            other = fragment[row_idx] != fragment[nbr]
            row_idx, nbr = row_idx[other], nbr[other]
            ok = sq_distances_rows(cores[row_idx], cores[nbr]) <= eps * eps
            a_parts.append(fragment[row_idx[ok]])
            b_parts.append(fragment[nbr[ok]])
    n_fragments = int(fragment.max()) + 1
    a = np.concatenate(a_parts) if a_parts else np.empty(0, dtype=np.int64)
    b = np.concatenate(b_parts) if b_parts else np.empty(0, dtype=np.int64)
    merged = _components(n_fragments, a, b)[fragment][inverse(order)]
    # Number clusters by their first row (rows arrive sorted by id).
    _, first = np.unique(merged, return_index=True)
    mapping = np.empty(int(merged.max()) + 1, dtype=np.int64)
    mapping[merged[np.sort(first)]] = np.arange(first.size)
    return mapping[merged]


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def _exactly_within(
    X: np.ndarray, rows: np.ndarray, others: np.ndarray, dist: np.ndarray, eps: float
) -> np.ndarray:
    """dist <= eps, re-checked exactly (scikit-learn's comparison) inside the tie band."""
    ok = dist <= eps
    band = np.flatnonzero(_in_tie_band(dist, eps))
    if band.size:
        ok[band] = sq_distances_rows(X[rows[band]], X[others[band]]) <= eps * eps
    return ok


def sq_distances_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise squared distances, summed dimension by dimension like :func:`sq_distances`."""
    total = np.zeros(A.shape[0])
    for j in range(A.shape[1]):
        diff = B[:, j] - A[:, j]
        total += diff * diff
    return total


def core_tree(cores: np.ndarray) -> Any:
    """The k-d tree :func:`nearest_core` searches (build it once for many calls)."""
    from scipy.spatial import cKDTree

    return cKDTree(cores, leafsize=32)


def nearest_core(
    X: np.ndarray,
    cores: np.ndarray,
    core_labels: np.ndarray,
    eps: float,
    *,
    tree: Any = None,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(label, is_core) per row: the cluster of the nearest core point within eps, else -1.

    is_core: the row coincides with a core point (a training row is then core).
    The rows are queried in spatial order (``_neighbours``) and answered in theirs.
    ``tree`` is ``core_tree(cores)`` if already built; ``workers`` threads per query
    (1 inside Spark tasks, which have one core each).
    """
    n = X.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    is_core = np.zeros(n, dtype=bool)
    if n == 0 or cores.shape[0] == 0:
        return labels, is_core
    order = spatial_order(X)
    X = X[order]
    tree = core_tree(cores) if tree is None else tree
    reach = eps * (1.0 + 4 * TIE_BAND)
    dist = np.empty(n)
    nearest = np.empty(n, dtype=np.int64)
    for start in range(0, n, QUERY_CHUNK):
        d, i = tree.query(
            X[start : start + QUERY_CHUNK], k=1, distance_upper_bound=reach, workers=workers
        )
        dist[start : start + d.shape[0]], nearest[start : start + d.shape[0]] = d, i
    found = dist <= eps
    eps_sq = eps * eps
    for row in np.flatnonzero(_in_tie_band(dist, eps)):
        candidates = np.asarray(tree.query_ball_point(X[row], reach), dtype=np.int64)
        sq = sq_distances(X[row], cores[candidates])
        found[row] = bool((sq <= eps_sq).any())
        if found[row]:
            nearest[row] = candidates[int(np.argmin(sq))]
    hit = np.flatnonzero(found)
    labels[hit] = core_labels[nearest[hit]]
    is_core[hit] = np.all(X[hit] == cores[nearest[hit]], axis=1)
    undo = inverse(order)
    return labels[undo], is_core[undo]
