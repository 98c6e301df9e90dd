"""Transactions -> the per-customer summary the buy-till-you-die models read, computed on Spark.

``transaction_summary`` gives, per customer, the figures lifetimes'
``summary_data_from_transaction_data`` gives (frequency, recency, T, monetary_value), so a
model fitted here can be checked against lifetimes and the literature. Periods are counted
on UTC epoch arithmetic, not on the session time zone, so the result does not depend on
``spark.sql.session.timeZone``:

- day: a period is a UTC calendar day;
- week: a period runs Monday 00:00 to Sunday 23:59:59 UTC, pandas' default weekly period
  (``W-SUN``, weeks named by the Sunday they end on).

Definitions (ages are counted in whole periods between period starts, as lifetimes does):

- frequency: purchase periods after the first one (several orders in one period count once);
- recency: periods from the first purchase period to the last one;
- T: periods from the first purchase period to the period holding ``observation_end``;
- monetary_value: mean over the repeat periods of the value summed within each period,
  0 when frequency is 0.

The grouped inputs of the BG/NBD and Gamma-Gamma fits (``sufficient_statistics``,
``spend_statistics``) are aggregated on the cluster and only the groups reach the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from custseg.errors import ConfigError, InputDataError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame

PERIODS = ("day", "week")
CUTS = ("period", "exact")
SECONDS_PER_DAY = 86_400
MICROS_PER_SECOND = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# 1970-01-01 was a Thursday: the Monday that starts its week is 3 days earlier.
DAYS_BEFORE_EPOCH_TO_MONDAY = 3

TRANSACTION_COLUMNS = ["customer_id", "order_ts", "order_value"]
SUMMARY_COLUMNS = [
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "first_purchase",
    "last_purchase",
]


def transactions_from_orders(orders: DataFrame) -> DataFrame:
    """The purchases the value models see: orders holding at least one purchase line.

    An order of returns only (``purchase_lines`` = 0) is not a purchase, the rule the
    feature ``num_orders`` follows; its negative value stays out of the models' spend.
    """
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path

    require_columns(orders, ["customer_id", "order_ts", "order_value", "purchase_lines"], "orders")
    return orders.where(F.col("purchase_lines") > 0).select(*TRANSACTION_COLUMNS)


def require_columns(frame: DataFrame, columns: list[str], what: str) -> None:
    """Raise InputDataError naming the columns ``frame`` lacks (a schema check, no Spark job)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{what} lacks column(s) {', '.join(missing)}; it has {', '.join(frame.columns)}"
        )


def check_period(period: str) -> None:
    if period not in PERIODS:
        raise ConfigError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")


def to_utc_micros(moment: date | datetime) -> int:
    """Epoch microseconds of a date (its midnight) or datetime; a naive datetime is read as UTC.

    Integer arithmetic: a float of epoch seconds cannot hold every microsecond.
    """
    if not isinstance(moment, datetime):
        if not isinstance(moment, date):
            raise ConfigError(f"expected a date or datetime, got {moment!r}")
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EPOCH) // timedelta(microseconds=1)


def period_of_micros(micros: int, period: str) -> int:
    """The index of the period holding an epoch microsecond (day or W-SUN week since 1970)."""
    day = micros // (SECONDS_PER_DAY * MICROS_PER_SECOND)
    return day if period == "day" else (day + DAYS_BEFORE_EPOCH_TO_MONDAY) // 7


def period_column(ts: Column, period: str) -> Column:
    """The Spark twin of ``period_of_micros`` on a timestamp column."""
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path

    day = F.floor(F.unix_micros(ts) / (SECONDS_PER_DAY * MICROS_PER_SECOND))
    if period == "day":
        return day
    return F.floor((day + DAYS_BEFORE_EPOCH_TO_MONDAY) / 7)


