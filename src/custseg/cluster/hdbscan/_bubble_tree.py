"""Step 4 of the distributed HDBSCAN, on the driver: the bubble tree and its labels.

The collected bubble summaries become a mutual-reachability graph, its minimum
spanning tree goes through the weighted condensed tree (``_condensed_tree``), and noise
bubbles most of whose customers would be clustered join their cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from sklearn.neighbors import KDTree

from ._condensed_tree import weighted_hdbscan


@dataclass
class BubbleSummary:
    leaves: np.ndarray  # leaf ids of the non-empty bubbles
    counts: np.ndarray  # customers per bubble
    levels: np.ndarray  # level per bubble: where all its customers are connected
    mids: np.ndarray  # median core distance per bubble
    centroids: np.ndarray  # (m, d)
    edges: np.ndarray  # (e, 3): bubble index a, bubble index b, mutual reachability
    n_inexact_core: int


def read_summary(table: pd.DataFrame, n_features: int) -> BubbleSummary:
    """The collected cell outputs as bubble arrays (bubbles indexed 0..m-1)."""
    bubbles = table[table["b"] < 0].sort_values("a")
    edges = table[table["b"] >= 0]
    leaves = bubbles["a"].to_numpy(np.int64)
    counts = bubbles["n"].to_numpy(np.int64)
    sums = bubbles[[f"s{j}" for j in range(n_features)]].to_numpy(np.float64)
    index = pd.Series(np.arange(leaves.size), index=leaves)
    a = index.reindex(edges["a"].to_numpy()).to_numpy()
    b = index.reindex(edges["b"].to_numpy()).to_numpy()
    return BubbleSummary(
        leaves=leaves,
        counts=counts,
        levels=bubbles["w"].to_numpy(np.float64),
        mids=bubbles["mid"].to_numpy(np.float64),
        centroids=sums / counts[:, None],
        edges=np.column_stack([a, b, edges["w"].to_numpy(np.float64)]),
        n_inexact_core=int(bubbles["inexact"].sum()),
    )


def bubble_spanning_tree(summary: BubbleSummary) -> np.ndarray:
    """Minimum spanning tree ``(m - 1, 3)`` of the bubble graph under mutual reachability."""

    m = summary.leaves.size
    levels = summary.levels
    a = summary.edges[:, 0].astype(np.int64)
    b = summary.edges[:, 1].astype(np.int64)
    w = np.maximum(summary.edges[:, 2], np.maximum(levels[a], levels[b]))
    a, b, w = _connect_components(summary, a, b, w)
    # scipy reads a stored 0 as "no edge": lift zero weights (duplicate customers) a hair.
    w = np.maximum(w, np.finfo(np.float64).tiny)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * m + hi
    order = np.lexsort((w, key))
    first = np.ones(order.size, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pick = order[first]
    graph = coo_matrix((w[pick], (lo[pick], hi[pick])), shape=(m, m)).tocsr()
    mst = minimum_spanning_tree(graph).tocoo()
    n_parts = connected_components(mst, directed=False)[0]
    if n_parts != 1:  # pragma: no cover - _connect_components guarantees one component
        raise RuntimeError(f"bubble spanning tree has {n_parts} components")
    return np.column_stack([mst.row, mst.col, mst.data]).astype(np.float64)


def _connect_components(
    summary: BubbleSummary, a: np.ndarray, b: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add Borůvka edges between components of the neighbour graph, by nearest centroids.

    The k-nearest-neighbour edges connect bubbles within dense regions; well separated
    groups need one more edge each. Their weight is ``max(centroid distance, levels)``,
    a summary-level estimate (these are the top splits of the hierarchy).
    """

    m = summary.leaves.size
    centroids, levels = summary.centroids, summary.levels
    tree = KDTree(centroids) if m > 1 else None
    while m > 1:
        graph = coo_matrix((np.ones(a.size), (a, b)), shape=(m, m))
        n_parts, comp = connected_components(graph, directed=False)
        if n_parts == 1:
            break
        best_w = np.full(n_parts, np.inf)
        best = np.zeros((n_parts, 2), dtype=np.int64)
        k = min(m, 32)
        assert tree is not None
        dist, ind = tree.query(centroids, k=k)
        foreign = comp[ind] != comp[:, None]
        has = foreign.any(axis=1)
        rows = np.flatnonzero(has)
        # The lightest foreign candidate under mutual reachability, not the nearest
        # centroid: where levels (core distances) dominate, as in many dimensions, the
        # nearest foreign bubble is often not the one the component joins first.
        reach = np.maximum(dist[rows], np.maximum(levels[rows][:, None], levels[ind[rows]]))
        reach = np.where(foreign[rows], reach, np.inf)
        j = np.argmin(reach, axis=1)
        cand_b = ind[rows, j]
        cand_w = reach[np.arange(rows.size), j]
        for r, q, cw in zip(rows, cand_b, cand_w, strict=True):
            c = comp[r]
            if cw < best_w[c]:
                best_w[c], best[c] = cw, (r, q)
        # Components whose every bubble saw only its own component among k neighbours:
        # brute force against all foreign centroids (rare: one huge, isolated component).
        for c in np.flatnonzero(~np.isfinite(best_w)):
            mine = np.flatnonzero(comp == c)
            other = np.flatnonzero(comp != c)
            for start in range(0, mine.size, 1024):
                block = mine[start : start + 1024]
                d = np.sqrt(((centroids[block, None, :] - centroids[None, other, :]) ** 2).sum(-1))
                d = np.maximum(d, np.maximum(levels[block][:, None], levels[other][None, :]))
                i, q = np.unravel_index(np.argmin(d), d.shape)
                if d[i, q] < best_w[c]:
                    best_w[c], best[c] = d[i, q], (block[i], other[q])
        a = np.concatenate([a, best[:, 0]])
        b = np.concatenate([b, best[:, 1]])
        w = np.concatenate([w, best_w])
    return a, b, w


