"""The Spark estimator / model base shared by SparkDBSCAN, SparkHierarchical, ...

A Spark estimator wraps a single-node estimator (``DBSCAN``, ...):

- ``fit(df)`` validates the parameters, then dispatches on size: up to the
  driver limit (``maxDriverRows``, else estimated from rows x features x memory,
  see ``engine``) the features column alone is collected to the driver (Arrow)
  and the exact single-node algorithm runs there; above it each estimator's
  ``_fit_distributed`` takes over (``dbscan._distributed``, ``hierarchical._distributed``,
  ``hdbscan._distributed``, Spark ML's k-means) and returns a fitted single-node
  estimator of bounded size. Either way the fitted estimator's ``fit_report_``
  says which engine ran, why, and (approximate paths) its agreement with the
  exact algorithm on a sample; it is logged and saved with the model.
- ``model.transform(df)`` is distributed: a pandas UDF applies the fitted
  single-node model's ``predict`` rule to each row (the small model travels
  to the executors inside the UDF's closure). No join, no collect.
- ``save`` / ``load`` write a JSON metadata file plus an ``.npz`` of the
  fitted arrays to a local folder. No SparkContext, no JVM writer: the same
  code works on classic Spark, Spark Connect and Databricks.

Only the DataFrame API is used (no RDDs, no ``sparkContext``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasPredictionCol
from pyspark.sql import functions as F

from custseg.errors import ModelError, ParameterError

from .base import BaseClusterer
from .defaults import MAX_DRIVER_ROWS, MAX_EXECUTOR_ROWS
from .engine import (
    AGREEMENT_SAMPLE_ROWS,
    DriverLimit,
    agreement,
    distributed_report,
    driver_limit,
    exact_report,
    executor_report,
    log_report,
)
from .one_executor import EXECUTOR_MEMORY_CONF, executor_limit, fit_on_one_executor
from .spark_frames import (
    check_finite,
    collect_features,
    feature_names,
    features_as_array,
    make_predict_udf,
    n_features_of,
    sample_features,
)
from .spark_io import check_class, metadata, read_saved, untuple, write_saved
from .validation import check_int, refuse_non_finite

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


M = TypeVar("M", bound="SparkClusterModel")


def spark_param(name: str, doc: str, converter: Callable[[Any], Any]) -> Param[Any]:
    """A class-level pyspark Param, declared as pyspark's own estimators do (a dummy parent
    that pyspark replaces with each instance)."""
    return Param(Params._dummy(), name, doc, typeConverter=converter)


class _SparkClusterParams(HasFeaturesCol, HasPredictionCol):
    """Params every Spark clustering estimator and model share."""

    maxDriverRows: Param[int | None] = spark_param(
        "maxDriverRows",
        "largest number of rows fitted exactly on the driver (None: estimated from rows x "
        "features x memory; 0: always the distributed path)",
        lambda value: None if value is None else TypeConverters.toInt(value),
    )
    maxExecutorRows: Param[int | None] = spark_param(
        "maxExecutorRows",
        "largest number of rows fitted exactly in one Spark task when they do not fit the "
        "driver (None: estimated from spark.executor.pyspark.memory, 0 when it is not set; "
        "0: never)",
        lambda value: None if value is None else TypeConverters.toInt(value),
    )

    _input_kwargs: dict[str, Any]  # set by pyspark's keyword_only

    # Names of the params passed to the single-node estimator (same spelling).
    _algo_params: ClassVar[tuple[str, ...]] = ()
    _clusterer_cls: ClassVar[type[BaseClusterer]]
    # Whether the path above the driver limit gives the exact algorithm's answer.
    _distributed_is_exact: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(maxDriverRows=MAX_DRIVER_ROWS, maxExecutorRows=MAX_EXECUTOR_ROWS)

    def getMaxDriverRows(self) -> int | None:
        return self.getOrDefault(self.maxDriverRows)

    def getMaxExecutorRows(self) -> int | None:
        return self.getOrDefault(self.maxExecutorRows)

    def _algo_values(self) -> dict[str, Any]:
        return {
            name: untuple(self.getOrDefault(name))
            for name in self._algo_params
            if self.isDefined(getattr(self, name))
        }

    def _make_clusterer(self) -> BaseClusterer:
        return self._clusterer_cls(**self._algo_values())

    def _validate(self, updates: dict[str, Any]) -> None:
        """Validate raw values before pyspark's type converters see them."""
        algo = {
            **self._algo_values(),
            **{k: v for k, v in updates.items() if k in self._algo_params},
        }
        self._clusterer_cls(**algo).validate_params()
        for name in ("maxDriverRows", "maxExecutorRows"):
            if updates.get(name) is not None:
                check_int(name, updates[name], 0)
        for name, value in updates.items():
            if name.endswith("Col") and (not isinstance(value, str) or not value):
                raise ParameterError(f"{name} must be a non-empty column name, got {value!r}")

    def setParams(self, **kwargs: Any) -> Any:
        """Set params by name; values are validated first (ParameterError names the param)."""
        unknown = [k for k in kwargs if not self.hasParam(k)]
        if unknown:
            accepted = ", ".join(p.name for p in self.params)
            raise ParameterError(
                f"{type(self).__name__} has no param {unknown[0]!r}; accepted: {accepted}"
            )
        self._validate(kwargs)
        return self._set(**kwargs)

    def setFeaturesCol(self, value: str) -> Any:
        return self.setParams(featuresCol=value)

    def setPredictionCol(self, value: str) -> Any:
        return self.setParams(predictionCol=value)

    def setMaxDriverRows(self, value: int) -> Any:
        return self.setParams(maxDriverRows=value)

    def setMaxExecutorRows(self, value: int) -> Any:
        return self.setParams(maxExecutorRows=value)

    # -- persistence -------------------------------------------------------------
    def _param_values(self) -> dict[str, Any]:
        return {p.name: untuple(self.getOrDefault(p)) for p in self.params if self.isDefined(p)}


