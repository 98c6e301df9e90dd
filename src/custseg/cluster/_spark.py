"""The Spark estimator / model base shared by SparkDBSCAN, SparkHierarchical, ...

A Spark estimator wraps a single-node estimator (``DBSCAN``, ...):

- ``fit(df)`` validates the parameters, then dispatches on size: up to the
  driver limit (``maxDriverRows``, else estimated from rows x features x memory,
  see ``_engine``) the features column alone is collected to the driver (Arrow)
  and the exact single-node algorithm runs there; above it each estimator's
  ``_fit_distributed`` takes over (``_dbscan_spark``, ``_hierarchical_spark``,
  ``_hdbscan_spark``, Spark ML's k-means) and returns a fitted single-node
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

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pandas as pd  # module level: pandas_udf resolves the predict function's type hints here
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasPredictionCol

from custseg.errors import ModelError, ParameterError

from ._base import BaseClusterer
from ._engine import (
    AGREEMENT_SAMPLE_ROWS,
    DriverLimit,
    agreement,
    distributed_report,
    driver_limit,
    exact_report,
    executor_report,
    log_report,
)
from ._one_executor import EXECUTOR_MEMORY_CONF, executor_limit, fit_on_one_executor
from ._validation import check_int, refuse_non_finite

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

METADATA_FILE = "metadata.json"
ARRAYS_FILE = "arrays.npz"
SAVE_FORMAT_VERSION = 1

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
        self._setDefault(maxDriverRows=None, maxExecutorRows=None)

    def getMaxDriverRows(self) -> int | None:
        return self.getOrDefault(self.maxDriverRows)

    def getMaxExecutorRows(self) -> int | None:
        return self.getOrDefault(self.maxExecutorRows)

    def _algo_values(self) -> dict[str, Any]:
        return {
            name: _untuple(self.getOrDefault(name))
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
        return {p.name: _untuple(self.getOrDefault(p)) for p in self.params if self.isDefined(p)}


class SparkClusterEstimator(Estimator, _SparkClusterParams):
    """Base of the Spark clustering estimators (pyspark.ml shape, pure Python)."""

    _model_cls: ClassVar[type[SparkClusterModel]]

    def _fit(self, dataset: DataFrame) -> SparkClusterModel:
        """Validate, then dispatch on size: exact on the driver up to the driver limit, exact
        in one Spark task up to the executor limit, else the distributed path."""
        clusterer = self._make_clusterer()
        clusterer.validate_params()
        features = features_as_array(dataset, self.getFeaturesCol())
        n_features = _n_features(dataset, features, self.getFeaturesCol())
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
                dataset, features, self.getFeaturesCol(), n_rows, AGREEMENT_SAMPLE_ROWS,
                getattr(clusterer, "random_state", 0),
            )  # fmt: skip
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
        from pyspark.sql import functions as F

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
        _write(path, _metadata(self, "estimator"), {}, overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Load what ``save`` wrote at ``path``: this estimator, or the model it fitted.

        ``SparkDBSCAN.load(path)`` therefore reads a saved ``SparkDBSCANModel`` too.
        """
        meta, arrays = _read(path)
        if meta["kind"] == "model":
            return cls._model_cls._from_saved(meta, arrays, path)
        _check_class(meta, cls, path)
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
        from pyspark.sql import functions as F

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
        meta = _metadata(self, "model")
        meta["clusterer"] = {k: v for k, v in state.items() if k not in arrays}
        _write(path, meta, arrays, overwrite)

    @classmethod
    def load(cls: type[M], path: str | os.PathLike[str]) -> M:
        """Load a model written by :meth:`save`."""
        meta, arrays = _read(path)
        if meta["kind"] != "model":
            raise ModelError(f"{path} holds a saved {meta['class']} estimator, not a fitted model")
        return cls._from_saved(meta, arrays, path)

    @classmethod
    def _from_saved(
        cls: type[M], meta: dict[str, Any], arrays: dict[str, np.ndarray], path: Any
    ) -> M:
        _check_class(meta, cls, path)
        state = {**meta["clusterer"], **arrays}
        clusterer = cls._clusterer_cls.from_dict(state)
        model = cls(clusterer)
        params = meta["params"]
        model._set(**{k: v for k, v in params.items() if model.hasParam(k) and v is not None})
        return model


