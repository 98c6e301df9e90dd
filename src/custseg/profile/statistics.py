"""Per-segment and population statistics, the numbers segment descriptions are built from.

Two entry points give the same :class:`SegmentStatistics`:

- :func:`segment_statistics` aggregates a Spark DataFrame in one pass
  (a ``rollup`` over the segment column, so the per-segment rows and the
  all-customer row come from the same job). Only the aggregated rows, one per
  segment plus one, reach the driver.
- :func:`segment_statistics_pandas` does the same on a pandas frame, for small
  data and tests.

Quantiles use one definition on both paths: the smallest value whose
cumulative share reaches the level (numpy's ``inverted_cdf``, the value
Spark's ``percentile_approx`` converges to). The pandas path computes it
exactly; the Spark path is exact on small data and within ``1 / accuracy``
in rank on large data. So the rules in :mod:`custseg.profile.rules` give the
same words whichever path produced the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from custseg.errors import InputDataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Population cut points: the quintile boundaries the qualitative words use.
CUT_POINTS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
CUT_NAMES: tuple[str, ...] = ("q20", "q40", "q60", "q80")
# Every level asked of percentile_approx, in this order: the cut points and the median.
_LEVELS: tuple[float, ...] = (0.2, 0.4, 0.5, 0.6, 0.8)
_LEVEL_NAMES = ("q20", "q40", "median", "q60", "q80")
#: Columns of :attr:`SegmentStatistics.population`, in order.
POPULATION_COLUMNS = ("q20", "q40", "q60", "q80", "median", "mean", "std", "min", "max", "count")
DEFAULT_ACCURACY = 100_000


@dataclass(frozen=True)
class SegmentStatistics:
    """Aggregated statistics of a segmented customer table (small; lives on the driver).

    ``segments``: one row per segment, sorted by segment number, with columns
    ``segment, size, share, revenue, revenue_share`` and, per feature ``f``,
    ``f_median, f_mean, f_std`` (``std`` is the sample standard deviation,
    NaN for a one-customer segment).

    ``population``: one row per feature (the index), over all customers
    including noise, with columns ``q20, q40, q60, q80`` (quintile cut points),
    ``median, mean, std, min, max`` and ``count`` (non-null values).
    """

    segments: pd.DataFrame
    population: pd.DataFrame
    features: tuple[str, ...]
    n_customers: int
    total_revenue: float
    segment_col: str = "segment"
    spend_col: str | None = "total_spend"


def _check_features(
    features: Sequence[str], columns: Sequence[str], segment_col: str, spend_col: str | None
) -> tuple[str, ...]:
    feats = tuple(features)
    if not feats:
        raise InputDataError("features must name at least one column, got none")
    duplicates = sorted({f for f in feats if feats.count(f) > 1})
    if duplicates:
        raise InputDataError(f"features must be distinct, got duplicates {duplicates}")
    wanted = [segment_col, *feats] + ([spend_col] if spend_col else [])
    missing = [c for c in dict.fromkeys(wanted) if c not in columns]
    if missing:
        raise InputDataError(
            f"customer table lacks column(s) {missing}; it has {sorted(map(str, columns))}"
        )
    if segment_col in feats:
        raise InputDataError(f"the segment column {segment_col!r} cannot also be a feature")
    return feats


def _finish(
    segments: pd.DataFrame,
    population: pd.DataFrame,
    features: tuple[str, ...],
    segment_col: str,
    spend_col: str | None,
) -> SegmentStatistics:
    """Shares, ordering and dtypes: the part both paths have in common.

    ``segments`` arrives with ``segment, size, revenue`` and the per-feature
    columns; ``population`` with the :data:`POPULATION_COLUMNS`.
    """
    segments = segments.sort_values("segment", kind="stable").reset_index(drop=True)
    segments["segment"] = segments["segment"].astype("int64")
    segments["size"] = segments["size"].astype("int64")
    n_customers = int(segments["size"].sum())
    total_revenue = float(segments["revenue"].sum()) if spend_col else float("nan")
    segments["share"] = segments["size"] / n_customers if n_customers else np.nan
    if spend_col is None:
        segments["revenue"] = np.nan
        segments["revenue_share"] = np.nan
    else:
        # All-zero (or net-zero) revenue has no meaningful split: report zero shares.
        segments["revenue_share"] = segments["revenue"] / total_revenue if total_revenue else 0.0
    feature_cols = [f"{f}_{s}" for f in features for s in ("median", "mean", "std")]
    segments = segments[["segment", "size", "share", "revenue", "revenue_share", *feature_cols]]
    segments[feature_cols] = segments[feature_cols].astype("float64")
    population = population.loc[list(features), list(POPULATION_COLUMNS)].astype("float64")
    population["count"] = population["count"].astype("int64")
    population.index.name = "feature"
    return SegmentStatistics(
        segments=segments,
        population=population,
        features=features,
        n_customers=n_customers,
        total_revenue=total_revenue,
        segment_col=segment_col,
        spend_col=spend_col,
    )


# --------------------------------------------------------------------------- Spark


def _null_message(segment_col: str, n: int) -> str:
    return (
        f"segment column {segment_col!r} has {n} null value(s); "
        "label every customer (-1 for noise) before profiling"
    )


# whole: one Spark job: the checks, the table of aggregates, one rollup and the unpacking of its
# rows
def segment_statistics(
    df: DataFrame,
    features: Sequence[str],
    segment_col: str = "segment",
    spend_col: str | None = "total_spend",
    accuracy: int = DEFAULT_ACCURACY,
) -> SegmentStatistics:
    """Per-segment and population statistics of a Spark customer table, in one aggregation.

    ``df`` holds one row per customer; ``features`` are numeric columns;
    ``spend_col`` (None to skip revenue) gives each customer's revenue.
    Medians and cut points use ``percentile_approx`` with ``accuracy``
    (relative rank error ``1 / accuracy``; exact on small data).
    """
    # lazy: pyspark stays out of import custseg.profile (the dashboard and report use it without
    # Spark)
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    feats = _check_features(features, df.columns, segment_col, spend_col)
    if accuracy < 1:
        raise InputDataError(f"accuracy must be >= 1, got {accuracy}")
    types = {field.name: field.dataType for field in df.schema.fields}
    not_numeric = [
        c
        for c in (*feats, *([spend_col] if spend_col else []))
        if not isinstance(types[c], NumericType)
    ]
    if not_numeric:
        raise InputDataError(
            "feature column(s) must be numeric: "
            + ", ".join(f"{c} is {types[c].simpleString()}" for c in not_numeric)
        )

    label = "__custseg_segment"
    needed = list(dict.fromkeys([*feats, *([spend_col] if spend_col else [])]))
    base = df.select(F.col(segment_col).cast("long").alias(label), *needed)
    aggs: list[Any] = [
        F.grouping(label).alias("_total"),
        F.count(F.lit(1)).alias("size"),
        (F.sum(F.col(spend_col).cast("double")) if spend_col else F.lit(None).cast("double")).alias(
            "revenue"
        ),
    ]
    for i, f in enumerate(feats):
        x = F.col(f).cast("double")
        aggs += [
            F.percentile_approx(x, list(_LEVELS), accuracy).alias(f"_q{i}"),
            F.avg(x).alias(f"_mean{i}"),
            F.stddev_samp(x).alias(f"_std{i}"),
            F.min(x).alias(f"_min{i}"),
            F.max(x).alias(f"_max{i}"),
            F.count(x).alias(f"_count{i}"),
        ]
    # rollup = grouping sets ((segment), ()): segment rows and the all-customer row in one job.
    rows = base.rollup(label).agg(*aggs).withColumnRenamed(label, "segment").collect()

    segment_records: list[dict[str, Any]] = []
    population_records: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["_total"]:
            if row["size"] == 0:
                raise InputDataError("customer table is empty: nothing to profile")
            for i, f in enumerate(feats):
                quantiles = row[f"_q{i}"] or [None] * len(_LEVELS)
                record = {name: _num(q) for name, q in zip(_LEVEL_NAMES, quantiles, strict=True)}
                record.update(
                    mean=_num(row[f"_mean{i}"]),
                    std=_num(row[f"_std{i}"]),
                    min=_num(row[f"_min{i}"]),
                    max=_num(row[f"_max{i}"]),
                    count=float(row[f"_count{i}"]),
                )
                population_records[f] = record
            continue
        if row["segment"] is None:
            raise InputDataError(_null_message(segment_col, int(row["size"])))
        record = {
            "segment": int(row["segment"]),
            "size": int(row["size"]),
            "revenue": _num(row["revenue"]),
        }
        for i, f in enumerate(feats):
            quantiles = row[f"_q{i}"]
            record[f"{f}_median"] = (
                _num(quantiles[_LEVEL_NAMES.index("median")]) if quantiles else np.nan
            )
            record[f"{f}_mean"] = _num(row[f"_mean{i}"])
            record[f"{f}_std"] = _num(row[f"_std{i}"])
        segment_records.append(record)
    if not population_records:
        raise InputDataError("customer table is empty: nothing to profile")

    segments = pd.DataFrame.from_records(segment_records)
    if spend_col:
        segments["revenue"] = segments["revenue"].fillna(0.0)
    population = pd.DataFrame.from_dict(population_records, orient="index")
    return _finish(segments, population, feats, segment_col, spend_col)


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


# --------------------------------------------------------------------------- pandas


def _quantiles(values: pd.Series, levels: Sequence[float]) -> np.ndarray:
    """Exact inverted-CDF quantiles of the non-null values (NaN when there are none)."""
    x = pd.to_numeric(values, errors="raise").dropna().to_numpy(dtype="float64")
    if x.size == 0:
        return np.full(len(levels), np.nan)
    return np.quantile(x, list(levels), method="inverted_cdf")


def segment_statistics_pandas(
    pdf: pd.DataFrame,
    features: Sequence[str],
    segment_col: str = "segment",
    spend_col: str | None = "total_spend",
) -> SegmentStatistics:
    """The same statistics as :func:`segment_statistics`, from a pandas frame, with exact
    quantiles."""
    feats = _check_features(features, list(pdf.columns), segment_col, spend_col)
    if pdf.empty:
        raise InputDataError("customer table is empty: nothing to profile")
    numeric_cols = list(dict.fromkeys([*feats, *([spend_col] if spend_col else [])]))
    not_numeric = [c for c in numeric_cols if not pd.api.types.is_numeric_dtype(pdf[c])]
    if not_numeric:
        raise InputDataError(
            "feature column(s) must be numeric: "
            + ", ".join(f"{c} is {pdf[c].dtype}" for c in not_numeric)
        )
    nulls = int(pdf[segment_col].isna().sum())
    if nulls:
        raise InputDataError(_null_message(segment_col, nulls))

    data = pdf[numeric_cols].astype("float64")
    labels = pdf[segment_col].astype("int64")
    median_at = _LEVEL_NAMES.index("median")
    segment_records: list[dict[str, Any]] = []
    for segment, part in data.groupby(labels, sort=True):
        record: dict[str, Any] = {
            "segment": int(segment),
            "size": len(part),
            "revenue": float(part[spend_col].sum()) if spend_col else np.nan,
        }
        for f in feats:
            record[f"{f}_median"] = _quantiles(part[f], _LEVELS)[median_at]
            record[f"{f}_mean"] = part[f].mean()
            record[f"{f}_std"] = part[f].std(ddof=1)
        segment_records.append(record)

    population_records: dict[str, dict[str, float]] = {}
    for f in feats:
        column = data[f]
        record = dict(zip(_LEVEL_NAMES, _quantiles(column, _LEVELS).tolist(), strict=True))
        record.update(
            mean=column.mean(),
            std=column.std(ddof=1),
            min=column.min(),
            max=column.max(),
            count=float(column.count()),
        )
        population_records[f] = record
    segments = pd.DataFrame.from_records(segment_records)
    population = pd.DataFrame.from_dict(population_records, orient="index")
    return _finish(segments, population, feats, segment_col, spend_col)


# --------------------------------------------------------------------------- typical gap

#: The columns the typical gap between orders is measured from (the gold customer_features'
#: first and last purchase and order count).
GAP_COLUMNS = ("first_purchase", "last_purchase", "num_orders")


def typical_gap_days(df: DataFrame, accuracy: int = DEFAULT_ACCURACY) -> float:
    """The population's typical gap between orders, in days: the median over customers with
    at least two orders of (last purchase - first purchase) / (orders - 1). NaN when no
    customer bought twice or the table lacks the columns."""
    # lazy: pyspark stays out of import custseg.profile (the dashboard and report use it without
    # Spark)
    from pyspark.sql import functions as F

    if not set(GAP_COLUMNS) <= set(df.columns):
        return float("nan")
    seconds = F.unix_timestamp("last_purchase") - F.unix_timestamp("first_purchase")
    gap = (seconds / 86_400.0) / (F.col("num_orders") - 1)
    row = df.where(F.col("num_orders") >= 2).agg(F.percentile_approx(gap, 0.5, accuracy)).first()
    return _num(row[0]) if row is not None else float("nan")


def typical_gap_days_pandas(pdf: pd.DataFrame) -> float:
    """:func:`typical_gap_days` on a pandas frame (exact inverted-CDF median)."""
    if not set(GAP_COLUMNS) <= set(pdf.columns):
        return float("nan")
    repeat = pdf[pdf["num_orders"] >= 2]
    days = (
        pd.to_datetime(repeat["last_purchase"]) - pd.to_datetime(repeat["first_purchase"])
    ).dt.total_seconds() / 86_400.0
    return float(_quantiles(days / (repeat["num_orders"] - 1), [0.5])[0])
