"""The exact DBSCAN kernels (numpy / scipy, one core): core flags, local clusters, nearest core.

They run inside Spark tasks on one box of the distributed fit (``_distributed``) and,
on all rows at once, in the single-node :class:`~custseg.cluster.DBSCAN`. Memory and
time follow the rows, never the full neighbour lists (thousands of rows each in a
dense blob): core flags come from a k-NN query bounded at eps, clusters from each
row's few nearest cores plus bounded queries between fragments.

Exact comparisons at eps: distances within a relative 1e-9 of eps are settled with the
squared distance summed dimension by dimension against eps * eps, the comparison
scikit-learn's trees make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .._common.neighbours import inverse, spatial_order

# Relative band around eps inside which a distance is re-checked exactly.
TIE_BAND = 1e-9


# Query rows per k-NN call (bounds the (rows x min_samples) result arrays).
QUERY_CHUNK = 8_192


# k-d tree leaf size (64 measured fastest for 8-D k-NN queries at eps's scale).
LEAF_SIZE = 64


# k-d tree leaf size of the core counts' trees (16 measured fastest on the issue #5 blobs: the
# exact count of 100,000 sparse rows in a 10^6-row box took 7.3 s, against 10.1 s with 8 and
# 8.5 s with 32; the approximate pass 1.5 s against 2.3 s with 64).
COUNT_LEAF_SIZE = 16


# Approximation factor of the first, filtering k-NN pass (scipy's ``eps``): the rows it
# returns are true neighbours at true distances, so "k-th within eps" is still a proof.
APPROX = 2.0


# Nearest core points linked per row when building fragments of the local clusters.
FRAGMENT_NEIGHBOURS = 8


# Fragments this large get their own tree; smaller ones are pooled in one.
LARGE_FRAGMENT = 64


def sq_distances(point: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Squared distances summed dimension by dimension (scikit-learn's trees' order)."""
    total = np.zeros(rows.shape[0])
    for j in range(rows.shape[1]):
        diff = rows[:, j] - point[j]
        total += diff * diff
    return total


def _in_tie_band(dist: np.ndarray, eps: float) -> np.ndarray:
    return np.isfinite(dist) & (np.abs(dist - eps) <= eps * TIE_BAND)


@dataclass(frozen=True)
class OwnCounts:
    """:func:`count_own`'s result: every row's count, and the exact lists behind the small ones."""

    counts: np.ndarray  # (n,) rows within eps, itself included, capped at min_samples
    listed: np.ndarray  # rows counted exactly (the approximate pass left them undecided)
    neighbours: np.ndarray  # (listed, k) their nearest rows within eps; -1 pads
    complete: (
        np.ndarray
    )  # (listed,) for a row short of min_samples: the list holds every row within eps


def count_own(X: np.ndarray, eps: float, min_samples: int) -> OwnCounts:
    """Rows of X within eps of each row of X (itself included), capped at ``min_samples``.

    A row is a core point of X alone when its count reaches ``min_samples``; a
    smaller count is exact, so rows of other boxes (:func:`count_within` on a halo)
    can be added to it. An approximate k-NN query bounded at eps (``APPROX``: it
    may skip nearer rows, but the distances it returns are true ones) settles most
    core points several times faster; only the rows it leaves undecided are
    counted exactly, and their neighbour lists are kept: a row with fewer than
    min_samples neighbours has them all listed, so its nearest core needs no
    further query (:func:`nearest_listed_core`). Queries run in spatial order
    (``_common.neighbours``); everything comes back in row order.
    """

    n = X.shape[0]
    k = max(1, min(min_samples, n))
    if n == 0 or min_samples <= 1:
        empty = np.empty(0, dtype=np.int64)
        return OwnCounts(
            np.full(n, max(min_samples, 0), dtype=np.int64),
            empty,
            np.empty((0, k), dtype=np.int64),
            np.empty(0, dtype=bool),
        )
    order = spatial_order(X)
    queries = X[order]
    tree = cKDTree(X, leafsize=COUNT_LEAF_SIZE)
    counts = np.zeros(n, dtype=np.int64)
    undecided = np.arange(n)
    if n >= min_samples:
        kth = _kth_distance(tree, queries, min_samples, eps * (1.0 + 4 * TIE_BAND), APPROX)
        decided = (kth <= eps) & ~_in_tie_band(kth, eps)
        counts[decided] = min_samples
        undecided = np.flatnonzero(~decided)
    found, neighbours, complete = _count_lists(tree, X, queries[undecided], min_samples, eps)
    counts[undecided] = found
    listed = order[undecided]
    back = np.argsort(listed, kind="stable")  # listed rows in row order
    undo = inverse(order)
    return OwnCounts(counts[undo], listed[back], neighbours[back], complete[back])


