"""Calibration and holdout split of the transactions, to check a value model out of sample.

``calibration_and_holdout`` gives what lifetimes' ``calibration_and_holdout_data`` gives: the
summary of the calibration transactions (stamped up to ``calibration_end``) with ``_cal``
names, and per customer the purchase periods and mean transaction value in the holdout
(after ``calibration_end``, up to ``holdout_end``). Only customers seen in calibration are
kept: a model cannot predict a customer it has never seen. ``holdout_by_frequency`` is the
table behind the usual "calibration vs holdout purchases" check.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from custseg.errors import ConfigError
from custseg.value.summary import (
    TRANSACTION_COLUMNS,
    check_period,
    period_column,
    period_of_micros,
    require_columns,
    to_utc_micros,
    transaction_summary,
)

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

HOLDOUT_COLUMNS = [
    "customer_id",
    "frequency_cal",
    "recency_cal",
    "T_cal",
    "monetary_value_cal",
    "frequency_holdout",
    "monetary_value_holdout",
    "duration_holdout",
]


def calibration_and_holdout(
    transactions: DataFrame,
    calibration_end: date | datetime,
    holdout_end: date | datetime,
    period: str = "day",
) -> DataFrame:
    """Per calibration customer: the ``_cal`` summary and the holdout figures.

    As in lifetimes: calibration keeps transactions stamped <= ``calibration_end`` exactly;
    ``frequency_holdout`` counts distinct holdout periods (not minus one: there is no first
    purchase to leave out); ``monetary_value_holdout`` is the mean value per holdout
    transaction (not per period, unlike ``monetary_value_cal``), 0 without holdout purchases;
    ``duration_holdout`` is in periods, between the periods holding the two ends. Unlike
    lifetimes, an empty holdout is not an error (it would cost a Spark job to find out): every
    customer then has frequency_holdout 0.
    """
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path

    check_period(period)
    require_columns(transactions, TRANSACTION_COLUMNS, "transactions")
    cal_micros, hold_micros = to_utc_micros(calibration_end), to_utc_micros(holdout_end)
    if cal_micros >= hold_micros:
        raise ConfigError(
            f"calibration_end ({calibration_end}) must be before holdout_end ({holdout_end})"
        )
    duration = period_of_micros(hold_micros, period) - period_of_micros(cal_micros, period)

    summary = transaction_summary(transactions, calibration_end, period=period, cut="exact")
    calibration = summary.select(
        "customer_id",
        *[F.col(c).alias(f"{c}_cal") for c in ("frequency", "recency", "T", "monetary_value")],
    )
    stamp = F.unix_micros("order_ts")
    holdout = (
        transactions.where((stamp > F.lit(cal_micros)) & (stamp <= F.lit(hold_micros)))
        .groupBy("customer_id")
        .agg(
            F.countDistinct(period_column(F.col("order_ts"), period)).alias("frequency_holdout"),
            F.mean("order_value").alias("monetary_value_holdout"),
        )
    )
    joined = calibration.join(holdout, "customer_id", "left")
    return joined.select(
        *[c for c in joined.columns if not c.endswith("_holdout")],
        F.coalesce("frequency_holdout", F.lit(0)).alias("frequency_holdout"),
        F.coalesce("monetary_value_holdout", F.lit(0.0)).alias("monetary_value_holdout"),
        F.lit(float(duration)).alias("duration_holdout"),
    ).select(*HOLDOUT_COLUMNS)


def holdout_by_frequency(
    cal_holdout: DataFrame, top: int = 7, predicted_col: str | None = None
) -> pd.DataFrame:
    """Mean holdout purchases per calibration frequency 0, 1, ..., ``top`` - 1 and ``top``+.

    Columns: bucket (the lowest frequency_cal in it), label ("0", ..., "7+"), customers,
    actual (mean frequency_holdout) and, when ``predicted_col`` names a column of predicted
    holdout purchases, predicted (its mean). Only buckets holding customers appear; the table
    is at most ``top`` + 1 rows, collected to the driver.
    """
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path

    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top must be an integer >= 1, got {top!r}")
    needed = ["frequency_cal", "frequency_holdout"] + ([predicted_col] if predicted_col else [])
    require_columns(cal_holdout, needed, "calibration and holdout table")
    bucket = F.least(F.col("frequency_cal"), F.lit(top)).cast("long")
    aggregates = [
        F.count(F.lit(1)).alias("customers"),
        F.mean("frequency_holdout").alias("actual"),
    ]
    if predicted_col:
        aggregates.append(F.mean(predicted_col).alias("predicted"))
    grouped = cal_holdout.groupBy(bucket.alias("bucket")).agg(*aggregates).orderBy("bucket")
    table = grouped.toArrow().to_pandas()
    labels = [f"{b}+" if b == top else str(b) for b in table["bucket"]]
    table.insert(1, "label", labels)
    return table
