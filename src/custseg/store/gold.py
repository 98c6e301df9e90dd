"""Spark-free reading of the gold (and silver) tables, for the dashboard and the report.

Tables are read with pyarrow from the live version folder of each Parquet
table (:func:`custseg.storage.current_path`), or with the ``deltalake``
package from a Delta table at its latest version (``storage.format: delta``
with a lakehouse root); a missing table reads as an empty frame, and
:func:`missing_hint` says which command would produce it. A live version
never changes once written (a new write makes a new folder or a new Delta
version), so the Arrow tables are cached by :class:`LiveTable`: a new run
shows up on the next read without any invalidation.

Unity Catalog tables (``storage.catalog`` set) are read with SQL through a
Databricks SQL warehouse (``DATABRICKS_WAREHOUSE_ID``; a Databricks App gets it
from its sql-warehouse resource), the way Databricks Apps read tables. A
warehouse does not say cheaply when a table last changed, so those reads are
cached for ``SQL_TTL_SECONDS``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from custseg.config import catalog_table_name
from custseg.data.schemas import PERSONAL_COLUMNS
from custseg.features import FEATURE_COLUMNS
from custseg.storage import current_path, table_dir
from custseg.store.source import ENV_WAREHOUSE_ID, Source
from custseg.value.by_segment import SEGMENT_VALUE_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

NOISE = -1  # the segment of the customers no cluster takes

# Silver customer columns the dashboard may show without masking (not personal data).
PUBLIC_CUSTOMER_COLUMNS = ("state", "city", "region", "district")
SQL_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class LiveTable:
    """A table's live version: a Parquet version folder, a Delta table at one version, or a
    catalog table read through a SQL warehouse during one ``SQL_TTL_SECONDS`` slot."""

    path: Path | None
    delta_version: int | None = None  # None: a Parquet version folder
    catalog_table: str | None = None  # catalog.schema.layer_table, read with SQL
    warehouse_id: str | None = None
    slot: int = 0  # the time slot of a catalog table's read

    @property
    def key(self) -> str:
        """Changes exactly when the live version does (a cache key); every slot for catalog
        tables."""
        if self.catalog_table is not None:
            return f"{self.catalog_table}@{self.warehouse_id}#{self.slot}"
        return str(self.path) if self.delta_version is None else f"{self.path}@{self.delta_version}"

    def modified(self) -> datetime | None:
        """When the live version was written (None for catalog tables: the warehouse does not
        say)."""
        if self.path is None:
            return None
        marker = self.path
        if self.delta_version is not None:
            marker = self.path / "_delta_log" / f"{self.delta_version:020d}.json"
        return datetime.fromtimestamp(marker.stat().st_mtime, tz=timezone.utc)


def live_table(source: Source, layer: str, table: str) -> LiveTable | None:
    """The live version of a table (Parquet, Delta or catalog, whichever is there), or None when it
    has none."""
    if source.catalog_schema:
        if not source.warehouse_id:
            return None
        slot = int(time.time() // SQL_TTL_SECONDS)
        name = catalog_table_name(source.catalog_schema, layer, table)
        if name.rsplit(".", 1)[1] not in _catalog_tables(
            source.catalog_schema, source.warehouse_id, slot
        ):
            return None
        return LiveTable(None, catalog_table=name, warehouse_id=source.warehouse_id, slot=slot)
    folder = table_dir(source.lakehouse, layer, table)
    log = folder / "_delta_log"
    if log.is_dir():
        # Each commit is NNNNNNNNNNNNNNNNNNNN.json; the newest is the table's current version.
        versions = [int(p.stem) for p in log.glob("*.json") if p.stem.isdigit()]
        return LiveTable(folder, max(versions)) if versions else None
    path = current_path(source.lakehouse, layer, table)
    return None if path is None else LiveTable(path)


# --------------------------------------------------------------------------- SQL warehouse

# warehouse id -> a function running one SQL statement and returning its rows as Arrow.
# Filled on first use with a Databricks SQL connection; tests register a local Spark session.
SQL_RUNNERS: dict[str, Callable[[str], pa.Table]] = {}


def run_sql(warehouse_id: str, statement: str) -> pa.Table:
    runner = SQL_RUNNERS.get(warehouse_id)
    if runner is None:
        runner = SQL_RUNNERS.setdefault(warehouse_id, _databricks_sql(warehouse_id))
    return runner(statement)


def _databricks_sql(warehouse_id: str) -> Callable[[str], pa.Table]:
    """Statements on a Databricks SQL warehouse, authenticated as the environment says.

    In a Databricks App that is the App's service principal (``DATABRICKS_HOST``,
    ``DATABRICKS_CLIENT_ID`` / ``_SECRET``, set by the platform); elsewhere any
    Databricks SDK authentication (a profile, a token).
    """
    try:
        from databricks import sql  # lazy: optional dependency (databricks extra)

        # lazy: optional dependency (databricks extra)
        from databricks.sdk.core import Config as DatabricksConfig
    except ImportError:
        raise ImportError(
            "reading Unity Catalog tables needs databricks-sql-connector and databricks-sdk "
            "(pip install 'custseg[databricks]')"
        ) from None
    config = DatabricksConfig()
    host = str(config.host).removeprefix("https://").rstrip("/")

    def run(statement: str) -> pa.Table:
        with (
            sql.connect(
                server_hostname=host,
                http_path=f"/sql/1.0/warehouses/{warehouse_id}",
                credentials_provider=lambda: config.authenticate,
            ) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
            return cursor.fetchall_arrow()

    return run


@lru_cache(maxsize=8)
def _catalog_tables(
    catalog_schema: str, warehouse_id: str, slot: int
) -> frozenset[str]:  # slot: cache key
    listed = run_sql(warehouse_id, f"SHOW TABLES IN {_quoted_name(catalog_schema)}")
    return frozenset(str(name) for name in listed.column("tableName").to_pylist())


def _quoted_name(dotted: str) -> str:
    return ".".join(_quoted(part) for part in dotted.split("."))


def _quoted(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


# --------------------------------------------------------------------------- reading


@lru_cache(maxsize=64)
def _arrow(live: LiveTable, columns: tuple[str, ...] | None) -> pa.Table:
    wanted = list(columns) if columns is not None else None
    if live.catalog_table is not None:
        assert live.warehouse_id is not None
        selected = ", ".join(_quoted(c) for c in columns) if columns is not None else "*"
        return run_sql(
            live.warehouse_id, f"SELECT {selected} FROM {_quoted_name(live.catalog_table)}"
        )
    assert live.path is not None
    if live.delta_version is None:
        # pyarrow skips _SUCCESS and the hidden .crc files Spark leaves next to the parts.
        return pq.read_table(str(live.path), columns=wanted)
    return _delta_table(live).to_pyarrow_table(columns=wanted)


def _delta_table(live: LiveTable) -> Any:
    try:
        # lazy: optional dependency (dashboard extra); only Delta lakehouses need it
        from deltalake import DeltaTable
    except ImportError:
        raise ImportError(
            f"{live.path} is a Delta table; reading it needs the deltalake package "
            "(pip install 'custseg[dashboard]')"
        ) from None
    return DeltaTable(str(live.path), version=live.delta_version)


def read_table(
    source: Source, layer: str, table: str, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A gold/silver table as pandas; an empty frame when the table does not exist yet.

    ``columns`` that the table lacks are left out rather than failing, so an
    older table still loads.
    """
    live = live_table(source, layer, table)
    if live is None:
        return pd.DataFrame(columns=list(columns or []))
    wanted: tuple[str, ...] | None = None
    if columns is not None:
        available = set(_schema_names(live))
        wanted = tuple(c for c in columns if c in available)
    return _arrow(live, wanted).to_pandas()


