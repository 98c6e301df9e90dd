"""k-means (the baseline) on one node: scikit-learn's KMeans, k given or chosen by silhouette."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._common.base import BaseClusterer, nearest_centroid, warn_fewer_clusters
from .._common.defaults import (
    K_RANGE,
    KMEANS_N_INIT,
    SILHOUETTE_SAMPLE,
)
from .._common.k_search import choose_k_by_silhouette
from .._common.validation import (
    check_features,
    check_int,
    check_k_fits,
    check_k_range,
    check_optional_int,
)


class KMeans(BaseClusterer):
    """k-means with k given, or chosen in ``k_range`` by silhouette.

    Parameters
    ----------
    k : int or None
        Number of clusters; None chooses it in ``k_range`` (both ends included).
    k_range : (int, int)
    random_state : int
        Seed of the k-means initialisations and of the silhouette sample.
    n_init : int
        k-means++ restarts per k (the best inertia wins).
    silhouette_sample : int
        Above this many customers the silhouette is computed on a seeded sample.
    min_segment_size : int
        A candidate k with more than two clusters under this many rows is not
        considered: fragments, not segments.

    Attributes
    ----------
    labels_ : ndarray of int
        0..n_clusters_-1, 0 the largest cluster; equal to ``predict(X)``.
    cluster_centers_ : ndarray, shape (n_clusters_, n_features)
    n_clusters_ : int
    inertia_ : float
    silhouette_by_k_ : dict[int, float]
    skipped_k_ : list[int]
        Candidate k left out for their small clusters (see ``min_segment_size``).
    """

    method = "kmeans"

    def __init__(
        self,
        k: int | None = None,
        k_range: tuple[int, int] = K_RANGE,
        random_state: int = 0,
        n_init: int = KMEANS_N_INIT,
        silhouette_sample: int = SILHOUETTE_SAMPLE,
        min_segment_size: int = 1,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.random_state = random_state
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.min_segment_size = min_segment_size

    def validate_params(self) -> None:
        check_optional_int("k", self.k, 1)
        check_k_range("k_range", self.k_range)
        check_int("random_state", self.random_state, 0)
        check_int("n_init", self.n_init, 1)
        check_int("silhouette_sample", self.silhouette_sample, 2)
        check_int("min_segment_size", self.min_segment_size, 1)

    def check_data_size(self, n_rows: int) -> None:
        check_k_fits("k", self.k, self.k_range, n_rows)

    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Run k-means on ``X``; returns self."""
        # lazy: sklearn.cluster is slow to import; loaded on the first fit, not by import
        # custseg.cluster
        from sklearn.cluster import KMeans as SkKMeans

        self.validate_params()
        X = check_features(X)
        self.check_data_size(X.shape[0])
        fitted: dict[int, Any] = {}

        def labels_for_k(k: int) -> np.ndarray:
            model = SkKMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
            with warnings.catch_warnings():
                # Fewer distinct points than k: said once below, with the clusters kept.
                warnings.simplefilter("ignore", ConvergenceWarning)
                fitted[k] = model.fit(X)
            return model.labels_

        self.silhouette_by_k_: dict[int, float] = {}
        self.skipped_k_: list[int] = []
        if self.k is not None:
            best_k = self.k
            labels_for_k(best_k)
        else:
            best_k, self.silhouette_by_k_, _, self.skipped_k_ = choose_k_by_silhouette(
                X,
                labels_for_k,
                check_k_range("k_range", self.k_range),
                self.silhouette_sample,
                self.random_state,
                min_segment_size=self.min_segment_size,
            )
        model = fitted[best_k]
        # Order clusters by decreasing size, then label with the same rule predict uses.
        # A centre no customer is nearest to (fewer distinct points than k) is dropped, so
        # n_clusters_ is the number of labels really assigned.
        k = model.cluster_centers_.shape[0]
        counts = np.bincount(model.labels_, minlength=k)
        first = np.full(k, X.shape[0])
        np.minimum.at(first, model.labels_, np.arange(X.shape[0]))
        mapping = np.lexsort((first, -counts))  # new label -> sklearn's label
        mapping = mapping[counts[mapping] > 0]
        if mapping.size < best_k:
            warn_fewer_clusters(int(mapping.size), best_k, "k")
        self.cluster_centers_ = np.ascontiguousarray(model.cluster_centers_[mapping])
        self.n_clusters_ = int(self.cluster_centers_.shape[0])
        self.inertia_ = float(model.inertia_)
        self.n_features_in_ = X.shape[1]
        self.labels_ = nearest_centroid(X, self.cluster_centers_)
        return self

    def set_centers(self, centers: np.ndarray, sizes: np.ndarray, inertia: float) -> KMeans:
        """Take centroids fitted elsewhere (Spark's k-means), ordered by decreasing size like
        ``fit``."""
        sizes = np.asarray(sizes)
        order = np.argsort(-sizes, kind="stable")
        order = order[sizes[order] > 0]  # an empty cluster is no cluster (see fit)
        if order.size < len(sizes):
            warn_fewer_clusters(int(order.size), len(sizes), "k")
        self.cluster_centers_ = np.ascontiguousarray(np.asarray(centers, dtype=np.float64)[order])
        self.n_clusters_ = int(self.cluster_centers_.shape[0])
        self.inertia_ = float(inertia)
        self.n_features_in_ = self.cluster_centers_.shape[1]
        self.silhouette_by_k_ = getattr(self, "silhouette_by_k_", {})
        return self

    def params_for_sample(self, ratio: float) -> dict[str, Any]:
        return {**self.get_params(), "k": self.n_clusters_}

    def predict(self, X: Any) -> np.ndarray:
        """The cluster of the nearest centroid."""
        return nearest_centroid(self._check_predict_input(X), self.cluster_centers_)

    def _state_to_dict(self) -> dict[str, Any]:
        return {
            "cluster_centers": self.cluster_centers_,
            "n_clusters": self.n_clusters_,
            "inertia": self.inertia_,
            "silhouette_by_k": {str(k): v for k, v in self.silhouette_by_k_.items()},
        }

    def _state_from_dict(self, data: dict[str, Any]) -> None:
        self.cluster_centers_ = np.asarray(data["cluster_centers"], dtype=np.float64)
        self.n_clusters_ = int(data["n_clusters"])
        self.inertia_ = float(data["inertia"])
        self.silhouette_by_k_ = {
            int(k): float(v) for k, v in data.get("silhouette_by_k", {}).items()
        }
