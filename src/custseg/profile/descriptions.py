"""The sentences of a segment profile: its description and the cells of the seed analysis's table.

Recency is days since the last order, so "low recency" means the segment
bought recently; the table keeps the scale word ("low recency"). The
description says "bought recently" only when the median recency is within
the population's typical gap between orders (the median over repeat buyers
of (last - first purchase) / (orders - 1)), and "have not bought for a
while" / "for a long time" only when it is beyond one / two such gaps;
otherwise it keeps the scale word.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from custseg.profile.rules import (
    CATEGORIES,
    LOYALTY,
    NOISE,
    ORDER_VALUE,
    ORDERS,
    PRODUCTS,
    PROFILE_FEATURES,
    RECENCY,
    SPEND,
    TENURE,
    UNITS,
    VH,
    H,
    L,
    M,
    lapse_days,
    level_of,
)

_RECENCY_PHRASES = (
    "bought very recently",
    "bought recently",
    "bought moderately recently",
    "have not bought for a while",
    "have not bought for a long time",
)
_LOYALTY_PHRASES = (
    "very low loyalty",
    "low loyalty",
    "average loyalty",
    "high loyalty",
    "very high loyalty",
)


def _fmt(x: float) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def percent(x: float) -> str:
    """A share as a percentage with one decimal, or n/a."""
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def capitalise(text: str) -> str:
    """The sentence with its first letter capitalised."""
    return text[:1].upper() + text[1:]


def purchase_text(words: Mapping[str, str]) -> str:
    """The table's second cell: units, spend, tenure, recency words."""
    parts = [
        f"{words[f]} {label}"
        for f, label in (
            (UNITS, "units"),
            (SPEND, "spend"),
            (TENURE, "tenure"),
            (RECENCY, "recency"),
        )
        if f in words
    ]
    return capitalise(", ".join(parts))


def _loyalty_phrase(word: str) -> str:
    level = level_of(word)
    return _LOYALTY_PHRASES[level] if level is not None else f"{word} loyalty"


def _recency_phrase(word: str, median: float, typical_gap_days: float) -> str:
    """ "bought recently" only within one typical gap, "not bought for a while" beyond one gap,
    "for a long time" beyond LAPSE_GAPS gaps; otherwise the scale word ("low recency")."""
    level = level_of(word)
    gap = typical_gap_days if typical_gap_days and not math.isnan(typical_gap_days) else math.nan
    if level is None or math.isnan(median) or math.isnan(gap):
        return f"{word} recency"
    if level <= L and median <= gap:
        return _RECENCY_PHRASES[level]
    if level == M and median <= gap:
        return _RECENCY_PHRASES[M]
    if level == VH and median >= lapse_days(gap):
        return _RECENCY_PHRASES[VH]
    if level >= H and median >= gap:
        return _RECENCY_PHRASES[H]
    return f"{word} recency"


def loyalty_text(words: Mapping[str, str]) -> str:
    """The table's third cell: loyalty, order count, product/category diversity words."""
    parts = []
    if LOYALTY in words:
        parts.append(_loyalty_phrase(words[LOYALTY]))
    if ORDERS in words:
        parts.append(f"{words[ORDERS]} order count")
    if PRODUCTS in words and CATEGORIES in words and words[PRODUCTS] == words[CATEGORIES]:
        parts.append(f"{words[PRODUCTS]} product/category diversity")
    else:
        if PRODUCTS in words:
            parts.append(f"{words[PRODUCTS]} product diversity")
        if CATEGORIES in words:
            parts.append(f"{words[CATEGORIES]} category diversity")
    return capitalise(", ".join(parts))


def description(
    size: int,
    share: float,
    revenue_share: float,
    segment: int,
    words: Mapping[str, str],
    medians: Mapping[str, float],
    typical_gap_days: float,
) -> str:
    """One behaviour sentence with the medians behind each word, recency phrased naturally."""
    who = "unassigned customer" if segment == NOISE else "customer"
    head = f"{size:,} {who}{'' if size == 1 else 's'} ({percent(share)} of customers"
    head += f", {percent(revenue_share)} of revenue)" if not math.isnan(revenue_share) else ")"
    parts = []
    if RECENCY in words:
        phrase = _recency_phrase(words[RECENCY], medians[RECENCY], typical_gap_days)
        parts.append(f"{phrase} (median {_fmt(medians[RECENCY])} days ago)")
    if ORDERS in words:
        orders = medians[ORDERS]
        if not math.isnan(orders) and orders <= 1:
            parts.append("a single order")
        else:
            parts.append(f"{words[ORDERS]} order count (median {_fmt(orders)})")
    simple = (
        (SPEND, "spend", ""),
        (ORDER_VALUE, "order value", ""),
        (UNITS, "units", ""),
        (TENURE, "tenure", " days"),
    )
    for f, label, unit in simple:
        if f in words:
            parts.append(f"{words[f]} {label} (median {_fmt(medians[f])}{unit})")
    if LOYALTY in words:
        parts.append(f"{_loyalty_phrase(words[LOYALTY])} (median tier {_fmt(medians[LOYALTY])})")
    for f, label in ((PRODUCTS, "product diversity"), (CATEGORIES, "category diversity")):
        if f in words:
            parts.append(f"{words[f]} {label} (median {_fmt(medians[f])})")
    others = [f for f in words if f not in PROFILE_FEATURES]
    parts += [f"{words[f]} {f} (median {_fmt(medians[f])})" for f in others]
    return head + (": " + "; ".join(parts) if parts else "") + "."
