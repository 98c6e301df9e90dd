"""DBSCAN on one node: a memory-light exact kernel and its eps diagnostics.

The single-node ``DBSCAN`` gives scikit-learn's result (Euclidean, ``eps``
inclusive, ``min_samples`` counting the point itself) with the kernels each box
of the distributed fit runs (``_kernels``), on all rows at once; memory
and time follow the rows, never the full neighbour lists:

1. core detection: a k-NN query with k = min_samples, bounded at eps (a point
   is core when its min_samples-th neighbour is within eps);
2. core connectivity: each core point's few nearest cores give fragments,
   and bounded queries join the fragments within eps of each other;
3. border points: the cluster of the nearest core point within ``eps`` --
   the same rule ``predict`` applies to new customers, so predicting the
   training data reproduces ``labels_`` exactly.

Core points and noise are identical to scikit-learn's; a border point within
``eps`` of cores of two clusters may get the other cluster than
scikit-learn's (whose choice depends on the visiting order).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from custseg.errors import ParameterError

from .._common.base import BaseClusterer, even_chunks, thread_map
from .._common.defaults import (
    DBSCAN_MIN_SAMPLES,
)
from .._common.validation import check_features, check_int, check_not_above_rows, check_positive
from ._kernels import core_counts, core_tree, local_clusters, nearest_core

# Rows per tree query handed to one thread.
_QUERY_CHUNK = 4_096


class DBSCAN(BaseClusterer):
    """Density-based clustering with scikit-learn's semantics; noise is labelled -1.

    Parameters
    ----------
    eps : float
        Neighbourhood radius (Euclidean, inclusive).
        ``knee_point(k_distance_curve(X, min_samples))`` suggests one.
    min_samples : int
        Points within ``eps`` (the point itself included) that make a point a core point.

    Attributes
    ----------
    labels_ : ndarray of int, shape (n,)
        Cluster of each training point, 0..n_clusters_-1 numbered by first core point; -1 = noise.
    core_sample_indices_ : ndarray of int
        Indices of the core points.
    components_ : ndarray, shape (n_core, n_features)
        The core points (what ``predict`` and ``to_dict`` keep).
    core_labels_ : ndarray of int
        Cluster of each core point in ``components_``.
    n_clusters_ : int

    Example
    -------
    >>> DBSCAN(eps=0.5, min_samples=2).fit([[0.0], [0.4], [5.0]]).labels_
    array([ 0,  0, -1])
    """

    method = "dbscan"

    def __init__(self, eps: float, min_samples: int = DBSCAN_MIN_SAMPLES) -> None:
        self.eps = eps
        self.min_samples = min_samples

    def validate_params(self) -> None:
        check_positive("eps", self.eps)
        check_int("min_samples", self.min_samples, 1)

    def check_data_size(self, n_rows: int) -> None:
        check_not_above_rows("min_samples", self.min_samples, n_rows)

    def params_for_sample(self, ratio: float) -> dict[str, Any]:
        # The same density (neighbours within eps per volume) in a sample ratio times thinner.
        return {"eps": self.eps, "min_samples": max(1, round(self.min_samples / ratio))}

    def fit(self, X: Any, y: Any = None) -> DBSCAN:
        """Cluster ``X`` (customers x features); returns self."""
        self.validate_params()
        X = check_features(X)
        n = X.shape[0]
        self.check_data_size(n)

        eps = float(self.eps)
        is_core = core_counts(X, eps, self.min_samples) >= self.min_samples
        core_idx = np.flatnonzero(is_core)
        self.n_features_in_ = X.shape[1]
        self._set_core(X[core_idx], local_clusters(X[core_idx], eps))
        labels = np.full(n, -1, dtype=np.int64)
        labels[core_idx] = self.core_labels_
        other = np.flatnonzero(~is_core)
        if other.size:
            labels[other] = self._assign(X[other])[0]
        self.core_sample_indices_ = core_idx
        self.labels_ = labels
        return self

    @classmethod
    def from_core_points(
        cls,
        params: dict[str, Any],
        components: np.ndarray,
        core_labels: np.ndarray,
        n_clusters: int,
    ) -> DBSCAN:
        """A fitted DBSCAN from the core points a distributed fit kept (see ``_distributed``).

        ``n_clusters`` is the fit's own count: a thinned set of core points may not hold
        every cluster's points, so it is not derived from ``core_labels``.
        """
        obj = cls(**params)
        obj.validate_params()
        components = np.asarray(components, dtype=np.float64)
        obj.n_features_in_ = int(components.shape[1])
        obj._set_core(components, core_labels)
        obj.n_clusters_ = int(n_clusters)
        return obj

    def _set_core(self, components: np.ndarray, core_labels: np.ndarray) -> None:
        self.components_ = np.ascontiguousarray(components, dtype=np.float64).reshape(
            -1, self.n_features_in_
        )
        self.core_labels_ = np.asarray(core_labels, dtype=np.int64)
        self.n_clusters_ = int(self.core_labels_.max()) + 1 if self.core_labels_.size else 0
        self._core_tree = core_tree(self.components_) if self.components_.shape[0] else None

    def _assign(self, X: np.ndarray, threaded: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(label, is_core) for each row: the nearest core point's cluster if within eps.

        The distributed fit's rule (``nearest_core``), so noise means exactly "no core
        point within eps", ties at eps included.
        """
        return nearest_core(
            X,
            self.components_,
            self.core_labels_,
            float(self.eps),
            tree=self._core_tree,
            workers=-1 if threaded else 1,
        )

    def predict(self, X: Any) -> np.ndarray:
        """Label of the nearest core point if it is within eps, else -1 (noise)."""
        return self._assign(self._check_predict_input(X))[0]

    def predict_outputs(self, X: np.ndarray) -> tuple[np.ndarray, ...]:
        """(label, is_core) per row, single-threaded (it runs inside Spark tasks).

        is_core means the row coincides with a core point.
        """
        return self._assign(self._check_predict_input(X), threaded=False)

    def _state_to_dict(self) -> dict[str, Any]:
        return {
            "components": self.components_,
            "core_labels": self.core_labels_,
            "n_clusters": self.n_clusters_,
        }

    def _state_from_dict(self, data: dict[str, Any]) -> None:
        self._set_core(np.asarray(data["components"]), np.asarray(data["core_labels"]))


