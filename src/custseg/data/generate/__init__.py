"""A synthetic dataset in the retail-org layout, with planted segments and bad records.

The real retail-org data cannot be downloaded here, and a generator with a known
answer is what clustering needs anyway: every customer with orders belongs to a
planted archetype (written to ``truth/customer_archetypes.csv``), so a later
stage can measure how well a method recovers it.

Generation runs on Spark with the DataFrame API only: ``spark.range(n_blocks)``
and ``mapInArrow``, where block ``b`` draws its customers and orders from
``numpy.random.default_rng([seed, stream, b])`` with vectorised numpy and
builds the CSV and JSON lines with Arrow compute kernels. Ten million
customers are a matter of cores, not of a Python loop on the driver, and the
same seed gives byte-identical files whatever the cluster: a block's content
depends only on the seed and its id, and the number of blocks and output
files only on the number of customers. Each pass (counts, truth, customers,
orders) recomputes only the streams it needs.

Bad records come from streams of their own and are added as extra rows, so
the good rows are byte-identical with or without them; each has exactly one
defect, so ingestion can count them exactly.

>>> generate(spark, "data/raw", customers=1_000, bad_records={"malformed_json": 3})  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from custseg.data import schemas
from custseg.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

BAD_RECORD_KINDS = (
    "malformed_json",
    "wrong_type",
    "negative_quantity",
    "negative_price",
    "duplicate_order",
    "unknown_customer",
    "future_timestamp",
    "csv_field_count",
)
PRESETS = ("realistic", "seed")

# The order window is fixed so the output never depends on today's date. The
# latest order is always exactly WINDOW_END, so the as-of date is 2019-12-31.
WINDOW_START = 1514764800  # 2018-01-01T00:00:00Z
WINDOW_END = 1577836799  # 2019-12-31T23:59:59Z
DAY = 86_400
FUTURE_START = 4102444800  # 2100-01-01T00:00:00Z

# Independent random streams, numpy.random.default_rng([seed, stream, block]), so
# each pass draws only what it needs and bad records never shift the good data.
_S_BASE, _S_BAD_CUSTOMERS, _S_CATALOG, _S_PEOPLE, _S_BASKET = 0, 1, 2, 3, 4
_S_EXTRAS, _S_BAD_ORDERS, _S_PRODUCT_CODES = 5, 6, 7

# Fixed layout constants: changing one changes the generated content.
BLOCK_CUSTOMERS = 2_000  # customers drawn from one random stream
BLOCKS_PER_FILE = 25  # blocks per Spark partition, so per output part file
SINGLE_FILE_MAX = 200_000  # up to this many customers, customers.csv is one file
MAX_CUSTOMERS = 500_000_000
MAX_BAD_RECORDS = 100_000  # per kind
CUSTOMER_ID_BASE = 10_000_000  # good customers: CUSTOMER_ID_BASE + index
BAD_CSV_ID_BASE = 900_000_000  # csv_field_count rows (never have orders)
UNKNOWN_ID_BASE = 950_000_000  # unknown_customer orders (never in customers.csv)
ORDER_NUMBER_STRIDE = 10_000_000  # order numbers of block b: b * stride + 1 ...
LOYALTY_THRESHOLDS = (0, 10, 40, 80)  # units for level_0..level_3 at DESIGN_ORDERS
DESIGN_ORDERS = 5.0  # mean orders per customer the archetype table is written for
LOYALTY_VALID_FROM = "2017-06-01"

_TIERS = ("cheap", "mid", "premium", "ultra")
_TIER_PRICE = {
    "cheap": (5, 40),
    "mid": (40, 500),
    "premium": (800, 4_000),
    "ultra": (4_000, 20_000),
}
RANDOM_TIER = -1  # the outliers' tier is drawn per customer
RANDOM_LOYALTY = -2  # the outliers' loyalty is drawn per customer


# -- archetypes --------------------------------------------------------------


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
    tier: int  # index into _TIERS, or RANDOM_TIER
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


_CHEAP, _MID, _PREMIUM, _ULTRA = range(4)
NO_ORDERS = "no_orders"

REALISTIC = (
    Archetype("steady_engaged", 0.34, (5, 11), (1, 3), (1, 2), _MID, (4, 7), (10, 24),
              (0, 21), (420, 700), (550, 1000), promo=0.08),
    Archetype("bargain_hunter", 0.14, (7, 14), (3, 4), (3, 6), _CHEAP, (2, 3), (25, 60),
              (0, 40), (250, 650), (350, 800), promo=0.55),
    Archetype("lapsed_at_risk", 0.14, (3, 5), (2, 3), (2, 3), _MID, (2, 4), (3, 8),
              (300, 620), (30, 300), (850, 1350), promo=0.08),
    Archetype("new_customer", 0.12, (1, 2), (1, 2), (1, 1), _MID, (1, 2), (1, 3),
              (0, 25), (0, 15), (1, 10), tenure_after_first_order=True, scales=False),
    Archetype("high_value_infrequent", 0.10, (2, 3), (1, 2), (1, 1), _PREMIUM, (1, 3), (2, 5),
              (60, 280), (60, 400), (450, 900), promo=0.05),
    Archetype("one_time_bulk_buyer", 0.05, (1, 1), (1, 2), (40, 150), _CHEAP, (1, 2), (1, 2),
              (30, 450), (0, 0), (0, 30), tenure_after_first_order=True, loyalty=0,
              promo=0.05, business=0.6, scales=False),
    Archetype("single_very_high_value", 0.015, (1, 1), (2, 3), (2, 5), _ULTRA, (1, 2), (2, 4),
              (10, 400), (0, 0), (400, 1000), loyalty=3, promo=0.0, scales=False),
    Archetype("outlier", 0.005, (1, 40), (1, 5), (1, 30), RANDOM_TIER, (1, 8), (1, 50),
              (0, 720), (0, 700), (0, 700), tenure_after_first_order=True,
              loyalty=RANDOM_LOYALTY, promo=0.2),
    Archetype(NO_ORDERS, 0.085, (0, 0), (1, 1), (1, 1), _MID, (1, 1), (1, 1),
              (0, 0), (0, 0), (30, 1500), scales=False),
)  # fmt: skip

# The seed analysis: 25 customers with orders in tight, far-apart groups of
# 16, 7, 1 and 1, plus 10 customers without orders. Loyalty is planted.
SEED = (
    Archetype("steady_engaged", 16, (7, 8), (2, 2), (2, 2), _MID, (2, 2), (5, 6),
              (0, 10), (600, 640), (680, 720), loyalty=1),
    Archetype("high_value_loyal", 7, (5, 5), (3, 3), (1, 1), _PREMIUM, (6, 6), (11, 12),
              (20, 30), (520, 560), (1000, 1060), loyalty=2),
    Archetype("one_time_bulk_buyer", 1, (1, 1), (2, 2), (120, 160), _CHEAP, (1, 1), (2, 2),
              (90, 110), (0, 0), (5, 10), tenure_after_first_order=True, loyalty=0, business=1.0),
    Archetype("single_very_high_value", 1, (1, 1), (3, 3), (4, 5), _ULTRA, (2, 2), (3, 3),
              (40, 50), (0, 0), (850, 900), loyalty=3, promo=0.0),
    Archetype(NO_ORDERS, 10, (0, 0), (1, 1), (1, 1), _MID, (1, 1), (1, 1),
              (0, 0), (0, 0), (30, 1500)),
)  # fmt: skip


# -- reference data (no quotes, backslashes, commas or semicolons unless meant) --

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
_PRODUCT_TYPES = {
    "cheap": ["USB-C Cable 2m", "Lightning Cable", "Wall Charger 20W", "Car Charger", "Screen Protector",
              "Phone Case", "Mouse Pad", "HDMI Cable 3m", "Memory Card 32GB", "Wired Earbuds",
              "Cable Organizer", "Stylus Pen", "AA Batteries 8-Pack", "Laptop Sleeve 13in"],
    "mid": ["Bluetooth Speaker", "Wireless Headphones", "Portable SSD 1TB", "External Hard Drive 2TB",
            "Soundbar", "Smart Watch", "Mechanical Keyboard", "Gaming Mouse", "HD Webcam", "Wi-Fi Router",
            "Action Camera", "E-Reader", "Studio Headphones", "Mini-System with Bluetooth and NFC"],
    "premium": ["65in 4K OLED TV", "Mirrorless Camera", "15in Laptop", "Smartphone Pro 256GB",
                "Digital Piano", "AV Receiver 9.2", "Gaming Laptop", "Tablet Pro 12.9in",
                "Full-Frame Camera Body", "NAS Server 8-Bay"],
    "ultra": ["85in 8K QLED TV", "Grand Piano", "Cinema Camera 8K", "Workstation Laptop 17in",
              "Home Theater System 11.4", "Medium Format Camera"],
}  # fmt: skip
_FIRST_NAMES = [
    "JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
    "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS",
    "SARAH", "CHARLES", "KAREN", "CHRISTOPHER", "LISA", "DANIEL", "NANCY", "MATTHEW", "BETTY",
    "ANTHONY", "SANDRA", "MARK", "MARGARET", "DONALD", "ASHLEY", "STEVEN", "KIMBERLY", "PAUL",
    "EMILY", "ANDREW", "DONNA", "JOSHUA", "MICHELLE", "KENNETH", "CAROL", "KEVIN", "AMANDA",
    "BRIAN", "MELISSA", "GEORGE", "DEBORAH", "TIMOTHY", "STEPHANIE", "RONALD", "REBECCA",
    "JASON", "SHARON", "EDWARD", "LAURA", "JEFFREY", "CYNTHIA", "RYAN", "SHIRLEY"
]  # fmt: skip
_LAST_NAMES = [
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR",
    "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ",
    "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT",
    "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL",
    "RIVERA", "CAMPBELL", "MITCHELL", "CARTER", "ROBERTS", "ROSEN", "VOSSLER", "BITTNER",
    "ZYSKOWSKI", "KOWALSKI", "OKAFOR", "LINDQVIST", "MORETTI", "HOFFMANN"
]  # fmt: skip
_INDUSTRIES = [
    "ENGINEERING", "SUPPLY", "ELECTRONICS", "MEDIA", "AUDIO", "LOGISTICS", "SYSTEMS", "STUDIOS"
]  # fmt: skip
_SUFFIXES = ("INC.", "LLC", "CO.")
_STREETS = [
    "N Baltimore St", "Maple Ave", "Oak St", "Pine Rd", "Cedar Ln", "Elm St", "Washington Blvd",
    "Lake Dr", "Hillcrest Rd", "Sunset Blvd", "Park Ave", "Main St", "2nd St", "3rd Ave",
    "Church St", "Highland Ave", "River Rd", "Meadow Ln", "Willow Way", "Jefferson St",
    "Lincoln Ave", "Franklin Rd", "Spring St", "Valley View Dr", "Mill Rd"
]  # fmt: skip
# state, city, region, district, lat, lon, first postcode
_CITIES = (
    ("IN", "BREMEN", "Indiana", "Marshall", 41.4464, -86.1481, 46506),
    ("IN", "VALPARAISO", "Indiana", "Porter", 41.4731, -87.0611, 46383),
    ("IN", "PLYMOUTH", "Indiana", "Marshall", 41.3437, -86.3097, 46563),
    ("CA", "FRESNO", "California", "Fresno", 36.7378, -119.7871, 93701),
    ("CA", "SAN JOSE", "California", "Santa Clara", 37.3382, -121.8863, 95112),
    ("OR", "EUGENE", "Oregon", "Lane", 44.0521, -123.0868, 97401),
    ("OR", "PORTLAND", "Oregon", "Multnomah", 45.5152, -122.6784, 97201),
    ("WA", "SPOKANE", "Washington", "Spokane", 47.6588, -117.4260, 99201),
    ("TX", "AUSTIN", "Texas", "Travis", 30.2672, -97.7431, 78701),
    ("TX", "EL PASO", "Texas", "El Paso", 31.7619, -106.4850, 79901),
    ("NY", "ALBANY", "New York", "Albany", 42.6526, -73.7562, 12203),
    ("NY", "BUFFALO", "New York", "Erie", 42.8864, -78.8784, 14201),
    ("IL", "SPRINGFIELD", "Illinois", "Sangamon", 39.7817, -89.6501, 62701),
    ("IL", "PEORIA", "Illinois", "Peoria", 40.6936, -89.5890, 61602),
    ("OH", "DAYTON", "Ohio", "Montgomery", 39.7589, -84.1916, 45402),
    ("OH", "TOLEDO", "Ohio", "Lucas", 41.6528, -83.5379, 43604),
    ("MI", "LANSING", "Michigan", "Ingham", 42.7325, -84.5555, 48933),
    ("MI", "GRAND RAPIDS", "Michigan", "Kent", 42.9634, -85.6681, 49503),
    ("PA", "ERIE", "Pennsylvania", "Erie", 42.1292, -80.0851, 16501),
    ("PA", "SCRANTON", "Pennsylvania", "Lackawanna", 41.4090, -75.6624, 18503),
    ("FL", "TAMPA", "Florida", "Hillsborough", 27.9506, -82.4572, 33602),
    ("FL", "GAINESVILLE", "Florida", "Alachua", 29.6516, -82.3248, 32601),
    ("GA", "MACON", "Georgia", "Bibb", 32.8407, -83.6324, 31201),
    ("NC", "RALEIGH", "North Carolina", "Wake", 35.7796, -78.6382, 27601),
    ("CO", "BOULDER", "Colorado", "Boulder", 40.0150, -105.2705, 80302),
    ("AZ", "TUCSON", "Arizona", "Pima", 32.2226, -110.9747, 85701),
    ("MN", "DULUTH", "Minnesota", "", 46.7867, -92.1005, 55802),
    ("WI", "MADISON", "Wisconsin", "Dane", 43.0731, -89.4012, 53703),
    ("TN", "KNOXVILLE", "Tennessee", "Knox", 35.9606, -83.9207, 37902),
    ("MA", "WORCESTER", "Massachusetts", "", 42.2626, -71.8023, 1608),
)
_PROMO_CODES = ("NEW10", "SAVE15", "SPRING20", "VIP5", "BUNDLE10", "FLASH25")
_PROMO_DISCS = ("0.05", "0.1", "0.15", "0.2", "0.25")
_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))


# -- public API ----------------------------------------------------------------


@dataclass(frozen=True)
class GenerateSummary:
    """What ``generate`` wrote. Counts of good rows exclude the injected bad records."""

    out: str
    preset: str
    seed: int
    customers: int  # distinct customers in customers.csv (good ones)
    customer_rows: int  # data rows in the customers CSV files: history rows and bad rows included
    customers_with_orders: int
    orders: int  # valid, distinct orders
    order_records: int  # lines in sales_orders: valid orders plus every injected bad order line
    products: int
    bad_records: dict[str, int]
    seconds: float
    files: int  # data files written under out


def generate(
    spark: SparkSession,
    out: str | Path,
    customers: int = 10_000,
    seed: int = 42,
    preset: Literal["realistic", "seed"] = "realistic",
    bad_records: Mapping[str, int] | None = None,
    orders_per_customer: float = 5.0,
    compress_orders: bool = False,
) -> GenerateSummary:
    """Write a retail-org dataset (plus ``truth/`` and ``_injected.json``) under ``out``.

    Everything is written to a staging folder first and moved into place at
    the end, so a failed run leaves a previous dataset in ``out`` intact.
    ``out`` is a local path that the executors can write to (local mode or a
    shared file system): part files are renamed and concatenated on the driver.
    ``customers`` and ``orders_per_customer`` are ignored by the ``seed`` preset.
    ``compress_orders`` writes the sales_orders files gzip-compressed (``.json.gz``, about
    a seventh of the bytes; Spark reads them as they are, one task per file).
    """
    started = time.perf_counter()
    bad = validate_bad_records(bad_records)
    _validate(customers, seed, preset, orders_per_customer)
    plan = _make_plan(customers, seed, preset, bad, orders_per_customer)

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = out_dir / f".generate-{uuid.uuid4().hex[:12]}"
    try:
        stats = _stats(spark, plan)
        written = _write_all(spark, plan, stage, compress_orders)
        _publish(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

    order_bad = sum(v for k, v in bad.items() if k != "csv_field_count")
    return GenerateSummary(
        out=str(out_dir),
        preset=preset,
        seed=seed,
        customers=stats["customers"],
        customer_rows=stats["customer_rows"] + bad["csv_field_count"],
        customers_with_orders=stats["with_orders"],
        orders=stats["orders"],
        order_records=stats["orders"] + order_bad,
        products=len(plan.catalog.ids),
        bad_records=dict(bad),
        seconds=round(time.perf_counter() - started, 3),
        files=written,
    )


def validate_bad_records(bad_records: Mapping[str, int] | None) -> dict[str, int]:
    """Every kind with its count (0 when not asked for); unknown kinds and bad counts are refused."""
    counts = dict.fromkeys(BAD_RECORD_KINDS, 0)
    accepted = ", ".join(BAD_RECORD_KINDS)
    for kind, count in (bad_records or {}).items():
        if kind not in counts:
            raise ConfigError(f"unknown bad record kind {kind!r}; accepted kinds: {accepted}")
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise ConfigError(f"bad record count for {kind!r} must be an integer, got {count!r}")
        if count < 0:
            raise ConfigError(f"bad record count for {kind!r} must be >= 0, got {count}")
        if count > MAX_BAD_RECORDS:
            raise ConfigError(
                f"bad record count for {kind!r} must be <= {MAX_BAD_RECORDS}, got {count}"
            )
        counts[kind] = int(count)
    return counts


def _validate(customers: int, seed: int, preset: str, orders_per_customer: float) -> None:
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if isinstance(customers, bool) or not isinstance(customers, (int, np.integer)):
        raise ConfigError(f"customers must be an integer, got {customers!r}")
    if customers < 1:
        raise ConfigError(f"customers must be >= 1, got {customers}")
    if customers > MAX_CUSTOMERS:
        raise ConfigError(f"customers must be <= {MAX_CUSTOMERS}, got {customers}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be between 0 and {2**32 - 1}, got {seed}")
    if isinstance(orders_per_customer, bool) or not isinstance(orders_per_customer, (int, float)):
        raise ConfigError(f"orders_per_customer must be a number, got {orders_per_customer!r}")
    if not 1.0 <= orders_per_customer <= 100.0:
        raise ConfigError(
            f"orders_per_customer must be between 1 and 100, got {orders_per_customer}"
        )


# -- the plan: everything a worker needs, small and picklable -----------------------


@dataclass(frozen=True)
class _Catalog:
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


@dataclass(frozen=True)
class _Plan:
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
    catalog: _Catalog

    @property
    def single_file(self) -> bool:
        return self.customers <= SINGLE_FILE_MAX

    @property
    def partitions(self) -> int:
        return max(1, math.ceil(self.n_blocks / BLOCKS_PER_FILE))


def _make_plan(
    customers: int, seed: int, preset: str, bad: dict[str, int], orders_per_customer: float
) -> _Plan:
    specs: tuple[Archetype, ...]
    if preset == "seed":
        specs = SEED
        total = int(sum(s.weight for s in specs))
        scale = 1.0
    else:
        specs = REALISTIC
        total = int(customers)
        # relative to the design point, so the default uses the table above as written
        scale = _orders_scale(specs, orders_per_customer) / _orders_scale(specs, DESIGN_ORDERS)
    lo, hi = (
        np.array(v, dtype=np.int64)
        for v in zip(*(_scaled_orders(s, scale) for s in specs), strict=True)
    )
    thresholds = [0]
    for t in LOYALTY_THRESHOLDS[1:]:
        thresholds.append(max(thresholds[-1] + 1, round(t * scale)))
    block = total if preset == "seed" else BLOCK_CUSTOMERS
    return _Plan(
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
        catalog=_make_catalog(seed),
    )


def _scaled_orders(spec: Archetype, scale: float) -> tuple[int, int]:
    lo, hi = spec.orders
    if not spec.scales or hi == 0:
        return lo, hi
    lo = max(1, round(lo * scale))
    return lo, max(lo, round(hi * scale))


def _log_uniform_mean(lo: int, hi: int) -> float:
    """Exact mean of ``_log_int(lo, hi)``: P(x) = log((x+1)/x) / log((hi+1)/lo)."""
    if hi <= 0:
        return 0.0
    x = np.arange(lo, hi + 1, dtype=float)
    p = np.log((x + 1) / x) / math.log((hi + 1) / lo)
    return float((x * p).sum())


def _orders_scale(specs: tuple[Archetype, ...], target: float) -> float:
    """The factor on the scaling archetypes' order counts that gives ``target`` orders per customer."""

    def mean(scale: float) -> float:
        return sum(s.weight * _log_uniform_mean(*_scaled_orders(s, scale)) for s in specs)

    low, high = 0.01, 100.0
    for _ in range(60):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if mean(mid) < target else (low, mid)
    return math.sqrt(low * high)