def core_counts(X: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """Rows of X within eps of each row of X, capped at ``min_samples`` (see :func:`count_own`)."""
    return count_own(X, eps, min_samples).counts


def nearest_listed_core(
    X: np.ndarray, own: OwnCounts, is_core: np.ndarray, rows: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of the nearest core point of X within eps for each of ``rows``
    (non-core rows, so listed ones); (-1, inf) where none is.

    From the rows' complete neighbour lists; a list the tie band left incomplete
    falls back to a query (:func:`nearest_within`).
    """
    nearest = np.full(rows.size, -1, dtype=np.int64)
    dist = np.full(rows.size, np.inf)
    if rows.size == 0:
        return nearest, dist
    at = np.searchsorted(own.listed, rows)
    if own.listed.size == 0 or not np.array_equal(
        own.listed[np.minimum(at, own.listed.size - 1)], rows
    ):
        raise ValueError("nearest_listed_core: every row must be a listed row")
    cand = own.neighbours[at]
    usable = cand >= 0
    usable[usable] = is_core[cand[usable]]
    sq = np.full(cand.shape, np.inf)
    r, c = np.nonzero(usable)
    sq[r, c] = sq_distances_rows(X[rows[r]], X[cand[r, c]])
    best = np.argmin(sq, axis=1)
    best_sq = sq[np.arange(rows.size), best]
    hit = np.isfinite(best_sq)
    nearest[hit] = cand[hit, best[hit]]
    dist[hit] = np.sqrt(best_sq[hit])
    core_idx = np.flatnonzero(is_core)
    # A box with no core point (fewer rows than min_samples, or all sparse) has no
    # nearest core to look for: its rows keep (-1, inf).
    redo = np.flatnonzero(~own.complete[at]) if core_idx.size else np.empty(0, dtype=np.int64)
    if redo.size:
        found, found_dist = nearest_within(X[rows[redo]], X[core_idx], eps)
        nearest[redo] = np.where(found >= 0, core_idx[np.maximum(found, 0)], -1)
        dist[redo] = found_dist
    return nearest, dist


def count_within(
    tree: Any, points: np.ndarray, queries: np.ndarray, cap: int, eps: float
) -> np.ndarray:
    """Rows of ``points`` (indexed by ``tree``) within eps of each query row, capped at ``cap``.

    Exact: an exact k-NN query (k = cap) bounded just beyond eps, distances in the
    tie band re-checked with scikit-learn's comparison, and a full answer whose
    last neighbour lies in the band (more rows may tie it) counted by a ball query.
    """
    return _count_lists(tree, points, queries, cap, eps)[0]


def _count_lists(
    tree: Any, points: np.ndarray, queries: np.ndarray, cap: int, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`count_within`'s counts, with each query's listed neighbours within eps (-1 pads)
    and, for a query short of ``cap``, whether its list holds every row within eps (True
    for queries that reach ``cap``, whose lists are never read)."""
    m = queries.shape[0]
    k = max(1, min(cap, points.shape[0]))
    counts = np.zeros(m, dtype=np.int64)
    neighbours = np.full((m, k), -1, dtype=np.int64)
    complete = np.ones(m, dtype=bool)
    if m == 0 or points.shape[0] == 0:
        return counts, neighbours, complete
    reach = eps * (1.0 + 4 * TIE_BAND)
    eps_sq = eps * eps
    for start in range(0, m, QUERY_CHUNK):
        block = queries[start : start + QUERY_CHUNK]
        stop = start + block.shape[0]
        dist, idx = tree.query(block, k=k, distance_upper_bound=reach)
        dist, idx = dist.reshape(block.shape[0], -1), idx.reshape(block.shape[0], -1)
        within = dist <= eps
        band = _in_tie_band(dist, eps)
        if band.any():
            rows, cols = np.nonzero(band)
            within[rows, cols] = sq_distances_rows(block[rows], points[idx[rows, cols]]) <= eps_sq
        counts[start:stop] = within.sum(axis=1)
        neighbours[start:stop] = np.where(within, idx, -1)
        complete[start:stop] = ~np.isfinite(dist[:, -1]) | (counts[start:stop] >= cap)
        for row in np.flatnonzero(band[:, -1]):
            candidates = tree.query_ball_point(block[row], reach)
            hits = int(np.count_nonzero(sq_distances(block[row], points[candidates]) <= eps_sq))
            counts[start + row] = min(cap, hits)
            complete[start + row] = hits >= cap
    return counts, neighbours, complete


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


# whole: the two numbered steps of the docstring over one sorted copy of the rows and one tree
def local_clusters(cores: np.ndarray, eps: float) -> np.ndarray:
    """Connected components of the core points' eps-graph, numbered by first row.

    Never lists whole neighbourhoods (thousands of rows each in a dense blob):

    1. edges to each row's few nearest core points within eps give fragments;
    2. two fragments are joined when some row of one has a row of the other
       within eps: a row asks each large fragment near it for its nearest member
       (one bounded k-NN query), and the pooled small fragments for all members
       within eps (few: small fragments live where points are sparse).

    The rows are worked on in spatial order (``_common.neighbours``) and numbered in
    their given order.
    """

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
        ok = exactly_within(cores, row_idx, cores, nbr, dist[row, col], eps)
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
        ok = exactly_within(cores, near, cores, nearest, dist, eps)
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

    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def exactly_within(
    A: np.ndarray, rows: np.ndarray, B: np.ndarray, others: np.ndarray, dist: np.ndarray, eps: float
) -> np.ndarray:
    """Is ``A[rows[i]]`` within eps of ``B[others[i]]``, given their distance ``dist[i]``?
    dist <= eps, re-checked exactly (scikit-learn's comparison) inside the tie band."""
    ok = dist <= eps
    band = np.flatnonzero(_in_tie_band(dist, eps))
    if band.size:
        ok[band] = sq_distances_rows(A[rows[band]], B[others[band]]) <= eps * eps
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
    ``tree`` is ``core_tree(cores)`` if already built; ``workers`` threads per query
    (1 inside Spark tasks, which have one core each).
    """
    n = X.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    is_core = np.zeros(n, dtype=bool)
    if n == 0 or cores.shape[0] == 0:
        return labels, is_core
    nearest, _ = nearest_within(X, cores, eps, tree=tree, workers=workers)
    hit = np.flatnonzero(nearest >= 0)
    labels[hit] = core_labels[nearest[hit]]
    is_core[hit] = np.all(X[hit] == cores[nearest[hit]], axis=1)
    return labels, is_core


def nearest_within(
    X: np.ndarray, cores: np.ndarray, eps: float, *, tree: Any = None, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of each row's nearest core point within eps; (-1, inf) where none is.

    Ties at eps are settled exactly (scikit-learn's comparison). The rows are
    queried in spatial order (``_common.neighbours``) and answered in theirs.
    """
    n = X.shape[0]
    nearest = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf)
    if n == 0 or cores.shape[0] == 0:
        return nearest, dist
    order = spatial_order(X)
    X = X[order]
    tree = core_tree(cores) if tree is None else tree
    reach = eps * (1.0 + 4 * TIE_BAND)
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
            dist[row] = float(np.sqrt(sq.min()))
    nearest[~found] = -1
    dist[~found] = np.inf
    undo = inverse(order)
    return nearest[undo], dist[undo]