def transaction_summary(
    transactions: DataFrame,
    observation_end: date | datetime,
    period: str = "day",
    cut: str = "period",
) -> DataFrame:
    """Per customer: frequency, recency, T, monetary_value, first_purchase, last_purchase.

    ``cut`` says which transactions after ``observation_end`` are dropped. "period" (the
    default, what lifetimes does) drops those in later periods and keeps the whole period
    holding ``observation_end``: with a date at midnight, that day's orders all count.
    "exact" drops every transaction stamped after ``observation_end`` (lifetimes' calibration
    side does this before summarising). Customers without a kept purchase are absent.
    """
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path
    from pyspark.sql import Window  # lazy: pyspark stays out of the single-node path

    check_period(period)
    if cut not in CUTS:
        raise ConfigError(f"cut must be one of {', '.join(CUTS)}, got {cut!r}")
    require_columns(transactions, TRANSACTION_COLUMNS, "transactions")
    end_micros = to_utc_micros(observation_end)
    end_period = period_of_micros(end_micros, period)

    kept = transactions.withColumn("_period", period_column(F.col("order_ts"), period))
    if cut == "exact":
        kept = kept.where(F.unix_micros("order_ts") <= F.lit(end_micros))
    kept = kept.where(F.col("_period") <= end_period)
    per_period = kept.groupBy("customer_id", "_period").agg(
        F.sum("order_value").alias("_value"),
        F.min("order_ts").alias("_first_ts"),
        F.max("order_ts").alias("_last_ts"),
    )
    # The first period's value is left out of monetary_value: models read repeat spend only.
    first = F.min("_period").over(Window.partitionBy("customer_id"))
    repeat_value = F.when(F.col("_period") != F.col("_first_period"), F.col("_value"))
    summary = (
        per_period.withColumn("_first_period", first)
        .groupBy("customer_id")
        .agg(
            (F.count(F.lit(1)) - 1).alias("frequency"),
            (F.max("_period") - F.min("_period")).cast("double").alias("recency"),
            (F.lit(end_period) - F.min("_period")).cast("double").alias("T"),
            F.coalesce(F.mean(repeat_value), F.lit(0.0)).cast("double").alias("monetary_value"),
            F.min("_first_ts").alias("first_purchase"),
            F.max("_last_ts").alias("last_purchase"),
        )
    )
    return summary.select(*SUMMARY_COLUMNS)


def _collect(frame: DataFrame) -> pd.DataFrame:
    """To pandas through Arrow whatever the session's Arrow setting (also on Spark Connect)."""
    return frame.toArrow().to_pandas()


def sufficient_statistics(summary: DataFrame) -> pd.DataFrame:
    """BG/NBD input: one row per distinct (frequency, recency, T) with ``n_customers``.

    The likelihood only depends on these three figures, so customers sharing them are fitted
    once, weighted by their count. Driver memory: one row of 4 numbers (32 bytes, about twice
    that while Arrow and pandas both hold it) per distinct triple; frequency <= recency <= T,
    so day periods over two years give at most about 65 million triples in theory and, in
    practice, far fewer than customers (a few hundred thousand for millions of customers).
    """
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path

    require_columns(summary, ["frequency", "recency", "T"], "summary")
    grouped = summary.groupBy("frequency", "recency", "T").agg(
        F.count(F.lit(1)).alias("n_customers")
    )
    stats = _collect(grouped.orderBy("frequency", "recency", "T"))
    return stats.reset_index(drop=True)


@dataclass
class SpendStatistics:
    """Gamma-Gamma input and what was left out of it.

    ``table``: (frequency, monetary_value, n_customers) over repeat customers whose
    monetary_value > 0; ``excluded_non_positive``: repeat customers left out because their
    repeat spend is <= 0 (Gamma-Gamma models positive spend only); ``repeat_customers``:
    all customers with frequency > 0.
    """

    table: pd.DataFrame
    excluded_non_positive: int
    repeat_customers: int


def spend_statistics(summary: DataFrame) -> SpendStatistics:
    """Gamma-Gamma input grouped on the cluster, with the count of customers it leaves out.

    Driver memory: one row of 3 numbers (24 bytes, about twice that while Arrow and pandas
    both hold it) per distinct (frequency, monetary_value). Spend is continuous, so this is
    close to one row per repeat customer: about 50 MB per million repeat customers.
    """
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path

    require_columns(summary, ["frequency", "monetary_value"], "summary")
    grouped = (
        summary.where(F.col("frequency") > 0)
        .groupBy("frequency", "monetary_value")
        .agg(F.count(F.lit(1)).alias("n_customers"))
    )
    # One job for both: the non-positive groups are split off on the driver.
    stats = _collect(grouped.orderBy("frequency", "monetary_value"))
    positive = stats["monetary_value"] > 0
    return SpendStatistics(
        table=stats[positive].reset_index(drop=True),
        excluded_non_positive=int(stats.loc[~positive, "n_customers"].sum()),
        repeat_customers=int(stats["n_customers"].sum()),
    )
