"""The quarantine: rows that failed a check, with the reason and where they came from."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column

QUARANTINE_COLUMNS = ["table", "stage", "reason", "source_file", "record"]


def first_failure(checks: list[tuple[str, Column]]) -> Column:
    """The name of the first failing check, or null when the row passes them all.

    Checks are (reason, failed) pairs; a null ``failed`` counts as passed, so
    each check only has to be right about the rows it is meant for.
    """
    import pyspark.sql.functions as F

    expr = F.lit(None).cast("string")
    for reason, failed in reversed(checks):
        expr = F.when(F.coalesce(failed, F.lit(False)), F.lit(reason)).otherwise(expr)
    return expr
