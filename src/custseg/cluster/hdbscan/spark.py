"""SparkHDBSCAN: HDBSCAN on a Spark DataFrame (pyspark.ml Estimator and Model).

Up to the driver limit the single-node :class:`~custseg.cluster.HDBSCAN` runs on the
collected features; above it the summarised distributed fit of ``_distributed``, which
returns an HDBSCAN that labels a customer by its bubble.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyspark import keyword_only
from pyspark.ml.param import Param, TypeConverters

from .._common.base import BaseClusterer
from .._common.defaults import (
    HDBSCAN_MAX_BUBBLES,
    HDBSCAN_MIN_CLUSTER_SIZE,
    MAX_DRIVER_ROWS,
    MAX_EXECUTOR_ROWS,
)
from .._common.spark_base import (
    SparkClusterEstimator,
    SparkClusterModel,
    _SparkClusterParams,
    spark_param,
)
from .._common.validation import check_int
from ._distributed import fit_distributed
from .estimator import HDBSCAN

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


MIN_BUBBLES = 4


class _HDBSCANParams(_SparkClusterParams):
    min_cluster_size: Param[int] = spark_param(
        "min_cluster_size", "smallest cluster size (>= 2)", TypeConverters.toInt
    )
    min_samples: Param[int] = spark_param(
        "min_samples",
        "neighbours defining the core distance; None = min_cluster_size",
        TypeConverters.toInt,
    )
    maxBubbles: Param[int] = spark_param(
        "maxBubbles",
        "above maxDriverRows: most bubbles (customer summaries) the hierarchy is built on",
        TypeConverters.toInt,
    )
    _algo_params = ("min_cluster_size", "min_samples")
    _clusterer_cls = HDBSCAN

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            min_cluster_size=HDBSCAN_MIN_CLUSTER_SIZE,
            min_samples=None,
            maxBubbles=HDBSCAN_MAX_BUBBLES,
        )

    def getMaxBubbles(self) -> int:
        return self.getOrDefault(self.maxBubbles)

    def _validate(self, updates: dict[str, Any]) -> None:
        super()._validate(updates)
        if "maxBubbles" in updates:
            check_int("maxBubbles", updates["maxBubbles"], MIN_BUBBLES)


class SparkHDBSCANModel(SparkClusterModel, _HDBSCANParams):
    """Fitted SparkHDBSCAN: ``transform`` adds ``predictionCol`` (int, -1 = noise).

    After a driver fit, rows of the training DataFrame get their training labels and
    other rows ``hdbscan.approximate_predict``'s label; ``save`` pickles the clusterer.
    After a distributed fit every row gets its bubble's label (the training labels);
    ``save`` stores the split tree and the bubble labels.
    """


class SparkHDBSCAN(SparkClusterEstimator, _HDBSCANParams):
    """HDBSCAN of a Spark DataFrame of features (vector or array<double>).

    Up to ``maxDriverRows`` customers: exact HDBSCAN on the driver. Above: the
    summarised distributed fit of ``_distributed`` (exact core distances, the
    hierarchy over at most ``maxBubbles`` bubbles).
    """

    _model_cls = SparkHDBSCANModel

    def _fit_distributed(
        self,
        dataset: DataFrame,
        features: Column,
        clusterer: BaseClusterer,
        n_rows: int,
        driver_rows: int,
    ) -> BaseClusterer:

        assert isinstance(clusterer, HDBSCAN)
        return fit_distributed(
            dataset,
            features,
            clusterer,
            n_rows,
            max_bubbles=self.getMaxBubbles(),
            features_name=self.getFeaturesCol(),
        )

    @keyword_only
    def __init__(
        self,
        *,
        min_cluster_size: int = HDBSCAN_MIN_CLUSTER_SIZE,
        min_samples: int | None = None,
        featuresCol: str = "features",
        predictionCol: str = "prediction",
        maxDriverRows: int | None = MAX_DRIVER_ROWS,
        maxExecutorRows: int | None = MAX_EXECUTOR_ROWS,
        maxBubbles: int = HDBSCAN_MAX_BUBBLES,
    ) -> None:
        super().__init__()
        self.setParams(**self._input_kwargs)
