"""SparkHierarchical: agglomerative clustering of a Spark DataFrame (pyspark.ml Estimator and
Model).

Up to the driver limit the single-node :class:`~custseg.cluster.Hierarchical` runs on
the collected features, any linkage; above it Ward on weighted micro-cluster summaries
computed in parallel (``_distributed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyspark import keyword_only
from pyspark.ml.param import Param, TypeConverters

from custseg.errors import ParameterError

from .._common.base import BaseClusterer
from .._common.defaults import (
    HIERARCHICAL_MICRO_CLUSTERS,
    K_RANGE,
    MAX_DRIVER_ROWS,
    MAX_EXECUTOR_ROWS,
    SILHOUETTE_SAMPLE,
)
from .._common.spark_base import (
    SparkClusterEstimator,
    SparkClusterModel,
    _SparkClusterParams,
    spark_param,
)
from .._common.validation import check_int
from ._distributed import check_distributed_linkage, fit_distributed
from .estimator import Hierarchical

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


class _HierarchicalParams(_SparkClusterParams):
    n_clusters: Param[int] = spark_param(
        "n_clusters", "number of clusters; None chooses it by silhouette", TypeConverters.toInt
    )
    linkage: Param[str] = spark_param(
        "linkage", "ward, complete, average or single", TypeConverters.toString
    )
    k_range: Param[list[int]] = spark_param(
        "k_range", "candidate k (low, high), both included", TypeConverters.toListInt
    )
    silhouette_sample: Param[int] = spark_param(
        "silhouette_sample", "silhouette sample size when choosing k", TypeConverters.toInt
    )
    random_state: Param[int] = spark_param(
        "random_state",
        "seed of the silhouette sample (and of the micro-clusters)",
        TypeConverters.toInt,
    )
    numMicroClusters: Param[int] = spark_param(
        "numMicroClusters",
        "micro-clusters summarising the customers above maxDriverRows (Ward runs on them)",
        TypeConverters.toInt,
    )
    _algo_params = ("n_clusters", "linkage", "k_range", "silhouette_sample", "random_state")
    _clusterer_cls = Hierarchical

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            n_clusters=None,
            linkage="ward",
            k_range=list(K_RANGE),
            silhouette_sample=SILHOUETTE_SAMPLE,
            random_state=0,
            numMicroClusters=HIERARCHICAL_MICRO_CLUSTERS,
        )

    def getNumMicroClusters(self) -> int:
        return self.getOrDefault(self.numMicroClusters)

    def _validate(self, updates: dict[str, Any]) -> None:
        super()._validate(updates)
        if "numMicroClusters" in updates:
            check_int("numMicroClusters", updates["numMicroClusters"], 2)


class SparkHierarchicalModel(SparkClusterModel, _HierarchicalParams):
    """Fitted SparkHierarchical: ``transform`` adds ``predictionCol`` (int).

    Fitted on the driver: rows of the training DataFrame get their training labels;
    other rows the nearest centroid's cluster. Fitted on micro-clusters (above
    maxDriverRows): every row gets the cluster of its nearest micro-cluster, so the
    training rows get the labels of the fit.
    """


class SparkHierarchical(SparkClusterEstimator, _HierarchicalParams):
    """Agglomerative clustering of a Spark DataFrame of features (vector or array<double>).

    Up to ``maxDriverRows`` customers: exact, any linkage, on the driver. Above it, Ward
    only: the customers are summarised in parallel into ``numMicroClusters``
    micro-clusters, exact Ward runs on those weighted by their customer counts, and the
    tree is cut as on the driver (``n_clusters``, or the best silhouette in ``k_range`` on
    a seeded sample of customers). See ``_distributed``.
    """

    _model_cls = SparkHierarchicalModel

    def setNumMicroClusters(self, value: int) -> Any:
        return self.setParams(numMicroClusters=value)

    def _check_distributed(self, clusterer: BaseClusterer, n_rows: int, driver_rows: int) -> None:

        assert isinstance(clusterer, Hierarchical)
        check_distributed_linkage(clusterer.linkage, n_rows, driver_rows)

    def _fit_distributed(
        self,
        dataset: DataFrame,
        features: Column,
        clusterer: BaseClusterer,
        n_rows: int,
        driver_rows: int,
    ) -> BaseClusterer:

        assert isinstance(clusterer, Hierarchical)
        n_micro = check_int("numMicroClusters", self.getNumMicroClusters(), 2)
        if clusterer.n_clusters is not None and clusterer.n_clusters > n_micro:
            raise ParameterError(
                f"n_clusters ({clusterer.n_clusters}) exceeds the number of micro-clusters "
                f"({n_micro}) the data is summarised into; raise numMicroClusters"
            )
        return fit_distributed(
            dataset,
            features,
            clusterer,
            n_rows=n_rows,
            n_micro=n_micro,
            col_name=self.getFeaturesCol(),
            max_driver_rows=driver_rows,
        )

    @keyword_only
    def __init__(
        self,
        *,
        n_clusters: int | None = None,
        linkage: str = "ward",
        k_range: tuple[int, int] = K_RANGE,
        silhouette_sample: int = SILHOUETTE_SAMPLE,
        random_state: int = 0,
        featuresCol: str = "features",
        predictionCol: str = "prediction",
        maxDriverRows: int | None = MAX_DRIVER_ROWS,
        maxExecutorRows: int | None = MAX_EXECUTOR_ROWS,
        numMicroClusters: int = HIERARCHICAL_MICRO_CLUSTERS,
    ) -> None:
        super().__init__()
        self.setParams(**self._input_kwargs)
