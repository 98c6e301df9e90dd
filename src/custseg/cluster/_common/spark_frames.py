"""The features column of a Spark DataFrame, as the Spark estimators read it.

Its type (vector or numeric array) turned into ``array<double>``, its length and
names, the refusal of null / NaN / infinite features naming them, collecting it
(Arrow) or a seeded sample of it to the driver, and the pandas UDF that applies a
fitted single-node estimator's ``predict`` rule to each row.

pyspark is imported inside the functions: the Spark estimators import this module,
and the helpers only run once a DataFrame is at hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd  # module level: pandas_udf resolves the predict function's type hints here
import pyarrow.compute as pc
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import ArrayType, NumericType

from custseg.errors import ParameterError

from .validation import refuse_non_finite

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from .base import BaseClusterer


def features_as_array(dataset: DataFrame, col_name: str) -> Column:
    """The features column as ``array<double>``, from a vector or a numeric array column."""

    if col_name not in dataset.columns:
        raise ParameterError(
            f"featuresCol {col_name!r} is not a column of the DataFrame "
            f"(columns: {dataset.columns})"
        )
    dtype = dataset.schema[col_name].dataType
    column = dataset[col_name]
    if isinstance(dtype, VectorUDT):
        return vector_to_array(column, "float64")
    if isinstance(dtype, ArrayType) and isinstance(dtype.elementType, NumericType):
        return column.cast("array<double>")
    raise ParameterError(
        f"featuresCol {col_name!r} must be a vector or array<double> column, "
        f"got {dtype.simpleString()}"
    )


def n_features_of(dataset: DataFrame, features: Column, col_name: str) -> int:
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

    has_bad = F.exists("f", lambda x: F.isnan(x) | (F.abs(x) == float("inf")))
    row = dataset.select(features.alias("f")).agg(F.count_if(has_bad).alias("bad")).first()
    if row is not None and row["bad"]:
        raise_non_finite(dataset, features, col_name)


def collect_features(features: DataFrame, col_name: str) -> np.ndarray:
    """Collect a one-column DataFrame of array<double> (Arrow) as an (n, d) float64 matrix."""

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