def _make_catalog(seed: int) -> _Catalog:
    """A few hundred products in ten brand-like categories, each in one or more price tiers."""
    rng = np.random.default_rng([seed, _S_CATALOG, 0])
    categories = list(_CATEGORY_TIERS)
    ids: list[str] = []
    names: list[str] = []
    cat_idx: list[int] = []
    tiers: list[int] = []
    prices: list[int] = []
    seen: set[str] = set()
    for c, category in enumerate(categories):
        for tier_name, count in _CATEGORY_TIERS[category].items():
            tier = _TIERS.index(tier_name)
            lo, hi = _TIER_PRICE[tier_name]
            types = _PRODUCT_TYPES[tier_name]
            for _ in range(count):
                while True:
                    pid = "AV" + "".join(rng.choice(_ID_ALPHABET, 18))
                    if pid not in seen:
                        seen.add(pid)
                        break
                kind = types[int(rng.integers(len(types)))]
                model = f"{chr(65 + int(rng.integers(26)))}{chr(65 + int(rng.integers(26)))}-{int(rng.integers(100, 1000))}"
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
    pool_start = np.zeros((len(_TIERS), len(categories)), dtype=np.int64)
    pool_count = np.zeros_like(pool_start)
    for t in range(len(_TIERS)):
        for c in range(len(categories)):
            members = np.flatnonzero((tier_of[pool] == t) & (category_of[pool] == c))
            if len(members):
                pool_start[t, c] = members[0]
                pool_count[t, c] = len(members)
    return _Catalog(
        ids=ids,
        names=names,
        categories=categories,
        category=category_of,
        tier=tier_of,
        price=np.array(prices, dtype=np.int64),
        pool=pool,
        pool_start=pool_start,
        pool_count=pool_count,
        tier_categories=tuple(np.flatnonzero(pool_count[t] > 0) for t in range(len(_TIERS))),
    )


