"""Exact agglomerative (hierarchical) clustering on one node.

Ward and single linkage use ``fastcluster.linkage_vector`` (memory ~ n x
features, no distance matrix); complete and average linkage need the full
condensed distance matrix (n^2 / 2 floats) and are limited to
``MAX_PAIRWISE_ROWS`` customers. The tree is cut with scipy's
``fcluster(..., "maxclust")``, so a given k gives exactly scipy's partition.

``SparkHierarchical`` fits on the driver up to ``maxDriverRows`` customers;
above that it runs Ward on weighted micro-cluster summaries computed in
parallel (``hierarchical._distributed``) and returns a ``Hierarchical`` built by
:meth:`Hierarchical.from_micro_clusters`, which labels a customer by its
nearest micro-cluster.
"""

from __future__ import annotations

from typing import Any

import fastcluster
import numpy as np

from custseg.errors import ParameterError

from .._common.base import (
    BaseClusterer,
    RowLookup,
    centroids,
    nearest_centroid,
    relabel_by_size,
    warn_fewer_clusters,
)
from .._common.defaults import (
    K_RANGE,
    SILHOUETTE_SAMPLE,
)
from .._common.k_search import choose_k_by_silhouette
from .._common.validation import (
    check_choice,
    check_features,
    check_int,
    check_k_fits,
    check_k_range,
    check_optional_int,
)
from ._micro_clusters import nearest_center

LINKAGES = ("ward", "complete", "average", "single")


# complete / average need n(n-1)/2 distances: 20,000 customers is ~1.6 GB.
MAX_PAIRWISE_ROWS = 20_000


