"""Segments in plain business language: the deterministic rules, no language model.

A segment's medians become words against the population's cut points, and its
words become an archetype name, an outlier flag and a business action. Pure
Python, so the same numbers always give the same words, names and actions.
The sentences built from them live in :mod:`custseg.profile.descriptions`, the
per-segment table in :mod:`custseg.profile.table`.

Words. Each feature of each segment gets one of "very low", "low",
"moderate", "high", "very high": the segment's median is placed among the
population's quintile cut points q20 <= q40 <= q60 <= q80 (all customers,
noise included). Off the cut points that is the usual quintile: m < q20
"very low", q20 < m < q40 "low", q40 < m < q60 "moderate", q60 < m < q80
"high", m > q80 "very high". A median equal to one or more cut points sits
on the border of the bins those points separate; its word is the middle of
that run of bins, rounded toward "moderate", so a tie never exaggerates
(m = q20 reads "low", m = q40 or q60 "moderate", m = q80 "high"). So a
feature whose cut points are all equal reads "moderate" at that value, and
a zero-variance feature (population min = max) always reads "moderate".
Both statistics paths make medians and cut points actual data values, so
ties are exact. A missing median (all nulls) reads "unknown".

Only the features the model clustered on get words (``described``): a
feature left out as zero-variance or not available in the input gets none.
A feature whose medians are the same in every segment, within
``FLAT_SHARE`` of the population's q20..q80 range, tells the segments apart
in no way: it reads "similar" in every segment and no rule uses it, so no
segment is called "long" or "recent" against segments just like it.

Archetypes, first matching rule wins ("one order" = median num_orders <= 1;
VL/L/M/H/VH are the words; a rule that needs a missing feature does not
match):

1. segment -1                                    -> unassigned (noise)
2. one order and units VH                        -> one-time bulk buyer
3. one order and (spend VH or order value VH)    -> single very-high-value purchase
4. recency VH and silent                        -> lapsed / at risk
5. tenure VL and recency <= M, or
   tenure L and orders VL and recency <= L       -> new customers
6. more than one order, spend >= H and
   (loyalty >= H or tenure >= H or orders >= H)  -> high-value loyal
7. (spend >= H or order value >= H), orders <= L -> high-value infrequent
8. recency H, orders <= L and silent            -> lapsed / at risk
9. order value <= L, orders >= H and
   product diversity >= H                        -> bargain hunters
10. spend <= L and orders <= L                   -> occasional low-value
11. more than one order, recency <= M,
    orders >= M and spend >= L                   -> steady engaged
12. otherwise                                    -> mixed profile

"Silent" is absolute: the median recency is at least ``LAPSE_GAPS`` times
the typical gap between orders (``LAPSED_MIN_DAYS`` when no customer bought
twice). Words are relative to the population, and a segment that bought
within its usual rhythm is not lapsed because every other segment bought
last week.

The unassigned group (noise) is a row like the segments; it is never
flagged as an outlier segment, and when it carries more revenue than any
segment the first insight (:mod:`custseg.profile.insights`) says so.

Outliers: a segment is flagged when its share is below ``outlier_share``
or it has at most two customers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# Feature names of the customer table (see DESIGN.md, "Customer features").
UNITS = "units_purchased"
SPEND = "total_spend"
TENURE = "tenure_days"
RECENCY = "recency_days"
LOYALTY = "loyalty_segment"
ORDERS = "num_orders"
ORDER_VALUE = "avg_order_value"
PRODUCTS = "product_diversity"
CATEGORIES = "category_diversity"
#: The nine features the seed analysis profiled, in table order.
PROFILE_FEATURES: tuple[str, ...] = (
    UNITS,
    SPEND,
    TENURE,
    RECENCY,
    LOYALTY,
    ORDERS,
    ORDER_VALUE,
    PRODUCTS,
    CATEGORIES,
)

WORDS: tuple[str, ...] = ("very low", "low", "moderate", "high", "very high")
UNKNOWN = "unknown"
VL, L, M, H, VH = range(5)
NOISE = -1
NOISE_ARCHETYPE = "unassigned (noise)"
#: Silent (lapsed): median recency of at least this many typical gaps between orders.
LAPSE_GAPS = 2.0
#: The silence that counts as lapsed when no customer has two orders to measure a gap by.
LAPSED_MIN_DAYS = 90.0
#: Segment medians this close (share of the population's q20..q80 range) are "similar".
FLAT_SHARE = 0.05
SIMILAR = "similar"

#: archetype -> (the sentence of the table's fourth column, the business action).
ARCHETYPES: dict[str, tuple[str, str]] = {
    NOISE_ARCHETYPE: (
        "Customers no segment describes (noise)",
        "Investigate outliers: review these customers one by one, since no segment describes them.",
    ),
    "one-time bulk buyer": (
        "One-time bulk buyer: a single order of very many units",
        "Investigate, then convert: check whether this is a business buyer and offer volume "
        "pricing or a trade account.",
    ),
    "single very-high-value purchase": (
        "A single purchase of very high value",
        "Investigate, then follow up: confirm the order is genuine and contact the customer "
        "personally to earn a second purchase.",
    ),
    "lapsed / at risk": (
        "Lapsed or at-risk customers, silent for over twice the typical gap between orders",
        "Win back: send a reactivation offer before they are lost for good.",
    ),
    "new customers": (
        "New customers early in their relationship with the store",
        "Onboard: welcome them and give them a reason to place a second order soon.",
    ),
    "high-value loyal": (
        "High-value repeat customers: high spend over several orders",
        "VIP care: give priority service and early access to protect this revenue.",
    ),
    "high-value infrequent": (
        "High-value customers with few orders",
        "Increase frequency: prompt repeat purchases with timely reminders and replenishment "
        "offers.",
    ),
    "bargain hunters": (
        "Bargain hunters who order often but keep baskets small",
        "Cross-sell: pair the deals they look for with bundles of higher-margin products.",
    ),
    "occasional low-value": (
        "Occasional customers with few, low-value orders",
        "Upsell cheaply: use low-cost automated campaigns to raise basket size and frequency.",
    ),
    "steady engaged": (
        "Steady, engaged customers with consistent purchasing behaviour",
        "Retain: keep them engaged with loyalty rewards and personalised recommendations.",
    ),
    "mixed profile": (
        "Mixed profile with no single dominant behaviour",
        "Review: inspect this segment's features before targeting it with a campaign.",
    ),
}


# --------------------------------------------------------------------------- words


def word_level(value: float, cut_points: Sequence[float]) -> int | None:
    """The 0..4 level (very low .. very high) of ``value`` among four sorted cut points.

    Ties take the middle of the bins they border, rounded toward 2 (moderate);
    None when the value or a cut point is missing.
    """
    cuts = [float(c) for c in cut_points]
    if len(cuts) != 4:
        raise ValueError(f"cut_points must hold 4 values (q20, q40, q60, q80), got {len(cuts)}")
    v = float(value)
    if math.isnan(v) or any(math.isnan(c) for c in cuts):
        return None
    lowest = sum(c < v for c in cuts)  # the lowest bin the value can sit in
    highest = 4 - sum(c > v for c in cuts)
    twice_mid = lowest + highest
    if twice_mid % 2 == 0:
        return twice_mid // 2
    return (twice_mid + 1) // 2 if twice_mid < 4 else (twice_mid - 1) // 2


def qualitative_word(value: float, cut_points: Sequence[float], constant: bool = False) -> str:
    """The word ("very low" .. "very high") for ``value`` against the quintile ``cut_points``.

    ``constant`` (the population's feature has zero variance) gives "moderate".
    """
    if isinstance(value, float) and math.isnan(value):
        return UNKNOWN
    if constant:
        return WORDS[M]
    level = word_level(value, cut_points)
    return UNKNOWN if level is None else WORDS[level]


def level_of(word: str | None) -> int | None:
    """The 0..4 level of a word of WORDS; None for "unknown", "similar" or no word."""
    return WORDS.index(word) if word in WORDS else None


# --------------------------------------------------------------------------- archetypes


def lapse_days(typical_gap_days: float) -> float:
    """The median recency from which a segment is silent (lapsed): LAPSE_GAPS typical gaps."""
    if typical_gap_days is None or math.isnan(typical_gap_days) or typical_gap_days <= 0:
        return LAPSED_MIN_DAYS
    return LAPSE_GAPS * typical_gap_days


def archetype(
    segment: int,
    words: Mapping[str, str],
    medians: Mapping[str, float],
    typical_gap_days: float = math.nan,
) -> str:
    """The archetype name of a segment from its feature words and medians (rules in the module
    doc)."""
    if segment == NOISE:
        return NOISE_ARCHETYPE
    level = {f: level_of(words.get(f)) for f in PROFILE_FEATURES}

    def ge(feature: str, k: int) -> bool:
        value = level[feature]
        return value is not None and value >= k

    def le(feature: str, k: int) -> bool:
        value = level[feature]
        return value is not None and value <= k

    orders = medians.get(ORDERS, math.nan)
    known_orders = orders is not None and not math.isnan(orders)
    one_order = known_orders and orders <= 1
    repeat = known_orders and orders > 1

    if one_order and ge(UNITS, VH):
        return "one-time bulk buyer"
    if one_order and (ge(SPEND, VH) or ge(ORDER_VALUE, VH)):
        return "single very-high-value purchase"
    recency = medians.get(RECENCY, math.nan)
    # Relative words alone would call a customer who bought a month ago "lapsed" when everyone
    # else bought last week; lapsing also needs a silence of LAPSE_GAPS typical gaps.
    silent = (
        recency is not None and not math.isnan(recency) and recency >= lapse_days(typical_gap_days)
    )
    if silent and ge(RECENCY, VH):
        return "lapsed / at risk"
    if (le(TENURE, VL) and le(RECENCY, M)) or (le(TENURE, L) and le(ORDERS, VL) and le(RECENCY, L)):
        return "new customers"
    if repeat and ge(SPEND, H) and (ge(LOYALTY, H) or ge(TENURE, H) or ge(ORDERS, H)):
        return "high-value loyal"
    if (ge(SPEND, H) or ge(ORDER_VALUE, H)) and le(ORDERS, L):
        return "high-value infrequent"
    if silent and ge(RECENCY, H) and le(ORDERS, L):
        return "lapsed / at risk"
    if le(ORDER_VALUE, L) and ge(ORDERS, H) and ge(PRODUCTS, H):
        return "bargain hunters"
    if le(SPEND, L) and le(ORDERS, L):
        return "occasional low-value"
    if repeat and le(RECENCY, M) and ge(ORDERS, M) and ge(SPEND, L):
        return "steady engaged"
    return "mixed profile"


def is_outlier(size: int, share: float, outlier_share: float = 0.01) -> bool:
    """A segment too small to act on as a group: share below ``outlier_share`` or size <= 2.

    (The unassigned group is not a segment and never an outlier one: see describe_segments.)"""
    return bool(size <= 2 or share < outlier_share)
