"""Spark-free reading of the MLflow store: segment runs, registered model versions, the champion.

MLflow answers are cached for ``MLFLOW_TTL_SECONDS`` only, so a new run
shows up within seconds; a store that cannot be read is reported, never raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from custseg.store.source import Source

MLFLOW_TTL_SECONDS = 15.0

T = TypeVar("T")

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


def clear_caches() -> None:
    """Forget cached MLflow answers (the dashboard's Reload button; tables: gold.clear_caches)."""
    with _ttl_lock:
        _ttl_cache.clear()


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
        # lazy: mlflow is slow to import; dashboard pages that read only gold tables start without
        # it
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
    columns = [
        "run_id",
        "started",
        "finished",
        "status",
        "recommended",
        "customers",
        "n_clusters",
        "noise_share",
        "silhouette",
        "davies_bouldin",
        "stability",
        "ari_truth",
        "metrics",
    ]
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
        rows.append(
            {
                "version": str(v.version),
                "created": _time(v.creation_timestamp),
                "method": (v.tags or {}).get("method", ""),
                "run_id": (v.tags or {}).get("run_id", v.run_id),
                "status": v.status,
                "aliases": ", ".join(sorted(aliases.get(str(v.version), []))),
                "champion": champion is not None and str(v.version) == str(champion),
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    if not frame.empty:
        frame = frame.sort_values(
            "version", key=lambda s: s.astype(int), ascending=False
        ).reset_index(drop=True)
    return frame, None if champion is None else str(champion)
