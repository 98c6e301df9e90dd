"""Spark-free loading of the gold tables and the MLflow store, for the dashboard and the report.

Tables are read with pyarrow from the live version folder of each Parquet
table (:func:`custseg.storage.current_path`), or with the ``deltalake``
package from a Delta table at its latest version (``storage.format: delta``
with a lakehouse root); a missing table reads as an empty frame, and
:func:`missing_hint` says which command would produce it. A live version
never changes once written (a new write makes a new folder or a new Delta
version), so the Arrow tables are cached by :class:`LiveTable`: a new run
shows up on the next read without any invalidation. MLflow answers are
cached for a few seconds only.

Unity Catalog tables (``storage.catalog`` set) are read with SQL through a
Databricks SQL warehouse (``DATABRICKS_WAREHOUSE_ID``; a Databricks App gets it
from its sql-warehouse resource), the way Databricks Apps read tables. A
warehouse does not say cheaply when a table last changed, so those reads are
cached for ``SQL_TTL_SECONDS``.

Where to look comes from a :class:`Source`: built from a Config by the CLI,
and passed to the Streamlit process in environment variables
(``CUSTSEG_LAKEHOUSE``, ``MLFLOW_TRACKING_URI``, ...).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from custseg.features import FEATURE_COLUMNS
from custseg.storage import current_path, table_dir

if TYPE_CHECKING:
    import pyarrow as pa

    from custseg.config import Config

NOISE = -1
NOISE_LABEL = "noise (unassigned)"

ENV_LAKEHOUSE = "CUSTSEG_LAKEHOUSE"
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_EXPERIMENT = "CUSTSEG_EXPERIMENT"
ENV_MODEL_NAME = "CUSTSEG_MODEL_NAME"
ENV_ALIAS = "CUSTSEG_MODEL_ALIAS"
ENV_LOG_FEATURES = "CUSTSEG_LOG_FEATURES"
ENV_CATALOG_SCHEMA = "CUSTSEG_CATALOG_SCHEMA"
ENV_WAREHOUSE_ID = "DATABRICKS_WAREHOUSE_ID"
from custseg.config import DEFAULT_TRACKING_URI, catalog_table_name  # noqa: E402

# Silver customer columns the dashboard may show without masking (not personal data).
PUBLIC_CUSTOMER_COLUMNS = ("state", "city", "region", "district")
MLFLOW_TTL_SECONDS = 15.0
SQL_TTL_SECONDS = 60.0

T = TypeVar("T")


# --------------------------------------------------------------------------- where to look


def absolute_tracking_uri(uri: str) -> str:
    """A relative ``sqlite:///file.db`` made absolute against the working folder; others unchanged.

    The dashboard runs in a child process and may be started from elsewhere: an absolute
    path keeps it on the same store the pipeline wrote.
    """
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = uri[len(prefix) :]
        if path and path != ":memory:":
            return prefix + str(Path(path).absolute())
    return uri


@dataclass(frozen=True)
class Source:
    """Where the dashboard and the report read from: a lakehouse root and an MLflow store."""

    lakehouse: Path
    tracking_uri: str = DEFAULT_TRACKING_URI
    experiment: str = "custseg"
    model_name: str = "custseg-segmenter"
    alias: str = "champion"
    log_features: tuple[str, ...] = ()
    # "catalog.schema" when the pipeline writes Unity Catalog tables, read through the SQL warehouse
    catalog_schema: str | None = None
    warehouse_id: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> Source:
        uri = config.tracking.resolved_uri()
        return cls(
            lakehouse=Path(config.storage.root).absolute(),
            tracking_uri=absolute_tracking_uri(uri),
            experiment=config.tracking.experiment,
            model_name=config.tracking.model_name,
            alias=config.tracking.alias,
            log_features=tuple(config.segment.log_features),
            catalog_schema=(
                f"{config.storage.catalog}.{config.storage.schema_}"
                if config.storage.catalog
                else None
            ),
            warehouse_id=os.environ.get(ENV_WAREHOUSE_ID) or None,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Source:
        """The source the server process passed down; defaults as the CLI's when a variable is unset."""
        env = os.environ if environ is None else environ
        if ENV_LOG_FEATURES in env:
            logs = tuple(f for f in env[ENV_LOG_FEATURES].split(",") if f)
        else:
            from custseg.config import default_values

            logs = tuple(default_values()["segment"]["log_features"])
        return cls(
            lakehouse=Path(env.get(ENV_LAKEHOUSE) or "lakehouse").absolute(),
            tracking_uri=absolute_tracking_uri(env.get(ENV_TRACKING_URI) or DEFAULT_TRACKING_URI),
            experiment=env.get(ENV_EXPERIMENT) or "custseg",
            model_name=env.get(ENV_MODEL_NAME) or "custseg-segmenter",
            alias=env.get(ENV_ALIAS) or "champion",
            log_features=logs,
            catalog_schema=env.get(ENV_CATALOG_SCHEMA) or None,
            warehouse_id=env.get(ENV_WAREHOUSE_ID) or None,
        )

    def to_env(self) -> dict[str, str]:
        return {
            ENV_LAKEHOUSE: str(self.lakehouse),
            ENV_TRACKING_URI: self.tracking_uri,
            ENV_EXPERIMENT: self.experiment,
            ENV_MODEL_NAME: self.model_name,
            ENV_ALIAS: self.alias,
            ENV_LOG_FEATURES: ",".join(self.log_features),
            ENV_CATALOG_SCHEMA: self.catalog_schema or "",
            ENV_WAREHOUSE_ID: self.warehouse_id or "",
        }

    def describe(self) -> str:
        """Where the tables come from, in one line (the sidebar, the server's start line)."""
        if self.catalog_schema:
            return f"{self.catalog_schema} (SQL warehouse {self.warehouse_id or 'not set'})"
        return str(self.lakehouse)


