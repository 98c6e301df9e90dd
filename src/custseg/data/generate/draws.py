"""The random draws of one block: who its customers are, when and what they buy (vectorised numpy).

Block ``b`` draws from ``numpy.random.default_rng([seed, stream, b])``, one
stream per concern (see ``spec.STREAM_*``), so a block's content depends only
on the seed and its id, and each pass recomputes only the streams it needs.
The order of the draws within a stream is part of the output: keep it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from custseg.data.generate.plan import Plan
from custseg.data.generate.scenarios import RANDOM_LOYALTY, RANDOM_TIER, TIERS, archetype_index
from custseg.data.generate.spec import (
    CUSTOMER_ID_BASE,
    DAY,
    ORDER_NUMBER_STRIDE,
    STREAM_BASE,
    STREAM_BASKET,
    STREAM_EXTRAS,
    STREAM_PEOPLE,
    WINDOW_END,
    WINDOW_START,
)
from custseg.data.generate.vocabulary import (
    CITIES,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    PROMO_CODES,
    PROMO_DISCS,
    STREETS,
    SUFFIXES,
)

# -- distributions and array helpers --


def log_int(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integers in [lo, hi], log-uniform: many small values, a long right tail. hi = 0 gives 0."""
    lo = np.maximum(lo, 1)
    u = rng.random(lo.shape)
    x = np.floor(np.exp(np.log(lo) + u * (np.log(hi + 1.0) - np.log(lo)))).astype(np.int64)
    return np.where(hi <= 0, 0, np.clip(x, lo, np.maximum(hi, lo)))


def _uni_int(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integers in [lo, hi], uniform."""
    return (lo + np.floor(rng.random(np.shape(lo)) * (hi - lo + 1))).astype(np.int64)


def _uniform(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Floats in [lo, hi), uniform."""
    return lo + rng.random(np.shape(lo)) * (hi - lo)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + count)`` for each pair, without a Python loop."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    shift = np.repeat(np.asarray(starts, dtype=np.int64) - (ends - counts), counts)
    return shift + np.arange(total, dtype=np.int64)


def offsets(counts: np.ndarray) -> np.ndarray:
    """Where each group of ``counts`` starts in the concatenation, plus the total at the end."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def loyalty_of(units: np.ndarray, thresholds: tuple[int, ...]) -> np.ndarray:
    """The loyalty level (0..3) that ``units`` reach under ``thresholds``."""
    return np.searchsorted(np.asarray(thresholds), units, side="right") - 1


@dataclass
class Orders:
    """Orders with their lines and clicked items, laid out order after order."""

    o: dict[str, np.ndarray]
    lines: dict[str, np.ndarray]
    clicks: dict[str, np.ndarray]
    n_lines: np.ndarray
    n_clicks: np.ndarray

    def take(self, idx: np.ndarray) -> Orders:
        line_idx = _ranges(offsets(self.n_lines)[:-1][idx], self.n_lines[idx])
        click_idx = _ranges(offsets(self.n_clicks)[:-1][idx], self.n_clicks[idx])
        return Orders(
            {k: v[idx] for k, v in self.o.items()},
            {k: v[line_idx] for k, v in self.lines.items()},
            {k: v[click_idx] for k, v in self.clicks.items()},
            self.n_lines[idx],
            self.n_clicks[idx],
        )

    @staticmethod
    def concat(a: Orders, b: Orders) -> Orders:
        return Orders(
            {k: np.concatenate([a.o[k], b.o[k]]) for k in a.o},
            {k: np.concatenate([a.lines[k], b.lines[k]]) for k in a.lines},
            {k: np.concatenate([a.clicks[k], b.clicks[k]]) for k in a.clicks},
            np.concatenate([a.n_lines, b.n_lines]),
            np.concatenate([a.n_clicks, b.n_clicks]),
        )


# -- one block: its customers, their baskets and orders --


def block_rng(plan: Plan, stream: int, block_id: int) -> np.random.Generator:
    """The generator of one stream of one block: the same numbers on any machine."""
    return np.random.default_rng([plan.seed, stream, block_id])


@dataclass
class Base:
    """Who the block's customers are and when they buy: enough for the truth file and the counts."""

    block_id: int
    n: int
    cust_id: np.ndarray
    arch: np.ndarray
    n_orders: np.ndarray
    n_rows: np.ndarray  # customers.csv rows (history) per customer
    tier: np.ndarray
    last: np.ndarray  # epoch seconds of the last order
    first_order: np.ndarray
    first_vf: np.ndarray  # the first valid_from
    random_loyalty: np.ndarray

    def spec(self, plan: Plan, field: str, i: int | None = None) -> np.ndarray:
        values = [getattr(s, field) if i is None else getattr(s, field)[i] for s in plan.specs]
        return np.array(values)[self.arch]


