"""Merges in order -> scipy's linkage matrix (shared by weighted Ward and the bubble HDBSCAN)."""

from __future__ import annotations

import numpy as np


def linkage_matrix(merges: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``(m - 1, 4)`` rows of first node, second node, height, size of the merged node.

    ``merges`` holds ``(a, b, height)`` between *points* ``0 .. m - 1``, already in merge
    order; ``sizes`` is each point's weight. Row ``i`` creates node ``m + i`` and joins the
    two nodes that hold ``a`` and ``b`` then (smaller number first): scipy's format, with
    the union-find relabelling of scipy's ``_hierarchy.label``.
    """
    m = sizes.size
    parent = np.arange(2 * m - 1)
    size = np.concatenate([np.asarray(sizes, dtype=np.float64), np.zeros(m - 1)])
    Z = np.empty((m - 1, 4))

    def root(i: int) -> int:
        top = i
        while parent[top] != top:
            top = parent[top]
        while parent[i] != top:  # path compression
            parent[i], i = top, parent[i]
        return top

    for i, (a, b, height) in enumerate(merges):
        first, second = sorted((root(int(a)), root(int(b))))
        node = m + i
        parent[first] = parent[second] = node
        size[node] = size[first] + size[second]
        Z[i] = (first, second, height, size[node])
    return Z