# --------------------------------------------------------------------------- tables


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
        """Changes exactly when the live version does (a cache key); every slot for catalog tables."""
        if self.catalog_table is not None:
            return f"{self.catalog_table}@{self.warehouse_id}#{self.slot}"
        return str(self.path) if self.delta_version is None else f"{self.path}@{self.delta_version}"

    def modified(self) -> datetime | None:
        """When the live version was written (None for catalog tables: the warehouse does not say)."""
        if self.path is None:
            return None
        marker = self.path
        if self.delta_version is not None:
            marker = self.path / "_delta_log" / f"{self.delta_version:020d}.json"
        return datetime.fromtimestamp(marker.stat().st_mtime, tz=timezone.utc)


def live_table(source: Source, layer: str, table: str) -> LiveTable | None:
    """The live version of a table (Parquet, Delta or catalog, whichever is there), or None when it has none."""
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
        from databricks import sql
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
        import pyarrow.parquet as pq

        # pyarrow skips _SUCCESS and the hidden .crc files Spark leaves next to the parts.
        return pq.read_table(str(live.path), columns=wanted)
    return _delta_table(live).to_pyarrow_table(columns=wanted)


def _delta_table(live: LiveTable) -> Any:
    try:
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
        import pyarrow.dataset as ds

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
            f"dashboard reads through a SQL warehouse: set {ENV_WAREHOUSE_ID} (a Databricks App gets "
            "it from its sql-warehouse resource) and reload this page."
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
    """Forget cached tables and MLflow answers (the dashboard's Reload button)."""
    _arrow.cache_clear()
    _schema_names.cache_clear()
    _catalog_tables.cache_clear()
    with _ttl_lock:
        _ttl_cache.clear()


# --------------------------------------------------------------------------- gold views


def segments(source: Source) -> pd.DataFrame:
    """gold.customer_segments: customer_id, segment, segment_name, pc1, pc2, method, model_version, run_id."""
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
    """One row per segmented customer: segment, name, features, location (and personal columns if asked).

    ``personal=False`` (the default) takes no personal column from silver.customers at all.
    """
    from custseg.data.schemas import PERSONAL_COLUMNS

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


# --------------------------------------------------------------------------- derived figures


def segment_label(segment: int, name: str | None) -> str:
    """How a segment is named in every chart and filter: "3 · bargain hunters", noise "noise (unassigned)"."""
    if int(segment) == NOISE:
        return NOISE_LABEL
    return f"{int(segment)} · {name}" if name else str(int(segment))


def segment_labels(profile_frame: pd.DataFrame) -> dict[int, str]:
    """segment -> label, in segment order (noise first)."""
    if profile_frame.empty:
        return {}
    return {
        int(r.segment): segment_label(int(r.segment), str(r.archetype))
        for r in profile_frame.itertuples(index=False)
    }


def feature_zscores(
    table: pd.DataFrame, feature_names: Sequence[str], log_features: Sequence[str] = ()
) -> pd.DataFrame:
    """Per segment (rows) the mean z-score of each feature (columns) over all customers.

    Heavy-tailed features (``log_features``, as the model scales them) are log1p'd first, so one
    giant order does not wash out every other segment's colour.
    """
    present = [f for f in feature_names if f in table.columns]
    if table.empty or not present:
        return pd.DataFrame()
    X = table[present].astype("float64").copy()
    for f in present:
        if f in log_features:
            X[f] = np.log1p(X[f].clip(lower=0))
    std = X.std(ddof=0).replace(0.0, np.nan)
    Z = (X - X.mean()) / std
    out = Z.groupby(table["segment"].astype("int64")).mean()
    return out.fillna(0.0)


