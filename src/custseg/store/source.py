"""Where the dashboard and the report read from: a lakehouse (or catalog schema) and an MLflow
store.

A :class:`Source` is built from a Config by the CLI and passed to the
Streamlit process in environment variables (``CUSTSEG_LAKEHOUSE``,
``MLFLOW_TRACKING_URI``, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from custseg.config import DEFAULT_TRACKING_URI, StorageConfig, TrackingConfig, default_values

if TYPE_CHECKING:
    from custseg.config import Config

ENV_LAKEHOUSE = "CUSTSEG_LAKEHOUSE"
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_EXPERIMENT = "CUSTSEG_EXPERIMENT"
ENV_MODEL_NAME = "CUSTSEG_MODEL_NAME"
ENV_ALIAS = "CUSTSEG_MODEL_ALIAS"
ENV_LOG_FEATURES = "CUSTSEG_LOG_FEATURES"
ENV_CATALOG_SCHEMA = "CUSTSEG_CATALOG_SCHEMA"
ENV_WAREHOUSE_ID = "DATABRICKS_WAREHOUSE_ID"

# A Source without a Config (the server process, a test) uses the config's own defaults.
_DEFAULT_LAKEHOUSE = StorageConfig.model_fields["root"].default
_DEFAULT_EXPERIMENT = TrackingConfig.model_fields["experiment"].default
_DEFAULT_MODEL_NAME = TrackingConfig.model_fields["model_name"].default
_DEFAULT_ALIAS = TrackingConfig.model_fields["alias"].default


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
    experiment: str = _DEFAULT_EXPERIMENT
    model_name: str = _DEFAULT_MODEL_NAME
    alias: str = _DEFAULT_ALIAS
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
        """The source the server process passed down; defaults as the CLI's when a variable is
        unset."""
        env = os.environ if environ is None else environ
        if ENV_LOG_FEATURES in env:
            logs = tuple(f for f in env[ENV_LOG_FEATURES].split(",") if f)
        else:
            logs = tuple(default_values()["segment"]["log_features"])
        return cls(
            lakehouse=Path(env.get(ENV_LAKEHOUSE) or _DEFAULT_LAKEHOUSE).absolute(),
            tracking_uri=absolute_tracking_uri(env.get(ENV_TRACKING_URI) or DEFAULT_TRACKING_URI),
            experiment=env.get(ENV_EXPERIMENT) or _DEFAULT_EXPERIMENT,
            model_name=env.get(ENV_MODEL_NAME) or _DEFAULT_MODEL_NAME,
            alias=env.get(ENV_ALIAS) or _DEFAULT_ALIAS,
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
