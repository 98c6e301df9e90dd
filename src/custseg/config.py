"""Typed, strict configuration.

Defaults live in ``defaults.yaml`` inside the package; a user file is merged
over them and CLI overrides (dotted keys) over that. Unknown keys and bad
values are rejected with one line naming the key, the value and what is
accepted. This module never imports Spark.
"""

from __future__ import annotations

import copy
import os
import re
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from custseg.errors import ConfigError
from custseg.methods import METHODS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SparkConfig(_Strict):
    master: str = "local[*]"
    remote: str | None = None
    app_name: str = "custseg"
    driver_memory: str = "4g"
    shuffle_partitions: int = Field(8, ge=1)
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"
    conf: dict[str, str] = Field(default_factory=dict)
    # Ship a zip of custseg to the executors: None = for Spark Connect and cluster masters, not
    # local[...].
    ship_package: bool | None = None

    @field_validator("driver_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not re.fullmatch(r"\d+[kmgt]?", value.lower()):
            raise ValueError("must look like 512m or 4g")
        return value

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("sc://"):
            raise ValueError("must start with sc://")
        return value


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$|^`[^`]+`$")


class StorageConfig(_Strict):
    root: str = "lakehouse"
    format: Literal["parquet", "delta"] = "parquet"
    keep_versions: int = Field(
        3, ge=2
    )  # >= 2: the previous version stays readable (migration, rollback)
    # Delta only: catalog tables <catalog>.<schema>.<layer>_<table> (Unity Catalog) instead of
    # paths.
    catalog: str | None = None
    schema_: str | None = Field(None, alias="schema", validate_default=True)

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @field_validator("catalog")
    @classmethod
    def _catalog(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError("must be a plain identifier (letters, digits, _) or `quoted`")
        return value

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError("must be a plain identifier (letters, digits, _) or `quoted`")
        catalog = info.data.get("catalog")
        if (catalog is None) != (value is None):
            raise ValueError(
                f"storage.catalog and storage.schema go together (catalog is {catalog!r})"
            )
        if value is not None and info.data.get("format") != "delta":
            raise ValueError(
                f"catalog tables need storage.format: delta (format is {info.data.get('format')!r})"
            )
        return value

    def table_name(self, layer: str, table: str) -> str | None:
        """``catalog.schema.<layer>_<table>`` when catalog tables are configured, else None
        (paths)."""
        if self.catalog is None or self.schema_ is None:
            return None
        return catalog_table_name(f"{self.catalog}.{self.schema_}", layer, table)


def catalog_table_name(catalog_schema: str, layer: str, table: str) -> str:
    """How the pipeline names a table in a catalog schema: ``catalog.schema.<layer>_<table>``."""
    return f"{catalog_schema}.{layer}_{table}"


class TransactionColumns(_Strict):
    """Which source column holds each field; null = the export has no such column."""

    customer_id: str = "customer_id"
    order_id: str | None = (
        "order_id"  # None: an order is one customer's lines per day (or timestamp)
    )
    timestamp: str = "timestamp"
    product_id: str | None = "product_id"  # None: product diversity is not available
    category: str | None = "category"  # None: category diversity is not available
    quantity: str = "quantity"
    unit_price: str | None = "unit_price"  # spend = unit_price x quantity ...
    amount: str | None = None  # ... or the line total; exactly one of the two


class TransactionsConfig(_Strict):
    path: str | None = None
    format: Literal["csv", "parquet"] = "csv"
    delimiter: str = ","  # any string, or "whitespace" for runs of spaces/tabs
    header: bool = True
    column_names: list[str] | None = None  # the columns in order, for files without a header
    timestamp_format: str | None = (
        None  # a Spark pattern, iso, epoch_seconds, epoch_millis; null = inferred
    )
    orders_without_id: Literal["day", "timestamp"] = "day"
    cancellation_prefix: str | None = None  # an order id starting with this is a return (e.g. "C")
    duplicate_lines: Literal["keep", "drop"] = "keep"
    columns: TransactionColumns = Field(default_factory=TransactionColumns)

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        if value == "":
            raise ValueError("must be a non-empty string or 'whitespace'")
        return value


class InputConfig(_Strict):
    path: str = "data/raw"
    layout: Literal["retail-org", "transactions"] = "retail-org"
    transactions: TransactionsConfig = Field(default_factory=TransactionsConfig)
    # Ingest stops when more than this share of a table's rows is quarantined (guest
    # checkouts, lines without a customer id, are counted and reported but not in the share).
    max_quarantine_share: float = Field(default=0.2, ge=0.0, le=1.0)


class FeaturesConfig(_Strict):
    as_of: date | None = None
    include_customers_without_orders: bool = False


# Method names and each method's section (hierarchical, kmeans, dbscan, hdbscan) come from
# the method registry, so that adding a method does not touch this file.
MethodName = Literal[tuple(METHODS)]  # type: ignore[valid-type]

_MethodSections = create_model(
    "_MethodSections",
    __base__=_Strict,
    **{
        name: (method.settings, Field(default_factory=method.settings))
        for name, method in METHODS.items()
    },
)  # type: ignore[call-overload]


class SegmentConfig(_MethodSections):  # type: ignore[misc,valid-type]
    methods: list[MethodName] = Field(default_factory=lambda: list(METHODS))  # type: ignore[valid-type]
    max_driver_customers: int = Field(100_000, ge=1)
    engine: Literal["auto", "single", "spark"] = "auto"
    exact_max_rows: int | None = Field(None, ge=0)  # None: estimated (cluster/_common/engine.py)
    random_seed: int = 42
    log_features: list[str] = Field(default_factory=list)
    silhouette_sample: int = Field(10_000, ge=100)
    stability_bootstraps: int = Field(5, ge=0)
    outlier_share: float = Field(0.01, ge=0, lt=1)
    truth_path: str | None = None


class ValueConfig(_Strict):
    period: Literal["day", "week"] = "day"
    rfm_bins: int = Field(5, ge=2, le=10)
    horizon_days: int = Field(365, ge=1)
    discount_rate_monthly: float = Field(0.01, ge=0, lt=1)
    penalizer: float = Field(0.0, ge=0)
    calibration_end: date | None = None
    holdout_end: date | None = None


DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


_UC_NAME = re.compile(r"^[A-Za-z0-9_`-]+\.[A-Za-z0-9_`-]+\.[A-Za-z0-9_`-]+$")


