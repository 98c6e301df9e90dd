"""RFM scores and the named RFM segments, computed on Spark.

The convention of common RFM practice: R from recency in days since the last purchase at the
as-of date (more recent = higher score), F from the number of orders, M from total spend.
The defaults read those columns of ``customer_features`` (recency_days, num_orders,
total_spend), so RFM and the clusters describe the same customers.

Score (1..bins) of a customer among n customers: 1 + floor(bins * (rank - 1) / n), where rank
is the customer's place when sorted from worst to best with tied values sharing the lowest
place of their group (pandas' ``rank(method="min")``, Spark's ``rank()``). Tied customers get
one score, the score of the first of them, so half the customers with one order all get F = 1;
with fewer customers than bins some scores are skipped (3 customers get 1, 2 and 4).

Segments (5 bins only; with other bins ``segment`` is null and only scores are given): the
R-versus-F grid of the regex ``seg_map`` that many public RFM notebooks use, with the F axis
replaced by FM = the mean of F and M rounded half up, as in the R-versus-FM charts of RFM
tools (Putler's among them), and its bottom-left cell split into Hibernating (R = 2) and Lost
(R = 1). ``SEGMENT_RULES`` holds the whole map; the rules tile the grid, so every (R, F, M)
has exactly one segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from custseg.errors import ConfigError
from custseg.value.summary import require_columns

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame

SEGMENT_BINS = 5


@dataclass(frozen=True)
class SegmentRule:
    """One cell range of the R x FM grid (bounds inclusive), with its meaning and action."""

    name: str
    r: tuple[int, int]
    fm: tuple[int, int]
    description: str
    action: str

    def matches(self, r: int, fm: int) -> bool:
        return self.r[0] <= r <= self.r[1] and self.fm[0] <= fm <= self.fm[1]


# First match wins; the ranges do not overlap, so the order only sets the report's order.
SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule(
        "Champions",
        (5, 5),
        (4, 5),
        "bought recently, often and for the most",
        "reward them; early access, ask for reviews and referrals",
    ),
    SegmentRule(
        "Loyal customers",
        (3, 4),
        (4, 5),
        "buy often and spend well, fairly recently",
        "upsell higher-value products; loyalty programme",
    ),
    SegmentRule(
        "Potential loyalists",
        (4, 5),
        (2, 3),
        "recent customers with average frequency and spend",
        "offer membership or loyalty perks; recommend related products",
    ),
    SegmentRule(
        "New customers",
        (5, 5),
        (1, 1),
        "bought very recently, once or for little",
        "onboarding; build the relationship early",
    ),
    SegmentRule(
        "Promising",
        (4, 4),
        (1, 1),
        "recent shoppers who have not bought much yet",
        "build brand awareness; free trials",
    ),
    SegmentRule(
        "Need attention",
        (3, 3),
        (3, 3),
        "middling recency, frequency and spend",
        "limited-time offers based on past purchases; reactivate",
    ),
    SegmentRule(
        "About to sleep",
        (3, 3),
        (1, 2),
        "below-average recency, frequency and spend",
        "share popular products and discounts; reconnect before they lapse",
    ),
    SegmentRule(
        "At risk",
        (1, 2),
        (3, 4),
        "bought often and spent well, but long ago",
        "personalised win-back messages; renewals and helpful resources",
    ),
    SegmentRule(
        "Can't lose them",
        (1, 2),
        (5, 5),
        "were among the best, have not come back",
        "win them back with new products and renewals; talk to them",
    ),
    SegmentRule(
        "Hibernating",
        (2, 2),
        (1, 2),
        "last bought long ago, seldom and for little",
        "offer other relevant products and special discounts",
    ),
    SegmentRule(
        "Lost",
        (1, 1),
        (1, 2),
        "lowest recency, frequency and spend",
        "revive interest with an outreach campaign, else ignore",
    ),
)
SEGMENT_NAMES = [rule.name for rule in SEGMENT_RULES]
RFM_COLUMNS = ["r_score", "f_score", "m_score", "fm_score", "rfm_segment"]


def fm_score(f: int, m: int) -> int:
    """The mean of F and M rounded half up (F = 2, M = 3 gives 3)."""
    return (f + m + 1) // 2


def segment_of(r: int, f: int, m: int) -> str:
    """The named segment of one (R, F, M) of 5-bin scores: the first rule that matches."""
    fm = fm_score(f, m)
    for rule in SEGMENT_RULES:
        if rule.matches(r, fm):
            return rule.name
    raise ConfigError(f"no RFM segment for R={r}, F={f}, M={m}: scores must be 1..5")


def _score(column: str, bins: int, ascending: bool, group_col: str | None) -> Column:
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path
    from pyspark.sql import Window  # lazy: pyspark stays out of the single-node path

    # Without a group the window holds every customer in one partition: exact ranks need one
    # sorted sequence; it sorts one row of a few numbers per customer.
    partition = [group_col] if group_col else []
    order = F.col(column).asc() if ascending else F.col(column).desc()
    place = F.rank().over(Window.partitionBy(*partition).orderBy(order))
    n = F.count(F.lit(1)).over(Window.partitionBy(*partition))
    return (F.floor(F.lit(bins) * (place - 1) / n) + 1).cast("int")


def _segment_column(r: Column, fm: Column) -> Column:
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path

    chain = None
    for rule in SEGMENT_RULES:
        cond = r.between(*rule.r) & fm.between(*rule.fm)
        chain = F.when(cond, rule.name) if chain is None else chain.when(cond, rule.name)
    return chain


def rfm_scores(
    customers: DataFrame,
    bins: int = SEGMENT_BINS,
    recency_col: str = "recency_days",
    frequency_col: str = "num_orders",
    monetary_col: str = "total_spend",
    group_col: str | None = None,
) -> DataFrame:
    """``customers`` with r_score, f_score, m_score (1..bins), fm_score and rfm_segment (null
    unless bins = 5).

    ``group_col`` scores customers within each group (a region, a cluster) instead of
    against everyone. Values must be non-null: Spark sorts nulls first, so a null scores 1.
    """
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path

    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ConfigError(f"bins must be an integer >= 2, got {bins!r}")
    needed = [recency_col, frequency_col, monetary_col] + ([group_col] if group_col else [])
    require_columns(customers, needed, "RFM input")
    scored = customers.select(
        "*",
        # More days since the last purchase is worse, so recency sorts descending.
        _score(recency_col, bins, ascending=False, group_col=group_col).alias("r_score"),
        _score(frequency_col, bins, ascending=True, group_col=group_col).alias("f_score"),
        _score(monetary_col, bins, ascending=True, group_col=group_col).alias("m_score"),
    )
    fm = F.floor((F.col("f_score") + F.col("m_score") + 1) / 2).cast("int")
    scored = scored.withColumn("fm_score", fm)
    segment = (
        _segment_column(F.col("r_score"), F.col("fm_score"))
        if bins == SEGMENT_BINS
        else F.lit(None)
    )
    return scored.withColumn("rfm_segment", segment.cast("string"))


def rfm_segment_summary(rfm: DataFrame, monetary_col: str = "total_spend") -> pd.DataFrame:
    """Per named segment, in ``SEGMENT_RULES`` order (empty segments as zero rows): customers,
    customer_share, revenue (sum of ``monetary_col``), revenue_share, mean_r_score,
    mean_f_score, mean_m_score.

    Eleven rows at most reach the driver. revenue_share is NaN when total revenue is <= 0.
    """
    import pandas as pd  # lazy: pandas is only needed for the collected table
    import pyspark.sql.functions as F  # lazy: pyspark stays out of the single-node path

    require_columns(
        rfm, ["r_score", "f_score", "m_score", "rfm_segment", monetary_col], "RFM table"
    )
    grouped = rfm.groupBy("rfm_segment").agg(
        F.count(F.lit(1)).alias("customers"),
        F.sum(monetary_col).cast("double").alias("revenue"),
        F.mean("r_score").alias("mean_r_score"),
        F.mean("f_score").alias("mean_f_score"),
        F.mean("m_score").alias("mean_m_score"),
    )
    table = grouped.toArrow().to_pandas()
    if table["rfm_segment"].isna().any():
        raise ConfigError(
            f"RFM segments are defined for {SEGMENT_BINS} bins only; this table has no segment "
            "(scored with other bins?)"
        )
    table = table.set_index("rfm_segment").reindex(SEGMENT_NAMES)
    table[["customers", "revenue"]] = table[["customers", "revenue"]].fillna(0)
    table["customers"] = table["customers"].astype("int64")
    total_customers, total_revenue = table["customers"].sum(), table["revenue"].sum()
    table.insert(
        1, "customer_share", table["customers"] / total_customers if total_customers else 0.0
    )
    share = table["revenue"] / total_revenue if total_revenue > 0 else float("nan")
    table.insert(3, "revenue_share", share)
    return pd.DataFrame(table).rename_axis("rfm_segment").reset_index()
