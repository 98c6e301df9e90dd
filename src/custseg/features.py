"""silver -> gold ``customer_features``: one row per customer.

Features: units purchased and total spend (net of returns: a return's
quantity and spend are negative), tenure (days from the first valid_from or
first purchase, whichever is earlier, to the as-of date), recency (days from
the last purchase), loyalty segment, number of orders (orders with at least
one purchase line; an order of returns only is not one), average order value
(net spend / orders), product and category diversity (distinct products and
categories bought). The as-of date is the latest order unless configured.

Beside them, not clustered: gross spend (purchases only), returned value and
returned share (of gross), first and last purchase. A feature the input cannot
give (no product ids, no categories, no loyalty tiers) is null for everyone:
"not available", never 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pandas as pd

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

# Per-customer values beside the clustering features: what the profiles and the value views show.
VALUE_COLUMNS = [
    "gross_spend",
    "returned_value",
    "returned_share",
    "first_purchase",
    "last_purchase",
]

SECONDS_PER_DAY = 86_400.0
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class FeatureResult:
    features: DataFrame
    as_of: datetime
    customers_total: int
    customers_without_orders: int
    included_without_orders: bool


def resolve_as_of(orders: DataFrame, as_of: date | None) -> datetime:
    """The configured as-of date (end of that day, UTC), else the latest order's timestamp."""
    # lazy: pyspark stays out of the dashboard and the report (they read FEATURE_COLUMNS)
    import pyspark.sql.functions as F

    if as_of is not None:
        return datetime(as_of.year, as_of.month, as_of.day, 23, 59, 59, tzinfo=timezone.utc)
    # Epoch microseconds, not a collected timestamp: PySpark would turn that into this machine's
    # local time, and the as-of date would move with the machine's time zone.
    latest = orders.agg(F.max(F.unix_micros("order_ts")).alias("latest")).collect()[0]["latest"]
    if latest is None:
        raise InputDataError(
            "no valid orders found: the silver orders table is empty, so there is nothing to "
            "segment"
        )
    return EPOCH + timedelta(microseconds=latest)


# whole: one Spark aggregation plan; the feature columns are a table of expressions over the same
# joined frame
def build_features(
    customers: DataFrame,
    orders: DataFrame,
    order_lines: DataFrame,
    as_of: date | None = None,
    include_customers_without_orders: bool = False,
) -> FeatureResult:
    """Per-customer features; customers without orders are counted and left out unless asked for."""
    # lazy: pyspark stays out of the dashboard and the report (they read FEATURE_COLUMNS)
    import pyspark.sql.functions as F

    as_of_ts = resolve_as_of(orders, as_of)
    # Aware, so PySpark converts it as UTC whatever the machine's time zone.
    as_of_col = F.lit(as_of_ts).cast("timestamp")
    # Orders after the as-of date are not yet known at that date.
    orders = orders.where(F.col("order_ts") <= as_of_col)
    order_lines = order_lines.where(F.col("order_ts") <= as_of_col)

    available = _available(customers, order_lines)
    purchase = ~F.col("is_return")
    per_order = (
        orders.where(F.col("purchase_lines") > 0)
        .groupBy("customer_id")
        .agg(
            F.count(F.lit(1)).alias("num_orders"),
            F.min("order_ts").alias("first_order"),
            F.max("order_ts").alias("last_order"),
        )
    )
    per_line = order_lines.groupBy("customer_id").agg(
        F.sum("qty").alias("units_purchased"),
        F.sum("spend").alias("total_spend"),
        F.sum(F.when(purchase, F.col("spend")).otherwise(0.0)).alias("gross_spend"),
        F.sum(F.when(~purchase, -F.col("spend")).otherwise(0.0)).alias("returned_value"),
        F.countDistinct(F.when(purchase, F.col("product_id"))).alias("product_diversity"),
        F.countDistinct(F.when(purchase, F.col("product_category"))).alias("category_diversity"),
    )
    base = customers.select("customer_id", "first_valid_from", "loyalty_segment")
    joined = base.join(per_order, "customer_id", "left").join(per_line, "customer_id", "left")

    def days(later, earlier):
        return (F.unix_timestamp(later) - F.unix_timestamp(earlier)) / SECONDS_PER_DAY

    def optional(name: str, value):
        return (value if available[name] else F.lit(None)).cast("double").alias(name)

    start = F.least("first_valid_from", "first_order")
    gross = F.coalesce("gross_spend", F.lit(0.0))
    features = joined.select(
        "customer_id",
        F.coalesce("units_purchased", F.lit(0.0)).cast("double").alias("units_purchased"),
        F.coalesce("total_spend", F.lit(0.0)).cast("double").alias("total_spend"),
        F.greatest(days(as_of_col, start), F.lit(0.0)).alias("tenure_days"),
        # A customer who never bought has been silent for their whole tenure.
        F.greatest(days(as_of_col, F.coalesce("last_order", start)), F.lit(0.0)).alias(
            "recency_days"
        ),
        optional("loyalty_segment", F.coalesce("loyalty_segment", F.lit(0))),
        F.coalesce("num_orders", F.lit(0)).cast("double").alias("num_orders"),
        F.coalesce(F.col("total_spend") / F.col("num_orders"), F.lit(0.0)).alias("avg_order_value"),
        optional("product_diversity", F.coalesce("product_diversity", F.lit(0))),
        optional("category_diversity", F.coalesce("category_diversity", F.lit(0))),
        gross.cast("double").alias("gross_spend"),
        F.coalesce("returned_value", F.lit(0.0)).cast("double").alias("returned_value"),
        # Of gross: undefined for a customer seen only returning.
        F.when(gross > 0, F.coalesce("returned_value", F.lit(0.0)) / gross).alias("returned_share"),
        F.col("first_order").alias("first_purchase"),
        F.col("last_order").alias("last_purchase"),
        F.col("num_orders").isNotNull().alias("has_orders"),
    )
    counts = features.agg(
        F.count(F.lit(1)).alias("total"),
        F.sum(F.when(~F.col("has_orders"), 1).otherwise(0)).alias("without"),
    ).collect()[0]
    total, without = int(counts["total"]), int(counts["without"] or 0)
    if not include_customers_without_orders:
        features = features.where(F.col("has_orders"))
    features = features.withColumn("as_of", as_of_col)
    return FeatureResult(features, as_of_ts, total, without, include_customers_without_orders)


