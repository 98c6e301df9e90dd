"""The product catalog: a few hundred products in ten brand-like categories and four price tiers.

It depends on the seed alone (stream ``STREAM_CATALOG``), so every block and
the products file see the same catalog.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from custseg.data.generate.scenarios import TIERS
from custseg.data.generate.spec import STREAM_CATALOG
from custseg.data.generate.vocabulary import PRODUCT_TYPES

# products per price tier in each category
_CATEGORY_TIERS: dict[str, dict[str, int]] = {
    "Rony": {"mid": 16, "premium": 12, "ultra": 4},
    "Ramsung": {"mid": 16, "premium": 12, "ultra": 4},
    "Zamaha": {"mid": 16, "premium": 10, "ultra": 4},
    "Opple": {"mid": 16, "premium": 14, "ultra": 5},
    "Mannon": {"mid": 16, "premium": 12, "ultra": 4},
    "Sioneer": {"mid": 16, "premium": 8},
    "Reagate": {"cheap": 15, "mid": 16},
    "Karsair": {"cheap": 20, "mid": 16, "premium": 5},
    "Lojitech": {"cheap": 25, "mid": 16},
    "Aneker": {"cheap": 25, "mid": 16},
}
_TIER_PRICE = {  # whole-dollar price range per tier, drawn log-uniformly
    "cheap": (5, 40),
    "mid": (40, 500),
    "premium": (800, 4_000),
    "ultra": (4_000, 20_000),
}
_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))


@dataclass(frozen=True)
class Catalog:
    """Every product with its id, name, category, tier and price, and the pools customers pick
    from."""

    ids: list[str]
    names: list[str]
    categories: list[str]
    category: np.ndarray  # category index per product
    tier: np.ndarray
    price: np.ndarray  # whole dollars
    pool: np.ndarray  # product indices sorted by (tier, category)
    pool_start: np.ndarray  # [tier, category] -> first index into pool
    pool_count: np.ndarray  # [tier, category] -> number of products
    tier_categories: tuple[np.ndarray, ...]  # categories with products, per tier


def make_catalog(seed: int) -> Catalog:
    """A few hundred products in ten brand-like categories, each in one or more price tiers."""
    rng = np.random.default_rng([seed, STREAM_CATALOG, 0])
    categories = list(_CATEGORY_TIERS)
    ids: list[str] = []
    names: list[str] = []
    cat_idx: list[int] = []
    tiers: list[int] = []
    prices: list[int] = []
    seen: set[str] = set()
    for c, category in enumerate(categories):
        for tier_name, count in _CATEGORY_TIERS[category].items():
            tier = TIERS.index(tier_name)
            lo, hi = _TIER_PRICE[tier_name]
            types = PRODUCT_TYPES[tier_name]
            for _ in range(count):
                while True:
                    pid = "AV" + "".join(rng.choice(_ID_ALPHABET, 18))
                    if pid not in seen:
                        seen.add(pid)
                        break
                kind = types[int(rng.integers(len(types)))]
                model = (
                    f"{chr(65 + int(rng.integers(26)))}{chr(65 + int(rng.integers(26)))}"
                    f"-{int(rng.integers(100, 1000))}"
                )
                price = math.exp(rng.uniform(math.log(lo), math.log(hi)))
                price = round(price) if price < 40 else int(round(price / 10) * 10 - 1)
                ids.append(pid)
                names.append(f"{category} {kind} {model}")
                cat_idx.append(c)
                tiers.append(tier)
                prices.append(price)
    category_of = np.array(cat_idx)
    tier_of = np.array(tiers)
    pool = np.lexsort((np.arange(len(ids)), category_of, tier_of))
    pool_start = np.zeros((len(TIERS), len(categories)), dtype=np.int64)
    pool_count = np.zeros_like(pool_start)
    for t in range(len(TIERS)):
        for c in range(len(categories)):
            members = np.flatnonzero((tier_of[pool] == t) & (category_of[pool] == c))
            if len(members):
                pool_start[t, c] = members[0]
                pool_count[t, c] = len(members)
    return Catalog(
        ids=ids,
        names=names,
        categories=categories,
        category=category_of,
        tier=tier_of,
        price=np.array(prices, dtype=np.int64),
        pool=pool,
        pool_start=pool_start,
        pool_count=pool_count,
        tier_categories=tuple(np.flatnonzero(pool_count[t] > 0) for t in range(len(TIERS))),
    )
