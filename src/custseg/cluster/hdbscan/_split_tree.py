"""The k-d split tree of HDBSCAN's bubbles (numpy only).

The distributed fit builds it on a sample (its leaves are the bubbles, its top levels
the cells of parallel work); a fitted, summarised :class:`~custseg.cluster.HDBSCAN`
keeps it to label a new customer by the bubble it falls in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class SplitTree:
    """A complete binary k-d tree in heap order: node ``i`` has children ``2i+1`` and ``2i+2``.

    Internal node ``i`` sends ``x`` right when ``x[dims[i]] > values[i]``. Leaves are
    numbered ``0 .. 2**depth - 1`` left to right.
    """

    dims: np.ndarray  # int64, (2**depth - 1,)
    values: np.ndarray  # float64, (2**depth - 1,)

    @property
    def depth(self) -> int:
        return int(round(math.log2(self.dims.size + 1)))

    @property
    def n_leaves(self) -> int:
        return self.dims.size + 1

    def leaf_of(self, X: np.ndarray) -> np.ndarray:
        """The leaf (bubble) of each row of ``X``."""
        node = np.zeros(X.shape[0], dtype=np.int64)
        rows = np.arange(X.shape[0])
        for _ in range(self.depth):
            node = 2 * node + 1 + (X[rows, self.dims[node]] > self.values[node])
        return node - self.dims.size

    def boxes(self, depth: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (``(2**depth, n_features)``, infinite at the outside) of the
        nodes at ``depth`` (``n_features``: features the tree never splits on count too)."""
        lo = np.full((1, n_features), -np.inf)
        hi = np.full((1, n_features), np.inf)
        for level in range(depth):
            first = 2**level - 1
            dims = self.dims[first : first + 2**level]
            values = self.values[first : first + 2**level]
            rows = np.arange(2**level)
            left_hi, right_lo = hi.copy(), lo.copy()
            left_hi[rows, dims] = np.minimum(left_hi[rows, dims], values)
            right_lo[rows, dims] = np.maximum(right_lo[rows, dims], values)
            lo = np.stack([lo, right_lo], axis=1).reshape(-1, n_features)
            hi = np.stack([left_hi, hi], axis=1).reshape(-1, n_features)
        return lo, hi


def build_split_tree(sample: np.ndarray, depth: int) -> SplitTree:
    """Median splits on the feature of largest variance, ``depth`` levels.

    Vectorised level by level (a level is a few sorts of the sample): the sample rows
    are kept grouped by node, and each node splits at its lower median, "<= value" going
    left, so the halves stay balanced without ties. A node with fewer than two rows sends
    everything left.
    """
    n, d = sample.shape
    dims = np.zeros(2**depth - 1, dtype=np.int64)
    values = np.full(2**depth - 1, np.inf)
    order = np.arange(n)  # sample rows, grouped by node
    node = np.zeros(n, dtype=np.int64)  # node (within the level) of each position of order
    for level in range(depth):
        m = 2**level
        counts = np.bincount(node, minlength=m)
        pts = sample[order]
        sums = np.column_stack([np.bincount(node, pts[:, j], minlength=m) for j in range(d)])
        safe = np.maximum(counts, 1)[:, None]
        means = sums / safe
        # The widest feature by mean absolute deviation, not variance: a sparse column (one
        # customer far out, the rest tied) has a large variance but a median split that
        # leaves one row on a side, and a tree of such splits has mostly empty leaves.
        spread = np.column_stack(
            [np.bincount(node, np.abs(pts[:, j] - means[node, j]), minlength=m) for j in range(d)]
        )
        dim = np.argmax(spread / safe, axis=1)
        v = pts[np.arange(n), dim[node]]
        by_value = np.lexsort((v, node))
        order, node, v = order[by_value], node[by_value], v[by_value]
        starts = np.cumsum(counts) - counts
        split = counts >= 2
        last = np.minimum(starts + counts - 1, max(n - 1, 0))
        value = np.where(split, v[np.minimum(starts + (counts - 1) // 2, max(n - 1, 0))], np.inf)
        # Tied at the median up to the node's largest value (integer-valued features): "<="
        # would send every row left, and the next level would choose the same split again,
        # so the node would never divide. Split just below the top value instead: the rows
        # holding it go right. (Zero spread on every feature: identical rows, never split.)
        top = v[last]
        first_top = np.full(m, n)  # per node, the first position holding its largest value
        at_top = np.flatnonzero(v == top[node])
        np.minimum.at(first_top, node[at_top], at_top)
        below = first_top - 1  # v is sorted within each node
        stuck = split & (value >= top) & (below >= starts)
        value = np.where(stuck, v[np.clip(below, 0, max(n - 1, 0))], value)
        first = m - 1
        dims[first : first + m] = np.where(split, dim, 0)
        values[first : first + m] = value
        child = 2 * node + (v > value[node])
        regroup = np.argsort(child, kind="stable")
        order, node = order[regroup], child[regroup]
    return SplitTree(dims, values)


def box_distance(X: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of ``X`` to the box ``[lo, hi]`` (0 inside)."""
    gap = np.maximum(np.maximum(lo - X, X - hi), 0.0)
    return np.sqrt(np.einsum("ij,ij->i", gap, gap))
