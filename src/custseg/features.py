"""silver -> gold ``customer_features``: one row per customer.

Features (the seed analysis's): units purchased (sum of ordered quantities),
total spend (sum of price x qty), tenure (days from the first valid_from or
first order, whichever is earlier, to the as-of date), recency (days from the
last order to the as-of date), loyalty segment, number of orders, average
order value, product diversity (distinct products), category diversity
(distinct categories). The as-of date is the latest order unless configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from custseg.errors import InputDataError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

FEATURE_COLUMNS = [
    "units_purchased",
    "total_spend",
    "tenure_days",
    "recency_days",
    "loyalty_segment",
    "num_orders",
    "avg_order_value",
    "product_diversity",
    "category_diversity",
]

SECONDS_PER_DAY = 86_400.0


@dataclass
class FeatureResult:
    features: DataFrame
    as_of: datetime
    customers_total: int
    customers_without_orders: int
    included_without_orders: bool


def resolve_as_of(orders: DataFrame, as_of: date | None) -> datetime:
    """The configured as-of date (end of that day, UTC), else the latest order's timestamp."""
    import pyspark.sql.functions as F

    if as_of is not None:
        return datetime(as_of.year, as_of.month, as_of.day, 23, 59, 59, tzinfo=timezone.utc)
    latest = orders.agg(F.max("order_ts").alias("latest")).collect()[0]["latest"]
    if latest is None:
        raise InputDataError("no valid orders found: the silver orders table is empty, so there is nothing to segment")
    return latest.replace(tzinfo=timezone.utc) if latest.tzinfo is None else latest


def build_features(
    customers: DataFrame,
    orders: DataFrame,
    order_lines: DataFrame,
    as_of: date | None = None,
    include_customers_without_orders: bool = False,
) -> FeatureResult:
    """Per-customer features; customers without orders are counted and left out unless asked for."""
    import pyspark.sql.functions as F

    as_of_ts = resolve_as_of(orders, as_of)
    as_of_col = F.lit(as_of_ts.replace(tzinfo=None)).cast("timestamp")
    # Orders after the as-of date are not yet known at that date.
    orders = orders.where(F.col("order_ts") <= as_of_col)
    order_lines = order_lines.where(F.col("order_ts") <= as_of_col)

    per_order = orders.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("num_orders"),
        F.min("order_ts").alias("first_order"),
        F.max("order_ts").alias("last_order"),
    )
    per_line = order_lines.groupBy("customer_id").agg(
        F.sum("qty").alias("units_purchased"),
        F.sum("spend").alias("total_spend"),
        F.countDistinct("product_id").alias("product_diversity"),
        F.countDistinct("product_category").alias("category_diversity"),
    )
    base = customers.select("customer_id", "first_valid_from", "loyalty_segment")
    joined = base.join(per_order, "customer_id", "left").join(per_line, "customer_id", "left")

    def days(later, earlier):
        return (F.unix_timestamp(later) - F.unix_timestamp(earlier)) / SECONDS_PER_DAY

    start = F.least("first_valid_from", "first_order")
    features = joined.select(
        "customer_id",
        F.coalesce("units_purchased", F.lit(0.0)).cast("double").alias("units_purchased"),
        F.coalesce("total_spend", F.lit(0.0)).cast("double").alias("total_spend"),
        F.greatest(days(as_of_col, start), F.lit(0.0)).alias("tenure_days"),
        # A customer who never ordered has been silent for their whole tenure.
        F.greatest(days(as_of_col, F.coalesce("last_order", start)), F.lit(0.0)).alias("recency_days"),
        F.coalesce("loyalty_segment", F.lit(0)).cast("double").alias("loyalty_segment"),
        F.coalesce("num_orders", F.lit(0)).cast("double").alias("num_orders"),
        F.coalesce(F.col("total_spend") / F.col("num_orders"), F.lit(0.0)).alias("avg_order_value"),
        F.coalesce("product_diversity", F.lit(0)).cast("double").alias("product_diversity"),
        F.coalesce("category_diversity", F.lit(0)).cast("double").alias("category_diversity"),
        F.col("num_orders").isNotNull().alias("has_orders"),
    )
    counts = features.agg(
        F.count(F.lit(1)).alias("total"), F.sum(F.when(~F.col("has_orders"), 1).otherwise(0)).alias("without")
    ).collect()[0]
    total, without = int(counts["total"]), int(counts["without"] or 0)
    if not include_customers_without_orders:
        features = features.where(F.col("has_orders"))
    features = features.withColumn("as_of", as_of_col)
    return FeatureResult(features, as_of_ts, total, without, include_customers_without_orders)


def feature_report(features: DataFrame) -> pd.DataFrame:
    """Per-feature summary (count, mean, std, min, quartiles, max), in one pass over the table.

    It also carries the correlation of log units purchased with the loyalty
    segment: in retail-org the loyalty segment is assigned from units
    thresholds, so the two are near-functions of each other and count one
    behaviour twice in clustering; ``feature_notes`` says so in words.
    """
    import pandas as pd
    import pyspark.sql.functions as F

    exprs = []
    for name in FEATURE_COLUMNS:
        col = F.col(name)
        exprs += [
            F.count(col).alias(f"{name}__count"),
            F.mean(col).alias(f"{name}__mean"),
            F.stddev_samp(col).alias(f"{name}__std"),
            F.min(col).alias(f"{name}__min"),
            F.percentile_approx(col, [0.25, 0.5, 0.75], 10_000).alias(f"{name}__q"),
            F.max(col).alias(f"{name}__max"),
        ]
    exprs.append(F.corr(F.log1p("units_purchased"), F.col("loyalty_segment")).alias("units_loyalty_corr"))
    row = features.agg(*exprs).collect()[0].asDict()
    records = []
    for name in FEATURE_COLUMNS:
        q = row[f"{name}__q"] or [None, None, None]
        records.append(
            {
                "feature": name,
                "count": int(row[f"{name}__count"]),
                "mean": row[f"{name}__mean"],
                "std": row[f"{name}__std"],
                "min": row[f"{name}__min"],
                "p25": q[0],
                "median": q[1],
                "p75": q[2],
                "max": row[f"{name}__max"],
            }
        )
    report = pd.DataFrame.from_records(records)
    report.attrs["units_loyalty_corr"] = row["units_loyalty_corr"]
    return report


NEAR_FUNCTION_CORRELATION = 0.9
MIN_CUSTOMERS_FOR_CORRELATION = 20  # below this a correlation says nothing


def feature_notes(report: pd.DataFrame) -> list[str]:
    """Plain-language warnings about the feature table."""
    notes = []
    for rec in report.itertuples():
        if rec.count > 0 and (rec.std is None or rec.std != rec.std or rec.std == 0):
            notes.append(f"{rec.feature} has no variance (every customer has {rec.min:g}); it is left out of clustering")
    corr = report.attrs.get("units_loyalty_corr")
    customers = int(report["count"].max()) if len(report) else 0
    if customers < MIN_CUSTOMERS_FOR_CORRELATION:
        return notes
    if corr is not None and corr == corr and abs(corr) >= NEAR_FUNCTION_CORRELATION:
        notes.append(
            f"units_purchased and loyalty_segment are near-functions of each other "
            f"(correlation of log units with loyalty {corr:.2f}): loyalty tiers are assigned from units, "
            f"so together they weigh purchase volume twice"
        )
    elif corr is not None and corr == corr:
        notes.append(f"correlation of log units purchased with loyalty segment: {corr:.2f}")
    return notes