class Hierarchical(BaseClusterer):
    """Agglomerative clustering cut into k clusters, k given or chosen by silhouette.

    Parameters
    ----------
    n_clusters : int or None
        Number of clusters; None chooses it in ``k_range`` by silhouette.
    linkage : {"ward", "complete", "average", "single"}
    k_range : (int, int)
        Candidate k, both ends included (clipped to the number of customers - 1).
    silhouette_sample : int
        Above this many customers the silhouette is computed on a seeded sample.
    random_state : int
        Seed of that sample.
    min_segment_size : int
        A candidate k with more than two clusters under this many rows is not
        considered: fragments, not segments.

    Attributes
    ----------
    labels_ : ndarray of int
        0..n_clusters_-1, 0 the largest cluster.
    n_clusters_ : int
    cluster_centers_ : ndarray, shape (n_clusters_, n_features)
    linkage_matrix_ : ndarray, shape (n - 1, 4)
        The merge tree in scipy format
        (``scipy.cluster.hierarchy.dendrogram(model.linkage_matrix_)``).
    silhouette_by_k_ : dict[int, float]
        Silhouette of each candidate k (empty when n_clusters was given).
    skipped_k_ : list[int]
        Candidate k left out for their small clusters (see ``min_segment_size``).
    micro_centers_, micro_weights_, micro_labels_ : ndarray or None
        Only for a model fitted on micro-cluster summaries (the distributed path of
        SparkHierarchical, see :meth:`from_micro_clusters`): each micro-cluster's
        assignment centre, customer count and cluster. There ``labels_`` holds the
        micro-clusters' labels and ``linkage_matrix_`` is their tree (m - 1 rows,
        column 3 counting micro-clusters).

    ``predict`` gives a training row (exact same features) its training label,
    and any other row the cluster of the nearest centroid. A model fitted on
    micro-clusters gives every row the cluster of its nearest micro-cluster
    centre, the rule its training customers were summarised by.
    """

    method = "hierarchical"
    # Set only by from_micro_clusters (class defaults keep __init__ to the parameters).
    micro_centers_: np.ndarray | None = None
    micro_weights_: np.ndarray | None = None
    micro_labels_: np.ndarray | None = None

    def __init__(
        self,
        n_clusters: int | None = None,
        linkage: str = "ward",
        k_range: tuple[int, int] = K_RANGE,
        silhouette_sample: int = SILHOUETTE_SAMPLE,
        random_state: int = 0,
        min_segment_size: int = 1,
    ) -> None:
        self.n_clusters = n_clusters
        self.linkage = linkage
        self.k_range = k_range
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state
        self.min_segment_size = min_segment_size

    def validate_params(self) -> None:
        check_optional_int("n_clusters", self.n_clusters, 1)
        check_choice("linkage", self.linkage, LINKAGES)
        check_k_range("k_range", self.k_range)
        check_int("silhouette_sample", self.silhouette_sample, 2)
        check_int("random_state", self.random_state, 0)
        check_int("min_segment_size", self.min_segment_size, 1)

    def check_data_size(self, n_rows: int) -> None:
        check_k_fits("n_clusters", self.n_clusters, self.k_range, n_rows)
        if self.linkage in ("complete", "average") and n_rows > MAX_PAIRWISE_ROWS:
            raise ParameterError(
                f"linkage {self.linkage!r} needs the full distance matrix and is limited to "
                f"{MAX_PAIRWISE_ROWS} customers; the data has {n_rows} (use 'ward' or 'single')"
            )

    def fit(self, X: Any, y: Any = None) -> Hierarchical:
        """Build the merge tree of ``X`` and cut it; returns self."""
        # lazy: scipy.cluster.hierarchy loads on the first fit, not by import custseg.cluster
        from scipy.cluster.hierarchy import fcluster

        self.validate_params()
        X = check_features(X)
        n = X.shape[0]
        self.check_data_size(n)
        Z = _linkage(X, self.linkage)

        def labels_for_k(k: int) -> np.ndarray:
            if n == 1:
                return np.zeros(1, dtype=np.int64)
            return relabel_by_size(fcluster(Z, k, criterion="maxclust"))

        self.silhouette_by_k_: dict[int, float] = {}
        self.skipped_k_: list[int] = []
        if self.n_clusters is not None:
            labels = labels_for_k(self.n_clusters)
        else:
            _, self.silhouette_by_k_, labels, self.skipped_k_ = choose_k_by_silhouette(
                X,
                labels_for_k,
                check_k_range("k_range", self.k_range),
                self.silhouette_sample,
                self.random_state,
                min_segment_size=self.min_segment_size,
            )
        self.n_features_in_ = X.shape[1]
        self.labels_ = labels
        self.n_clusters_ = int(labels.max()) + 1
        if self.n_clusters is not None and self.n_clusters_ < self.n_clusters:
            warn_fewer_clusters(self.n_clusters_, self.n_clusters, "n_clusters")
        self.cluster_centers_ = centroids(X, labels, self.n_clusters_)
        self.linkage_matrix_ = Z
        self._train_X = X
        self._lookup = RowLookup(X, labels)
        self.micro_centers_ = self.micro_weights_ = self.micro_labels_ = None
        return self

    @classmethod
    def from_micro_clusters(
        cls,
        params: dict[str, Any],
        *,
        micro_centers: np.ndarray,
        micro_weights: np.ndarray,
        micro_labels: np.ndarray,
        micro_linear_sums: np.ndarray,
        linkage_matrix: np.ndarray,
        silhouette_by_k: dict[int, float],
    ) -> Hierarchical:
        """A fitted model from a tree of micro-clusters (built by SparkHierarchical's large path).

        ``micro_labels`` (0..k-1, 0 the most customers) is each micro-cluster's cluster,
        ``micro_linear_sums`` the sum of its customers' features (for the exact cluster
        centroids). Customers are labelled by their nearest ``micro_centers`` row.
        """
        model = cls(**params)
        labels = np.asarray(micro_labels, dtype=np.int64)
        weights = np.asarray(micro_weights, dtype=np.int64)
        model.n_clusters_ = int(labels.max()) + 1
        sums = np.zeros((model.n_clusters_, micro_linear_sums.shape[1]))
        np.add.at(sums, labels, micro_linear_sums)
        counts = np.bincount(labels, weights=weights, minlength=model.n_clusters_)
        model.cluster_centers_ = sums / counts[:, None]
        model.n_features_in_ = int(micro_centers.shape[1])
        model.labels_ = labels
        model.linkage_matrix_ = np.asarray(linkage_matrix, dtype=np.float64)
        model.silhouette_by_k_ = dict(silhouette_by_k)
        model.micro_centers_ = np.ascontiguousarray(micro_centers, dtype=np.float64)
        model.micro_weights_ = weights
        model.micro_labels_ = labels
        return model

    def params_for_sample(self, ratio: float) -> dict[str, Any]:
        return {**self.get_params(), "n_clusters": self.n_clusters_}

    def predict(self, X: Any) -> np.ndarray:
        """Training rows: their training label; other rows: the nearest centroid's cluster."""
        X = self._check_predict_input(X)
        if self.micro_centers_ is not None and self.micro_labels_ is not None:
            return self.micro_labels_[nearest_center(X, self.micro_centers_)]
        found, labels = self._lookup.find(X)
        if not found.all():
            labels[~found] = nearest_centroid(X[~found], self.cluster_centers_)
        return labels

    def _state_to_dict(self) -> dict[str, Any]:
        state = {
            "cluster_centers": self.cluster_centers_,
            "n_clusters": self.n_clusters_,
            "silhouette_by_k": {str(k): v for k, v in self.silhouette_by_k_.items()},
            "linkage_matrix": self.linkage_matrix_,
        }
        if self.micro_centers_ is not None:
            # Fitted on micro-clusters: the summaries are the state, not the customers.
            state.update(
                micro_centers=self.micro_centers_,
                micro_weights=self.micro_weights_,
                micro_labels=self.micro_labels_,
            )
        else:
            state.update(train_points=self._train_X, train_labels=self.labels_)
        return state

    def _state_from_dict(self, data: dict[str, Any]) -> None:
        self.cluster_centers_ = np.asarray(data["cluster_centers"], dtype=np.float64)
        self.n_clusters_ = int(data["n_clusters"])
        self.silhouette_by_k_ = {
            int(k): float(v) for k, v in data.get("silhouette_by_k", {}).items()
        }
        self.linkage_matrix_ = np.asarray(data.get("linkage_matrix", np.empty((0, 4))))
        if "micro_centers" in data:
            self.micro_centers_ = np.asarray(data["micro_centers"], dtype=np.float64)
            self.micro_weights_ = np.asarray(data["micro_weights"], dtype=np.int64)
            self.micro_labels_ = np.asarray(data["micro_labels"], dtype=np.int64)
            self.labels_ = self.micro_labels_
            return
        self._train_X = np.asarray(data["train_points"], dtype=np.float64)
        self.labels_ = np.asarray(data["train_labels"], dtype=np.int64)
        self._lookup = RowLookup(self._train_X, self.labels_)


def _linkage(X: np.ndarray, method: str) -> np.ndarray:

    if X.shape[0] < 2:
        return np.empty((0, 4))
    if method in ("ward", "single"):
        return np.asarray(fastcluster.linkage_vector(X, method=method, metric="euclidean"))
    return np.asarray(fastcluster.linkage(X, method=method, metric="euclidean"))