# -- numeric simulation of one block (vectorised numpy) -----------------------------


def _log_int(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integers in [lo, hi], log-uniform: many small values, a long right tail. hi = 0 gives 0."""
    lo = np.maximum(lo, 1)
    u = rng.random(lo.shape)
    x = np.floor(np.exp(np.log(lo) + u * (np.log(hi + 1.0) - np.log(lo)))).astype(np.int64)
    return np.where(hi <= 0, 0, np.clip(x, lo, np.maximum(hi, lo)))


def _uni_int(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (lo + np.floor(rng.random(np.shape(lo)) * (hi - lo + 1))).astype(np.int64)


def _uniform(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
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


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _loyalty_of(units: np.ndarray, thresholds: tuple[int, ...]) -> np.ndarray:
    return np.searchsorted(np.asarray(thresholds), units, side="right") - 1


@dataclass
class _Orders:
    """Orders with their lines and clicked items, laid out order after order."""

    o: dict[str, np.ndarray]
    lines: dict[str, np.ndarray]
    clicks: dict[str, np.ndarray]
    n_lines: np.ndarray
    n_clicks: np.ndarray

    def take(self, idx: np.ndarray) -> _Orders:
        line_idx = _ranges(_offsets(self.n_lines)[:-1][idx], self.n_lines[idx])
        click_idx = _ranges(_offsets(self.n_clicks)[:-1][idx], self.n_clicks[idx])
        return _Orders(
            {k: v[idx] for k, v in self.o.items()},
            {k: v[line_idx] for k, v in self.lines.items()},
            {k: v[click_idx] for k, v in self.clicks.items()},
            self.n_lines[idx],
            self.n_clicks[idx],
        )

    @staticmethod
    def concat(a: _Orders, b: _Orders) -> _Orders:
        return _Orders(
            {k: np.concatenate([a.o[k], b.o[k]]) for k in a.o},
            {k: np.concatenate([a.lines[k], b.lines[k]]) for k in a.lines},
            {k: np.concatenate([a.clicks[k], b.clicks[k]]) for k in a.clicks},
            np.concatenate([a.n_lines, b.n_lines]),
            np.concatenate([a.n_clicks, b.n_clicks]),
        )


def _rng(plan: _Plan, stream: int, block_id: int) -> np.random.Generator:
    return np.random.default_rng([plan.seed, stream, block_id])


@dataclass
class _Base:
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

    def spec(self, plan: _Plan, field: str, i: int | None = None) -> np.ndarray:
        values = [getattr(s, field) if i is None else getattr(s, field)[i] for s in plan.specs]
        return np.array(values)[self.arch]


def _base(plan: _Plan, block_id: int) -> _Base:
    rng = _rng(plan, _S_BASE, block_id)
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
    base = _Base(block_id, n, CUSTOMER_ID_BASE + first + np.arange(n, dtype=np.int64), arch,
                 *([np.zeros(0)] * 7))  # fmt: skip

    def spec(field: str, i: int | None = None) -> np.ndarray:
        return base.spec(plan, field, i)

    base.n_orders = _log_int(rng, plan.orders_lo[arch], plan.orders_hi[arch])
    tier = spec("tier")
    base.tier = np.where(tier == RANDOM_TIER, rng.integers(0, len(_TIERS), n), tier)
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
    single = (arch == _index(specs, "new_customer")) | (WINDOW_END - base.first_vf < 3 * DAY)
    base.n_rows = np.where(single, 1, n_rows)
    return base


@dataclass
class _Basket:
    """The block's valid orders (chronological) and what each customer bought in total."""

    cust: np.ndarray  # per order
    time: np.ndarray
    n_lines: np.ndarray
    product: np.ndarray  # per line, order after order
    qty: np.ndarray
    units: np.ndarray  # per customer
    loyalty: np.ndarray


def _basket(plan: _Plan, base: _Base) -> _Basket:
    rng = _rng(plan, _S_BASKET, base.block_id)
    cat = plan.catalog
    n, n_orders, tier = base.n, base.n_orders, base.tier

    def spec(field: str, i: int | None = None) -> np.ndarray:
        return base.spec(plan, field, i)

    # order times: first and last fixed, the others uniform in between
    order_cust = np.repeat(np.arange(n), n_orders)
    n_total = len(order_cust)
    pos = np.arange(n_total) - np.repeat(_offsets(n_orders)[:-1], n_orders)
    u = rng.random(n_total)
    u[pos == 0] = 0.0
    u[pos == n_orders[order_cust] - 1] = 1.0
    span = (base.last - base.first_order)[order_cust]
    order_time = base.first_order[order_cust] + np.round(u * span).astype(np.int64)

    # each customer's categories and personal product pool
    n_cats = np.array([len(c) for c in cat.tier_categories])[tier]
    k = np.minimum(_uni_int(rng, spec("categories", 0), spec("categories", 1)), n_cats)
    pool_size = np.where(n_orders > 0, _log_int(rng, spec("products", 0), spec("products", 1)), 0)
    pool_cust = np.repeat(np.arange(n), pool_size)
    slot = (np.arange(len(pool_cust)) - np.repeat(_offsets(pool_size)[:-1], pool_size)) % k[
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

    # order lines: consecutive entries of the personal pool
    n_lines = _uni_int(rng, spec("lines", 0)[order_cust], spec("lines", 1)[order_cust])
    start = np.floor(rng.random(n_total) * pool_size[order_cust]).astype(np.int64)
    line_order = np.repeat(np.arange(n_total), n_lines)
    j = np.arange(len(line_order)) - np.repeat(_offsets(n_lines)[:-1], n_lines)
    lc = order_cust[line_order]
    product = pool_product[_offsets(pool_size)[:-1][lc] + (start[line_order] + j) % pool_size[lc]]
    qty = _log_int(rng, spec("qty", 0)[lc], spec("qty", 1)[lc])

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
    loyalty = _loyalty_of(units, plan.thresholds)
    planted = np.array([-1 if s.loyalty is None else s.loyalty for s in plan.specs])[base.arch]
    loyalty = np.where(planted >= 0, planted, loyalty)
    loyalty = np.where(planted == RANDOM_LOYALTY, base.random_loyalty, loyalty)
    return _Basket(cust, order_time[chrono], np.bincount(line_rank, minlength=n_total),
                   key % n_products, qty, units, loyalty)  # fmt: skip


def _orders(plan: _Plan, base: _Base, basket: _Basket) -> _Orders:
    """The valid orders with order numbers, promotions and clicked items."""
    rng = _rng(plan, _S_EXTRAS, base.block_id)
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
    first_line = _offsets(basket.n_lines)[:-1]
    return _Orders(
        o={
            "cust": basket.cust,  # index into the block's names and ids
            "time": basket.time,
            "number": base.block_id * ORDER_NUMBER_STRIDE + 1 + np.arange(n_total, dtype=np.int64),
            "time_kind": np.zeros(n_total, dtype=np.int8),  # 1 = "yesterday"
            "malformed": np.zeros(n_total, dtype=bool),
            "promo": rng.random(n_total) < promo_rate,
            "promo_code": rng.integers(0, len(_PROMO_CODES), n_total),
            "promo_disc": rng.integers(0, len(_PROMO_DISCS), n_total),
            "promo_id": rng.integers(1, 500, n_total),
            "promo_item": basket.product[np.minimum(first_line, max(n_lines - 1, 0))],
            "promo_qty": rng.integers(1, 4, n_total),
        },
        lines={
            "product": basket.product,
            "qty": basket.qty,
            "price": plan.catalog.price[basket.product],
            "promo": rng.random(n_lines) < line_promo_rate,
            "promo_disc": rng.integers(0, len(_PROMO_DISCS), n_lines),
            "promo_id": rng.integers(1, 500, n_lines),
        },
        clicks={
            "product": click_product[click_sort],
            "count": rng.integers(1, 31, len(click_sort)),
        },
        n_lines=basket.n_lines,
        n_clicks=basket.n_lines + extra,
    )


def _draw_names(
    rng: np.random.Generator, n: int, business_rate: np.ndarray
) -> dict[str, np.ndarray]:
    return {
        "first": rng.integers(0, len(_FIRST_NAMES), n),
        "last": rng.integers(0, len(_LAST_NAMES), n),
        "industry": rng.integers(0, len(_INDUSTRIES), n),
        "suffix": rng.integers(0, len(_SUFFIXES), n),
        "business": rng.random(n) < business_rate,
        "tax": rng.integers(100_000_000, 1_000_000_000, n),
    }


def _draw_addresses(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "city": rng.integers(0, len(_CITIES), n),
        "street": rng.integers(0, len(_STREETS), n),
        "number": _log_int(rng, np.ones(n, dtype=np.int64), np.full(n, 9_999)),
        "unit": np.where(rng.random(n) < 0.15, rng.integers(1, 40, n), 0),
        "zip": rng.integers(0, 30, n),
        "dlat": rng.uniform(-0.08, 0.08, n),
        "dlon": rng.uniform(-0.08, 0.08, n),
    }


def _names(plan: _Plan, base: _Base) -> dict[str, np.ndarray]:
    names = _draw_names(_rng(plan, _S_PEOPLE, base.block_id), base.n, base.spec(plan, "business"))
    names["id"] = base.cust_id
    return names


def _rows(plan: _Plan, base: _Base, basket: _Basket) -> dict[str, np.ndarray]:
    """customers.csv rows: history oldest first; older rows have fewer units and may hold an old address."""
    rng = _rng(plan, _S_PEOPLE, base.block_id)
    _draw_names(rng, base.n, base.spec(plan, "business"))  # the stream's first draws are the names
    n_rows, first_vf = base.n_rows, base.first_vf
    row_cust = np.repeat(np.arange(base.n), n_rows)
    r = len(row_cust)
    row_pos = np.arange(r) - np.repeat(_offsets(n_rows)[:-1], n_rows)
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
        current, loyalty, np.minimum(loyalty, _loyalty_of(row_units, plan.thresholds))
    )
    addr = _draw_addresses(rng, r)
    moved = rng.random(r) < 0.5
    current_row = np.repeat(_offsets(n_rows)[1:] - 1, n_rows)
    src = np.where(moved | current, np.arange(r), current_row)
    rows = {k: v[src] for k, v in addr.items()}
    rows.update(cust=row_cust, valid_from=valid_from, valid_to=valid_to, units=row_units,
                loyalty=row_loyalty, bad=np.zeros(r, dtype=bool))  # fmt: skip
    return rows


def _index(specs: tuple[Archetype, ...], name: str) -> int:
    return next((i for i, s in enumerate(specs) if s.name == name), -1)


def _bad_in_block(plan: _Plan, kind: str, block_id: int) -> np.ndarray:
    """Global indices of this kind's bad records that land in this block (spread over blocks)."""
    count = plan.bad[kind]
    shift = BAD_RECORD_KINDS.index(kind) * 7
    first = (block_id - shift) % plan.n_blocks
    return np.arange(first, count, plan.n_blocks, dtype=np.int64)


def _append(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _insert_at_random(rng: np.random.Generator, n_good: int, n_bad: int) -> np.ndarray:
    """The order that puts ``n_bad`` appended items at random places among ``n_good``."""
    where = np.concatenate([np.arange(n_good, dtype=float), rng.random(n_bad) * n_good])
    return np.argsort(where, kind="stable")


def _with_bad_customers(
    plan: _Plan, base: _Base, names: dict[str, np.ndarray], rows: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """csv_field_count: a new customer whose name (one comma) is left unquoted, so 20 fields."""
    picked = _bad_in_block(plan, "csv_field_count", base.block_id)
    m = len(picked)
    if m == 0:
        return names, rows
    rng = _rng(plan, _S_BAD_CUSTOMERS, base.block_id)
    extra = _draw_names(rng, m, np.full(m, 0.04))
    extra["id"] = BAD_CSV_ID_BASE + picked
    units = rng.integers(0, 5, m)
    bad_rows = _draw_addresses(rng, m)
    bad_rows.update(cust=base.n + np.arange(m), valid_from=WINDOW_END - rng.integers(30 * DAY, 1500 * DAY, m),
                    valid_to=np.full(m, -1), units=units, loyalty=_loyalty_of(units, plan.thresholds),
                    bad=np.ones(m, dtype=bool))  # fmt: skip
    order = _insert_at_random(rng, len(rows["cust"]), m)
    return _append(names, extra), {k: v[order] for k, v in _append(rows, bad_rows).items()}


def _with_bad_orders(
    plan: _Plan, base: _Base, names: dict[str, np.ndarray], good: _Orders
) -> tuple[dict[str, np.ndarray], _Orders]:
    """Copies of valid orders, each with exactly one defect, at random places among the good ones."""
    kinds = [k for k in BAD_RECORD_KINDS if k not in ("csv_field_count", "duplicate_order")]
    picked = {k: _bad_in_block(plan, k, base.block_id) for k in [*kinds, "duplicate_order"]}
    if not any(len(v) for v in picked.values()):
        return names, good
    rng = _rng(plan, _S_BAD_ORDERS, base.block_id)
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
    first_line = _offsets(fresh.n_lines)[:-1]
    fresh.lines["qty"][first_line[of_kind("negative_quantity")]] *= -1
    fresh.lines["price"][first_line[of_kind("negative_price")]] *= -1
    unknown = picked["unknown_customer"]
    extra = _draw_names(rng, len(unknown), np.full(len(unknown), 0.04))
    extra["id"] = UNKNOWN_ID_BASE + unknown
    fresh.o["cust"][of_kind("unknown_customer")] = len(names["id"]) + np.arange(len(unknown))

    duplicates = good.take(rng.integers(0, g, len(picked["duplicate_order"])))
    bad = _Orders.concat(fresh, duplicates)
    order = _insert_at_random(rng, g, len(bad.n_lines))
    return _append(names, extra), _Orders.concat(good, bad).take(order)


@dataclass
class _Block:
    """Everything one pass needs to write a block's lines."""

    base: _Base
    names: dict[str, np.ndarray]  # good customers, then injected ones
    rows: dict[str, np.ndarray] | None = None  # customers.csv rows in output order
    orders: _Orders | None = None  # sales_orders records in output order


def _customers_block(plan: _Plan, block_id: int) -> _Block:
    base = _base(plan, block_id)
    names, rows = _with_bad_customers(
        plan, base, _names(plan, base), _rows(plan, base, _basket(plan, base))
    )
    return _Block(base, names, rows=rows)


def _orders_block(plan: _Plan, block_id: int) -> _Block:
    base = _base(plan, block_id)
    names, orders = _with_bad_orders(
        plan, base, _names(plan, base), _orders(plan, base, _basket(plan, base))
    )
    return _Block(base, names, orders=orders)


# -- text: Arrow compute kernels build the CSV and JSON lines ---------------------------


def _cat(*parts: Any) -> pa.Array:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")


def _text(values: np.ndarray) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(pa.array(values), pa.string())


def _lookup(table: list[str] | tuple[str, ...], idx: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return pa.array(table, pa.string()).take(pa.array(idx))


def _name_text(names: dict[str, np.ndarray]) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    last = _lookup(_LAST_NAMES, names["last"])
    person = _cat(last, ",  ", _lookup(_FIRST_NAMES, names["first"]))
    business = _cat(
        last,
        " ",
        _lookup(_INDUSTRIES, names["industry"]),
        ", ",
        _lookup(_SUFFIXES, names["suffix"]),
    )
    return pc.if_else(pa.array(names["business"]), business, person)


def _customer_lines(block: _Block) -> pa.Array:
    """customers.csv rows; the name and the address are quoted (they hold commas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = block.rows
    assert rows is not None
    cust = rows["cust"]
    names = _name_text(block.names).take(pa.array(cust))
    business = block.names["business"][cust]
    city = rows["city"]
    col = list(zip(*_CITIES, strict=True))
    state = _lookup(col[0], city)
    postcode = _cat(_text(np.array(col[6])[city] + rows["zip"]), ".0")
    street = _lookup(_STREETS, rows["street"])
    number = _text(rows["number"])
    unit = pc.if_else(pa.array(rows["unit"] > 0), _cat("APT ", _text(rows["unit"])), "")
    lon = pc.cast(pc.round(pa.array(np.array(col[5])[city] + rows["dlon"]), 5), pa.string())
    lat = pc.cast(pc.round(pa.array(np.array(col[4])[city] + rows["dlat"]), 5), pa.string())
    address = _cat(state, ", ", postcode, ", ", street, ", ", number)
    quoted_name = pc.if_else(pa.array(rows["bad"]), names, _cat('"', names, '"'))
    return pc.binary_join_element_wise(
        _text(block.names["id"][cust]),
        pc.if_else(pa.array(business), _text(block.names["tax"][cust]), ""),
        pc.if_else(pa.array(business), "EIN", ""),
        quoted_name,
        state,
        _lookup(col[1], city),
        postcode,
        street,
        number,
        unit,
        _lookup(col[2], city),
        _lookup(col[3], city),
        lon,
        lat,
        _cat('"', address, '"'),
        _text(rows["valid_from"]),
        pc.if_else(pa.array(rows["valid_to"] < 0), "", _text(rows["valid_to"])),
        _text(rows["units"]),
        _text(rows["loyalty"]),
        ",",
    )


def _json_lists(items: pa.Array, counts: np.ndarray) -> pa.Array:
    """'[a,b,...]' per group of ``counts`` consecutive items."""
    import pyarrow as pa
    import pyarrow.compute as pc

    offsets = pa.array(_offsets(counts).astype(np.int32))
    return _cat("[", pc.binary_join(pa.ListArray.from_arrays(offsets, items), ","), "]")


def _order_lines(block: _Block, catalog: _Catalog) -> pa.Array:
    """sales_orders JSON lines, keys in the order Spark writes them (alphabetical)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    orders = block.orders
    assert orders is not None
    o, ln, ck = orders.o, orders.lines, orders.clicks
    ids = pa.array(catalog.ids, pa.string())
    product_names = pa.array(catalog.names, pa.string())
    discs = pa.array(_PROMO_DISCS, pa.string())

    line_promo = _cat(
        '{"promo_disc":', discs.take(pa.array(ln["promo_disc"])),
        ',"promo_id":', _text(ln["promo_id"]),
        ',"promo_item":"', ids.take(pa.array(ln["product"])), '","promo_qty":1}',
    )  # fmt: skip
    products = _cat(
        '{"curr":"USD","id":"', ids.take(pa.array(ln["product"])),
        '","name":"', product_names.take(pa.array(ln["product"])),
        '","price":', _text(ln["price"]),
        ',"promotion_info":', pc.if_else(pa.array(ln["promo"]), line_promo, "null"),
        ',"qty":', _text(ln["qty"]), ',"unit":"pcs"}',
    )  # fmt: skip
    clicks = _cat('["', ids.take(pa.array(ck["product"])), '","', _text(ck["count"]), '"]')
    promo = _cat(
        '[{"promo_code":"', _lookup(_PROMO_CODES, o["promo_code"]),
        '","promo_disc":', discs.take(pa.array(o["promo_disc"])),
        ',"promo_id":', _text(o["promo_id"]),
        ',"promo_item":"', ids.take(pa.array(o["promo_item"])),
        '","promo_qty":', _text(o["promo_qty"]), "}]",
    )  # fmt: skip
    when = pc.if_else(pa.array(o["time_kind"] == 1), "yesterday", _text(o["time"]))
    cust = pa.array(o["cust"])
    text = _cat(
        '{"clicked_items":', _json_lists(clicks, orders.n_clicks),
        ',"customer_id":"', _text(block.names["id"]).take(cust),
        '","customer_name":"', _name_text(block.names).take(cust),
        '","number_of_line_items":"', _text(orders.n_lines),
        '","order_datetime":"', when,
        '","order_number":', _text(o["number"]),
        ',"ordered_products":', _json_lists(products, orders.n_lines),
        ',"promo_info":', pc.if_else(pa.array(o["promo"]), promo, "null"), "}",
    )  # fmt: skip
    # malformed_json: the closing brace is cut off
    return pc.if_else(pa.array(o["malformed"]), pc.utf8_slice_codeunits(text, 0, -1), text)


def _truth_lines(base: _Base, plan: _Plan) -> pa.Array:
    """customer_id,archetype for every customer with orders."""
    import pyarrow as pa

    keep = base.n_orders > 0
    names = pa.array([s.name for s in plan.specs], pa.string())
    return _cat(_text(base.cust_id[keep]), ",", names.take(pa.array(base.arch[keep])))


# -- Spark jobs -------------------------------------------------------------------------


def _partition_lines(
    batches: Iterator[pa.RecordBatch], plan: _Plan, kind: str, header: str | None
) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: one text batch per block id of the partition, header first if asked."""
    import pyarrow as pa

    if header is not None:
        yield pa.RecordBatch.from_arrays([pa.array([header], pa.string())], ["value"])
    for batch in batches:
        for block_id in batch.column(0).to_pylist():
            if kind == "customers":
                text = _customer_lines(_customers_block(plan, int(block_id)))
            elif kind == "orders":
                text = _order_lines(_orders_block(plan, int(block_id)), plan.catalog)
            else:
                text = _truth_lines(_base(plan, int(block_id)), plan)
            yield pa.RecordBatch.from_arrays([text], ["value"])


def _partition_stats(batches: Iterator[pa.RecordBatch], plan: _Plan) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    for batch in batches:
        for block_id in batch.column(0).to_pylist():
            base = _base(plan, int(block_id))
            values = {
                "customers": base.n,
                "customer_rows": int(base.n_rows.sum()),
                "with_orders": int((base.n_orders > 0).sum()),
                "orders": int(base.n_orders.sum()),
            }
            yield pa.RecordBatch.from_pydict(
                {k: pa.array([v], pa.int64()) for k, v in values.items()}
            )


_STATS = ("customers", "customer_rows", "with_orders", "orders")


def _blocks(spark: SparkSession, plan: _Plan) -> DataFrame:
    # A fixed number of partitions: output files depend on the data size, never on the cluster.
    return spark.range(0, plan.n_blocks, 1, plan.partitions)


def _stats(spark: SparkSession, plan: _Plan) -> dict[str, int]:
    """Row counts for the summary from the cheap first stream, summed by Spark: one row reaches the driver."""
    import pyspark.sql.functions as F

    schema = ", ".join(f"{c} long" for c in _STATS)
    df = _blocks(spark, plan).mapInArrow(functools.partial(_partition_stats, plan=plan), schema)
    row = df.agg(*[F.sum(c).alias(c) for c in _STATS]).first()
    assert row is not None
    return {c: int(row[c]) for c in _STATS}


def _write_text(
    spark: SparkSession,
    plan: _Plan,
    kind: str,
    path: Path,
    header: str | None,
    compression: str = "none",
) -> list[Path]:
    fn = functools.partial(_partition_lines, plan=plan, kind=kind, header=header)
    lines = _blocks(spark, plan).mapInArrow(fn, "value string")
    lines.write.mode("overwrite").option("compression", compression).text(str(path))
    # part-00000-<uuid>-c000.txt: the number is the partition, so name order is block order
    return sorted(
        p for p in path.iterdir() if p.name.startswith("part-") and not p.name.endswith(".crc")
    )


def _concatenate(parts: list[Path], target: Path, header: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as sink:
        sink.write(header.encode() + b"\n")
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, sink, 16 * 1024 * 1024)


def _move_parts(parts: list[Path], folder: Path, suffix: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(parts):
        part.replace(folder / f"part-{i:05d}{suffix}")
    return len(parts)


def _write_all(spark: SparkSession, plan: _Plan, stage: Path, compress_orders: bool) -> int:
    """Every file of the layout under ``stage``; returns the number of data files."""
    tmp = stage / "_spark"
    customer_header = ",".join(schemas.CUSTOMER_COLUMNS)
    files = 0

    customers = stage / schemas.CUSTOMERS_DIR
    if plan.single_file:
        parts = _write_text(spark, plan, "customers", tmp / "customers", None)
        _concatenate(parts, customers / schemas.CUSTOMERS_FILE, customer_header)
        files += 1
    else:
        parts = _write_text(spark, plan, "customers", tmp / "customers", customer_header)
        files += _move_parts(parts, customers, ".csv")

    compression, suffix = ("gzip", ".json.gz") if compress_orders else ("none", ".json")
    parts = _write_text(spark, plan, "orders", tmp / "orders", None, compression)
    files += _move_parts(parts, stage / schemas.SALES_ORDERS_DIR, suffix)

    parts = _write_text(spark, plan, "truth", tmp / "truth", None)
    _concatenate(parts, stage / "truth" / "customer_archetypes.csv", "customer_id,archetype")
    shutil.rmtree(tmp)

    _write_products(plan.catalog, plan.seed, stage / schemas.PRODUCTS_DIR / schemas.PRODUCTS_FILE)
    _write_loyalty(plan.thresholds, stage / schemas.LOYALTY_DIR / schemas.LOYALTY_FILE)
    with open(stage / "_injected.json", "w", encoding="utf-8") as handle:
        json.dump(plan.bad, handle, indent=2)
        handle.write("\n")
    return files + 3


def _ean13(rng: np.random.Generator) -> str:
    digits = [int(d) for d in rng.integers(0, 10, 12)]
    digits[0] = max(digits[0], 1)
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits)) + str(check)


def _write_products(catalog: _Catalog, seed: int, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, _S_PRODUCT_CODES, 0])
    lines = [schemas.PRODUCTS_DELIMITER.join(schemas.PRODUCT_COLUMNS)]
    for i, pid in enumerate(catalog.ids):
        ean5 = f"{int(rng.integers(0, 100_000)):05d}" if rng.random() < 0.3 else ""
        fields = [pid, catalog.categories[catalog.category[i]], catalog.names[i],
                  str(int(catalog.price[i])), _ean13(rng), ean5, "pcs"]  # fmt: skip
        lines.append(schemas.PRODUCTS_DELIMITER.join(fields))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_loyalty(thresholds: tuple[int, ...], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(schemas.LOYALTY_COLUMNS)]
    lines += [f"{i},level_{i},{t},{LOYALTY_VALID_FROM}," for i, t in enumerate(thresholds)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_PUBLISHED = (
    schemas.CUSTOMERS_DIR,
    schemas.SALES_ORDERS_DIR,
    schemas.PRODUCTS_DIR,
    schemas.LOYALTY_DIR,
    "truth",
    "_injected.json",
)


def _publish(stage: Path, out: Path) -> None:
    """Replace the layout's folders in ``out`` with the staged ones; other files stay."""
    for name in _PUBLISHED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        (stage / name).replace(target)
