"""The generic transactions adapter: one row per order line, columns mapped by config.

For users whose data is not in the retail-org layout (for example the UCI
Online Retail export: InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice,
CustomerID). Columns are named in ``input.transactions.columns``; the same
checks and quarantine apply, and silver comes out in the same shape, so
features and segmentation do not know which adapter ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from custseg.config import TransactionsConfig
from custseg.data.conform import UNKNOWN_CATEGORY, Silver
from custseg.data.ingest import RawTables
from custseg.data.quarantine import QUARANTINE_COLUMNS, first_failure
from custseg.errors import InputDataError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

FIELDS = ("customer_id", "order_id", "timestamp", "product_id", "category", "quantity", "unit_price")
REQUIRED = ("customer_id", "order_id", "timestamp", "product_id", "quantity", "unit_price")


def _timestamp(column: Column, pattern: str | None) -> Column:
    """Epoch seconds, or a timestamp in ``pattern`` (ISO-8601 when no pattern)."""
    import pyspark.sql.functions as F

    epoch = column.try_cast("long")
    parsed = F.try_to_timestamp(column, F.lit(pattern)) if pattern else column.try_cast("timestamp")
    return F.when(epoch.isNotNull(), F.timestamp_seconds(epoch)).otherwise(parsed)


def read_transactions(spark: SparkSession, raw_dir: str | Path, config: TransactionsConfig) -> RawTables:
    import pyspark.sql.functions as F

    path = Path(config.path or raw_dir).absolute()  # the Spark server resolves paths, not this process
    if not path.exists():
        raise InputDataError(f"transactions input not found: {path}")
    if config.format == "csv":
        # All strings: a wrong-typed value is quarantined, not silently nulled.
        df = spark.read.option("header", True).option("sep", config.delimiter).option("inferSchema", False).csv(str(path))
    else:
        df = spark.read.parquet(str(path))
        df = df.select([F.col(c).cast("string").alias(c) for c in df.columns])
    mapping = config.columns.model_dump()
    missing = [f"{field}={mapping[field]!r}" for field in REQUIRED if mapping[field] not in df.columns]
    if config.columns.category not in df.columns and config.columns.category:
        missing.append(f"category={config.columns.category!r}")
    if missing:
        raise InputDataError(
            f"transactions input {path} lacks the mapped column(s) {', '.join(missing)}; "
            f"it has {', '.join(df.columns)[:300]}"
        )
    category = F.col(config.columns.category) if config.columns.category else F.lit(None).cast("string")
    mapped = df.select(
        *[F.trim(F.col(mapping[f])).alias(f) for f in REQUIRED],
        F.trim(category).alias("category"),
        F.col("_metadata.file_path").alias("source_file") if config.format == "csv" else F.lit(str(path)).alias("source_file"),
    )
    ts = _timestamp(F.col("timestamp"), config.timestamp_format)
    qty, price = F.col("quantity").try_cast("double"), F.col("unit_price").try_cast("double")
    finite = ~F.isnan(qty) & ~F.isnan(price) & (F.abs(qty) != float("inf")) & (F.abs(price) != float("inf"))
    checked = mapped.withColumn(
        "reason",
        first_failure(
            [
                ("missing_field", F.greatest(*[F.coalesce(F.col(f), F.lit("")) == "" for f in REQUIRED])),
                ("wrong_type", qty.isNull() | price.isNull() | ts.isNull() | ~finite),
                ("negative_quantity", qty < 0),
                ("negative_price", price < 0),
                ("future_timestamp", ts > F.current_timestamp()),
            ]
        ),
    )
    quarantined = checked.where(F.col("reason").isNotNull()).select(
        F.lit("transactions").alias("table"),
        F.lit("ingest").alias("stage"),
        "reason",
        "source_file",
        F.to_json(F.struct(*FIELDS)).alias("record"),
    )
    kept = checked.where(F.col("reason").isNull()).drop("reason")
    return RawTables(
        kept={"transactions": kept}, quarantined=quarantined.select(*QUARANTINE_COLUMNS), checked={"transactions": checked}
    )


def conform_transactions(bronze: dict[str, DataFrame], config: TransactionsConfig) -> Silver:
    """Silver customers, order lines and products from bronze transactions."""
    import pyspark.sql.functions as F
    from pyspark.sql import Window

    tx = bronze["transactions"]
    lines = tx.select(
        F.col("order_id").alias("order_number"),
        "customer_id",
        _timestamp(F.col("timestamp"), config.timestamp_format).alias("order_ts"),
        F.row_number()
        .over(Window.partitionBy("order_id").orderBy("product_id", "quantity", "unit_price", "timestamp"))
        .alias("line_no"),
        "product_id",
        F.lit(None).cast("string").alias("product_name"),
        F.coalesce(F.col("category"), F.lit(UNKNOWN_CATEGORY)).alias("product_category"),
        F.lit(None).cast("string").alias("currency"),
        F.col("unit_price").cast("double").alias("price"),
        F.col("quantity").cast("double").alias("qty"),
    ).withColumn("spend", F.col("price") * F.col("qty"))
    customers = lines.groupBy("customer_id").agg(F.min("order_ts").alias("first_valid_from")).select(
        "customer_id",
        "first_valid_from",
        F.lit(1).cast("long").alias("history_rows"),
        F.lit(None).cast("int").alias("loyalty_segment"),
    )
    products = lines.groupBy("product_id").agg(F.first("product_category", ignorenulls=True).alias("product_category"))
    empty = tx.sparkSession.createDataFrame([], "table string, stage string, reason string, source_file string, record string")
    return Silver(customers=customers, order_lines=lines, products=products, quarantined=empty)