def label_bubbles(summary: BubbleSummary, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN's condensed tree and excess-of-mass selection over the weighted bubbles
    (``_condensed_tree``), then :func:`rescue_noise`."""
    if summary.leaves.size < 2:
        return np.full(summary.leaves.size, -1, dtype=np.int64)
    mst = bubble_spanning_tree(summary)
    labels, epsilon = weighted_hdbscan(mst, summary.counts, min_cluster_size)
    if labels.max() < 0:
        return labels
    return rescue_noise(summary, labels, epsilon)


def rescue_noise(
    summary: BubbleSummary, labels: np.ndarray, epsilon: np.ndarray, rounds: int = 10
) -> np.ndarray:
    """Give a noise bubble the cluster most of its customers belong to in exact HDBSCAN.

    A customer is in cluster C when its core distance is at most C's birth distance
    ``epsilon[C]`` and it connects to C below that distance. A bubble is noise under its
    level (its *largest* core distance), but when its median core distance and its
    mutual-reachability edge to a bubble of C are both within ``epsilon[C]``, at least half
    of its customers qualify, so the bubble joins C. Repeated, so chains of such bubbles join.
    """
    labels = labels.copy()
    a = summary.edges[:, 0].astype(np.int64)
    b = summary.edges[:, 1].astype(np.int64)
    w = summary.edges[:, 2]
    src = np.concatenate([a, b])  # both directions: the noise side, the clustered side
    dst = np.concatenate([b, a])
    ww = np.concatenate([w, w])
    for _ in range(rounds):
        cand = (labels[src] < 0) & (labels[dst] >= 0)
        if not cand.any():
            break
        s, d = src[cand], dst[cand]
        weight = np.maximum(ww[cand], summary.mids[s])
        ok = weight <= epsilon[labels[d]]
        if not ok.any():
            break
        s, d, weight = s[ok], d[ok], weight[ok]
        order = np.lexsort((weight, s))
        first = np.ones(order.size, dtype=bool)
        first[1:] = s[order][1:] != s[order][:-1]
        pick = order[first]
        labels[s[pick]] = labels[d[pick]]
    return labels