def sample_rows(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows, the same ones every time for the same frame (charts stay steady)."""
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed).sort_index()


def recommendation(comparison_frame: pd.DataFrame) -> dict[str, Any] | None:
    """The recommended row of the comparison table as a dict, or None."""
    if comparison_frame.empty or "recommended" not in comparison_frame.columns:
        return None
    rows = comparison_frame[comparison_frame["recommended"].astype(bool)]
    return rows.iloc[0].to_dict() if not rows.empty else None


def why_recommended(
    comparison_frame: pd.DataFrame, diagnostics: dict[str, Any] | None
) -> list[str]:
    """Plain sentences on why the recommended method won; DBSCAN's own diagnosis is shown beside
    them (DBSCAN diagnostics), so it is referred to here, not repeated."""
    if comparison_frame.empty:
        return []
    best = recommendation(comparison_frame)
    out = []
    if best is None:
        used = comparison_frame[
            comparison_frame["note"].astype(str).str.contains("not a recommendation")
        ]
        if used.empty:
            return []
        out.append(
            f"No method is usable on this data; the segments come from {used.iloc[0]['method']}, the best "
            "score, and are rough groups rather than a recommendation."
        )
    else:
        out.append(
            f"{best['method']} is recommended: the highest score (silhouette on clustered customers x "
            f"(1 - noise share)) among the usable methods"
            + (f", {best['score']:.3f}" if _finite(best.get("score")) else "")
            + "."
        )
    for row in comparison_frame.to_dict("records"):
        if best is not None and row["method"] == best["method"]:
            continue
        if row["method"] == "dbscan" and diagnostics:
            if diagnostics.get("verdict") == "weak":
                out.append("dbscan is not usable here: see the DBSCAN diagnostics.")
            elif _finite(row.get("score")):
                out.append(
                    f"DBSCAN worked (verdict ok) but scored lower ({float(row['score']):.3f})."
                )
            continue
        if (
            not bool(row.get("usable", True))
            and row.get("note")
            and "not a recommendation" not in str(row["note"])
        ):
            out.append(f"{row['method']} is not usable here: {row['note']}.")
    return [" ".join(s.split()) for s in out]


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- MLflow

_ttl_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
_ttl_lock = threading.Lock()


def _ttl(key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    now = time.monotonic()
    with _ttl_lock:
        hit = _ttl_cache.get(key)
        if hit is not None and now - hit[0] < MLFLOW_TTL_SECONDS:
            return hit[1]
    value = compute()
    with _ttl_lock:
        _ttl_cache[key] = (now, value)
    return value


@dataclass
class TrackingInfo:
    """What the MLflow store says: segment runs, registered versions, the champion."""

    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    versions: pd.DataFrame = field(default_factory=pd.DataFrame)
    champion: str | None = None
    error: str | None = None  # why the store could not be read (None = fine)

    def finished(self, run_id: str | None) -> datetime | None:
        """When run ``run_id`` finished (else the newest finished segment run)."""
        if self.runs.empty:
            return None
        done = self.runs[self.runs["finished"].notna()]
        if run_id is not None:
            match = done[done["run_id"] == run_id]
            if not match.empty:
                return match.iloc[0]["finished"].to_pydatetime()
        return done.iloc[0]["finished"].to_pydatetime() if not done.empty else None


def _store_missing(uri: str) -> str | None:
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.is_file():
            return f"No MLflow store at {path} yet: run `custseg run` (or `custseg demo`) first."
    return None


def _time(ms: Any) -> pd.Timestamp | None:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC") if ms else None


def tracking_info(source: Source) -> TrackingInfo:
    """Segment runs (newest first), model versions and the champion; never raises."""
    key = ("tracking", source.tracking_uri, source.experiment, source.model_name, source.alias)
    return _ttl(key, lambda: _tracking_info(source))


def _tracking_info(source: Source) -> TrackingInfo:
    missing = _store_missing(source.tracking_uri)
    if missing:
        return TrackingInfo(error=missing)
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:  # pragma: no cover - mlflow is a core dependency
        return TrackingInfo(error="MLflow is not installed")
    try:
        client = MlflowClient(tracking_uri=source.tracking_uri)
        info = TrackingInfo()
        experiment = client.get_experiment_by_name(source.experiment)
        if experiment is not None:
            runs = client.search_runs(
                [experiment.experiment_id],
                filter_string="tags.`custseg.stage` = 'segment'",
                order_by=["attributes.start_time DESC"],
                max_results=200,
            )
            info.runs = _runs_frame(runs)
        info.versions, info.champion = _versions(client, source, MlflowException)
        if not info.versions.empty and not info.runs.empty:
            by_run = dict(zip(info.versions["run_id"], info.versions["version"], strict=False))
            info.runs["model_version"] = info.runs["run_id"].map(by_run)
        return info
    except Exception as exc:  # a broken or unreachable store must not take the dashboard down
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return TrackingInfo(error=f"cannot read the MLflow store {source.tracking_uri}: {first}")


def _runs_frame(runs: list[Any]) -> pd.DataFrame:
    rows = []
    for r in runs:
        recommended = r.data.tags.get("custseg.recommended", "")
        metrics = dict(r.data.metrics)
        row: dict[str, Any] = {
            "run_id": r.info.run_id,
            "started": _time(r.info.start_time),
            "finished": _time(r.info.end_time),
            "status": r.info.status,
            "recommended": recommended,
            "customers": pd.to_numeric(r.data.params.get("n_customers"), errors="coerce"),
        }
        for name in (
            "n_clusters",
            "noise_share",
            "silhouette",
            "davies_bouldin",
            "stability",
            "ari_truth",
        ):
            row[name] = metrics.get(f"{recommended}.{name}", np.nan)
        row["metrics"] = metrics
        rows.append(row)
    columns = ["run_id", "started", "finished", "status", "recommended", "customers",
               "n_clusters", "noise_share", "silhouette", "davies_bouldin", "stability", "ari_truth", "metrics"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _versions(
    client: Any, source: Source, error_type: type[Exception]
) -> tuple[pd.DataFrame, str | None]:
    columns = ["version", "created", "method", "run_id", "status", "aliases", "champion"]
    try:
        model = client.get_registered_model(source.model_name)
    except error_type:
        return pd.DataFrame(columns=columns), None
    aliases: dict[str, list[str]] = {}
    for alias, version in (getattr(model, "aliases", None) or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    champion = (getattr(model, "aliases", None) or {}).get(source.alias)
    rows = []
    for v in client.search_model_versions(f"name='{source.model_name}'"):
        rows.append({
            "version": str(v.version),
            "created": _time(v.creation_timestamp),
            "method": (v.tags or {}).get("method", ""),
            "run_id": (v.tags or {}).get("run_id", v.run_id),
            "status": v.status,
            "aliases": ", ".join(sorted(aliases.get(str(v.version), []))),
            "champion": champion is not None and str(v.version) == str(champion),
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    if not frame.empty:
        frame = frame.sort_values(
            "version", key=lambda s: s.astype(int), ascending=False
        ).reset_index(drop=True)
    return frame, None if champion is None else str(champion)


# --------------------------------------------------------------------------- KPIs


@dataclass
class Kpis:
    customers: int
    revenue: float
    segments: int
    noise_share: float
    recommended: str | None
    method: str | None
    run_id: str | None
    table_version: str | None  # the model version the gold tables were written with
    finished: datetime | None
    champion: str | None


def kpis(source: Source, tracking: TrackingInfo | None = None) -> Kpis:
    """The Overview tiles and the report's summary, from the gold tables (and MLflow when given)."""
    seg = segments(source)
    prof = profiles(source)
    feats = features(source)
    comp = comparison(source)
    n = len(seg)
    revenue = float("nan")
    if not feats.empty and not seg.empty:
        revenue = float(feats[feats["customer_id"].isin(seg["customer_id"])]["total_spend"].sum())
    noise = float((seg["segment"] == NOISE).mean()) if n else float("nan")
    best = recommendation(comp)
    first = seg.iloc[0] if n else None
    run_id = str(first["run_id"]) if first is not None and "run_id" in seg.columns else None
    finished = tracking.finished(run_id) if tracking is not None else None
    if finished is None:
        live = live_table(source, "gold", "customer_segments")
        if live is not None:
            finished = live.modified()
    return Kpis(
        customers=n,
        revenue=revenue,
        segments=int((prof["segment"] != NOISE).sum()) if not prof.empty else 0,
        noise_share=noise,
        recommended=str(best["method"]) if best else None,
        method=str(first["method"]) if first is not None and "method" in seg.columns else None,
        run_id=run_id,
        table_version=str(first["model_version"])
        if first is not None and "model_version" in seg.columns
        else None,
        finished=finished,
        champion=tracking.champion if tracking is not None else None,
    )
