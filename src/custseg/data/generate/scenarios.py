"""The planted segments: how each archetype buys, in the realistic mix and in the seed scenario.

Every customer with orders belongs to one archetype (written to
``truth/customer_archetypes.csv``), so a clustering stage can be scored on how
well it recovers them. ``REALISTIC`` gives shares of the customers;
``SEED`` reproduces the seed analysis with exact counts.
"""

from __future__ import annotations

from dataclasses import dataclass

TIERS = ("cheap", "mid", "premium", "ultra")  # product price tiers, cheapest first
_CHEAP, _MID, _PREMIUM, _ULTRA = range(len(TIERS))
RANDOM_TIER = -1  # the outliers' tier is drawn per customer
RANDOM_LOYALTY = -2  # the outliers' loyalty is drawn per customer


@dataclass(frozen=True)
class Archetype:
    """How one planted segment buys. Ranges are inclusive (lo, hi).

    ``orders``, ``qty`` and ``products`` are drawn log-uniformly (heavy right
    tail), the rest uniformly. ``tenure`` is days before the as-of date of the
    first valid_from, or, with ``tenure_after_first_order``, extra days
    between registering and the first order.
    """

    name: str
    weight: float  # share of customers (realistic) or exact count (seed)
    orders: tuple[int, int]
    lines: tuple[int, int]
    qty: tuple[int, int]
    tier: int  # index into TIERS, or RANDOM_TIER
    categories: tuple[int, int]
    products: tuple[int, int]  # size of the customer's personal product pool
    recency: tuple[float, float]
    span: tuple[float, float]  # days between first and last order
    tenure: tuple[float, float]
    tenure_after_first_order: bool = False
    loyalty: int | None = None  # planted level; None = from units via the thresholds
    promo: float = 0.1
    business: float = 0.04
    scales: bool = True  # orders scale with orders_per_customer


NO_ORDERS = "no_orders"

REALISTIC = (
    Archetype(
        "steady_engaged",
        0.34,
        orders=(5, 11),
        lines=(1, 3),
        qty=(1, 2),
        tier=_MID,
        categories=(4, 7),
        products=(10, 24),
        recency=(0, 21),
        span=(420, 700),
        tenure=(550, 1000),
        promo=0.08,
    ),
    Archetype(
        "bargain_hunter",
        0.14,
        orders=(7, 14),
        lines=(3, 4),
        qty=(3, 6),
        tier=_CHEAP,
        categories=(2, 3),
        products=(25, 60),
        recency=(0, 40),
        span=(250, 650),
        tenure=(350, 800),
        promo=0.55,
    ),
    Archetype(
        "lapsed_at_risk",
        0.14,
        orders=(3, 5),
        lines=(2, 3),
        qty=(2, 3),
        tier=_MID,
        categories=(2, 4),
        products=(3, 8),
        recency=(300, 620),
        span=(30, 300),
        tenure=(850, 1350),
        promo=0.08,
    ),
    Archetype(
        "new_customer",
        0.12,
        orders=(1, 2),
        lines=(1, 2),
        qty=(1, 1),
        tier=_MID,
        categories=(1, 2),
        products=(1, 3),
        recency=(0, 25),
        span=(0, 15),
        tenure=(1, 10),
        tenure_after_first_order=True,
        scales=False,
    ),
    Archetype(
        "high_value_infrequent",
        0.10,
        orders=(2, 3),
        lines=(1, 2),
        qty=(1, 1),
        tier=_PREMIUM,
        categories=(1, 3),
        products=(2, 5),
        recency=(60, 280),
        span=(60, 400),
        tenure=(450, 900),
        promo=0.05,
    ),
    Archetype(
        "one_time_bulk_buyer",
        0.05,
        orders=(1, 1),
        lines=(1, 2),
        qty=(40, 150),
        tier=_CHEAP,
        categories=(1, 2),
        products=(1, 2),
        recency=(30, 450),
        span=(0, 0),
        tenure=(0, 30),
        tenure_after_first_order=True,
        loyalty=0,
        promo=0.05,
        business=0.6,
        scales=False,
    ),
    Archetype(
        "single_very_high_value",
        0.015,
        orders=(1, 1),
        lines=(2, 3),
        qty=(2, 5),
        tier=_ULTRA,
        categories=(1, 2),
        products=(2, 4),
        recency=(10, 400),
        span=(0, 0),
        tenure=(400, 1000),
        loyalty=3,
        promo=0.0,
        scales=False,
    ),
    Archetype(
        "outlier",
        0.005,
        orders=(1, 40),
        lines=(1, 5),
        qty=(1, 30),
        tier=RANDOM_TIER,
        categories=(1, 8),
        products=(1, 50),
        recency=(0, 720),
        span=(0, 700),
        tenure=(0, 700),
        tenure_after_first_order=True,
        loyalty=RANDOM_LOYALTY,
        promo=0.2,
    ),
    Archetype(
        NO_ORDERS,
        0.085,
        orders=(0, 0),
        lines=(1, 1),
        qty=(1, 1),
        tier=_MID,
        categories=(1, 1),
        products=(1, 1),
        recency=(0, 0),
        span=(0, 0),
        tenure=(30, 1500),
        scales=False,
    ),
)

# The seed analysis: 25 customers with orders in tight, far-apart groups of
# 16, 7, 1 and 1, plus 10 customers without orders. Loyalty is planted.
SEED = (
    Archetype(
        "steady_engaged",
        16,
        orders=(7, 8),
        lines=(2, 2),
        qty=(2, 2),
        tier=_MID,
        categories=(2, 2),
        products=(5, 6),
        recency=(0, 10),
        span=(600, 640),
        tenure=(680, 720),
        loyalty=1,
    ),
    Archetype(
        "high_value_loyal",
        7,
        orders=(5, 5),
        lines=(3, 3),
        qty=(1, 1),
        tier=_PREMIUM,
        categories=(6, 6),
        products=(11, 12),
        recency=(20, 30),
        span=(520, 560),
        tenure=(1000, 1060),
        loyalty=2,
    ),
    Archetype(
        "one_time_bulk_buyer",
        1,
        orders=(1, 1),
        lines=(2, 2),
        qty=(120, 160),
        tier=_CHEAP,
        categories=(1, 1),
        products=(2, 2),
        recency=(90, 110),
        span=(0, 0),
        tenure=(5, 10),
        tenure_after_first_order=True,
        loyalty=0,
        business=1.0,
    ),
    Archetype(
        "single_very_high_value",
        1,
        orders=(1, 1),
        lines=(3, 3),
        qty=(4, 5),
        tier=_ULTRA,
        categories=(2, 2),
        products=(3, 3),
        recency=(40, 50),
        span=(0, 0),
        tenure=(850, 900),
        loyalty=3,
        promo=0.0,
    ),
    Archetype(
        NO_ORDERS,
        10,
        orders=(0, 0),
        lines=(1, 1),
        qty=(1, 1),
        tier=_MID,
        categories=(1, 1),
        products=(1, 1),
        recency=(0, 0),
        span=(0, 0),
        tenure=(30, 1500),
    ),
)


def archetype_index(specs: tuple[Archetype, ...], name: str) -> int:
    """Where the archetype called ``name`` stands in ``specs``, or -1 when it is not there."""
    return next((i for i, s in enumerate(specs) if s.name == name), -1)