class SparkClusterEstimator(Estimator, _SparkClusterParams):
    """Base of the Spark clustering estimators (pyspark.ml shape, pure Python)."""

    _model_cls: ClassVar[type[SparkClusterModel]]

    def _fit(self, dataset: DataFrame) -> SparkClusterModel:
        """Validate, then dispatch on size: exact on the driver up to the driver limit, exact
        in one Spark task up to the executor limit, else the distributed path."""
        clusterer = self._make_clusterer()
        clusterer.validate_params()
        features = features_as_array(dataset, self.getFeaturesCol())
        n_features = n_features_of(dataset, features, self.getFeaturesCol())
        limit = driver_limit(
            clusterer.method,
            n_features,
            neighbours=clusterer.core_neighbours(),
            configured=self.getMaxDriverRows(),
        )
        # One pass in the common case: collect at most limit + 1 rows; only a larger
        # input is counted (for the message, and for the distributed path).
        X = collect_features(
            dataset.select(features.alias("f")).limit(limit.rows + 1), self.getFeaturesCol()
        )
        if X.shape[0] <= limit.rows:
            if X.shape[0] == 0:
                raise ParameterError(f"{type(self).__name__}.fit got an empty DataFrame (0 rows)")
            if not np.isfinite(X).all():
                finite = np.isfinite(X)
                refuse_non_finite(
                    f"featuresCol {self.getFeaturesCol()!r}",
                    int((~finite.all(axis=1)).sum()),
                    X.shape[0],
                    (~finite).sum(axis=0),
                    feature_names(dataset, self.getFeaturesCol()),
                )
            clusterer.check_data_size(X.shape[0])
            fitted = clusterer.fit(X)
            fitted.fit_report_ = exact_report(X.shape[0], n_features, limit)
        else:
            del X
            n_rows = dataset.count()
            executor = executor_limit(
                clusterer.method,
                n_features,
                neighbours=clusterer.core_neighbours(),
                configured=self.getMaxExecutorRows(),
                stated_memory=dataset.sparkSession.conf.get(EXECUTOR_MEMORY_CONF, None),
            )
            if n_rows <= executor.rows:
                fitted, where = self._fit_on_one_executor(
                    dataset, features, clusterer, n_rows, n_features
                )
                fitted.fit_report_ = executor_report(n_rows, n_features, limit, executor, where)
            else:
                fitted = self._fit_above_limits(
                    dataset, features, clusterer, n_rows, n_features, limit
                )
        log_report(type(self).__name__, fitted.fit_report_)
        model = self._model_cls(fitted)
        self._copyValues(model)
        return model

    def _fit_above_limits(
        self,
        dataset: DataFrame,
        features: Column,
        clusterer: BaseClusterer,
        n_rows: int,
        n_features: int,
        limit: DriverLimit,
    ) -> BaseClusterer:
        """The distributed path, with its fit report (and agreement estimate, if approximate)."""
        self._check_distributed(clusterer, n_rows, limit.rows)
        clusterer.check_data_size(n_rows)
        fitted = self._fit_distributed(dataset, features, clusterer, n_rows, limit.rows)
        ari, n_sample = None, 0
        if not self._distributed_is_exact:
            sample = sample_features(
                dataset,
                features,
                self.getFeaturesCol(),
                n_rows,
                AGREEMENT_SAMPLE_ROWS,
                getattr(clusterer, "random_state", 0),
            )
            n_sample = sample.shape[0]
            ari = agreement(clusterer, fitted, sample, n_rows / n_sample)
        fitted.fit_report_ = distributed_report(
            n_rows, n_features, limit, self._distributed_is_exact, ari, n_sample
        )
        return fitted

    def _fit_on_one_executor(
        self,
        dataset: DataFrame,
        features: Column,
        clusterer: BaseClusterer,
        n_rows: int,
        n_features: int,
    ) -> tuple[BaseClusterer, dict[str, Any]]:
        """The exact fit in one Spark task, after the checks the driver path makes on its
        collected rows (here two aggregations); the fitted estimator and where it ran."""

        clusterer.check_data_size(n_rows)
        points = dataset.select(features.alias("f"))
        ragged = points.agg(
            F.count_if(F.col("f").isNull() | (F.size("f") != n_features)).alias("n")
        ).first()
        if ragged is not None and ragged["n"]:
            raise ParameterError(
                f"featuresCol {self.getFeaturesCol()!r} is null or not {n_features} long in "
                f"{int(ragged['n'])} of {n_rows} rows; impute or drop them before clustering"
            )
        check_finite(dataset, features, self.getFeaturesCol())
        return fit_on_one_executor(dataset, features, clusterer, n_features)

    def _check_distributed(self, clusterer: BaseClusterer, n_rows: int, driver_rows: int) -> None:
        """What the path above the driver limit cannot do, refused before the driver path's own
        limits (whose advice would not apply there)."""

    def _fit_distributed(
        self,
        dataset: DataFrame,
        features: Column,
        clusterer: BaseClusterer,
        n_rows: int,
        driver_rows: int,
    ) -> BaseClusterer:
        """The path above the driver limit; estimators without one refuse the data with its size."""
        raise ParameterError(
            f"{type(self).__name__} collects to the driver up to {driver_rows} rows; "
            f"the data has {n_rows} rows"
        )

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write the estimator's params to a local folder (``metadata.json``)."""
        write_saved(path, metadata(self, "estimator"), {}, overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Load what ``save`` wrote at ``path``: this estimator, or the model it fitted.

        ``SparkDBSCAN.load(path)`` therefore reads a saved ``SparkDBSCANModel`` too.
        """
        meta, arrays = read_saved(path)
        if meta["kind"] == "model":
            return cls._model_cls._from_saved(meta, arrays, path)
        check_class(meta, cls, path)
        obj = cls(**meta["params"])
        return obj


class SparkClusterModel(Model, _SparkClusterParams):
    """Base of the fitted Spark clustering models: ``transform`` adds the prediction column."""

    def __init__(self, clusterer: BaseClusterer | None = None) -> None:
        super().__init__()
        self._clusterer = clusterer

    @property
    def clusterer(self) -> BaseClusterer:
        """The fitted single-node estimator (its ``to_dict`` is what ``save`` stores)."""
        if self._clusterer is None:
            raise ModelError(f"this {type(self).__name__} holds no fitted clusterer")
        return self._clusterer

    def _output_columns(self) -> list[tuple[str, str]]:
        """(column name, Spark SQL type) of the columns transform adds, in order."""
        return [(self.getPredictionCol(), "int")]

    def _transform(self, dataset: DataFrame) -> DataFrame:

        features = features_as_array(dataset, self.getFeaturesCol())
        outputs = self._output_columns()
        names = [name for name, _ in outputs]
        if len(set(names)) != len(names):
            raise ParameterError(f"output column names must differ, got {names}")
        udf = make_predict_udf(self.clusterer, outputs)
        # One UDF returning a struct, then unpacked: Spark extracts the (deterministic) UDF
        # once, so the model runs once per row, and filters can still be pushed below it.
        tmp = f"__custseg_{uuid.uuid4().hex}"
        out = dataset.withColumn(tmp, udf(features))
        out = out.withColumns({name: F.col(tmp)[f"c{i}"] for i, name in enumerate(names)})
        return out.drop(tmp)

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write params (``metadata.json``) and fitted arrays (``arrays.npz``) to a local folder."""
        state = self.clusterer.to_dict()
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        meta = metadata(self, "model")
        meta["clusterer"] = {k: v for k, v in state.items() if k not in arrays}
        write_saved(path, meta, arrays, overwrite)

    @classmethod
    def load(cls: type[M], path: str | os.PathLike[str]) -> M:
        """Load a model written by :meth:`save`."""
        meta, arrays = read_saved(path)
        if meta["kind"] != "model":
            raise ModelError(f"{path} holds a saved {meta['class']} estimator, not a fitted model")
        return cls._from_saved(meta, arrays, path)

    @classmethod
    def _from_saved(
        cls: type[M], meta: dict[str, Any], arrays: dict[str, np.ndarray], path: Any
    ) -> M:
        check_class(meta, cls, path)
        state = {**meta["clusterer"], **arrays}
        clusterer = cls._clusterer_cls.from_dict(state)
        model = cls(clusterer)
        params = meta["params"]
        model._set(**{k: v for k, v in params.items() if model.hasParam(k) and v is not None})
        return model
