"""After ingest: stop when a table kept too little, and say in words what was netted and set aside.

A table that keeps no rows, or loses more than ``input.max_quarantine_share``
of its rows to the quarantine, stops the stage with one line: how many rows,
the dominant reason and field, two sample values and what was expected. The
stage raises inside the lakehouse's publishing block, so the previous tables
stay live. Guest checkouts (no customer id) are not bad data: they are counted
and valued in the summary but not in the share.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pyspark.sql.functions as F

from custseg.data.transactions import DUPLICATE_COPY, GUEST_REASON
from custseg.errors import InputDataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

EXEMPT_FROM_SHARE = (GUEST_REASON,)


BY_REASON = {
    "conflicting_order": "each order id used by one customer",
    "duplicate_line": "no exact copies of a line",
    "duplicate_order": "each order number once",
    "unknown_customer": "a customer id listed in customers",
    "future_timestamp": "a time before now",
    "malformed_json": "one JSON object per line",
    "csv_field_count": "one value per column",
}


def _expected(reason: str, field: str, timestamp_format: str | None) -> str:
    if reason in BY_REASON:
        return BY_REASON[reason]
    if field == "timestamp":
        return (
            f"a timestamp in the format {timestamp_format!r}" if timestamp_format else "a timestamp"
        )
    if field in ("quantity", "unit_price", "amount", "sales_price") or field.endswith(
        (".qty", ".price")
    ):
        return "a finite number" + (" >= 0" if "price" in field else "")
    return f"a non-empty {field}"


def check_kept(
    rows: dict[str, dict[str, int]],
    quarantine: DataFrame,
    max_share: float,
    timestamp_format: str | None = None,
) -> None:
    """Raise InputDataError when a table kept 0 rows or quarantined more than ``max_share`` of
    them."""

    for table, counts in rows.items():
        ours = quarantine.where(
            (F.col("table") == table) & ~F.col("reason").isin(*EXEMPT_FROM_SHARE)
        )
        bad = (
            counts["rows_quarantined"]
            - quarantine.where(
                (F.col("table") == table) & F.col("reason").isin(*EXEMPT_FROM_SHARE)
            ).count()
        )
        share = bad / counts["rows_in"] if counts["rows_in"] else 0.0
        if counts["rows_kept"] > 0 and share <= max_share:
            continue
        top = ours.groupBy("reason", "field").count().orderBy(F.desc("count")).limit(1).collect()
        if not top:
            raise InputDataError(
                f"ingest stopped: {table} kept 0 of {counts['rows_in']:,} rows (the input holds "
                "none)"
            )
        reason, field = top[0]["reason"], top[0]["field"]
        sample = (
            ours.where((F.col("reason") == reason) & (F.col("field") == field)).limit(2).collect()
        )
        values = [_value(r["record"], field) for r in sample]
        raise InputDataError(
            f"ingest stopped: {bad:,} of {counts['rows_in']:,} {table} rows ({share:.0%}) "
            f"quarantined, kept {counts['rows_kept']:,}; mostly {reason} in field {field} (e.g. "
            f"{', '.join(repr(v) for v in values)}), expected "
            f"{_expected(reason, field, timestamp_format)} (input.max_quarantine_share is "
            f"{max_share:g})"
        )


def _value(record: str, field: str) -> str:

    try:
        parsed = json.loads(record)
    except (TypeError, ValueError):
        return (record or "")[:80]
    if isinstance(parsed, dict) and field in parsed:
        return str(parsed[field])
    return (record or "")[:80]


def transaction_notes(
    checked: DataFrame, order_lines: DataFrame, money: str, drop_duplicates: bool
) -> list[str]:
    """Summary lines: returns (rows, value, share of gross), guest checkouts, duplicate lines."""

    lines = order_lines.agg(
        F.sum(F.col("is_return").cast("long")).alias("rows"),
        F.sum(F.when(F.col("is_return"), -F.col("spend")).otherwise(0.0)).alias("returned"),
        F.sum(F.when(~F.col("is_return"), F.col("spend")).otherwise(0.0)).alias("gross"),
    ).collect()[0]
    value = F.abs(F.col(money).try_cast("double"))
    if money == "unit_price":
        value = value * F.abs(F.col("quantity").try_cast("double"))
    other = checked.agg(
        F.sum((F.col("reason") == GUEST_REASON).cast("long")).alias("guests"),
        F.sum(F.when(F.col("reason") == GUEST_REASON, value)).alias("guest_value"),
        F.sum(F.col(DUPLICATE_COPY).cast("long")).alias("duplicates"),
        F.sum((F.col("reason") == "duplicate_line").cast("long")).alias("dropped"),
    ).collect()[0]
    gross = lines["gross"] or 0.0
    share = (
        f"{(lines['returned'] or 0.0) / gross:.1%} of gross {gross:,.2f}" if gross else "gross is 0"
    )
    notes = [
        f"returns: {lines['rows'] or 0:,} lines, value {lines['returned'] or 0.0:,.2f} netted "
        f"({share})"
    ]
    notes.append(
        f"guest checkouts (no customer id): {other['guests'] or 0:,} lines, value "
        f"{other['guest_value'] or 0.0:,.2f}, quarantined as missing_customer_id"
    )
    dropped = drop_duplicates
    notes.append(
        f"exact duplicate lines: {other['duplicates'] or 0:,} "
        + (
            "dropped (quarantined as duplicate_line)"
            if dropped
            else "kept (set input.transactions.duplicate_lines: drop)"
        )
    )
    return notes