# -- features -------------------------------------------------------------------
def features_as_array(dataset: DataFrame, col_name: str) -> Column:
    """The features column as ``array<double>``, from a vector or a numeric array column."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import ArrayType, NumericType

    if col_name not in dataset.columns:
        raise ParameterError(
            f"featuresCol {col_name!r} is not a column of the DataFrame (columns: {dataset.columns})"
        )
    dtype = dataset.schema[col_name].dataType
    column = dataset[col_name]
    if isinstance(dtype, VectorUDT):
        return vector_to_array(column, "float64")
    if isinstance(dtype, ArrayType) and isinstance(dtype.elementType, NumericType):
        return column.cast("array<double>")
    raise ParameterError(
        f"featuresCol {col_name!r} must be a vector or array<double> column, got {dtype.simpleString()}"
    )


def _n_features(dataset: DataFrame, features: Column, col_name: str) -> int:
    """The length of the feature vectors: from the ML attributes, else from the first row."""
    names = feature_names(dataset, col_name)
    if names is not None:
        return len(names)
    row = dataset.select(features.alias("f")).first()
    return 0 if row is None or row["f"] is None else len(row["f"])


def feature_names(dataset: DataFrame, col_name: str) -> list[str] | None:
    """The names of a vector column's features, from the ML attributes VectorAssembler writes."""
    attrs = dataset.schema[col_name].metadata.get("ml_attr", {}).get("attrs", {})
    named = sorted((a["idx"], a["name"]) for group in attrs.values() for a in group if "name" in a)
    return [name for _, name in named] or None


def raise_non_finite(dataset: DataFrame, features: Column, col_name: str) -> None:
    """Count the rows and the features that are null, NaN or infinite (one aggregation), and
    raise the one-line error naming them; called once a fit has seen such a row."""
    from pyspark.sql import functions as F

    def bad(x: Column) -> Column:
        return x.isNull() | F.isnan(x) | (F.abs(x) == float("inf"))

    points = dataset.select(features.alias("f"))
    first = points.agg(F.count("*").alias("n"), F.max(F.size("f")).alias("d")).first()
    assert first is not None
    n_rows, d = int(first["n"]), int(first["d"] or 0)
    stats = points.agg(
        F.count_if(F.exists("f", bad)).alias("rows"),
        *[F.count_if(bad(F.col("f")[j])).alias(f"f{j}") for j in range(d)],
    ).first()
    assert stats is not None
    if stats["rows"]:
        per_feature = [int(stats[f"f{j}"]) for j in range(d)]
        refuse_non_finite(
            f"featuresCol {col_name!r}",
            int(stats["rows"]),
            n_rows,
            per_feature,
            feature_names(dataset, col_name),
        )


def check_finite(dataset: DataFrame, features: Column, col_name: str) -> None:
    """One pass: refuse NaN / infinite features (the error names them) before a Spark ML fit."""
    from pyspark.sql import functions as F

    has_bad = F.exists("f", lambda x: F.isnan(x) | (F.abs(x) == float("inf")))
    row = dataset.select(features.alias("f")).agg(F.count_if(has_bad).alias("bad")).first()
    if row is not None and row["bad"]:
        raise_non_finite(dataset, features, col_name)


def collect_features(features: DataFrame, col_name: str) -> np.ndarray:
    """Collect a one-column DataFrame of array<double> (Arrow) as an (n, d) float64 matrix."""
    import pyarrow.compute as pc

    table = features.toArrow()
    column = table.column(0).combine_chunks()
    n = len(column)
    if column.null_count:
        raise ParameterError(
            f"featuresCol {col_name!r} is null in {column.null_count} of {n} rows; "
            "impute or drop them before clustering"
        )
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if n and lengths.min() != lengths.max():
        raise ParameterError(
            f"featuresCol {col_name!r} holds vectors of different lengths "
            f"({int(lengths.min())} to {int(lengths.max())})"
        )
    # Nulls inside an array become NaN here and are then refused, with their row count.
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return values.reshape(n, int(lengths[0]) if n else 0)


