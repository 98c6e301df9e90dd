"""Business insights: a few plain sentences about the segments, for the CLI, the report
and the dashboard (revenue leader, largest segment, at-risk and tiny segments, noise)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from custseg.profile.descriptions import capitalise, percent
from custseg.profile.rules import NOISE


def _name(row: Any) -> str:
    return f"segment {int(row.segment)} ({row.archetype})"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# whole: independent sentences in report order, a few lines each, over the same sorted segments
def business_insights(profiles: pd.DataFrame) -> list[str]:
    """A few plain sentences for a report: revenue leader, largest segment, at-risk segments,
    tiny segments to investigate and the noise share. Deterministic: ties go to the lower
    segment."""
    insights: list[str] = []
    ordered = profiles.sort_values("segment", kind="stable")
    segments = ordered[ordered["segment"] != NOISE]
    noise = ordered[ordered["segment"] == NOISE]

    with_revenue = segments[segments["revenue_share"].notna()]
    leader = None
    top_segment_share = with_revenue["revenue_share"].max() if not with_revenue.empty else math.nan
    noise_leads = False
    if not noise.empty and pd.notna(noise.iloc[0]["revenue_share"]):
        row = noise.iloc[0]
        noise_leads = bool(
            row["revenue_share"] > 0 and not (row["revenue_share"] <= top_segment_share)
        )
        if noise_leads:
            insights.append(
                f"The {int(row['size']):,} unassigned customers ({percent(row['share'])} of "
                f"customers) carry {percent(row['revenue_share'])} of revenue, more than any "
                "segment: no segment describes them, so review them one by one (key accounts, "
                "bulk or business buyers, data errors) before acting on the segments"
                + (
                    "; the clustering explains fewer than half the customers."
                    if row["share"] >= 0.5
                    else "."
                )
            )
    if not with_revenue.empty and with_revenue["revenue_share"].max() > 0:
        leader = with_revenue.loc[with_revenue["revenue_share"].idxmax()]
        insights.append(
            f"{capitalise(_name(leader))} carries the most revenue: "
            f"{percent(leader.revenue_share)} of revenue from {percent(leader.share)} of customers."
        )
    if not segments.empty:
        largest = segments.loc[segments["size"].idxmax()]
        if leader is None or int(largest.segment) != int(leader.segment):
            insights.append(
                f"{capitalise(_name(largest))} is the largest segment: {percent(largest.share)} of "
                "customers"
                + (
                    f" and {percent(largest.revenue_share)} of revenue."
                    if pd.notna(largest.revenue_share)
                    else "."
                )
            )

    at_risk = segments[segments["archetype"] == "lapsed / at risk"]
    if at_risk.empty:
        if not segments.empty:
            insights.append("No segment is lapsed or at risk.")
    else:
        parts = [
            f"{_name(r)} with {percent(r.share)} of customers"
            + (f" and {percent(r.revenue_share)} of revenue" if pd.notna(r.revenue_share) else "")
            for r in at_risk.itertuples(index=False)
        ]
        insights.append(f"At risk: {_join(parts)}; plan a win-back campaign.")

    tiny = segments[segments["is_outlier"]]
    if not tiny.empty:
        parts = [
            f"{int(r.segment)} ({r.archetype}, {int(r.size):,} "
            f"customer{'' if int(r.size) == 1 else 's'})"
            for r in tiny.itertuples(index=False)
        ]
        plural = len(parts) > 1
        insights.append(
            f"Investigate tiny segment{'s' if plural else ''} {_join(parts)} before acting: "
            f"{'they' if plural else 'it'} may be data errors or special accounts."
        )

    if not noise.empty and not noise_leads:  # when it leads revenue, the first insight said it all
        row = noise.iloc[0]
        sentence = f"{percent(row.share)} of customers ({int(row['size']):,}) are unassigned noise"
        if row.share >= 0.5:
            sentence += "; the clustering explains fewer than half the customers"
        insights.append(sentence + ".")
    return insights


def _value_name(row: Any) -> str:
    if int(row.segment) == NOISE:
        return "the unassigned customers"
    return f"segment {int(row.segment)} ({row.segment_name})"


def value_insights(value: pd.DataFrame) -> list[str]:
    """Segments ranked by expected lifetime value (gold.segment_value), beside past revenue.

    Deterministic: the ranks come from the table (ties to the lower segment)."""
    if value.empty:
        return []
    horizon = int(value["horizon_days"].iloc[0])
    by_value = value.sort_values("value_rank", kind="stable")
    by_revenue = value.sort_values(["revenue", "segment"], ascending=[False, True], kind="stable")
    top = by_value.iloc[0]
    insights = [
        f"By expected value over the next {horizon} days, {_value_name(top)} leads: "
        f"{percent(top.lifetime_value_share)} of all customers' expected lifetime value from "
        f"{percent(top.customers / value['customers'].sum())} of customers, who are "
        f"{percent(top.probability_alive_mean)} likely to be still active on average."
    ]
    value_order = [int(s) for s in by_value["segment"]]
    revenue_order = [int(s) for s in by_revenue["segment"]]
    if value_order != revenue_order:
        insights.append(
            "Expected value ranks the segments "
            + ", ".join("noise" if s == NOISE else str(s) for s in value_order)
            + "; past revenue ranks them "
            + ", ".join("noise" if s == NOISE else str(s) for s in revenue_order)
            + "."
        )
    fading = value[
        (value["revenue_share"] > 0)
        & (value["lifetime_value_share"] < value["revenue_share"] / 2)
        & (value["revenue_share"] >= 0.1)
    ]
    for row in fading.sort_values("segment", kind="stable").itertuples(index=False):
        insights.append(
            f"{capitalise(_value_name(row))} earned {percent(row.revenue_share)} of past revenue "
            f"but holds {percent(row.lifetime_value_share)} of expected value (probability "
            f"alive {percent(row.probability_alive_mean)}): win them back before the revenue goes."
        )
    unvalued = int(value["customers_unvalued"].sum())
    if unvalued:
        insights.append(
            f"{unvalued:,} customers have no lifetime value: no purchase up to the as-of date, "
            "or repeat purchases that net to zero or less after returns."
        )
    return insights
