"""Writing a data set: the Spark jobs that write the retail-org files, staged, then published.

``generate`` validates the request, makes the plan and runs one Spark pass per
file family over ``spark.range(n_blocks)`` with ``mapInArrow``: each task draws
its blocks and yields their lines. The number of blocks and of part files
depends only on the number of customers, never on the cluster, so the same
seed gives the same bytes anywhere. Everything lands in a staging folder that
replaces the previous data set only when all of it is written.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa

from custseg.data import schemas
from custseg.data.generate.blocks import customers_block, orders_block
from custseg.data.generate.catalog import Catalog
from custseg.data.generate.draws import draw_base
from custseg.data.generate.plan import Plan, make_plan
from custseg.data.generate.spec import (
    DEFAULT_CUSTOMERS,
    DEFAULT_SEED,
    DESIGN_ORDERS,
    LOYALTY_VALID_FROM,
    STREAM_PRODUCT_CODES,
    validate_bad_records,
    validate_scenario,
)
from custseg.data.generate.text import customer_lines, order_lines, truth_lines

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


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
    customers: int = DEFAULT_CUSTOMERS,
    seed: int = DEFAULT_SEED,
    preset: Literal["realistic", "seed"] = "realistic",
    bad_records: Mapping[str, int] | None = None,
    orders_per_customer: float = DESIGN_ORDERS,
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
    validate_scenario(customers, seed, preset, orders_per_customer)
    plan = make_plan(customers, seed, preset, bad, orders_per_customer)

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


# -- Spark jobs --


def _partition_lines(
    batches: Iterator[pa.RecordBatch], plan: Plan, kind: str, header: str | None
) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: one text batch per block id of the partition, header first if asked."""
    if header is not None:
        yield pa.RecordBatch.from_arrays([pa.array([header], pa.string())], ["value"])
    for batch in batches:
        for block_id in batch.column(0).to_pylist():
            if kind == "customers":
                text = customer_lines(customers_block(plan, int(block_id)))
            elif kind == "orders":
                text = order_lines(orders_block(plan, int(block_id)), plan.catalog)
            else:
                text = truth_lines(draw_base(plan, int(block_id)), plan)
            yield pa.RecordBatch.from_arrays([text], ["value"])


def _partition_stats(batches: Iterator[pa.RecordBatch], plan: Plan) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: one row of counts per block id of the partition."""
    for batch in batches:
        for block_id in batch.column(0).to_pylist():
            base = draw_base(plan, int(block_id))
            values = {
                "customers": base.n,
                "customer_rows": int(base.n_rows.sum()),
                "with_orders": int((base.n_orders > 0).sum()),
                "orders": int(base.n_orders.sum()),
            }
            yield pa.RecordBatch.from_pydict(
                {k: pa.array([v], pa.int64()) for k, v in values.items()}
            )


# the counts the summary reports, one column each in the stats pass
_STATS = ("customers", "customer_rows", "with_orders", "orders")


def _blocks(spark: SparkSession, plan: Plan) -> DataFrame:
    # A fixed number of partitions: output files depend on the data size, never on the cluster.
    return spark.range(0, plan.n_blocks, 1, plan.partitions)


def _stats(spark: SparkSession, plan: Plan) -> dict[str, int]:
    """Row counts for the summary from the cheap first stream, summed by Spark: one row reaches the
    driver."""
    # lazy: pyspark stays out of the generator's import (it writes without Spark)
    import pyspark.sql.functions as F

    schema = ", ".join(f"{c} long" for c in _STATS)
    df = _blocks(spark, plan).mapInArrow(functools.partial(_partition_stats, plan=plan), schema)
    row = df.agg(*[F.sum(c).alias(c) for c in _STATS]).first()
    assert row is not None
    return {c: int(row[c]) for c in _STATS}


def _write_text(
    spark: SparkSession,
    plan: Plan,
    kind: str,
    path: Path,
    header: str | None,
    compression: str = "none",
) -> list[Path]:
    """One pass writing ``kind``'s lines as Spark part files; returns them in block order."""
    fn = functools.partial(_partition_lines, plan=plan, kind=kind, header=header)
    lines = _blocks(spark, plan).mapInArrow(fn, "value string")
    lines.write.mode("overwrite").option("compression", compression).text(str(path))
    # part-00000-<uuid>-c000.txt: the number is the partition, so name order is block order
    return sorted(
        p for p in path.iterdir() if p.name.startswith("part-") and not p.name.endswith(".crc")
    )


# -- files of the layout --


def _concatenate(parts: list[Path], target: Path, header: str) -> None:
    """One file: the header, then every part in order."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as sink:
        sink.write(header.encode() + b"\n")
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, sink, 16 * 1024 * 1024)


def _move_parts(parts: list[Path], folder: Path, suffix: str) -> int:
    """The parts as part-00000<suffix>, part-00001<suffix>, ... in ``folder``; returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(parts):
        part.replace(folder / f"part-{i:05d}{suffix}")
    return len(parts)


def _write_all(spark: SparkSession, plan: Plan, stage: Path, compress_orders: bool) -> int:
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
    """Twelve random digits and their EAN-13 check digit."""
    digits = [int(d) for d in rng.integers(0, 10, 12)]
    digits[0] = max(digits[0], 1)
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits)) + str(check)


def _write_products(catalog: Catalog, seed: int, path: Path) -> None:
    """products.csv (semicolon-delimited), with bar codes from their own stream."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, STREAM_PRODUCT_CODES, 0])
    lines = [schemas.PRODUCTS_DELIMITER.join(schemas.PRODUCT_COLUMNS)]
    for i, pid in enumerate(catalog.ids):
        ean5 = f"{int(rng.integers(0, 100_000)):05d}" if rng.random() < 0.3 else ""
        category = catalog.categories[catalog.category[i]]
        price = str(int(catalog.price[i]))
        fields = [pid, category, catalog.names[i], price, _ean13(rng), ean5, "pcs"]
        lines.append(schemas.PRODUCTS_DELIMITER.join(fields))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_loyalty(thresholds: tuple[int, ...], path: Path) -> None:
    """loyalty_segment.csv: one level per threshold."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(schemas.LOYALTY_COLUMNS)]
    lines += [f"{i},level_{i},{t},{LOYALTY_VALID_FROM}," for i, t in enumerate(thresholds)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# what a data set is made of: replaced together in the output folder
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
