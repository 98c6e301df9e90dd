"""SparkKMeans: k-means of a Spark DataFrame (pyspark.ml Estimator and Model).

Up to the driver limit the single-node :class:`~custseg.cluster.KMeans` runs on the
collected features; above it Spark ML's k-means, k first chosen by silhouette on a
seeded sample when not given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pyspark import keyword_only
from pyspark.ml.clustering import KMeans as SparkMLKMeans
from pyspark.ml.functions import array_to_vector
from pyspark.ml.param import Param, TypeConverters

from .._common.base import BaseClusterer, warn_fewer_clusters
from .._common.defaults import (
    K_RANGE,
    KMEANS_N_INIT,
    MAX_DRIVER_ROWS,
    MAX_EXECUTOR_ROWS,
    SILHOUETTE_SAMPLE,
)
from .._common.engine import CHOICE_SAMPLE_ROWS
from .._common.spark_base import (
    SparkClusterEstimator,
    SparkClusterModel,
    _SparkClusterParams,
    spark_param,
)
from .._common.spark_frames import check_finite, sample_features
from .estimator import KMeans

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


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
            k=None,
            k_range=list(K_RANGE),
            random_state=0,
            n_init=KMEANS_N_INIT,
            silhouette_sample=SILHOUETTE_SAMPLE,
        )


class SparkKMeansModel(SparkClusterModel, _KMeansParams):
    """Fitted SparkKMeans: ``transform`` adds ``predictionCol`` (int), the nearest centroid's
    cluster."""


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
        k_range: tuple[int, int] = K_RANGE,
        random_state: int = 0,
        n_init: int = KMEANS_N_INIT,
        silhouette_sample: int = SILHOUETTE_SAMPLE,
        featuresCol: str = "features",
        predictionCol: str = "prediction",
        maxDriverRows: int | None = MAX_DRIVER_ROWS,
        maxExecutorRows: int | None = MAX_EXECUTOR_ROWS,
    ) -> None:
        super().__init__()
        self.setParams(**self._input_kwargs)
