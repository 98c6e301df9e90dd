"""The plan: everything a worker needs to draw any block, small and picklable.

``make_plan`` turns a validated request into the archetype table, the order
ranges scaled to the asked orders per customer, the loyalty thresholds, the
catalog and the block layout. Spark ships the plan to every task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from custseg.data.generate.catalog import Catalog, make_catalog
from custseg.data.generate.scenarios import REALISTIC, SEED, Archetype
from custseg.data.generate.spec import DESIGN_ORDERS, LOYALTY_THRESHOLDS

# The block layout. Changing one changes the generated content; the tests shrink
# them (by patching this module) to reach multi-block and multi-file cases quickly.
BLOCK_CUSTOMERS = 2_000  # customers drawn from one random stream
BLOCKS_PER_FILE = 25  # blocks per Spark partition, so per output part file
SINGLE_FILE_MAX = 200_000  # up to this many customers, customers.csv is one file


@dataclass(frozen=True)
class Plan:
    """One generation request, resolved: what every block is drawn from."""

    seed: int
    preset: str
    customers: int  # total customers (good)
    block_size: int
    n_blocks: int
    specs: tuple[Archetype, ...]
    orders_lo: np.ndarray  # per archetype, after scaling to orders_per_customer
    orders_hi: np.ndarray
    thresholds: tuple[int, ...]
    bad: dict[str, int]
    catalog: Catalog

    @property
    def single_file(self) -> bool:
        return self.customers <= SINGLE_FILE_MAX

    @property
    def partitions(self) -> int:
        return max(1, math.ceil(self.n_blocks / BLOCKS_PER_FILE))


def make_plan(
    customers: int, seed: int, preset: str, bad: dict[str, int], orders_per_customer: float
) -> Plan:
    """The plan for a request that ``spec.validate_scenario`` and ``validate_bad_records``
    passed."""
    specs: tuple[Archetype, ...]
    if preset == "seed":
        specs = SEED
        total = int(sum(s.weight for s in specs))
        scale = 1.0
    else:
        specs = REALISTIC
        total = int(customers)
        # relative to the design point, so the default uses the archetype table as written
        scale = _orders_scale(specs, orders_per_customer) / _orders_scale(specs, DESIGN_ORDERS)
    lo, hi = (
        np.array(v, dtype=np.int64)
        for v in zip(*(_scaled_orders(s, scale) for s in specs), strict=True)
    )
    thresholds = [0]
    for t in LOYALTY_THRESHOLDS[1:]:
        thresholds.append(max(thresholds[-1] + 1, round(t * scale)))
    block = total if preset == "seed" else BLOCK_CUSTOMERS
    return Plan(
        seed=seed,
        preset=preset,
        customers=total,
        block_size=block,
        n_blocks=math.ceil(total / block),
        specs=specs,
        orders_lo=lo,
        orders_hi=hi,
        thresholds=tuple(thresholds),
        bad=dict(bad),
        catalog=make_catalog(seed),
    )


def _scaled_orders(spec: Archetype, scale: float) -> tuple[int, int]:
    lo, hi = spec.orders
    if not spec.scales or hi == 0:
        return lo, hi
    lo = max(1, round(lo * scale))
    return lo, max(lo, round(hi * scale))


def _log_uniform_mean(lo: int, hi: int) -> float:
    """Exact mean of ``draws.log_int(lo, hi)``: P(x) = log((x+1)/x) / log((hi+1)/lo)."""
    if hi <= 0:
        return 0.0
    x = np.arange(lo, hi + 1, dtype=float)
    p = np.log((x + 1) / x) / math.log((hi + 1) / lo)
    return float((x * p).sum())


def _orders_scale(specs: tuple[Archetype, ...], target: float) -> float:
    """The factor on the scaling archetypes' order counts that gives ``target`` orders per
    customer."""

    def mean(scale: float) -> float:
        return sum(s.weight * _log_uniform_mean(*_scaled_orders(s, scale)) for s in specs)

    low, high = 0.01, 100.0
    for _ in range(60):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if mean(mid) < target else (low, mid)
    return math.sqrt(low * high)
