"""Bad records: extra rows with exactly one defect each, for ingestion to quarantine and count.

They come from streams of their own (``STREAM_BAD_CUSTOMERS``,
``STREAM_BAD_ORDERS``) and are inserted among the good rows, so the good rows
are byte-identical with or without them. A kind's records are spread over the
blocks, a few per block.
"""

from __future__ import annotations

import numpy as np

from custseg.data.generate.draws import (
    Base,
    Orders,
    block_rng,
    draw_addresses,
    draw_names,
    loyalty_of,
    offsets,
)
from custseg.data.generate.plan import Plan
from custseg.data.generate.spec import (
    BAD_CSV_ID_BASE,
    BAD_RECORD_KINDS,
    DAY,
    FUTURE_START,
    ORDER_NUMBER_STRIDE,
    STREAM_BAD_CUSTOMERS,
    STREAM_BAD_ORDERS,
    UNKNOWN_ID_BASE,
    WINDOW_END,
)


def _bad_in_block(plan: Plan, kind: str, block_id: int) -> np.ndarray:
    """Global indices of this kind's bad records that land in this block (spread over blocks)."""
    count = plan.bad[kind]
    shift = BAD_RECORD_KINDS.index(kind) * 7
    first = (block_id - shift) % plan.n_blocks
    return np.arange(first, count, plan.n_blocks, dtype=np.int64)


def _append(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``b``'s columns after ``a``'s."""
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _insert_at_random(rng: np.random.Generator, n_good: int, n_bad: int) -> np.ndarray:
    """The order that puts ``n_bad`` appended items at random places among ``n_good``."""
    where = np.concatenate([np.arange(n_good, dtype=float), rng.random(n_bad) * n_good])
    return np.argsort(where, kind="stable")


def with_bad_customers(
    plan: Plan, base: Base, names: dict[str, np.ndarray], rows: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """csv_field_count: a new customer whose name (one comma) is left unquoted, so 20 fields."""
    picked = _bad_in_block(plan, "csv_field_count", base.block_id)
    m = len(picked)
    if m == 0:
        return names, rows
    rng = block_rng(plan, STREAM_BAD_CUSTOMERS, base.block_id)
    extra = draw_names(rng, m, np.full(m, 0.04))
    extra["id"] = BAD_CSV_ID_BASE + picked
    units = rng.integers(0, 5, m)
    bad_rows = draw_addresses(rng, m)
    valid_from = WINDOW_END - rng.integers(30 * DAY, 1500 * DAY, m)  # drawn after the addresses
    bad_rows.update(
        cust=base.n + np.arange(m),
        valid_from=valid_from,
        valid_to=np.full(m, -1),
        units=units,
        loyalty=loyalty_of(units, plan.thresholds),
        bad=np.ones(m, dtype=bool),
    )
    order = _insert_at_random(rng, len(rows["cust"]), m)
    return _append(names, extra), {k: v[order] for k, v in _append(rows, bad_rows).items()}


def with_bad_orders(
    plan: Plan, base: Base, names: dict[str, np.ndarray], good: Orders
) -> tuple[dict[str, np.ndarray], Orders]:
    """Copies of valid orders, each with exactly one defect, at random places among the good
    ones."""
    kinds = [k for k in BAD_RECORD_KINDS if k not in ("csv_field_count", "duplicate_order")]
    picked = {k: _bad_in_block(plan, k, base.block_id) for k in [*kinds, "duplicate_order"]}
    if not any(len(v) for v in picked.values()):
        return names, good
    rng = block_rng(plan, STREAM_BAD_ORDERS, base.block_id)
    g = len(good.n_lines)
    counts = [len(picked[k]) for k in kinds]
    fresh = good.take(rng.integers(0, g, sum(counts)))
    kind_of = np.repeat(np.arange(len(kinds)), counts)

    def of_kind(name: str) -> np.ndarray:
        return kind_of == kinds.index(name)

    n_fresh = len(kind_of)
    fresh.o["number"] = base.block_id * ORDER_NUMBER_STRIDE + 1 + g + np.arange(n_fresh)
    fresh.o["malformed"] = of_kind("malformed_json")
    fresh.o["time_kind"] = of_kind("wrong_type").astype(np.int8)
    future = FUTURE_START + rng.integers(0, 364 * DAY, n_fresh)
    fresh.o["time"] = np.where(of_kind("future_timestamp"), future, fresh.o["time"])
    first_line = offsets(fresh.n_lines)[:-1]
    fresh.lines["qty"][first_line[of_kind("negative_quantity")]] *= -1
    fresh.lines["price"][first_line[of_kind("negative_price")]] *= -1
    unknown = picked["unknown_customer"]
    extra = draw_names(rng, len(unknown), np.full(len(unknown), 0.04))
    extra["id"] = UNKNOWN_ID_BASE + unknown
    fresh.o["cust"][of_kind("unknown_customer")] = len(names["id"]) + np.arange(len(unknown))

    duplicates = good.take(rng.integers(0, g, len(picked["duplicate_order"])))
    bad = Orders.concat(fresh, duplicates)
    order = _insert_at_random(rng, g, len(bad.n_lines))
    return _append(names, extra), Orders.concat(good, bad).take(order)
