"""The raw retail-org layout, as explicit schemas.

Raw files are read with every leaf as a string so that no value is lost or
silently nulled by the reader; ingestion then casts each column explicitly
and quarantines the rows whose values do not cast. Schema inference is never
used on the main path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

# Folder and file names of the retail-org layout, relative to the raw folder.
CUSTOMERS_DIR = "customers"
SALES_ORDERS_DIR = "sales_orders"
PRODUCTS_DIR = "products"
LOYALTY_DIR = "loyalty_segments"

CUSTOMERS_FILE = "customers.csv"
PRODUCTS_FILE = "products.csv"
LOYALTY_FILE = "loyalty_segment.csv"

CUSTOMER_COLUMNS = [
    "customer_id",
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
    "lon",
    "lat",
    "ship_to_address",
    "valid_from",
    "valid_to",
    "units_purchased",
    "loyalty_segment",
]
PRODUCT_COLUMNS = [
    "product_id",
    "product_category",
    "product_name",
    "sales_price",
    "EAN13",
    "EAN5",
    "product_unit",
]
LOYALTY_COLUMNS = [
    "loyalty_segment_id",
    "loyalty_segment_description",
    "unit_threshold",
    "valid_from",
    "valid_to",
]
ORDER_COLUMNS = [
    "clicked_items",
    "customer_id",
    "customer_name",
    "number_of_line_items",
    "order_datetime",
    "order_number",
    "ordered_products",
    "promo_info",
]
ORDERED_PRODUCT_FIELDS = ["curr", "id", "name", "price", "qty", "unit", "promotion_info"]

PRODUCTS_DELIMITER = ";"
CSV_DELIMITER = ","

# Personal data: never leaves the silver/gold customer tables.
PERSONAL_COLUMNS = (
    "customer_name",
    "tax_id",
    "tax_code",
    "street",
    "number",
    "unit",
    "ship_to_address",
    "lon",
    "lat",
    "postcode",
)


def string_schema(columns: list[str]) -> StructType:
    # lazy: pyspark stays out of the generator and the dashboard (they read the column lists here)
    from pyspark.sql.types import StringType, StructField, StructType

    return StructType([StructField(c, StringType(), True) for c in columns])


def sales_order_raw_schema() -> StructType:
    """sales_orders JSON lines with every leaf read as a string."""
    # lazy: pyspark stays out of the generator and the dashboard (they read the column lists here)
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    s = StringType()
    product = StructType([StructField(f, s, True) for f in ORDERED_PRODUCT_FIELDS])
    return StructType(
        [
            StructField("clicked_items", ArrayType(ArrayType(s)), True),
            StructField("customer_id", s, True),
            StructField("customer_name", s, True),
            StructField("number_of_line_items", s, True),
            StructField("order_datetime", s, True),
            StructField("order_number", s, True),
            StructField("ordered_products", ArrayType(product), True),
            StructField("promo_info", s, True),
        ]
    )
