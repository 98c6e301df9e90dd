"""Reading a transactions export as all-string columns, whatever its delimiter and header.

CSV goes through Spark's reader (any delimiter string, quotes, gzip, many
files); ``delimiter: whitespace`` splits each line on runs of spaces and tabs,
which no CSV reader does. Either way every value stays a string, and a line
with the wrong number of fields is flagged, not silently padded.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING

import pyspark.sql.functions as F
from pyspark.sql.types import StringType, StructField, StructType

from custseg.config import TransactionsConfig
from custseg.errors import InputDataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

WHITESPACE = "whitespace"
BAD_FIELD_COUNT = "_bad_field_count"  # true where a line does not have one value per column


def _first_file(path: Path) -> Path | None:
    if path.is_file():
        return path
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    return files[0] if files else None


def _first_line(path: Path) -> str:
    file = _first_file(path)
    if file is None:
        raise InputDataError(f"transactions input {path} holds no files")
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt", encoding="utf-8", errors="replace") as handle:
        return handle.readline().rstrip("\r\n").lstrip("\ufeff")


def column_names(path: Path, config: TransactionsConfig) -> list[str]:
    """The columns in order: the configured names, else the first file's header."""
    if config.column_names:
        return list(config.column_names)
    line = _first_line(path)
    if config.delimiter == WHITESPACE:
        return line.split()
    return [name.strip().strip('"') for name in line.split(config.delimiter)]


def read_delimited(spark: SparkSession, path: Path, config: TransactionsConfig) -> DataFrame:
    """Every line as string columns named by ``column_names``, plus BAD_FIELD_COUNT and
    source_file."""

    names = column_names(path, config)
    if len(set(names)) != len(names):
        raise InputDataError(
            f"transactions input {path} has repeated column names: {', '.join(names)[:300]}"
        )
    if config.delimiter == WHITESPACE:
        lines = spark.read.text(str(path)).withColumn("source_file", F.col("_metadata.file_path"))
        # Spark's trim() strips spaces only; a CRLF file's lines end in \r.
        lines = lines.withColumn("value", F.regexp_replace("value", r"^[\ufeff\s]+|\s+$", ""))
        lines = lines.where(F.col("value") != "")
        if config.header:
            header = " ".join(_first_line(path).split())
            lines = lines.where(F.regexp_replace("value", r"\s+", " ") != header)
        parts = F.split(F.col("value"), r"\s+")
        return lines.select(
            *[F.get(parts, i).alias(name) for i, name in enumerate(names)],
            (F.size(parts) != len(names)).alias(BAD_FIELD_COUNT),
            "source_file",
        )

    corrupt = "_corrupt_record"
    schema = StructType([StructField(n, StringType()) for n in [*names, corrupt]])
    # With column pruning Spark may skip the field count check; it is a quarantine reason.
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")
    df = (
        spark.read.option("header", config.header)
        .option("sep", config.delimiter)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", corrupt)
        .csv(str(path), schema=schema)
    )
    return df.select(
        *names,
        F.col(corrupt).isNotNull().alias(BAD_FIELD_COUNT),
        F.col("_metadata.file_path").alias("source_file"),
    )
