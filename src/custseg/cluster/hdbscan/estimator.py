"""HDBSCAN on one node (the ``hdbscan`` package, with prediction data).

The ``hdbscan`` package is used rather than scikit-learn's HDBSCAN because it
offers ``approximate_predict`` for new customers. Its fitted clusterer has no
compact array form, so :meth:`HDBSCAN.to_dict` stores it **pickled** (a uint8
array, about the size of the training data plus the condensed tree): load
such a model only from a trusted source, with compatible hdbscan / numpy
versions.

Above ``maxDriverRows`` :class:`SparkHDBSCAN` fits a *summarised* HDBSCAN on Spark
(``hdbscan._distributed``: exact core distances, the hierarchy over density-adaptive bubbles);
it returns an :class:`HDBSCAN` built by :meth:`HDBSCAN.from_bubbles`, whose state is the
bubbles' k-d split tree and their labels (no pickle, no training rows).
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from custseg.errors import ModelError

from .._common.base import BaseClusterer, RowLookup
from .._common.defaults import (
    HDBSCAN_MIN_CLUSTER_SIZE,
)
from .._common.validation import check_features, check_int, check_not_above_rows, check_optional_int
from ._split_tree import SplitTree


class HDBSCAN(BaseClusterer):
    """Hierarchical density-based clustering; noise is labelled -1.

    Parameters
    ----------
    min_cluster_size : int
        Smallest group of customers that counts as a cluster (>= 2).
    min_samples : int or None
        Neighbours, **the customer itself included**, defining a point's core distance
        (its distance to the ``min_samples``-th nearest row, itself the first): the
        convention of scikit-learn's ``HDBSCAN``, and of :class:`SparkHDBSCAN`. None
        means ``min_cluster_size``. At least 2 (1 would make every core distance 0).
        The ``hdbscan`` package does not count the point, so it gets ``min_samples - 1``.

    Attributes
    ----------
    labels_ : ndarray of int
        The ``hdbscan`` package's labels, unchanged; -1 = noise.
    probabilities_ : ndarray of float
        Strength of each point's membership.
    n_clusters_ : int
    clusterer_ : hdbscan.HDBSCAN
        The fitted clusterer (``prediction_data=True``).

    ``predict`` gives a training row (exact same features) its training label
    and any other row ``hdbscan.approximate_predict``'s label.

    A model from :meth:`from_bubbles` (the distributed fit) has no per-customer
    ``labels_`` / ``probabilities_`` / ``clusterer_``: its ``predict`` gives every row the
    label of the bubble it falls in, the rule that labelled the training customers.
    """

    method = "hdbscan"

    def __init__(
        self, min_cluster_size: int = HDBSCAN_MIN_CLUSTER_SIZE, min_samples: int | None = None
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples

    def validate_params(self) -> None:
        check_int("min_cluster_size", self.min_cluster_size, 2)
        check_optional_int("min_samples", self.min_samples, 2)

    def check_data_size(self, n_rows: int) -> None:
        check_not_above_rows("min_cluster_size", self.min_cluster_size, n_rows)
        if self.min_samples is not None:
            check_not_above_rows("min_samples", self.min_samples, n_rows)

    def core_neighbours(self) -> int:
        return self.min_samples or self.min_cluster_size

    def params_for_sample(self, ratio: float) -> dict[str, Any]:
        # The same density in a sample ratio times thinner: the core distance's neighbours and
        # the smallest cluster both shrink with it.
        return {
            "min_cluster_size": max(2, round(self.min_cluster_size / ratio)),
            "min_samples": max(2, round(self.core_neighbours() / ratio)),
        }

    def fit(self, X: Any, y: Any = None) -> HDBSCAN:
        """Cluster ``X`` (customers x features); returns self."""
        # lazy: hdbscan is slow to import; loaded on the first fit, not by import custseg.cluster
        import hdbscan

        self.validate_params()
        X = check_features(X)
        self.check_data_size(X.shape[0])
        clusterer = hdbscan.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=(self.min_samples or self.min_cluster_size) - 1,  # see the docstring
            approx_min_span_tree=False,  # the exact tree: the answer scikit-learn gives
            prediction_data=True,
        ).fit(X)
        self._set_clusterer(clusterer)
        return self

    @classmethod
    def from_bubbles(
        cls,
        params: dict[str, Any],
        split_dims: np.ndarray,
        split_values: np.ndarray,
        leaf_labels: np.ndarray,
        leaf_counts: np.ndarray,
        n_features: int,
        n_inexact_core: int = 0,
    ) -> HDBSCAN:
        """A fitted HDBSCAN from the distributed fit's summary (see ``_distributed``).

        ``split_dims`` / ``split_values``: the bubbles' k-d split tree in heap order;
        ``leaf_labels``: the label of each bubble (leaf), -1 = noise or an empty bubble;
        ``leaf_counts``: the training customers in each bubble.
        """
        obj = cls(**params)
        obj.validate_params()
        obj.n_features_in_ = int(n_features)
        obj._set_bubbles(
            np.asarray(split_dims, dtype=np.int64),
            np.asarray(split_values, dtype=np.float64),
            np.asarray(leaf_labels, dtype=np.int64),
            np.asarray(leaf_counts, dtype=np.int64),
            int(n_inexact_core),
        )
        return obj

    def _set_bubbles(
        self,
        dims: np.ndarray,
        values: np.ndarray,
        labels: np.ndarray,
        counts: np.ndarray,
        inexact: int,
    ) -> None:

        if (
            dims.shape != values.shape
            or labels.shape != (dims.size + 1,)
            or counts.shape != labels.shape
        ):
            raise ModelError(
                f"inconsistent HDBSCAN bubble state: {dims.size} splits, {values.size} values, "
                f"{labels.size} leaf labels, {counts.size} leaf counts"
            )
        self.split_tree_ = SplitTree(dims, values)
        self.leaf_labels_ = labels
        self.leaf_counts_ = counts
        self.n_inexact_core_ = inexact
        self.n_clusters_ = int(labels.max()) + 1 if labels.size else 0

    @property
    def is_summarised(self) -> bool:
        """True for a model of the distributed fit (labels by bubble)."""
        return hasattr(self, "split_tree_")

    def _set_clusterer(self, clusterer: Any) -> None:
        for name in ("split_tree_", "leaf_labels_", "leaf_counts_", "n_inexact_core_"):
            self.__dict__.pop(name, None)  # a refit replaces a summarised state
        self.clusterer_ = clusterer
        self.labels_ = np.asarray(clusterer.labels_, dtype=np.int64)
        self.probabilities_ = np.asarray(clusterer.probabilities_, dtype=np.float64)
        self.n_clusters_ = int(self.labels_.max()) + 1 if self.labels_.size else 0
        raw = np.asarray(clusterer._raw_data, dtype=np.float64)
        self.n_features_in_ = raw.shape[1]
        self._lookup = RowLookup(raw, self.labels_)

    def predict(self, X: Any) -> np.ndarray:
        """Training rows: their training label; other rows: ``hdbscan.approximate_predict``.

        A summarised model (distributed fit): every row gets its bubble's label.
        """
        X = self._check_predict_input(X)
        if self.is_summarised:
            return self.leaf_labels_[self.split_tree_.leaf_of(X)]
        # lazy: hdbscan is slow to import; loaded on the first fit, not by import custseg.cluster
        import hdbscan

        found, labels = self._lookup.find(X)
        if not found.all():
            new_labels, _ = hdbscan.approximate_predict(self.clusterer_, X[~found])
            labels[~found] = new_labels
        return labels

    def _state_to_dict(self) -> dict[str, Any]:
        if self.is_summarised:
            return {
                "mode": "bubbles",
                "split_dims": self.split_tree_.dims,
                "split_values": self.split_tree_.values,
                "leaf_labels": self.leaf_labels_,
                "leaf_counts": self.leaf_counts_,
                "n_inexact_core": self.n_inexact_core_,
                "n_clusters": self.n_clusters_,
            }
        blob = pickle.dumps(self.clusterer_, protocol=pickle.HIGHEST_PROTOCOL)
        return {
            "clusterer_pickle": np.frombuffer(blob, dtype=np.uint8).copy(),
            "n_clusters": self.n_clusters_,
        }

    def _state_from_dict(self, data: dict[str, Any]) -> None:
        if data.get("mode") == "bubbles":
            self._set_bubbles(
                np.asarray(data["split_dims"], dtype=np.int64),
                np.asarray(data["split_values"], dtype=np.float64),
                np.asarray(data["leaf_labels"], dtype=np.int64),
                np.asarray(data["leaf_counts"], dtype=np.int64),
                int(data.get("n_inexact_core", 0)),
            )
            return
        blob = np.asarray(data["clusterer_pickle"], dtype=np.uint8).tobytes()
        self._set_clusterer(pickle.loads(blob))  # noqa: S301 - documented: trusted models only