def _available(customers: DataFrame, order_lines: DataFrame) -> dict[str, bool]:
    """Which optional features the input can give: any product id, any category, any loyalty
    tier."""
    # lazy: pyspark stays out of the dashboard and the report (they read FEATURE_COLUMNS)
    import pyspark.sql.functions as F

    lines = order_lines.agg(
        F.max(F.col("product_id").isNotNull()).alias("product_diversity"),
        F.max(F.col("product_category").isNotNull()).alias("category_diversity"),
    ).collect()[0]
    loyalty = customers.agg(F.max(F.col("loyalty_segment").isNotNull()).alias("v")).collect()[0][
        "v"
    ]
    return {
        "product_diversity": bool(lines["product_diversity"]),
        "category_diversity": bool(lines["category_diversity"]),
        "loyalty_segment": bool(loyalty),
    }


def feature_report(features: DataFrame) -> pd.DataFrame:
    """Per-feature summary (count, mean, std, min, quartiles, max), in one pass over the table.

    It also carries the correlation of log units purchased with the loyalty
    segment: in retail-org the loyalty segment is assigned from units
    thresholds, so the two are near-functions of each other and count one
    behaviour twice in clustering; ``feature_notes`` says so in words.
    """
    # lazy: pyspark stays out of the dashboard and the report (they read FEATURE_COLUMNS)
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
    exprs.append(
        F.corr(F.log1p("units_purchased"), F.col("loyalty_segment")).alias("units_loyalty_corr")
    )
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
        if rec.count == 0:
            notes.append(
                f"{rec.feature} is not available in this input; it is left out of clustering and "
                "profiles"
            )
        elif rec.count > 0 and (rec.std is None or rec.std != rec.std or rec.std == 0):
            notes.append(
                f"{rec.feature} has no variance (every customer has {rec.min:g}); it is left out "
                "of clustering"
            )
    corr = report.attrs.get("units_loyalty_corr")
    customers = int(report["count"].max()) if len(report) else 0
    if customers < MIN_CUSTOMERS_FOR_CORRELATION:
        return notes
    if corr is not None and corr == corr and abs(corr) >= NEAR_FUNCTION_CORRELATION:
        notes.append(
            "units_purchased and loyalty_segment are near-functions of each other (correlation of "
            f"log units with loyalty {corr:.2f}): loyalty tiers are assigned from units, so "
            "together they weigh purchase volume twice"
        )
    elif corr is not None and corr == corr:
        notes.append(f"correlation of log units purchased with loyalty segment: {corr:.2f}")
    return notes