def uses_unity_catalog(tracking_uri: str | None, registry_uri: str | None) -> bool:
    """Whether models register in Unity Catalog: registry ``databricks-uc[://profile]``, or a
    ``databricks`` tracking URI with no registry given (MLflow 3's default registry there)."""
    if registry_uri:
        return registry_uri == "databricks-uc" or registry_uri.startswith("databricks-uc:")
    if not tracking_uri:
        return False
    return tracking_uri == "databricks" or tracking_uri.startswith("databricks:")


class TrackingConfig(_Strict):
    tracking_uri: str | None = None
    # Model registry: null = MLflow's default for the tracking URI; databricks-uc = Unity Catalog.
    registry_uri: str | None = None
    artifact_location: str | None = None
    experiment: str = "custseg"
    model_name: str = Field("custseg-segmenter", validate_default=True)
    # None: beside the segmenter, custseg-value (in the segmenter's catalog.schema under UC).
    value_model_name: str | None = None
    alias: str = "champion"

    @field_validator("model_name", "value_model_name")
    @classmethod
    def _unity_catalog_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value

        tracking = info.data.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
        registry = info.data.get("registry_uri") or os.environ.get("MLFLOW_REGISTRY_URI")
        if uses_unity_catalog(tracking, registry) and not _UC_NAME.match(value):
            suggestion = value.replace("-", "_").split(".")[-1]
            registry_text = registry or (
                "databricks-uc, the default for tracking URI " + repr(tracking)
            )
            raise ValueError(
                "must be a three-level Unity Catalog name catalog.schema.model when models "
                f"register in Unity Catalog (registry {registry_text}); "
                f"e.g. main.custseg.{suggestion}"
            )
        return value

    def resolved_value_model_name(self) -> str:
        """The lifetime-value model's registered name: as configured, else custseg-value, in
        the segmenter's catalog and schema when the segmenter's name has them (Unity Catalog)."""
        if self.value_model_name:
            return self.value_model_name
        catalog_schema, dot, _name = self.model_name.rpartition(".")
        return f"{catalog_schema}.custseg_value" if dot else "custseg-value"

    def resolved_registry_uri(self) -> str | None:
        """This config's registry URI, else $MLFLOW_REGISTRY_URI, else None (MLflow's default)."""

        return self.registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or None

    def resolved_uri(self) -> str:
        """This config's URI, else $MLFLOW_TRACKING_URI, else the embedded SQLite store in the
        working folder."""

        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


