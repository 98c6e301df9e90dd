"""HDBSCAN (the ``hdbscan`` package, with prediction data) and its Spark estimator.

The ``hdbscan`` package is used rather than scikit-learn's HDBSCAN because it
offers ``approximate_predict`` for new customers. Its fitted clusterer has no
compact array form, so :meth:`HDBSCAN.to_dict` stores it **pickled** (a uint8
array, about the size of the training data plus the condensed tree): load
such a model only from a trusted source, with compatible hdbscan / numpy
versions.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters

from ._base import BaseClusterer, RowLookup
from ._spark import SparkClusterEstimator, SparkClusterModel, _SparkClusterParams
from ._validation import check_features, check_int, check_not_above_rows, check_optional_int


class HDBSCAN(BaseClusterer):
    """Hierarchical density-based clustering; noise is labelled -1.

    Parameters
    ----------
    min_cluster_size : int
        Smallest group of customers that counts as a cluster (>= 2).
    min_samples : int or None
        Neighbours (the point itself included) defining a point's core distance;
        None means ``min_cluster_size``.

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
    """

    method = "hdbscan"

    def __init__(self, min_cluster_size: int = 10, min_samples: int | None = None) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples

    def validate_params(self) -> None:
        check_int("min_cluster_size", self.min_cluster_size, 2)
        check_optional_int("min_samples", self.min_samples, 1)

    def check_data_size(self, n_rows: int) -> None:
        check_not_above_rows("min_cluster_size", self.min_cluster_size, n_rows)
        if self.min_samples is not None:
            check_not_above_rows("min_samples", self.min_samples, n_rows)

    def fit(self, X: Any, y: Any = None) -> HDBSCAN:
        """Cluster ``X`` (customers x features); returns self."""
        import hdbscan

        self.validate_params()
        X = check_features(X)
        self.check_data_size(X.shape[0])
        clusterer = hdbscan.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            prediction_data=True,
        ).fit(X)
        self._set_clusterer(clusterer)
        return self

    def _set_clusterer(self, clusterer: Any) -> None:
        self.clusterer_ = clusterer
        self.labels_ = np.asarray(clusterer.labels_, dtype=np.int64)
        self.probabilities_ = np.asarray(clusterer.probabilities_, dtype=np.float64)
        self.n_clusters_ = int(self.labels_.max()) + 1 if self.labels_.size else 0
        raw = np.asarray(clusterer._raw_data, dtype=np.float64)
        self.n_features_in_ = raw.shape[1]
        self._lookup = RowLookup(raw, self.labels_)

    def predict(self, X: Any) -> np.ndarray:
        """Training rows: their training label; other rows: ``hdbscan.approximate_predict``."""
        import hdbscan

        X = self._check_predict_input(X)
        found, labels = self._lookup.find(X)
        if not found.all():
            new_labels, _ = hdbscan.approximate_predict(self.clusterer_, X[~found])
            labels[~found] = new_labels
        return labels

    def _state_to_dict(self) -> dict[str, Any]:
        blob = pickle.dumps(self.clusterer_, protocol=pickle.HIGHEST_PROTOCOL)
        return {
            "clusterer_pickle": np.frombuffer(blob, dtype=np.uint8).copy(),
            "n_clusters": self.n_clusters_,
        }

    def _state_from_dict(self, data: dict[str, Any]) -> None:
        blob = np.asarray(data["clusterer_pickle"], dtype=np.uint8).tobytes()
        self._set_clusterer(pickle.loads(blob))  # noqa: S301 - documented: trusted models only


# -- Spark -----------------------------------------------------------------------
class _HDBSCANParams(_SparkClusterParams):
    min_cluster_size: Param[int] = Param(
        Params._dummy(), "min_cluster_size", "smallest cluster size (>= 2)",
        typeConverter=TypeConverters.toInt,
    )
    min_samples: Param[int] = Param(
        Params._dummy(), "min_samples", "neighbours defining the core distance; None = min_cluster_size",
        typeConverter=TypeConverters.toInt,
    )
    _algo_params = ("min_cluster_size", "min_samples")
    _clusterer_cls = HDBSCAN

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(min_cluster_size=10, min_samples=None)


class SparkHDBSCANModel(SparkClusterModel, _HDBSCANParams):
    """Fitted SparkHDBSCAN: ``transform`` adds ``predictionCol`` (int, -1 = noise).

    Rows of the training DataFrame get their training labels; other rows
    ``hdbscan.approximate_predict``'s label. ``save`` pickles the clusterer.
    """


class SparkHDBSCAN(SparkClusterEstimator, _HDBSCANParams):
    """HDBSCAN of a Spark DataFrame of features (vector or array<double>)."""

    _model_cls = SparkHDBSCANModel

    @keyword_only
    def __init__(
        self,
        *,
        min_cluster_size: int = 10,
        min_samples: int | None = None,
        featuresCol: str = "features",
        predictionCol: str = "prediction",
        maxDriverRows: int = 100_000,
    ) -> None:
        super().__init__()
        self.setParams(**self._input_kwargs)
