"""Micro-clusters: BIRCH clustering features of many customers, and the nearest-centre rule.

A customer belongs to the micro-cluster of its nearest centre (:func:`nearest_center`),
the rule the summarising pass (``_summaries``) and a :class:`~custseg.cluster.Hierarchical`
fitted on micro-clusters both apply (numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Distance block of the nearest-centre search: rows x centres <= this many float64 (32 MB).
_DISTANCE_BLOCK_ENTRIES = 4_000_000


@dataclass(frozen=True)
class MicroClusters:
    """Clustering features of the micro-clusters, one row each (empty ones are dropped).

    Attributes
    ----------
    centers : ndarray (m, d)
        The assignment centres: a customer belongs to its nearest centre (:meth:`assign`).
    counts : ndarray (m,) of int64
        Customers in each micro-cluster (all > 0).
    linear_sums : ndarray (m, d)
        Sum of the members' feature vectors.
    squared_sums : ndarray (m,)
        Sum of the members' squared Euclidean norms.
    sample : ndarray (s, d)
        The bounded, seeded sample of customers the centres were seeded from (for
        choosing parameters on real customers, e.g. a silhouette).
    """

    centers: np.ndarray
    counts: np.ndarray
    linear_sums: np.ndarray
    squared_sums: np.ndarray
    sample: np.ndarray

    @property
    def n_micro(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_rows(self) -> int:
        """Customers summarised (the sum of the counts)."""
        return int(self.counts.sum())

    @property
    def means(self) -> np.ndarray:
        """Mean feature vector of each micro-cluster."""
        return self.linear_sums / self.counts[:, None]

    @property
    def sse(self) -> np.ndarray:
        """Within-micro-cluster sum of squared distances to the mean (clipped at 0 for rounding)."""
        sq_mean_norms = np.einsum("ij,ij->i", self.linear_sums, self.linear_sums) / self.counts
        return np.maximum(self.squared_sums - sq_mean_norms, 0.0)

    @property
    def radius(self) -> np.ndarray:
        """Root mean squared distance of the members to their mean (a data bubble's extent)."""
        return np.sqrt(self.sse / self.counts)

    def assign(self, X: np.ndarray) -> np.ndarray:
        """Index of each row's micro-cluster (its nearest centre)."""
        return nearest_center(X, self.centers)


def nearest_center(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (Euclidean) of each row, in blocks of bounded memory.

    Deterministic for a given row and set of centres, so the summarising pass and
    any later labelling agree.
    """
    X = np.asarray(X, dtype=np.float64)
    out = np.empty(X.shape[0], dtype=np.int64)
    if X.shape[0] == 0:
        return out
    sq_centers = np.einsum("ij,ij->i", centers, centers)
    block = max(1, _DISTANCE_BLOCK_ENTRIES // max(1, centers.shape[0]))
    for start in range(0, X.shape[0], block):
        rows = X[start : start + block]
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, and ||x||^2 does not change the argmin.
        scores = rows @ (-2.0 * centers.T)
        scores += sq_centers
        out[start : start + rows.shape[0]] = np.argmin(scores, axis=1)
    return out
