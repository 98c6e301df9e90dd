"""Segments and value together: each segment's customers, past revenue, expected value and
probability alive, ranked by expected value.

Every segment is a row, the unassigned group (noise) too: a group that carries the value is
never hidden. Customers left without a lifetime value (repeat buyers whose purchases net to
nothing or less, see ``custseg.value.model``) are counted in ``customers_unvalued``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SEGMENT_VALUE_COLUMNS = [
    "segment",
    "segment_name",
    "customers",
    "revenue",
    "revenue_share",
    "lifetime_value",
    "lifetime_value_share",
    "lifetime_value_per_customer",
    "expected_purchases_per_customer",
    "probability_alive_mean",
    "customers_unvalued",
    "top_rfm_segment",
    "top_rfm_segment_share",
    "value_rank",
]


def value_by_segment(
    segments: DataFrame, features: DataFrame, customer_value: DataFrame, rfm: DataFrame | None
) -> pd.DataFrame:
    """One row per segment of gold.customer_segments, in SEGMENT_VALUE_COLUMNS order; revenue
    is the feature table's total_spend (net of returns), as in the segment profiles."""
    # lazy: pyspark stays out of `import custseg.value` (the dashboard reads the results)
    import pyspark.sql.functions as F

    spend = features.select("customer_id", "total_spend")
    members = segments.select("customer_id", "segment", "segment_name")
    joined = members.join(spend, "customer_id", "left").join(
        customer_value.select(
            "customer_id", "expected_purchases", "probability_alive", "lifetime_value"
        ),
        "customer_id",
        "left",
    )
    frame = (
        joined.groupBy("segment", "segment_name")
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.sum("total_spend").alias("revenue"),
            F.sum("lifetime_value").alias("lifetime_value"),
            F.avg("expected_purchases").alias("expected_purchases_per_customer"),
            F.avg("probability_alive").alias("probability_alive_mean"),
            F.sum(F.col("lifetime_value").isNull().cast("long")).alias("customers_unvalued"),
        )
        .toPandas()
    )
    frame["lifetime_value"] = frame["lifetime_value"].fillna(0.0)
    valued = frame["customers"] - frame["customers_unvalued"]
    frame["lifetime_value_per_customer"] = (frame["lifetime_value"] / valued).where(valued > 0)
    frame["revenue_share"] = _share(frame["revenue"])
    frame["lifetime_value_share"] = _share(frame["lifetime_value"])
    frame = frame.join(_top_rfm_segment(segments, rfm), on="segment")
    # Rank 1 = the most expected value; ties keep the segment order.
    frame = frame.sort_values(["lifetime_value", "segment"], ascending=[False, True])
    frame["value_rank"] = range(1, len(frame) + 1)
    return frame.sort_values("segment")[SEGMENT_VALUE_COLUMNS].reset_index(drop=True)


def _share(column: pd.Series) -> pd.Series:
    total = column.sum()
    return column / total if total > 0 else column * float("nan")


def _top_rfm_segment(segments: DataFrame, rfm: DataFrame | None) -> pd.DataFrame:
    """Each segment's most common named RFM segment and its share of the segment's customers."""
    columns = ["top_rfm_segment", "top_rfm_segment_share"]
    if rfm is None:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="segment"))
    counts = (
        segments.select("customer_id", "segment")
        .join(rfm.select("customer_id", "rfm_segment"), "customer_id", "left")
        .groupBy("segment", "rfm_segment")
        .count()
        .toPandas()
    )
    counts["share"] = counts["count"] / counts.groupby("segment")["count"].transform("sum")
    top = counts.sort_values(["segment", "count", "rfm_segment"], ascending=[True, False, True])
    top = top.drop_duplicates("segment").set_index("segment")
    return top.rename(columns={"rfm_segment": columns[0], "share": columns[1]})[columns]
