"""The quarantine: rows that failed a check, with the reason, the field and where they came from."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyspark.sql.functions as F

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

QUARANTINE_COLUMNS = ["table", "stage", "reason", "field", "source_file", "record"]

# A check is (reason, field it is about, failed). A null ``failed`` counts as passed,
# so each check only has to be right about the rows it is meant for.
Check = tuple[str, str, "Column"]


def first_failure(checks: list[Check]) -> Column:
    """The reason of the first failing check, or null when the row passes them all."""
    return _first(checks, 0)


def failed_field(checks: list[Check]) -> Column:
    """The field the first failing check is about, or null when the row passes them all."""
    return _first(checks, 1)


def _first(checks: list[Check], part: int) -> Column:

    expr = F.lit(None).cast("string")
    for check in reversed(checks):
        expr = F.when(F.coalesce(check[2], F.lit(False)), F.lit(check[part])).otherwise(expr)
    return expr


def with_failure(df: DataFrame, checks: list[Check]) -> DataFrame:
    """``df`` with ``reason`` and ``field`` of its first failing check (both null = kept)."""
    return df.withColumn("reason", first_failure(checks)).withColumn("field", failed_field(checks))