def draw_base(plan: Plan, block_id: int) -> Base:
    """The block's customers: archetype, order count, tier, order dates, registration, history
    rows."""
    rng = block_rng(plan, STREAM_BASE, block_id)
    specs = plan.specs
    first = block_id * plan.block_size
    n = min(plan.block_size, plan.customers - first)
    with_orders = np.array([s.orders[1] > 0 for s in specs])
    if plan.preset == "seed":
        arch = rng.permutation(np.repeat(np.arange(len(specs)), [int(s.weight) for s in specs]))
    else:
        weights = np.array([s.weight for s in specs])
        arch = rng.choice(len(specs), size=n, p=weights / weights.sum())
        if not with_orders[arch[0]]:
            # every block has a customer with orders, so it can host a duplicate_order
            w = np.where(with_orders, weights, 0.0)
            arch[0] = rng.choice(len(specs), p=w / w.sum())
    ids = CUSTOMER_ID_BASE + first + np.arange(n, dtype=np.int64)
    base = Base(block_id, n, ids, arch, *([np.zeros(0)] * 7))  # the rest is filled in below

    def spec(field: str, i: int | None = None) -> np.ndarray:
        return base.spec(plan, field, i)

    base.n_orders = log_int(rng, plan.orders_lo[arch], plan.orders_hi[arch])
    tier = spec("tier")
    base.tier = np.where(tier == RANDOM_TIER, rng.integers(0, len(TIERS), n), tier)
    base.random_loyalty = rng.integers(0, 4, n)

    recency = _uniform(rng, spec("recency", 0), spec("recency", 1))
    last = WINDOW_END - np.round(recency * DAY).astype(np.int64)
    last -= np.where(recency > 0, rng.integers(0, DAY, n), 0)
    if block_id == 0:
        # anchor the as-of date: the latest order of all is exactly WINDOW_END, placed
        # on a customer of the first (most recent, largest) archetype when there is one
        candidates = np.flatnonzero((base.n_orders > 0) & (arch == 0))
        last[candidates[0] if len(candidates) else np.flatnonzero(base.n_orders > 0)[0]] = (
            WINDOW_END
        )
    last = np.maximum(last, WINDOW_START)
    span = _uniform(rng, spec("span", 0), spec("span", 1))
    first_order = last - np.round(span * DAY).astype(np.int64)
    # a span reaching back before the window starts early in it, not all on its first second
    early = WINDOW_START + np.round(rng.random(n) * 0.2 * (last - WINDOW_START)).astype(np.int64)
    first_order = np.where(first_order < WINDOW_START, early, first_order)
    first_order = np.where(base.n_orders <= 1, last, first_order)
    tenure = np.round(_uniform(rng, spec("tenure", 0), spec("tenure", 1)) * DAY).astype(np.int64)
    gap = rng.integers(3_600, 5 * DAY, n)
    absolute = np.minimum(WINDOW_END - tenure, first_order - gap)
    relative = first_order - tenure - gap // 5
    base.first_vf = np.where(spec("tenure_after_first_order"), relative, absolute)
    base.last, base.first_order = last, first_order

    n_rows = 1 + (rng.random(n) < 0.40) + (rng.random(n) < 0.12)
    single = (arch == archetype_index(specs, "new_customer")) | (
        WINDOW_END - base.first_vf < 3 * DAY
    )
    base.n_rows = np.where(single, 1, n_rows)
    return base


@dataclass
class Basket:
    """The block's valid orders (chronological) and what each customer bought in total."""

    cust: np.ndarray  # per order
    time: np.ndarray
    n_lines: np.ndarray
    product: np.ndarray  # per line, order after order
    qty: np.ndarray
    units: np.ndarray  # per customer
    loyalty: np.ndarray


