"""bronze -> silver for the retail-org layout: types, current customers, exploded order lines.

- customers: one row per customer, the current one (empty valid_to; failing
  that, the latest valid_from), with the first valid_from of its history.
- orders (built from the written order lines by ``orders_from_lines``): one row per
  order number (bronze already flagged duplicates), epoch
  strings cast to timestamps; orders for customers not in the customer table
  go to the quarantine as ``unknown_customer``.
- order_lines: ordered_products exploded, spend = price x qty, the product's
  category joined from products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyspark.sql.functions as F
from pyspark.sql import Window

from custseg.data.quarantine import QUARANTINE_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

UNKNOWN_CATEGORY = "unknown"


@dataclass
class Silver:
    customers: DataFrame
    order_lines: DataFrame
    products: DataFrame
    quarantined: DataFrame

    def tables(self) -> dict[str, DataFrame]:
        return {
            "customers": self.customers,
            "order_lines": self.order_lines,
            "products": self.products,
        }


def _epoch(column: str):

    seconds = F.col(column).try_cast("long")
    return F.when(seconds.isNotNull(), F.timestamp_seconds(seconds))


def conform_customers(bronze: DataFrame) -> DataFrame:

    typed = bronze.select(
        F.trim("customer_id").alias("customer_id"),
        "tax_id",
        "tax_code",
        "customer_name",
        "state",
        "city",
        "postcode",
        "street",
        "number",
        "unit",
        "region",
        "district",
        F.col("lon").try_cast("double").alias("lon"),
        F.col("lat").try_cast("double").alias("lat"),
        "ship_to_address",
        _epoch("valid_from").alias("valid_from"),
        _epoch("valid_to").alias("valid_to"),
        F.col("units_purchased").try_cast("long").alias("units_purchased"),
        F.col("loyalty_segment").try_cast("int").alias("loyalty_segment"),
    )
    by_customer = Window.partitionBy("customer_id")
    latest = by_customer.orderBy(F.col("valid_to").isNull().desc(), F.col("valid_from").desc())
    return (
        typed.withColumn("first_valid_from", F.min("valid_from").over(by_customer))
        .withColumn("history_rows", F.count(F.lit(1)).over(by_customer))
        .withColumn("_rank", F.row_number().over(latest))
        .where(F.col("_rank") == 1)
        .drop("_rank")
    )


def conform_products(bronze: DataFrame) -> DataFrame:

    first = Window.partitionBy("product_id").orderBy("source_file", "product_name")
    return (
        bronze.select(
            F.trim("product_id").alias("product_id"),
            F.coalesce(F.trim("product_category"), F.lit(UNKNOWN_CATEGORY)).alias(
                "product_category"
            ),
            "product_name",
            F.col("sales_price").try_cast("double").alias("sales_price"),
            "EAN13",
            "EAN5",
            "product_unit",
            "source_file",
        )
        .withColumn("_rank", F.row_number().over(first))
        .where(F.col("_rank") == 1)
        .drop("_rank", "source_file")
    )


# whole: one Spark plan for the retail-org silver tables, a chain of column expressions
def conform(bronze: dict[str, DataFrame]) -> Silver:
    """Silver tables from the bronze tables of the retail-org layout."""

    customers = conform_customers(bronze["customers"])
    products = conform_products(bronze["products"])

    orders_raw = bronze["sales_orders"].withColumn("customer_id", F.trim("customer_id"))
    known = customers.select("customer_id", F.lit(True).alias("_known"))
    checked = orders_raw.join(known, "customer_id", "left")
    quarantined = checked.where(F.col("_known").isNull()).select(
        F.lit("sales_orders").alias("table"),
        F.lit("conform").alias("stage"),
        F.lit("unknown_customer").alias("reason"),
        F.lit("customer_id").alias("field"),
        "source_file",
        F.to_json(F.struct(*[c for c in orders_raw.columns if c != "source_file"])).alias("record"),
    )
    orders_ok = checked.where(F.col("_known").isNotNull()).drop("_known")

    lines = orders_ok.select(
        # Order numbers are identifiers: strings in silver, whatever the source's type.
        F.col("order_number").try_cast("long").cast("string").alias("order_number"),
        "customer_id",
        _epoch("order_datetime").alias("order_ts"),
        F.posexplode("ordered_products").alias("line_no", "p"),
    ).select(
        "order_number",
        "customer_id",
        "order_ts",
        "line_no",
        F.trim(F.col("p.id")).alias("product_id"),
        F.col("p.name").alias("product_name"),
        F.col("p.curr").alias("currency"),
        F.col("p.price").cast("double").alias("price"),
        F.col("p.qty").cast("double").alias("qty"),
    )
    order_lines = (
        lines.join(products.select("product_id", "product_category"), "product_id", "left")
        .withColumn("product_category", F.coalesce("product_category", F.lit(UNKNOWN_CATEGORY)))
        .withColumn("spend", F.col("price") * F.col("qty"))
        .withColumn("is_return", F.col("qty") < 0)
    )
    return Silver(
        customers=customers,
        order_lines=order_lines.select(
            "order_number",
            "customer_id",
            "order_ts",
            "line_no",
            "product_id",
            "product_name",
            "product_category",
            "currency",
            "price",
            "qty",
            "spend",
            "is_return",
        ),
        products=products,
        quarantined=quarantined.select(*QUARANTINE_COLUMNS),
    )


def orders_from_lines(order_lines: DataFrame) -> DataFrame:
    """One row per order number: its earliest time, line items, net units and value, purchase lines.

    An order is its number alone: lines stamped a minute apart are still one
    order. ``purchase_lines`` = 0 marks an order of returns only.
    """

    return order_lines.groupBy("order_number", "customer_id").agg(
        F.min("order_ts").alias("order_ts"),
        F.count(F.lit(1)).alias("line_items"),
        F.sum("qty").alias("units"),
        F.sum("spend").alias("order_value"),
        F.sum((~F.col("is_return")).cast("long")).alias("purchase_lines"),
    )
