"""The ingest stage: raw -> bronze -> silver, quarantining bad rows.

Reading and conforming live in ``custseg.data``; this stage writes the
tables, counts them and checks that every row read was kept or quarantined.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from custseg.config import Config
from custseg.data.conform import conform, orders_from_lines
from custseg.data.ingest import read_raw
from custseg.data.quality import check_kept, transaction_notes
from custseg.data.transactions import conform_transactions, read_transactions
from custseg.errors import CustsegError
from custseg.stages.report import StageReport
from custseg.storage import Lakehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


# whole: the stage's tables are written inside one publishing block, so they go live together or not
# at all
def ingest(spark: SparkSession, config: Config, progress=print) -> StageReport:
    """raw -> bronze -> silver, quarantining bad rows; checks rows in = kept + quarantined."""
    started = time.perf_counter()
    lake = Lakehouse(spark, config.storage)
    report = StageReport("ingest")
    raw_dir = Path(config.input.path)
    if config.input.layout == "retail-org":
        raw = read_raw(spark, raw_dir)
    else:
        raw = read_transactions(spark, raw_dir, config.input.transactions)

    # Every table of the stage goes live together at the end of the block, or none does.
    with lake.publishing():
        # Each checked input feeds its bronze table, the quarantine and the row count: parse it
        # once.
        raw.cache()
        try:
            rows_in = {name: df.count() for name, df in raw.checked.items()}
            for name, df in raw.kept.items():
                progress(f"  bronze.{name}")
                lake.write(df, "bronze", name)
            bronze = {name: lake.read("bronze", name) for name in raw.kept}

            if config.input.layout == "retail-org":
                silver = conform(bronze)
            else:
                silver = conform_transactions(bronze, config.input.transactions)
            for name, df in silver.tables().items():
                progress(f"  silver.{name}")
                lake.write(df, "silver", name)
            lake.write(orders_from_lines(lake.read("silver", "order_lines")), "silver", "orders")
            progress("  bronze.quarantine")
            lake.write(
                raw.quarantined.unionByName(silver.quarantined), "bronze", "quarantine", files=1
            )
            report.notes.extend(raw.notes)
            if config.input.layout == "transactions":
                tx = config.input.transactions
                money = "amount" if tx.columns.amount else "unit_price"
                lines = lake.read("silver", "order_lines")
                report.notes += transaction_notes(
                    raw.checked["transactions"], lines, money, tx.duplicate_lines == "drop"
                )
        finally:
            raw.release()

        by_reason = lake.read("bronze", "quarantine").groupBy("table", "reason").count().collect()
        report.quarantined = {(r["table"], r["reason"]): int(r["count"]) for r in by_reason}
        for layer, names in (("bronze", list(raw.kept)), ("silver", [*silver.tables(), "orders"])):
            for name in names:
                report.tables[f"{layer}.{name}"] = lake.read(layer, name).count()
        report.tables["bronze.quarantine"] = sum(report.quarantined.values())
        rows = _conservation(report, config, rows_in)
        # Raised here, inside the block: nothing this stage wrote goes live.
        check_kept(
            rows,
            lake.read("bronze", "quarantine"),
            config.input.max_quarantine_share,
            raw.timestamp_format,
        )
        lake.write(_summary_frame(spark, rows), "bronze", "ingest_summary", files=1)
    report.extra["rows"] = rows
    report.seconds = time.perf_counter() - started
    return report


def _conservation(
    report: StageReport, config: Config, rows_in: dict[str, int]
) -> dict[str, dict[str, int]]:
    """rows in = rows kept + rows quarantined, per input table (kept = carried to the next table).

    ``rows_in`` is counted on every row read, before the split into kept and
    quarantined, so a row lost between the checks and the tables fails the run
    instead of passing unseen.
    """
    quarantined: dict[str, int] = {}
    for (table, _reason), count in report.quarantined.items():
        quarantined[table] = quarantined.get(table, 0) + count
    if config.input.layout == "retail-org":
        kept = {
            "customers": report.tables["bronze.customers"],
            "products": report.tables["bronze.products"],
            "loyalty_segments": report.tables["bronze.loyalty_segments"],
            "sales_orders": report.tables["silver.orders"],
        }
    else:
        kept = {"transactions": report.tables["silver.order_lines"]}
    rows = {}
    for table, kept_rows in kept.items():
        lost = rows_in[table] - kept_rows - quarantined.get(table, 0)
        if lost != 0:
            raise CustsegError(
                f"row conservation failed for {table}: {rows_in[table]} rows in, {kept_rows} kept, "
                f"{quarantined.get(table, 0)} quarantined ({lost} unaccounted for)"
            )
        rows[table] = {
            "rows_in": rows_in[table],
            "rows_kept": kept_rows,
            "rows_quarantined": quarantined.get(table, 0),
        }
    return rows


def _summary_frame(spark: SparkSession, rows: dict[str, dict[str, int]]):
    data = [(t, r["rows_in"], r["rows_kept"], r["rows_quarantined"]) for t, r in rows.items()]
    return spark.createDataFrame(
        data, "table string, rows_in long, rows_kept long, rows_quarantined long"
    )
