"""Which local clusters of a box a visiting core point reaches (the distributed fit's links).

The second pass of the distributed DBSCAN streams other boxes' core points through a
box's :class:`CoreLinker`; each link it finds joins two local clusters into one cluster.
Exact at eps, with the comparisons of ``_kernels``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from .._common.neighbours import spatial_order
from ._kernels import (
    APPROX,
    LARGE_FRAGMENT,
    LEAF_SIZE,
    QUERY_CHUNK,
    TIE_BAND,
    exactly_within,
    sq_distances_rows,
)


class CoreLinker:
    """Which local clusters of a box's own core points each halo core point reaches, exactly.

    A core point owned by another box and within eps of an own core point of
    local cluster ``G`` links its home cluster (its node there) to ``G``. The
    distributed fit streams a box's halo core points through :meth:`links` in
    chunks, so a task holds its own core points and one chunk, never its whole
    halo, and never lists whole neighbourhoods (thousands of rows each in a
    dense blob):

    1. for each halo core, some own core within eps (one approximate k = 1
       query): in a dense region this links the home cluster to the cluster it
       overlaps;
    2. halo cores of home clusters with few rows in the chunk: every own core
       within eps (ball queries; such cores lie where points are sparse);
    3. each home cluster with many rows in the chunk, against each large own
       cluster it is not yet linked to and whose bounding box comes within eps
       of its rows: a dual-tree pair count says whether any pair lies within
       eps (some pair strictly inside: linked; none within reach: not; else the
       few pairs in the tie band are checked exactly); against the pooled small
       own clusters, the pairs within eps are listed.
    """

    def __init__(self, cores: np.ndarray, nodes: np.ndarray, eps: float) -> None:

        self.cores = cores
        self.eps = eps
        self.reach = eps * (1.0 + 4 * TIE_BAND)
        self.node_keys, self.comp = np.unique(
            np.asarray(nodes, dtype=np.int64), return_inverse=True
        )
        self.tree = cKDTree(cores, leafsize=LEAF_SIZE) if cores.shape[0] else None
        sizes = np.bincount(self.comp, minlength=self.node_keys.size)
        self.large: list[tuple[int, np.ndarray, np.ndarray, Any]] = []
        for g in np.flatnonzero(sizes >= LARGE_FRAGMENT):
            members = cores[self.comp == g]
            self.large.append(
                (int(g), members.min(axis=0), members.max(axis=0), cKDTree(members, leafsize=32))
            )
        small = np.flatnonzero(sizes[self.comp] < LARGE_FRAGMENT)
        self.small_rows = small
        self.small_tree = cKDTree(cores[small], leafsize=32) if small.size else None
        if small.size:
            self.small_box = (cores[small].min(axis=0), cores[small].max(axis=0))

    # whole: three numbered query steps over the same halo points, each finding what the one before
    # missed, filling the same pair lists
    def links(self, halo: np.ndarray, home: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (home node, own node) pairs: a halo core of that home within eps of a core
        of that own local cluster. ``halo`` holds halo core points, ``home`` their nodes."""
        home = np.asarray(home, dtype=np.int64)
        if self.tree is None or halo.shape[0] == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        eps_sq = self.eps * self.eps
        pair_homes: list[np.ndarray] = []
        pair_comps: list[np.ndarray] = []

        # 1. some own core within eps: an approximate nearest-neighbour query (it returns a true
        # distance, so a hit is a true link) costs a fiftieth of an exact one from outside a
        # dense box; what it misses, steps 2 and 3 find
        order = spatial_order(halo)  # see _common.neighbours
        for start in range(0, order.size, QUERY_CHUNK):
            rows = order[start : start + QUERY_CHUNK]
            dist, idx = self.tree.query(
                halo[rows], k=1, eps=APPROX, distance_upper_bound=self.reach
            )
            found = np.isfinite(dist)
            rows, idx, dist = rows[found], idx[found], dist[found]
            ok = exactly_within(halo, rows, self.cores, idx, dist, self.eps)
            pair_homes.append(home[rows[ok]])
            pair_comps.append(self.comp[idx[ok]])

        homes, group, group_size = np.unique(home, return_inverse=True, return_counts=True)
        few = np.flatnonzero(group_size[group] < LARGE_FRAGMENT)
        # 2. rows of small home groups: every own core within eps
        for start in range(0, few.size, QUERY_CHUNK):
            block = few[start : start + QUERY_CHUNK]
            hits = self.tree.query_ball_point(halo[block], self.reach)
            lengths = np.fromiter((len(h) for h in hits), dtype=np.int64, count=block.size)
            if not lengths.sum():
                continue
            rows = np.repeat(block, lengths)
            cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])
            ok = sq_distances_rows(halo[rows], self.cores[cols]) <= eps_sq
            pair_homes.append(home[rows[ok]])
            pair_comps.append(self.comp[cols[ok]])

        # 3. large home groups: pair counts against the clusters they are not yet linked to
        linked = set(
            zip(
                np.concatenate(pair_homes).tolist(),
                np.concatenate(pair_comps).tolist(),
                strict=True,
            )
        )

        for g_home in np.flatnonzero(group_size >= LARGE_FRAGMENT):
            node = int(homes[g_home])
            rows = halo[group == g_home]
            lower, upper = rows.min(axis=0), rows.max(axis=0)
            rows_tree = cKDTree(rows, leafsize=32)
            for comp, c_lower, c_upper, comp_tree in self.large:
                if (node, comp) in linked or not _boxes_within(
                    lower, upper, c_lower, c_upper, self.reach
                ):
                    continue
                if self._any_pair_within(rows, rows_tree, comp_tree):
                    linked.add((node, comp))
            near_small = self.small_tree is not None and _boxes_within(
                lower, upper, *self.small_box, self.reach
            )
            if near_small and rows_tree.count_neighbors(self.small_tree, self.reach) > 0:
                pairs = rows_tree.sparse_distance_matrix(
                    self.small_tree, self.reach, output_type="ndarray"
                )
                i, j = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
                cols = self.small_rows[j]
                ok = sq_distances_rows(rows[i], self.cores[cols]) <= eps_sq
                linked.update((node, int(c)) for c in np.unique(self.comp[cols[ok]]))
        if not linked:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        pairs_array = np.array(sorted(linked), dtype=np.int64)
        return pairs_array[:, 0], self.node_keys[pairs_array[:, 1]]

    def _any_pair_within(self, rows: np.ndarray, rows_tree: Any, comp_tree: Any) -> bool:
        """Is some row within eps of some point of ``comp_tree`` (ties settled exactly)?"""
        if rows_tree.count_neighbors(comp_tree, self.eps * (1.0 - 4 * TIE_BAND)) > 0:
            return True
        if rows_tree.count_neighbors(comp_tree, self.reach) == 0:
            return False
        pairs = rows_tree.sparse_distance_matrix(comp_tree, self.reach, output_type="ndarray")
        i, j = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
        points = comp_tree.data
        return bool((sq_distances_rows(rows[i], points[j]) <= self.eps * self.eps).any())


def _boxes_within(
    lower_a: np.ndarray, upper_a: np.ndarray, lower_b: np.ndarray, upper_b: np.ndarray, reach: float
) -> bool:
    """Do two bounding boxes come within ``reach`` of each other?"""
    gap = np.maximum(np.maximum(lower_b - upper_a, lower_a - upper_b), 0.0)
    return float(gap @ gap) <= reach * reach