class Config(_Strict):
    spark: SparkConfig = Field(default_factory=SparkConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    input: InputConfig = Field(default_factory=InputConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    segment: SegmentConfig = Field(default_factory=SegmentConfig)
    value: ValueConfig = Field(default_factory=ValueConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)


def default_values() -> dict[str, Any]:
    """The packaged defaults as a plain dict."""
    text = resources.files("custseg").joinpath("defaults.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _merge(base: dict[str, Any], override: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, f"{prefix}{key}.")
        else:
            merged[key] = value
    return merged


def _set_dotted(values: dict[str, Any], dotted: str, value: Any) -> None:
    node = values
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown config key {key!r} (value {first.get('input')!r})"
    return f"config key {key!r} has value {first.get('input')!r}: {first['msg']}"


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file at ``path``, then dotted-key ``overrides``.

    >>> load_config(overrides={"storage.root": "/tmp/lh"}).storage.root
    '/tmp/lh'
    """
    values = default_values()
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file not found: {file}")
        try:
            user = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"config file {file} is not valid YAML: {exc}".splitlines()[0]
            ) from exc
        if not isinstance(user, dict):
            raise ConfigError(f"config file {file} must hold a mapping, got {type(user).__name__}")
        values = _merge(values, user)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(values, dotted, value)
    try:
        config = Config.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    _check_ranges(config)
    return config


def _check_ranges(config: Config) -> None:
    tx = config.input.transactions
    if (tx.columns.unit_price is None) == (tx.columns.amount is None):
        raise ConfigError(
            "config keys 'input.transactions.columns.unit_price' and '...columns.amount' have "
            f"values {tx.columns.unit_price!r} and {tx.columns.amount!r}: set exactly one "
            "(unit price x quantity, or a line total)"
        )
    if not tx.header and not tx.column_names:
        raise ConfigError(
            "config key 'input.transactions.column_names' has value None: a file without a header "
            "(header: false) needs its column names in order"
        )
    value = config.value
    if value.holdout_end is not None and value.calibration_end is None:
        raise ConfigError(
            f"config key 'value.holdout_end' has value {value.holdout_end}: it needs "
            "value.calibration_end (the holdout starts the day after it)"
        )
    if value.holdout_end is not None and value.holdout_end <= value.calibration_end:
        raise ConfigError(
            f"config key 'value.holdout_end' has value {value.holdout_end}: must be after "
            f"value.calibration_end ({value.calibration_end})"
        )
    for name in METHODS:  # the methods that search a range of k (hierarchical, kmeans)
        section = getattr(config.segment, name)
        k_max = getattr(section, "k_max", None)
        if k_max is not None and k_max < section.k_min:
            raise ConfigError(
                f"config key 'segment.{name}.k_max' has value {section.k_max}: "
                f"must be >= k_min ({section.k_min})"
            )