def _kth_distances(X: np.ndarray, k: int, tree: Any) -> np.ndarray:
    """Distance of each row of X to its k-th nearest point in ``tree`` (itself included)."""
    step = max(1, min(_QUERY_CHUNK, 1_000_000 // k))
    parts = thread_map(
        lambda a, b: tree.query(X[a:b], k=k)[0][:, -1], even_chunks(X.shape[0], step)
    )
    return np.concatenate(list(parts))


def k_distance_curve(X: Any, k: int) -> np.ndarray:
    """Sorted (ascending) distance of every point to its k-th nearest neighbour, itself included.

    ``k`` counts the point itself, as DBSCAN's ``min_samples`` does: a point is a
    core point at radius eps exactly when its value here is <= eps. Plot it
    (or take :func:`knee_point`) to choose eps.
    """
    X = check_features(X)
    k = check_int("k", k, 1)
    check_not_above_rows("k", k, X.shape[0])
    # lazy: sklearn.neighbors is slow to import; loaded on first use, not by import custseg.cluster
    from sklearn.neighbors import KDTree

    return np.sort(_kth_distances(X, k, KDTree(X)))


def knee_point(curve: Any) -> tuple[int, float]:
    """``(index, value)`` of the knee of an ascending curve such as :func:`k_distance_curve`.

    Kneedle-style: both axes scaled to [0, 1], the knee is the point farthest
    below the chord from the first to the last point. Robust fallbacks: a
    curve of 1 or 2 points, a flat one, or one without a convex bend (linear,
    concave) gives its median point. A knee value of 0 (duplicates) moves to
    the first positive value, so the result can be used as DBSCAN's eps; it
    stays 0 only when every value is 0.
    """
    y = np.asarray(curve, dtype=np.float64).ravel()
    if y.size == 0:
        raise ParameterError("curve must hold at least one value, got an empty curve")
    if not np.isfinite(y).all():
        raise ParameterError(f"curve holds {int((~np.isfinite(y)).sum())} NaN or infinite values")
    if np.any(np.diff(y) < 0):
        raise ParameterError("curve must be sorted ascending (as k_distance_curve returns it)")
    n = y.size
    span = y[-1] - y[0]
    index = (n - 1) // 2
    if n >= 3 and span > 0:
        x = np.linspace(0.0, 1.0, n)
        below = x - (y - y[0]) / span
        best = int(np.argmax(below))
        if below[best] > 1e-12:
            index = best
    if y[index] <= 0:
        positive = np.flatnonzero(y > 0)
        if positive.size:
            index = int(positive[0])
    return index, float(y[index])