def _product_pools(
    rng: np.random.Generator, plan: Plan, base: Base
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's personal product pool (size, then products laid out customer after customer).

    The products come from ``k`` of the customer's tier's categories, in turn.
    """
    cat = plan.catalog
    n, n_orders, tier = base.n, base.n_orders, base.tier

    def spec(field: str, i: int | None = None) -> np.ndarray:
        return base.spec(plan, field, i)

    n_cats = np.array([len(c) for c in cat.tier_categories])[tier]
    k = np.minimum(_uni_int(rng, spec("categories", 0), spec("categories", 1)), n_cats)
    pool_size = np.where(n_orders > 0, log_int(rng, spec("products", 0), spec("products", 1)), 0)
    pool_cust = np.repeat(np.arange(n), pool_size)
    slot = (np.arange(len(pool_cust)) - np.repeat(offsets(pool_size)[:-1], pool_size)) % k[
        pool_cust
    ]
    pool_cat = np.zeros(len(pool_cust), dtype=np.int64)
    for t, cats in enumerate(cat.tier_categories):
        shuffled = np.argsort(rng.random((n, len(cats))), axis=1)
        mask = tier[pool_cust] == t
        pool_cat[mask] = cats[shuffled[pool_cust[mask], slot[mask]]]
    pool_tier = tier[pool_cust]
    pick = np.floor(rng.random(len(pool_cust)) * cat.pool_count[pool_tier, pool_cat]).astype(
        np.int64
    )
    pool_product = cat.pool[cat.pool_start[pool_tier, pool_cat] + pick]
    return pool_size, pool_product


def draw_basket(plan: Plan, base: Base) -> Basket:
    """Order times, lines and quantities, then each customer's units and loyalty level."""
    rng = block_rng(plan, STREAM_BASKET, base.block_id)
    cat = plan.catalog
    n, n_orders = base.n, base.n_orders

    def spec(field: str, i: int | None = None) -> np.ndarray:
        return base.spec(plan, field, i)

    # order times: first and last fixed, the others uniform in between (the stream's first draws)
    order_cust = np.repeat(np.arange(n), n_orders)
    n_total = len(order_cust)
    pos = np.arange(n_total) - np.repeat(offsets(n_orders)[:-1], n_orders)
    u = rng.random(n_total)
    u[pos == 0] = 0.0
    u[pos == n_orders[order_cust] - 1] = 1.0
    span = (base.last - base.first_order)[order_cust]
    order_time = base.first_order[order_cust] + np.round(u * span).astype(np.int64)

    pool_size, pool_product = _product_pools(rng, plan, base)

    # order lines: consecutive entries of the personal pool
    n_lines = _uni_int(rng, spec("lines", 0)[order_cust], spec("lines", 1)[order_cust])
    start = np.floor(rng.random(n_total) * pool_size[order_cust]).astype(np.int64)
    line_order = np.repeat(np.arange(n_total), n_lines)
    j = np.arange(len(line_order)) - np.repeat(offsets(n_lines)[:-1], n_lines)
    lc = order_cust[line_order]
    product = pool_product[offsets(pool_size)[:-1][lc] + (start[line_order] + j) % pool_size[lc]]
    qty = log_int(rng, spec("qty", 0)[lc], spec("qty", 1)[lc])

    # chronological order; a product repeated within an order becomes one line
    chrono = np.argsort(order_time * (n + 1) + order_cust, kind="stable")
    rank = np.empty(n_total, dtype=np.int64)
    rank[chrono] = np.arange(n_total)
    n_products = len(cat.ids)
    key, inverse = np.unique(rank[line_order] * n_products + product, return_inverse=True)
    qty = np.bincount(inverse, weights=qty, minlength=len(key)).astype(np.int64)
    line_rank = key // n_products
    cust = order_cust[chrono]

    units = np.bincount(cust[line_rank], weights=qty, minlength=n).astype(np.int64)
    loyalty = loyalty_of(units, plan.thresholds)
    planted = np.array([-1 if s.loyalty is None else s.loyalty for s in plan.specs])[base.arch]
    loyalty = np.where(planted >= 0, planted, loyalty)
    loyalty = np.where(planted == RANDOM_LOYALTY, base.random_loyalty, loyalty)
    lines_per_order = np.bincount(line_rank, minlength=n_total)
    return Basket(cust, order_time[chrono], lines_per_order, key % n_products, qty, units, loyalty)


def draw_orders(plan: Plan, base: Base, basket: Basket) -> Orders:
    """The valid orders with order numbers, promotions and clicked items."""
    rng = block_rng(plan, STREAM_EXTRAS, base.block_id)
    n_total, n_lines = len(basket.cust), len(basket.product)
    promo_rate = base.spec(plan, "promo")[basket.cust]
    line_promo_rate = np.repeat(promo_rate, basket.n_lines) / 2
    extra = rng.integers(0, 4, n_total)  # browsed but not bought
    n_products = len(plan.catalog.ids)
    click_order = np.concatenate(
        [np.repeat(np.arange(n_total), basket.n_lines), np.repeat(np.arange(n_total), extra)]
    )
    click_product = np.concatenate([basket.product, rng.integers(0, n_products, int(extra.sum()))])
    click_sort = np.argsort(click_order, kind="stable")
    first_line = offsets(basket.n_lines)[:-1]
    return Orders(
        o={
            "cust": basket.cust,  # index into the block's names and ids
            "time": basket.time,
            "number": base.block_id * ORDER_NUMBER_STRIDE + 1 + np.arange(n_total, dtype=np.int64),
            "time_kind": np.zeros(n_total, dtype=np.int8),  # 1 = "yesterday"
            "malformed": np.zeros(n_total, dtype=bool),
            "promo": rng.random(n_total) < promo_rate,
            "promo_code": rng.integers(0, len(PROMO_CODES), n_total),
            "promo_disc": rng.integers(0, len(PROMO_DISCS), n_total),
            "promo_id": rng.integers(1, 500, n_total),
            "promo_item": basket.product[np.minimum(first_line, max(n_lines - 1, 0))],
            "promo_qty": rng.integers(1, 4, n_total),
        },
        lines={
            "product": basket.product,
            "qty": basket.qty,
            "price": plan.catalog.price[basket.product],
            "promo": rng.random(n_lines) < line_promo_rate,
            "promo_disc": rng.integers(0, len(PROMO_DISCS), n_lines),
            "promo_id": rng.integers(1, 500, n_lines),
        },
        clicks={
            "product": click_product[click_sort],
            "count": rng.integers(1, 31, len(click_sort)),
        },
        n_lines=basket.n_lines,
        n_clicks=basket.n_lines + extra,
    )


# -- people: names, addresses and the customers.csv history rows --


def draw_names(
    rng: np.random.Generator, n: int, business_rate: np.ndarray
) -> dict[str, np.ndarray]:
    """Indices into the name lists, whether each is a business, and a tax id for those that are."""
    return {
        "first": rng.integers(0, len(FIRST_NAMES), n),
        "last": rng.integers(0, len(LAST_NAMES), n),
        "industry": rng.integers(0, len(INDUSTRIES), n),
        "suffix": rng.integers(0, len(SUFFIXES), n),
        "business": rng.random(n) < business_rate,
        "tax": rng.integers(100_000_000, 1_000_000_000, n),
    }


def draw_addresses(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """A city, street, house number, optional unit and a small offset from the city's position."""
    return {
        "city": rng.integers(0, len(CITIES), n),
        "street": rng.integers(0, len(STREETS), n),
        "number": log_int(rng, np.ones(n, dtype=np.int64), np.full(n, 9_999)),
        "unit": np.where(rng.random(n) < 0.15, rng.integers(1, 40, n), 0),
        "zip": rng.integers(0, 30, n),
        "dlat": rng.uniform(-0.08, 0.08, n),
        "dlon": rng.uniform(-0.08, 0.08, n),
    }


def draw_customer_names(plan: Plan, base: Base) -> dict[str, np.ndarray]:
    """The names and ids of the block's good customers (the first draws of the people stream)."""
    rng = block_rng(plan, STREAM_PEOPLE, base.block_id)
    names = draw_names(rng, base.n, base.spec(plan, "business"))
    names["id"] = base.cust_id
    return names


def draw_customer_rows(plan: Plan, base: Base, basket: Basket) -> dict[str, np.ndarray]:
    """customers.csv rows: history oldest first; older rows have fewer units and may hold an old
    address."""
    rng = block_rng(plan, STREAM_PEOPLE, base.block_id)
    draw_names(rng, base.n, base.spec(plan, "business"))  # the stream's first draws are the names
    n_rows, first_vf = base.n_rows, base.first_vf
    row_cust = np.repeat(np.arange(base.n), n_rows)
    r = len(row_cust)
    row_pos = np.arange(r) - np.repeat(offsets(n_rows)[:-1], n_rows)
    change = rng.random(r)
    change[row_pos == 0] = 0.0
    change = change[np.lexsort((change, row_cust))]
    vf0 = first_vf[row_cust]
    valid_from = vf0 + np.round(change * (WINDOW_END - DAY - vf0)).astype(np.int64)
    current = row_pos == n_rows[row_cust] - 1
    valid_to = np.where(current, -1, np.roll(valid_from, -1))
    frac = np.clip((valid_to - vf0) / np.maximum(WINDOW_END - vf0, 1), 0, 1)
    units = basket.units[row_cust]
    row_units = np.where(current, units, np.floor(units * frac)).astype(np.int64)
    loyalty = basket.loyalty[row_cust]
    row_loyalty = np.where(
        current, loyalty, np.minimum(loyalty, loyalty_of(row_units, plan.thresholds))
    )
    addr = draw_addresses(rng, r)
    moved = rng.random(r) < 0.5
    current_row = np.repeat(offsets(n_rows)[1:] - 1, n_rows)
    src = np.where(moved | current, np.arange(r), current_row)
    rows = {k: v[src] for k, v in addr.items()}
    rows.update(
        cust=row_cust,
        valid_from=valid_from,
        valid_to=valid_to,
        units=row_units,
        loyalty=row_loyalty,
        bad=np.zeros(r, dtype=bool),
    )
    return rows
