"""SparkDBSCAN: DBSCAN on a Spark DataFrame (pyspark.ml Estimator and Model).

Up to the driver limit the single-node :class:`~custseg.cluster.DBSCAN` runs on the
collected features; above it the exact distributed fit of ``_distributed``. The model
scores new rows with the kept core points, and returns the fit's own labels for its
training DataFrame.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from pyspark import keyword_only
from pyspark.ml.param import Param, TypeConverters
from pyspark.sql import functions as F

from custseg.errors import ModelError, ParameterError

from .._common.base import BaseClusterer
from .._common.defaults import (
    DBSCAN_MAX_MODEL_POINTS,
    DBSCAN_MIN_SAMPLES,
    DBSCAN_PARTITION_ROWS,
    MAX_DRIVER_ROWS,
    MAX_EXECUTOR_ROWS,
)
from .._common.spark_base import (
    SparkClusterEstimator,
    SparkClusterModel,
    _SparkClusterParams,
    spark_param,
)
from .._common.spark_frames import features_as_array, make_predict_udf
from .._common.validation import check_int
from ._distributed import DistributedFit, assign_exact, fit_distributed
from .estimator import DBSCAN

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


class _DBSCANParams(_SparkClusterParams):
    eps: Param[float] = spark_param(
        "eps", "neighbourhood radius (Euclidean, inclusive), > 0", TypeConverters.toFloat
    )
    min_samples: Param[int] = spark_param(
        "min_samples",
        "points within eps (itself included) that make a core point",
        TypeConverters.toInt,
    )
    isCoreCol: Param[str] = spark_param(
        "isCoreCol", "output column: is the row a core point", TypeConverters.toString
    )
    partitionRows: Param[int] = spark_param(
        "partitionRows",
        "distributed fit: most rows one spatial partition owns (a task holds them; its eps halo "
        "streams through in chunks)",
        TypeConverters.toInt,
    )
    maxModelPoints: Param[int] = spark_param(
        "maxModelPoints",
        "distributed fit: most core points the saved model keeps for scoring new rows",
        TypeConverters.toInt,
    )
    _algo_params = ("eps", "min_samples")
    _clusterer_cls = DBSCAN

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            min_samples=DBSCAN_MIN_SAMPLES,
            isCoreCol="is_core",
            partitionRows=DBSCAN_PARTITION_ROWS,
            maxModelPoints=DBSCAN_MAX_MODEL_POINTS,
        )

    def _validate(self, updates: dict[str, Any]) -> None:
        super()._validate(updates)
        for name in ("partitionRows", "maxModelPoints"):
            if name in updates:
                check_int(name, updates[name], 1)

    def getEps(self) -> float:
        return self.getOrDefault(self.eps)

    def getMinSamples(self) -> int:
        return self.getOrDefault(self.min_samples)

    def getIsCoreCol(self) -> str:
        return self.getOrDefault(self.isCoreCol)

    def getPartitionRows(self) -> int:
        return self.getOrDefault(self.partitionRows)

    def getMaxModelPoints(self) -> int:
        return self.getOrDefault(self.maxModelPoints)


class SparkDBSCANSummary:
    """What a fit leaves about its training rows (pyspark.ml's ``model.summary`` shape).

    ``predictions`` is the training DataFrame with ``predictionCol`` and
    ``isCoreCol``: on the distributed path these are the labels the fit computed
    (looked up from its checkpoint, not recomputed); on the driver path the
    model's rule applied to the rows, which equals the fitted ``labels_``.
    """

    def __init__(
        self,
        predictions: DataFrame,
        prediction_col: str,
        features_col: str,
        n_clusters: int,
        n_core: int,
        n_boxes: int,
    ) -> None:
        self.predictions = predictions
        self.predictionCol = prediction_col
        self.featuresCol = features_col
        self.numClusters = n_clusters
        self.numCorePoints = n_core
        self.numBoxes = (
            n_boxes  # spatial partitions of the distributed fit (0: fitted on the driver)
        )


class SparkDBSCANModel(SparkClusterModel, _DBSCANParams):
    """Fitted SparkDBSCAN: ``transform`` adds ``predictionCol`` (int, -1 = noise) and ``isCoreCol``.

    A row gets the cluster of the nearest core point within eps (noise if there
    is none), and ``is_core`` is true when the row coincides with a core point.
    On the training DataFrame that is exactly DBSCAN's labelling; after a
    distributed fit ``transform`` of that very DataFrame (and ``summary.predictions``)
    returns the labels the fit already computed.

    Which core points: the model keeps every core point when there are at most
    ``maxModelPoints`` of them, and then ``transform`` and the saved model are
    exact on any data. A larger distributed fit keeps a thinned set of them
    (``coreCover`` > 0: every core point lies within that distance, at most eps,
    of a kept one of its own cluster, and every kept one is a true core point).
    Such a model, in the session that fitted it, still transforms exactly: it
    routes rows to the fit's partitions and compares them with all core points
    there. Saved and loaded, it scores with the kept points only: a row it puts
    in a cluster does have a core point of that cluster within eps, and
    ``is_core`` then means "is a kept core point"; a row it calls noise may have
    a core point within eps when its distance to the kept points is in
    (eps, eps + coreCover].
    """

    coreCover: Param[float] = spark_param(
        "coreCover",
        "largest distance of a core point to the kept core points (0: all kept, scoring exact)",
        TypeConverters.toFloat,
    )

    def __init__(self, clusterer: BaseClusterer | None = None) -> None:
        super().__init__(clusterer)
        self._setDefault(coreCover=0.0)
        self._exact_fit: DistributedFit | None = None
        self._fit_result: DistributedFit | None = None
        self._training: DataFrame | None = None
        self._summary: SparkDBSCANSummary | None = None

    def getCoreCover(self) -> float:
        return self.getOrDefault(self.coreCover)

    @property
    def hasSummary(self) -> bool:
        """True after ``fit`` in this session (a loaded model has no training rows)."""
        return self._training is not None

    @property
    def summary(self) -> SparkDBSCANSummary:
        """The labelled training rows and a few figures (see :class:`SparkDBSCANSummary`)."""
        if self._training is None:
            raise ModelError(
                "this SparkDBSCANModel has no summary: it was loaded, not fitted in this session"
            )
        if self._summary is None:
            clusterer = self.clusterer
            assert isinstance(clusterer, DBSCAN)
            fit = self._fit_result
            n_core = fit.n_core if fit is not None else int(clusterer.components_.shape[0])
            self._summary = SparkDBSCANSummary(
                self.transform(self._training),
                self.getPredictionCol(),
                self.getFeaturesCol(),
                int(clusterer.n_clusters_),
                n_core,
                fit.partitioner.n_leaves if fit is not None else 0,
            )
        return self._summary

    def _attach(self, training: DataFrame, fit: DistributedFit | None) -> None:
        """Keep the training DataFrame and what the distributed fit left (labels, partitions)."""
        self._training = training
        self._fit_result = fit
        if fit is not None:
            self._set(coreCover=fit.cover)
            self._exact_fit = fit if fit.labelled_cores is not None else None

    def _output_columns(self) -> list[tuple[str, str]]:
        return [(self.getPredictionCol(), "int"), (self.getIsCoreCol(), "boolean")]

    def _transform(self, dataset: DataFrame) -> DataFrame:
        """The fit's own labels for its training DataFrame; the exact distributed
        assignment after a thinned fit; else a pandas UDF.

        The UDF applies the model's rule (``DBSCAN.predict_outputs``: the nearest
        kept core point within eps), one bounded nearest-neighbour query per row on
        the k-d tree the model keeps.
        """

        outputs = self._output_columns()
        names = [name for name, _ in outputs]
        if len(set(names)) != len(names):
            raise ParameterError(f"output column names must differ, got {names}")
        if self._fit_result is not None and dataset is self._training:
            return self._fit_result.predictions(dataset.columns, names[0], names[1])
        features = features_as_array(dataset, self.getFeaturesCol())
        if self._exact_fit is not None:
            return assign_exact(
                dataset, features, self._exact_fit, float(self.getEps()), names[0], names[1]
            )
        clusterer = self.clusterer
        assert isinstance(clusterer, DBSCAN)
        udf = make_predict_udf(clusterer, outputs)
        tmp = f"__custseg_{uuid.uuid4().hex}"
        out = dataset.withColumn(tmp, udf(features))
        out = out.withColumns({name: F.col(tmp)[f"c{i}"] for i, name in enumerate(names)})
        return out.drop(tmp)


class SparkDBSCAN(SparkClusterEstimator, _DBSCANParams):
    """DBSCAN on a Spark DataFrame of features (a vector or array<double> column).

    Up to ``maxDriverRows`` rows are clustered on the driver; above that the
    exact distributed algorithm of :mod:`custseg.cluster.dbscan._distributed` runs
    (spatial partitions of at most ``partitionRows`` own rows each, one task each,
    more and smaller ones where that is quicker on the session's task slots; a
    task holds its own rows, and its eps halo streams through it in chunks).
    The fitted model's ``summary.predictions`` (and its ``transform`` of the
    training DataFrame) holds every training row's label without a second pass.

    >>> model = SparkDBSCAN(
    ...     eps=0.6, min_samples=DBSCAN_MIN_SAMPLES, predictionCol="segment"
    ... ).fit(df)  # doctest: +SKIP
    >>> model.transform(df)  # adds "segment" and "is_core"  # doctest: +SKIP
    """

    _model_cls = SparkDBSCANModel
    _distributed_is_exact = True

    @keyword_only
    def __init__(
        self,
        *,
        eps: float,
        min_samples: int = DBSCAN_MIN_SAMPLES,
        featuresCol: str = "features",
        predictionCol: str = "prediction",
        isCoreCol: str = "is_core",
        maxDriverRows: int | None = MAX_DRIVER_ROWS,
        maxExecutorRows: int | None = MAX_EXECUTOR_ROWS,
        partitionRows: int = DBSCAN_PARTITION_ROWS,
        maxModelPoints: int = DBSCAN_MAX_MODEL_POINTS,
    ) -> None:
        super().__init__()
        self._distributed_fit: DistributedFit | None = None
        self.setParams(**self._input_kwargs)

    def _fit(self, dataset: DataFrame) -> SparkClusterModel:
        self._distributed_fit = None
        try:
            model = super()._fit(dataset)
            if isinstance(model, SparkDBSCANModel):
                model._attach(dataset, self._distributed_fit)
        finally:
            self._distributed_fit = None
        return model

    def _fit_distributed(
        self,
        dataset: DataFrame,
        features: Column,
        clusterer: BaseClusterer,
        n_rows: int,
        driver_rows: int,
    ) -> BaseClusterer:
        """Exact distributed DBSCAN; returns a DBSCAN holding the kept core points."""
        assert isinstance(clusterer, DBSCAN)
        fit = fit_distributed(
            dataset,
            features,
            eps=float(clusterer.eps),
            min_samples=int(clusterer.min_samples),
            n_rows=n_rows,
            features_col=self.getFeaturesCol(),
            partition_rows=self.getPartitionRows(),
            max_model_points=self.getMaxModelPoints(),
        )
        self._distributed_fit = fit
        return DBSCAN.from_core_points(
            clusterer.get_params(), fit.components, fit.core_labels, fit.n_clusters
        )
