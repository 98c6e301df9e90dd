"""The generic transactions adapter: one row per order line, columns mapped by config.

For exports that are not in the retail-org layout (the UCI Online Retail
export: InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice, CustomerID; a
plain file of customer, date, units and amount). Columns are named in
``input.transactions.columns``; silver comes out in the same shape as the
retail-org adapter's, so features and segmentation do not know which ran.

What is what (docs/bring-your-own-data.md says it for users):
- ids stay the strings given; a column of whole-valued floats (12923.0) is
  read as the whole numbers it holds.
- an order is one order id (none mapped: one customer's lines per day or per
  timestamp); its time is its earliest line's. An order id used by two
  customers is quarantined as ``conflicting_order``.
- a return (negative quantity or amount, or an order id starting with the
  cancellation prefix) is kept and netted: its quantity and spend are negative.
- a line without a customer id is a guest checkout: quarantined as
  ``missing_customer_id``, counted and valued in the summary.
- exact duplicate lines are counted; dropped (as ``duplicate_line``) only when
  configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyspark.sql.functions as F
from pyspark.sql import Window
from pyspark.sql.types import DoubleType, FloatType

from custseg.config import TransactionsConfig
from custseg.data.conform import UNKNOWN_CATEGORY, Silver
from custseg.data.delimited import BAD_FIELD_COUNT, read_delimited
from custseg.data.ingest import RawTables
from custseg.data.quarantine import QUARANTINE_COLUMNS, with_failure
from custseg.data.timestamps import infer_format, parse_timestamp
from custseg.errors import InputDataError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

ID_FIELDS = ("customer_id", "order_id", "product_id")
GUEST_REASON = "missing_customer_id"
DUPLICATE_COPY = "_duplicate_copy"  # true on every exact copy of a line after the first
WHOLE_FLOAT = r"^[+-]?\d+\.0*$"
WHOLE = r"^[+-]?\d+(\.0*)?$"


def _mapped(config: TransactionsConfig) -> dict[str, str]:
    """field -> source column, for the fields the export has."""
    return {
        field: column for field, column in config.columns.model_dump().items() if column is not None
    }


def _read(
    spark: SparkSession, path: Path, config: TransactionsConfig
) -> tuple[DataFrame, list[str]]:
    """The export as string columns (+ BAD_FIELD_COUNT, source_file), and notes on what was
    normalised."""

    if config.format == "csv":
        return read_delimited(spark, path, config), []
    df = spark.read.parquet(str(path))
    notes, columns = [], []
    ids = {config.columns.model_dump()[f] for f in ID_FIELDS} - {None}
    for field in df.schema.fields:
        col = F.col(field.name)
        if field.name in ids and isinstance(field.dataType, DoubleType | FloatType):
            # A float id prints as 1.2923E7; read it as the whole number it holds.
            whole = df.where(col.isNotNull() & (col != F.floor(col))).limit(1).count() == 0
            if whole:
                col = col.cast("long")
                notes.append(
                    f"column {field.name!r}: stored as floats with whole values, read as whole "
                    "numbers (12923.0 -> 12923)"
                )
        columns.append(col.cast("string").alias(field.name))
    return df.select(
        *columns, F.lit(False).alias(BAD_FIELD_COUNT), F.lit(str(path)).alias("source_file")
    ), notes


def _normalise_ids(
    df: DataFrame, fields: list[str], mapping: dict[str, str]
) -> tuple[DataFrame, list[str]]:
    """Id columns whose every value is a whole number and some are written as floats lose the
    '.0'."""

    present = lambda f: F.col(f).isNotNull() & (F.col(f) != "")  # noqa: E731
    counts = df.agg(
        *[
            F.sum((present(f) & ~F.col(f).rlike(WHOLE)).cast("long")).alias(f"{f}__other")
            for f in fields
        ],
        *[
            F.sum((present(f) & F.col(f).rlike(WHOLE_FLOAT)).cast("long")).alias(f"{f}__float")
            for f in fields
        ],
    ).collect()[0]
    notes = []
    for f in fields:
        if (counts[f"{f}__other"] or 0) == 0 and (counts[f"{f}__float"] or 0) > 0:
            df = df.withColumn(f, F.regexp_replace(F.col(f), r"\.0*$", ""))
            notes.append(
                f"column {mapping[f]!r}: written as whole-valued floats, read as whole numbers "
                "(12923.0 -> 12923)"
            )
    return df, notes


def _finite(column: Column) -> Column:

    value = column.try_cast("double")
    return value.isNotNull() & ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))


# whole: one Spark plan: the column mapping, the parsing and the table of row checks (each a
# quarantine reason)
def read_transactions(
    spark: SparkSession, raw_dir: str | Path, config: TransactionsConfig
) -> RawTables:

    path = Path(
        config.path or raw_dir
    ).absolute()  # the Spark server resolves paths, not this process
    if not path.exists():
        raise InputDataError(f"transactions input not found: {path}")
    df, notes = _read(spark, path, config)
    mapping = _mapped(config)
    missing = [
        f"{field}={column!r}" for field, column in mapping.items() if column not in df.columns
    ]
    if missing:
        raise InputDataError(
            f"transactions input {path} lacks the mapped column(s) {', '.join(missing)}; it has "
            f"{', '.join(c for c in df.columns if c not in (BAD_FIELD_COUNT, 'source_file'))[:300]}"
        )
    fields = list(mapping)
    mapped = df.select(
        *[F.trim(F.col(column)).alias(field) for field, column in mapping.items()],
        BAD_FIELD_COUNT,
        "source_file",
    )
    mapped, id_notes = _normalise_ids(mapped, [f for f in ID_FIELDS if f in mapping], mapping)
    notes += id_notes

    fmt = config.timestamp_format
    if fmt is None:
        fmt = infer_format(mapped.select("timestamp"), mapping["timestamp"])
        notes.append(
            f"timestamp format inferred from column {mapping['timestamp']!r}: {fmt!r} (set "
            "timestamp_format to override)"
        )
    ts = parse_timestamp(F.col("timestamp"), fmt)
    money = "amount" if "amount" in mapping else "unit_price"
    blank = lambda f: F.col(f).isNull() | (F.col(f) == "")  # noqa: E731
    required = [
        f for f in ("timestamp", "quantity", money, "order_id", "product_id") if f in mapping
    ]
    checks = [
        ("csv_field_count", "record", F.col(BAD_FIELD_COUNT)),
        (GUEST_REASON, "customer_id", blank("customer_id")),
        *[("missing_field", f, blank(f)) for f in required],
        ("wrong_type", "timestamp", F.col("order_ts").isNull()),
        ("wrong_type", "quantity", ~_finite(F.col("quantity"))),
        ("wrong_type", money, ~_finite(F.col(money))),
    ]
    if money == "unit_price":
        checks.append(("negative_price", "unit_price", F.col("unit_price").try_cast("double") < 0))
    checks.append(("future_timestamp", "timestamp", F.col("order_ts") > F.current_timestamp()))
    checked = with_failure(mapped.withColumn("order_ts", ts), checks)

    # Exact copies of a line after the first (smallest source file first): counted always.
    ok = F.col("reason").isNull()
    same_line = Window.partitionBy(ok, *fields).orderBy("source_file")
    checked = checked.withColumn(DUPLICATE_COPY, ok & (F.row_number().over(same_line) > 1))
    if config.duplicate_lines == "drop":
        checked = _flag(checked, F.col(DUPLICATE_COPY), "duplicate_line", "record")
    if "order_id" in mapping:
        ok = F.col("reason").isNull()
        order = Window.partitionBy(ok, "order_id")
        two_customers = ok & (F.min("customer_id").over(order) != F.max("customer_id").over(order))
        checked = _flag(checked, two_customers, "conflicting_order", "order_id")

    quarantined = checked.where(F.col("reason").isNotNull()).select(
        F.lit("transactions").alias("table"),
        F.lit("ingest").alias("stage"),
        "reason",
        "field",
        "source_file",
        F.to_json(F.struct(*fields)).alias("record"),
    )
    kept = checked.where(F.col("reason").isNull()).select(*fields, "order_ts", "source_file")
    return RawTables(
        kept={"transactions": kept},
        quarantined=quarantined.select(*QUARANTINE_COLUMNS),
        checked={"transactions": checked},
        notes=notes,
        timestamp_format=fmt,
    )


def _flag(df: DataFrame, failed: Column, reason: str, field: str) -> DataFrame:

    hit = F.col("reason").isNull() & F.coalesce(failed, F.lit(False))
    return df.withColumn("field", F.when(hit, F.lit(field)).otherwise(F.col("field"))).withColumn(
        "reason", F.when(hit, F.lit(reason)).otherwise(F.col("reason"))
    )


# whole: one Spark plan of column expressions (signed values, order numbers, windows) for the silver
# tables
def conform_transactions(bronze: dict[str, DataFrame], config: TransactionsConfig) -> Silver:
    """Silver customers, order lines and products from bronze transactions; returns carry negative
    values."""

    mapping = _mapped(config)
    tx = bronze["transactions"]
    qty = F.col("quantity").cast("double")
    amount = F.col("amount").cast("double") if "amount" in mapping else None
    cancelled = (
        F.col("order_id").startswith(config.cancellation_prefix)
        if config.cancellation_prefix and "order_id" in mapping
        else F.lit(False)
    )
    is_return = (qty < 0) | cancelled | ((amount < 0) if amount is not None else F.lit(False))
    signed_qty = F.when(is_return, -F.abs(qty)).otherwise(qty)
    if amount is not None:
        spend = F.when(is_return, -F.abs(amount)).otherwise(amount)
        price = F.when(qty != 0, F.abs(amount) / F.abs(qty))
    else:
        price = F.col("unit_price").cast("double")
        spend = price * signed_qty
    if "order_id" in mapping:
        order_number = F.col("order_id")
    elif config.orders_without_id == "day":
        order_number = F.concat_ws("|", "customer_id", F.date_format("order_ts", "yyyy-MM-dd"))
    else:
        order_number = F.concat_ws(
            "|", "customer_id", F.date_format("order_ts", "yyyy-MM-dd HH:mm:ss.SSSSSS")
        )
    product = F.col("product_id") if "product_id" in mapping else F.lit(None).cast("string")
    category = (
        F.coalesce(F.col("category"), F.lit(UNKNOWN_CATEGORY))
        if "category" in mapping
        else F.lit(None).cast("string")
    )
    lines = tx.select(
        order_number.alias("order_number"),
        "customer_id",
        "order_ts",
        product.alias("product_id"),
        category.alias("product_category"),
        price.alias("price"),
        signed_qty.alias("qty"),
        spend.alias("spend"),
        is_return.alias("is_return"),
    )
    order = Window.partitionBy("order_number")
    lines = lines.withColumn("order_ts", F.min("order_ts").over(order)).withColumn(
        "line_no",
        F.row_number().over(order.orderBy("product_id", "qty", "price", "spend")) - 1,
    )
    lines = lines.select(
        "order_number",
        "customer_id",
        "order_ts",
        "line_no",
        "product_id",
        F.lit(None).cast("string").alias("product_name"),
        "product_category",
        F.lit(None).cast("string").alias("currency"),
        "price",
        "qty",
        "spend",
        "is_return",
    )
    purchase_ts = F.when(~F.col("is_return"), F.col("order_ts"))
    customers = (
        lines.groupBy("customer_id")
        .agg(
            # A customer starts at their first purchase; one seen only returning, at that return.
            F.coalesce(F.min(purchase_ts), F.min("order_ts")).alias("first_valid_from")
        )
        .select(
            "customer_id",
            "first_valid_from",
            F.lit(1).cast("long").alias("history_rows"),
            F.lit(None)
            .cast("int")
            .alias("loyalty_segment"),  # transaction exports carry no loyalty tier
        )
    )
    products = (
        lines.where(F.col("product_id").isNotNull())
        .groupBy("product_id")
        .agg(F.first("product_category", ignorenulls=True).alias("product_category"))
    )
    empty = tx.sparkSession.createDataFrame(
        [], ", ".join(f"{c} string" for c in QUARANTINE_COLUMNS)
    )
    return Silver(customers=customers, order_lines=lines, products=products, quarantined=empty)
