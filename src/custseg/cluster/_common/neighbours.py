"""Neighbour queries in spatial order, shared by the distributed kernels.

A k-d tree query walks from the root to the leaves near its point. Queries issued
in arbitrary row order (rows arrive sorted by id, which says nothing about where
they lie) touch a different part of the tree each time, so most of the tree's
nodes and points come from main memory. Issued so that near points follow each
other, a query mostly walks what the previous one left in the CPU cache: on the
8-D benchmark data, one box's k-NN passes ran 2-2.8 times faster, with identical
results (the order changes when a query runs, not what it returns).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def spatial_order(X: np.ndarray) -> np.ndarray:
    """A permutation of X's rows that puts near rows next to each other.

    The leaf order of a k-d tree built on X: building it costs a fraction of one
    query pass (about 0.15 s for 250,000 8-D rows).
    """

    if X.shape[0] <= 1:
        return np.arange(X.shape[0])
    return np.asarray(cKDTree(X, leafsize=16).indices, dtype=np.int64)


def inverse(order: np.ndarray) -> np.ndarray:
    """The permutation that undoes ``order``: ``a[order][inverse(order)] == a``."""
    undo = np.empty_like(order)
    undo[order] = np.arange(order.size)
    return undo
