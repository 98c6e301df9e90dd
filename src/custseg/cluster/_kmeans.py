"""k-means (the baseline) and its Spark estimator: scikit-learn's KMeans, k given or chosen by silhouette."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml.param import Param, TypeConverters
from sklearn.exceptions import ConvergenceWarning

from ._base import BaseClusterer, nearest_centroid, warn_fewer_clusters
from ._engine import CHOICE_SAMPLE_ROWS
from ._k_search import choose_k_by_silhouette
from ._spark import (
    SparkClusterEstimator,
    SparkClusterModel,
    _SparkClusterParams,
    check_finite,
    sample_features,
    spark_param,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

from ._validation import (
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
        k_range: tuple[int, int] = (2, 10),
        random_state: int = 0,
        n_init: int = 10,
        silhouette_sample: int = 10_000,
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
        """Take centroids fitted elsewhere (Spark's k-means), ordered by decreasing size like ``fit``."""
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


# -- Spark -----------------------------------------------------------------------
class _KMeansParams(_SparkClusterParams):
    k: Param[int] = spark_param(
        "k", "number of clusters; None chooses it by silhouette", TypeConverters.toInt
    )
    k_range: Param[list[int]] = spark_param(
        "k_range", "candidate k (low, high), both included", TypeConverters.toListInt
    )
    random_state: Param[int] = spark_param("random_state", "seed", TypeConverters.toInt)
    n_init: Param[int] = spark_param("n_init", "k-means++ restarts per k", TypeConverters.toInt)
    silhouette_sample: Param[int] = spark_param(
        "silhouette_sample", "silhouette sample size when choosing k", TypeConverters.toInt
    )
    _algo_params = ("k", "k_range", "random_state", "n_init", "silhouette_sample")
    _clusterer_cls = KMeans

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            k=None, k_range=[2, 10], random_state=0, n_init=10, silhouette_sample=10_000
        )


class SparkKMeansModel(SparkClusterModel, _KMeansParams):
    """Fitted SparkKMeans: ``transform`` adds ``predictionCol`` (int), the nearest centroid's cluster."""


class SparkKMeans(SparkClusterEstimator, _KMeansParams):
    """k-means of a Spark DataFrame of features (vector or array<double>).

    Above ``maxDriverRows`` rows the fit is Spark ML's k-means (k-means|| initialisation),
    distributed; with ``k=None`` k is first chosen by silhouette, as on one node, on a
    seeded sample of ``maxDriverRows`` rows.
    """

    _model_cls = SparkKMeansModel

    def _fit_distributed(
        self,
        dataset: DataFrame,
        features: Column,
        clusterer: BaseClusterer,
        n_rows: int,
        driver_rows: int,
    ) -> BaseClusterer:
        from pyspark.ml.clustering import KMeans as SparkMLKMeans
        from pyspark.ml.functions import array_to_vector

        assert isinstance(clusterer, KMeans)
        k = clusterer.k
        silhouettes: dict[int, float] = {}
        if k is None:
            sample = sample_features(
                dataset,
                features,
                self.getFeaturesCol(),
                n_rows,
                min(n_rows, CHOICE_SAMPLE_ROWS),
                clusterer.random_state,
            )
            chosen = KMeans(**clusterer.get_params()).fit(sample)
            k, silhouettes = chosen.n_clusters_, chosen.silhouette_by_k_
        check_finite(dataset, features, self.getFeaturesCol())  # Spark ML's own error is raw
        vectors = dataset.select(array_to_vector(features).alias("features"))
        fitted = SparkMLKMeans(k=k, seed=clusterer.random_state, featuresCol="features").fit(
            vectors
        )
        summary = fitted.summary
        centers = np.array(fitted.clusterCenters())
        sizes = np.array(summary.clusterSizes)
        if sizes.size != centers.shape[0]:
            # Spark ML keeps fewer centres than k when the data has fewer distinct points,
            # but still reports k sizes: count the rows per kept centre instead.
            counted = summary.predictions.groupBy(fitted.getPredictionCol()).count().collect()
            sizes = np.zeros(centers.shape[0], dtype=np.int64)
            for row in counted:
                sizes[int(row[0])] = int(row["count"])
        result = KMeans(**clusterer.get_params())
        result.silhouette_by_k_ = silhouettes
        if centers.shape[0] < k:
            warn_fewer_clusters(int(centers.shape[0]), k, "k")
        return result.set_centers(centers, sizes, summary.trainingCost)

    @keyword_only
    def __init__(
        self,
        *,
        k: int | None = None,
        k_range: tuple[int, int] = (2, 10),
        random_state: int = 0,
        n_init: int = 10,
        silhouette_sample: int = 10_000,
        featuresCol: str = "features",
        predictionCol: str = "prediction",
        maxDriverRows: int | None = None,
        maxExecutorRows: int | None = None,
    ) -> None:
        super().__init__()
        self.setParams(**self._input_kwargs)
