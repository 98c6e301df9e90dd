"""Reading a timestamp column: the stated format, always; or one inferred from a sample.

A stated ``timestamp_format`` is the only one used: a Spark datetime pattern
(``yyyyMMdd``, ``dd/MM/yyyy HH:mm``), ``iso`` (ISO-8601 dates and times), or
``epoch_seconds`` / ``epoch_millis``. Plain numbers are never read as epochs
unless stated, because 19970101 is a date, not 1970-08-20.

With no format stated, the candidates below are tried on a sample of distinct
values, in Spark (the same parser the run uses). The candidate that reads the
most values wins; when two candidates read the sample equally well but give
different times for some value (01/02/2011: 1 February or 2 January), the
input is refused with the column and two such values, so the user states it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyspark.sql.functions as F

from custseg.errors import InputDataError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

EPOCH_FORMATS = ("epoch_seconds", "epoch_millis")
ISO = "iso"

_TIMES = ("", " H:mm", " H:mm:ss", " h:mm a", " h:mm:ss a")
_DAY_MONTH = [
    f"{d}{sep}{m}{sep}{y}"
    for sep in "/.-"
    for y in ("yyyy", "yy")
    for d, m in (("d", "M"), ("M", "d"))
]
# In order of preference: among candidates that read the sample alike, the first is used.
CANDIDATES = (
    ISO,
    "yyyy/M/d H:mm:ss",
    "yyyy/M/d H:mm",
    "yyyy/M/d",
    "yyyyMMdd",
    "yyyyMMddHHmmss",
    "yyyyMMdd HH:mm:ss",
    *[date + time for date in _DAY_MONTH for time in _TIMES],
    "d MMM yyyy",
    "d-MMM-yyyy",
    "d-MMM-yy",
    "MMM d, yyyy",
    "d MMM yyyy H:mm",
    "d-MMM-yyyy H:mm",
)
SAMPLE_VALUES = 20_000
MIN_SHARE_READ = (
    0.95  # an inferred format must read this share of the sample; the rest is quarantined
)


def parse_timestamp(column: Column, fmt: str) -> Column:
    """The timestamp ``column`` holds in ``fmt`` (null where it does not)."""

    text = F.trim(column)
    if fmt == "epoch_seconds":
        return F.timestamp_seconds(text.try_cast("long"))
    if fmt == "epoch_millis":
        return F.timestamp_millis(text.try_cast("long"))
    if fmt == ISO:
        # ISO dates have dashes; without this guard Spark reads "19970101" as a year.
        return F.when(text.rlike(r"^\d{4}-\d{1,2}-\d{1,2}"), text.try_cast("timestamp"))
    return F.try_to_timestamp(text, F.lit(fmt))


def infer_format(values: DataFrame, column_name: str) -> str:
    """The format of a one-column frame of timestamp strings, from a sample of its distinct
    values."""

    sample = (
        values.select(F.trim(F.col(values.columns[0])).alias("v"))
        .where(F.col("v").isNotNull() & (F.col("v") != ""))
        .distinct()
        .limit(SAMPLE_VALUES)
        .cache()
    )
    try:
        parsed = sample.select(
            "v", *[parse_timestamp(F.col("v"), c).alias(f"c{i}") for i, c in enumerate(CANDIDATES)]
        )
        rows = sorted(
            parsed.collect(), key=lambda r: r["v"]
        )  # messages name the same values every run
    finally:
        sample.unpersist()
    if not rows:
        raise InputDataError(f"timestamp column {column_name!r} has no values")
    read = [sum(r[f"c{i}"] is not None for r in rows) for i in range(len(CANDIDATES))]
    best = max(read)
    examples = [r["v"] for r in rows[:2]]
    if best < MIN_SHARE_READ * len(rows):
        if all(str(v).isdigit() for v in examples):
            raise InputDataError(
                f"timestamp column {column_name!r} holds plain numbers such as {examples[0]!r}, "
                f"{examples[-1]!r}: set input.transactions.timestamp_format (epoch_seconds, "
                "epoch_millis, or a pattern like yyyyMMdd)"
            )
        raise InputDataError(
            f"timestamp column {column_name!r}: no known format reads values such as "
            f"{examples[0]!r}, {examples[-1]!r}; set input.transactions.timestamp_format to a "
            "Spark datetime pattern"
        )
    tied = [i for i, n in enumerate(read) if n == best]
    chosen = tied[0]
    for other in tied[1:]:
        differ = [r["v"] for r in rows if r[f"c{chosen}"] != r[f"c{other}"]]
        if differ:
            raise InputDataError(
                f"timestamp column {column_name!r} is ambiguous: values such as {differ[0]!r}, "
                f"{differ[-1]!r} read as both {CANDIDATES[chosen]!r} and {CANDIDATES[other]!r}; "
                "set input.transactions.timestamp_format"
            )
    return CANDIDATES[chosen]