def sample_features(
    dataset: DataFrame, features: Column, col_name: str, n_rows: int, max_rows: int, seed: int
) -> np.ndarray:
    """A seeded random sample of at most ``max_rows`` feature rows, collected to the driver.

    For the large paths' choices that need the data's shape (k by silhouette, partition
    splits): bounded by ``max_rows``, features only, never the customers' ids.
    """
    fraction = min(1.0, 1.2 * max_rows / max(n_rows, 1))  # a little over, then cut to max_rows
    sampled = (
        dataset.select(features.alias("f")).sample(fraction=fraction, seed=seed).limit(max_rows)
    )
    return collect_features(sampled, col_name)


def make_predict_udf(clusterer: BaseClusterer, outputs: list[tuple[str, str]]) -> Any:
    """A pandas UDF: array<double> -> struct<c0, c1, ...> of the clusterer's outputs.

    Rows whose features are null or hold NaN / infinity get null outputs
    instead of failing the whole job.

    The clusterer goes to the executors pickled inside the closure; it holds
    only the small fitted state (core points, centroids, ...).
    """
    from pyspark.sql.functions import pandas_udf

    schema = ", ".join(f"c{i} {sql_type}" for i, (_, sql_type) in enumerate(outputs))
    pandas_dtypes = ["Int32" if sql_type == "int" else "boolean" for _, sql_type in outputs]
    n_out = len(outputs)

    def predict(features: pd.Series) -> pd.DataFrame:
        valid = features.notna().to_numpy()
        columns = [pd.array([None] * len(features), dtype=dt) for dt in pandas_dtypes]
        if valid.any():
            X = np.vstack(features[valid].to_numpy()).astype(np.float64, copy=False)
            finite = np.isfinite(X).all(axis=1)
            if not finite.all():  # unscorable rows get null, like null features
                valid[np.flatnonzero(valid)[~finite]] = False
                X = X[finite]
        if valid.any():
            results = clusterer.predict_outputs(X)
            for i in range(n_out):
                columns[i][valid] = results[i]
        return pd.DataFrame({f"c{i}": columns[i] for i in range(n_out)})

    return pandas_udf(predict, schema)  # type: ignore[call-overload]


# -- save / load ------------------------------------------------------------------
def _untuple(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _metadata(obj: Params, kind: str) -> dict[str, Any]:
    import custseg

    return {
        "class": f"{type(obj).__module__}.{type(obj).__qualname__}",
        "kind": kind,
        "uid": obj.uid,
        "format_version": SAVE_FORMAT_VERSION,
        "custseg_version": custseg.__version__,
        "params": obj._param_values(),  # type: ignore[attr-defined]
    }


def _check_class(meta: dict[str, Any], cls: type, path: Any) -> None:
    if meta["class"].rsplit(".", 1)[-1] != cls.__name__:
        raise ModelError(f"{path} holds a saved {meta['class']}, not a {cls.__name__}")


def _write(
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    overwrite: bool,
) -> None:
    """Write into a temporary sibling folder, then rename: a failed save leaves no half model."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise ModelError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        (tmp / METADATA_FILE).write_text(
            json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8"
        )
        if arrays:
            np.savez(tmp / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    folder = Path(path)
    meta_file = folder / METADATA_FILE
    if not meta_file.is_file():
        raise ModelError(
            f"no saved custseg estimator or model at {folder} (missing {METADATA_FILE})"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_file} is not valid JSON: {exc}") from None
    if int(meta.get("format_version", 0)) > SAVE_FORMAT_VERSION:
        raise ModelError(
            f"{folder} was saved in format {meta['format_version']}, newer than this custseg reads "
            f"({SAVE_FORMAT_VERSION})"
        )
    arrays: dict[str, np.ndarray] = {}
    arrays_file = folder / ARRAYS_FILE
    if arrays_file.is_file():
        with np.load(arrays_file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return meta, arrays