@lru_cache(maxsize=64)
def _schema_names(live: LiveTable) -> tuple[str, ...]:
    if live.catalog_table is not None:
        assert live.warehouse_id is not None
        return tuple(
            run_sql(
                live.warehouse_id, f"SELECT * FROM {_quoted_name(live.catalog_table)} LIMIT 0"
            ).schema.names
        )
    if live.delta_version is None:
        return tuple(ds.dataset(str(live.path), format="parquet").schema.names)
    return tuple(field.name for field in _delta_table(live).schema().fields)


def table_exists(source: Source, layer: str, table: str) -> bool:
    return live_table(source, layer, table) is not None


def missing_hint(source: Source) -> str | None:
    """None when a segmentation run is there to show; else one paragraph on what to run."""
    root = source.lakehouse
    run_it = (
        "Run `custseg demo` to try it on generated data, or `custseg run --input DIR` on your "
        "own retail-org folder, then reload this page."
    )
    if source.catalog_schema and not source.warehouse_id:
        return (
            f"The pipeline writes Unity Catalog tables ({source.catalog_schema}.gold_*), which the "
            f"dashboard reads through a SQL warehouse: set {ENV_WAREHOUSE_ID} (a Databricks App "
            "gets it from its sql-warehouse resource) and reload this page."
        )
    where = (
        f"The catalog schema `{source.catalog_schema}`"
        if source.catalog_schema
        else f"The lakehouse at `{root}`"
    )
    if not source.catalog_schema and not root.is_dir():
        return f"No lakehouse at `{root}` yet. {run_it}"
    if not table_exists(source, "gold", "customer_features"):
        return f"{where} has no customer features yet. {run_it}"
    if not table_exists(source, "gold", "customer_segments") or not table_exists(
        source, "gold", "segment_profiles"
    ):
        return (
            f"{where} has customer features but no segmentation yet: "
            "run `custseg segment` (or `custseg run`), then reload this page."
        )
    return None


