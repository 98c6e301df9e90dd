"""raw -> bronze for the retail-org layout.

Every raw file is read with an explicit all-string schema; each row is then
checked and either kept in its bronze table (values still as landed, plus the
source file) or sent to the quarantine with the first reason it fails. Nothing
is dropped silently: per table, rows in = rows kept + rows quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import Window

from custseg.data import schemas
from custseg.data.quarantine import QUARANTINE_COLUMNS, with_failure
from custseg.errors import InputDataError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

CORRUPT = "_corrupt_record"

# Reasons a raw row is quarantined, in the order they are checked.
ORDER_REASONS = (
    "malformed_json",
    "missing_field",
    "wrong_type",
    "negative_quantity",
    "negative_price",
    "future_timestamp",
)
CUSTOMER_REASONS = ("csv_field_count", "missing_field", "wrong_type")
PRODUCT_REASONS = ("csv_field_count", "missing_field", "wrong_type", "negative_price")


@dataclass
class RawTables:
    """Checked raw rows: ``kept`` go to bronze, ``quarantined`` hold QUARANTINE_COLUMNS.

    ``checked`` holds every row read, each with its reason (null = kept): the
    pipeline counts rows in there, and caches it so that the raw files are
    parsed once for both the bronze tables and the quarantine.
    """

    kept: dict[str, DataFrame]
    quarantined: DataFrame
    checked: dict[str, DataFrame]
    notes: list[str] = field(default_factory=list)  # what the reader decided, for the summary
    timestamp_format: str | None = None  # the format timestamps were read in, where one was chosen

    def cache(self) -> None:

        for df in self.checked.values():
            df.persist(StorageLevel.DISK_ONLY)

    def release(self) -> None:
        for df in self.checked.values():
            df.unpersist()


def _folder(raw: Path, name: str) -> str:
    folder = raw / name
    if not folder.is_dir() or not any(p.is_file() for p in folder.iterdir()):
        raise InputDataError(
            f"input folder {raw} has no {name}/ files (expected the retail-org layout: "
            f"customers/, sales_orders/, products/, loyalty_segments/)"
        )
    return str(folder)


def _blank(column: Column) -> Column:
    """Empty or whitespace only. Spark's trim() strips spaces only, so a tab-only value would pass
    it."""
    return column.rlike(r"^\s*$")


def _is_long(column: Column) -> Column:
    return column.isNull() | _blank(column) | column.try_cast("long").isNotNull()


def _finite_double(column: Column) -> Column:
    """True when the text is a finite number: "NaN" and "Infinity" cast to doubles but are no
    prices."""

    value = column.try_cast("double")
    return value.isNotNull() & ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))


def _is_double(column: Column) -> Column:
    return column.isNull() | _blank(column) | _finite_double(column)


def _present(column: Column) -> Column:
    return column.isNotNull() & ~_blank(column)


def read_csv_checked(
    spark: SparkSession, path: str, columns: list[str], delimiter: str, table: str
) -> DataFrame:
    """A CSV folder read with an all-string schema plus the corrupt-record column and source
    file."""

    _check_header(spark, path, columns, delimiter, table)
    schema = schemas.string_schema([*columns, CORRUPT])
    return (
        spark.read.option("header", True)
        .option("sep", delimiter)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("multiLine", False)
        .csv(path, schema=schema)
        .withColumn("source_file", F.col("_metadata.file_path"))
    )


def _check_header(
    spark: SparkSession, path: str, columns: list[str], delimiter: str, table: str
) -> None:
    """Fail clearly when a file is not the table it claims to be (the reader maps columns by
    position)."""
    first = spark.read.option("sep", delimiter).option("header", False).csv(path).limit(1).collect()
    if not first:
        return
    found = [(v or "").strip().lstrip("\ufeff") for v in first[0]]
    if found != columns:
        raise InputDataError(
            f"{table} header does not match the retail-org layout in {path}: "
            f"expected {delimiter.join(columns)!r}, got {delimiter.join(found)[:200]!r}"
        )


def _each(reason: str, fields: list[str], failed) -> list:
    """One check per field, so the quarantine names the field that failed."""

    return [(reason, name, failed(F.col(name))) for name in fields]


def check_customers(df: DataFrame) -> DataFrame:

    return with_failure(
        df,
        [
            ("csv_field_count", "record", F.col(CORRUPT).isNotNull()),
            *_each("missing_field", ["customer_id", "valid_from"], lambda c: ~_present(c)),
            *_each(
                "wrong_type",
                ["valid_from", "valid_to", "units_purchased", "loyalty_segment"],
                lambda c: ~_is_long(c),
            ),
            *_each("wrong_type", ["lon", "lat"], lambda c: ~_is_double(c)),
        ],
    )


def check_products(df: DataFrame) -> DataFrame:

    return with_failure(
        df,
        [
            ("csv_field_count", "record", F.col(CORRUPT).isNotNull()),
            ("missing_field", "product_id", ~_present(F.col("product_id"))),
            ("wrong_type", "sales_price", ~_is_double(F.col("sales_price"))),
            ("negative_price", "sales_price", F.col("sales_price").try_cast("double") < 0),
        ],
    )


def check_loyalty(df: DataFrame) -> DataFrame:

    return with_failure(
        df,
        [
            ("csv_field_count", "record", F.col(CORRUPT).isNotNull()),
            ("missing_field", "loyalty_segment_id", ~_present(F.col("loyalty_segment_id"))),
            *_each("wrong_type", ["loyalty_segment_id", "unit_threshold"], lambda c: ~_is_long(c)),
        ],
    )


def read_orders_checked(spark: SparkSession, path: str) -> DataFrame:
    """sales_orders JSON lines, parsed with the all-string schema; blank lines are not rows."""

    lines = (
        spark.read.text(path)
        .withColumn("source_file", F.col("_metadata.file_path"))
        # A UTF-8 byte-order mark opens some exported files; it is not part of the JSON.
        .withColumn("value", F.regexp_replace("value", "^\ufeff", ""))
        .where(~_blank(F.col("value")))
    )
    parsed = F.from_json(F.col("value"), schemas.sales_order_raw_schema())
    return lines.select(
        F.col("value").alias("raw"),
        "source_file",
        F.try_parse_json(F.col("value")).isNull().alias("_malformed"),
        parsed.alias("o"),
    ).select("raw", "source_file", "_malformed", "o.*")


def check_orders(df: DataFrame) -> DataFrame:
    """Order-level checks; a line-level defect quarantines its whole order."""

    lines = F.coalesce(F.col("ordered_products"), F.array())
    any_line = lambda pred: F.exists(lines, pred)  # noqa: E731
    line_types_ok = F.forall(
        lines,
        lambda p: _finite_double(p["price"]) & _finite_double(p["qty"]) & _present(p["id"]),
    )
    order_time = F.col("order_datetime").try_cast("long")
    return with_failure(
        df,
        [
            ("malformed_json", "record", F.col("_malformed")),
            *_each(
                "missing_field",
                ["customer_id", "order_number", "order_datetime"],
                lambda c: ~_present(c),
            ),
            ("missing_field", "ordered_products", F.size(lines) == 0),
            ("wrong_type", "order_number", F.col("order_number").try_cast("long").isNull()),
            ("wrong_type", "order_datetime", order_time.isNull()),
            ("wrong_type", "ordered_products", ~line_types_ok),
            (
                "negative_quantity",
                "ordered_products.qty",
                any_line(lambda p: p["qty"].try_cast("double") < 0),
            ),
            (
                "negative_price",
                "ordered_products.price",
                any_line(lambda p: p["price"].try_cast("double") < 0),
            ),
            (
                "future_timestamp",
                "order_datetime",
                order_time > F.unix_timestamp(F.current_timestamp()),
            ),
        ],
    )


def flag_duplicate_orders(df: DataFrame) -> DataFrame:
    """Among otherwise valid orders, every copy of an order number after the first is a duplicate.

    The first is the smallest (source file, raw line): deterministic whatever the partitioning.
    """

    number = F.col("order_number").try_cast("long")
    window = Window.partitionBy(F.col("reason").isNull(), number).orderBy("source_file", "raw")
    return df.withColumn(
        "reason",
        F.when(
            F.col("reason").isNull() & (F.row_number().over(window) > 1), F.lit("duplicate_order")
        ).otherwise(F.col("reason")),
    ).withColumn(
        "field",
        F.when(F.col("reason") == "duplicate_order", F.lit("order_number")).otherwise(
            F.col("field")
        ),
    )


def _to_quarantine(df: DataFrame, table: str, record: Column) -> DataFrame:

    return df.where(F.col("reason").isNotNull()).select(
        F.lit(table).alias("table"),
        F.lit("ingest").alias("stage"),
        "reason",
        "field",
        "source_file",
        record.alias("record"),
    )


def _csv_record(columns: list[str], delimiter: str) -> Column:

    return F.coalesce(
        F.col(CORRUPT), F.concat_ws(delimiter, *[F.coalesce(F.col(c), F.lit("")) for c in columns])
    )


# whole: one plan over the four inputs and their quarantine; each table's checks are already
# functions
def read_raw(spark: SparkSession, raw_dir: str | Path) -> RawTables:
    """Read and check the four retail-org inputs; nothing is written here."""

    # Absolute: a Spark Connect server or cluster resolves relative paths against its own folder.
    raw = Path(raw_dir).absolute()
    if not raw.is_dir():
        raise InputDataError(f"input folder not found: {raw}")
    # With CSV column pruning Spark parses only the columns a query needs and can miss a
    # row's wrong field count; the count is a quarantine reason, so parse every column.
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")

    read = {
        "customers": read_csv_checked(
            spark, _folder(raw, schemas.CUSTOMERS_DIR), schemas.CUSTOMER_COLUMNS, ",", "customers"
        ),
        "products": read_csv_checked(
            spark,
            _folder(raw, schemas.PRODUCTS_DIR),
            schemas.PRODUCT_COLUMNS,
            schemas.PRODUCTS_DELIMITER,
            "products",
        ),
        "loyalty_segments": read_csv_checked(
            spark,
            _folder(raw, schemas.LOYALTY_DIR),
            schemas.LOYALTY_COLUMNS,
            ",",
            "loyalty_segments",
        ),
        "sales_orders": read_orders_checked(spark, _folder(raw, schemas.SALES_ORDERS_DIR)),
    }
    customers = check_customers(read["customers"])
    products = check_products(read["products"])
    loyalty = check_loyalty(read["loyalty_segments"])
    orders = flag_duplicate_orders(check_orders(read["sales_orders"]))
    # Only the quarantine needs the raw line. The pipeline keeps the checked rows on local
    # disk; carrying every kept order's line there too doubled ingest's scratch space.
    orders = orders.withColumn("raw", F.when(F.col("reason").isNotNull(), F.col("raw")))

    quarantined = (
        _to_quarantine(customers, "customers", _csv_record(schemas.CUSTOMER_COLUMNS, ","))
        .unionByName(
            _to_quarantine(products, "products", _csv_record(schemas.PRODUCT_COLUMNS, ";"))
        )
        .unionByName(
            _to_quarantine(loyalty, "loyalty_segments", _csv_record(schemas.LOYALTY_COLUMNS, ","))
        )
        .unionByName(_to_quarantine(orders, "sales_orders", F.col("raw")))
    )
    kept = {
        "customers": customers.where(F.col("reason").isNull()).select(
            *schemas.CUSTOMER_COLUMNS, "source_file"
        ),
        "products": products.where(F.col("reason").isNull()).select(
            *schemas.PRODUCT_COLUMNS, "source_file"
        ),
        "loyalty_segments": loyalty.where(F.col("reason").isNull()).select(
            *schemas.LOYALTY_COLUMNS, "source_file"
        ),
        "sales_orders": orders.where(F.col("reason").isNull()).select(
            *schemas.ORDER_COLUMNS, "source_file"
        ),
    }
    checked = {
        "customers": customers,
        "products": products,
        "loyalty_segments": loyalty,
        "sales_orders": orders,
    }
    return RawTables(
        kept=kept, quarantined=quarantined.select(*QUARANTINE_COLUMNS), checked=checked
    )