def clear_caches() -> None:
    """Forget cached tables (the dashboard's Reload button; MLflow answers: runs.clear_caches)."""
    _arrow.cache_clear()
    _schema_names.cache_clear()
    _catalog_tables.cache_clear()


def segments(source: Source) -> pd.DataFrame:
    """gold.customer_segments: customer_id, segment, segment_name, pc1, pc2, method, model_version,
    run_id."""
    frame = read_table(source, "gold", "customer_segments")
    if not frame.empty:
        frame["segment"] = frame["segment"].astype("int64")
    return frame


def features(source: Source) -> pd.DataFrame:
    return read_table(source, "gold", "customer_features", ["customer_id", *FEATURE_COLUMNS])


def profiles(source: Source) -> pd.DataFrame:
    """gold.segment_profiles sorted by segment (noise first)."""
    frame = read_table(source, "gold", "segment_profiles")
    if frame.empty:
        return frame
    frame["segment"] = frame["segment"].astype("int64")
    return frame.sort_values("segment", kind="stable").reset_index(drop=True)


def comparison(source: Source) -> pd.DataFrame:
    return read_table(source, "gold", "method_comparison")


def k_distance(source: Source) -> pd.DataFrame:
    frame = read_table(source, "gold", "dbscan_k_distance")
    return frame.sort_values("rank").reset_index(drop=True) if not frame.empty else frame


def dbscan_diagnostics(source: Source) -> dict[str, Any] | None:
    """The DBSCAN diagnostics dict (noise share, knee, density ratio, verdict, reasons), or None."""
    frame = read_table(source, "gold", "dbscan_k_distance", ["diagnostics"])
    if frame.empty:
        return None
    try:
        value = json.loads(str(frame["diagnostics"].iloc[0]))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def linkage_matrix(source: Source) -> np.ndarray | None:
    """The hierarchical method's scipy linkage matrix (n-1 x 4), or None."""
    frame = read_table(source, "gold", "hierarchy_linkage", ["left", "right", "distance", "size"])
    if frame.empty:
        return None
    return frame[["left", "right", "distance", "size"]].to_numpy(dtype=np.float64)


def migration(source: Source) -> pd.DataFrame:
    """gold.segment_migration (previous, current, customers, run_id); empty before any retrain."""
    return read_table(source, "gold", "segment_migration")


def customer_table(source: Source, personal: bool = False) -> pd.DataFrame:
    """One row per segmented customer: segment, name, features, location (and personal columns if
    asked).

    ``personal=False`` (the default) takes no personal column from silver.customers at all.
    """
    seg = segments(source)
    if seg.empty:
        return seg
    table = seg[
        [c for c in ("customer_id", "segment", "segment_name", "pc1", "pc2") if c in seg.columns]
    ]
    feats = features(source)
    if not feats.empty:
        table = table.merge(feats.drop_duplicates("customer_id"), on="customer_id", how="left")
    wanted = list(PUBLIC_CUSTOMER_COLUMNS) + (list(PERSONAL_COLUMNS) if personal else [])
    people = read_table(source, "silver", "customers", ["customer_id", *wanted])
    if not people.empty and "customer_id" in people.columns:
        people = people.drop_duplicates("customer_id")
        table = table.merge(people, on="customer_id", how="left")
    return table.sort_values("customer_id", kind="stable").reset_index(drop=True)


def segment_value(source: Source) -> pd.DataFrame:
    """gold.segment_value (customer value per segment, ``custseg value``) sorted by segment; empty
    when it is missing or was computed for other segments than the live segment_profiles."""
    frame = read_table(source, "gold", "segment_value")
    live = read_table(source, "gold", "segment_profiles", ["run_id"])
    empty = pd.DataFrame(columns=[*SEGMENT_VALUE_COLUMNS, "horizon_days", "segments_run_id"])
    empty["segment"] = empty["segment"].astype("int64")  # lookups by segment stay by label
    if frame.empty or live.empty or "segments_run_id" not in frame.columns:
        return empty
    if set(frame["segments_run_id"]) != set(live["run_id"]):
        return empty  # stale: segment ran again after value
    frame["segment"] = frame["segment"].astype("int64")
    return frame.sort_values("segment", kind="stable").reset_index(drop=True)


def rfm_segments(source: Source) -> pd.DataFrame:
    """gold.rfm_segments: customers and revenue per named RFM segment (``custseg value``)."""
    return read_table(source, "gold", "rfm_segments")
