"""Scale-out settings without a cluster: Delta / Unity Catalog table naming and branching
(Delta itself cannot run here: no jars), MLflow registry URIs and Unity Catalog model names,
and the custseg zip shipped to executors."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from unittest import mock

import pytest

from custseg.config import SparkConfig, StorageConfig, TrackingConfig, load_config
from custseg.errors import ConfigError, InputDataError
from custseg.storage import Lakehouse

CATALOG = {"storage.format": "delta", "storage.catalog": "main", "storage.schema": "custseg"}


# -- tables ------------------------------------------------------------------------------


def test_parquet_paths_stay_the_default():
    storage = load_config().storage
    assert storage.format == "parquet" and storage.catalog is None and storage.schema_ is None
    assert storage.table_name("gold", "customer_features") is None


@pytest.mark.parametrize(
    ("layer", "table", "name"),
    [
        ("gold", "customer_features", "main.custseg.gold_customer_features"),
        ("silver", "order_lines", "main.custseg.silver_order_lines"),
        ("bronze", "quarantine", "main.custseg.bronze_quarantine"),
    ],
)
def test_catalog_tables_are_three_level_with_the_layer_as_prefix(layer, table, name):
    assert load_config(overrides=CATALOG).storage.table_name(layer, table) == name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"storage.catalog": "main", "storage.schema": "custseg"},
            r"storage.schema.*need storage.format: delta",
        ),
        (
            {"storage.format": "delta", "storage.catalog": "main"},
            r"storage.catalog and storage.schema go together",
        ),
        (
            {"storage.format": "delta", "storage.schema": "custseg"},
            r"go together \(catalog is None\)",
        ),
        ({**CATALOG, "storage.catalog": "main; drop"}, r"storage.catalog.*plain identifier"),
        ({**CATALOG, "storage.schema": "a.b"}, r"storage.schema.*plain identifier"),
    ],
)
def test_bad_catalog_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)


def fake_spark(table_exists: bool = True) -> mock.MagicMock:
    spark = mock.MagicMock(name="spark")
    spark.catalog.tableExists.return_value = table_exists
    return spark


def test_delta_catalog_write_is_save_as_table_overwrite(tmp_path):
    config = StorageConfig(root=str(tmp_path), format="delta", catalog="main", schema="custseg")
    lake = Lakehouse(fake_spark(), config)
    df = mock.MagicMock(name="df")
    written = lake.write(df, "gold", "customer_features")
    writer = df.write.format.return_value.mode.return_value.option.return_value
    df.write.format.assert_called_once_with("delta")
    df.write.format.return_value.mode.assert_called_once_with("overwrite")
    writer.saveAsTable.assert_called_once_with("main.custseg.gold_customer_features")
    writer.save.assert_not_called()
    assert written.path == "main.custseg.gold_customer_features"
    assert not (tmp_path / "gold").exists()  # no folders for catalog tables


def test_delta_catalog_read_is_spark_table(tmp_path):
    spark = fake_spark()
    config = StorageConfig(root=str(tmp_path), format="delta", catalog="main", schema="custseg")
    frame = Lakehouse(spark, config).read("silver", "orders")
    spark.catalog.tableExists.assert_called_once_with("main.custseg.silver_orders")
    spark.table.assert_called_once_with("main.custseg.silver_orders")
    assert frame is spark.table.return_value


def test_a_missing_catalog_table_names_it_and_the_command(tmp_path):
    config = StorageConfig(root=str(tmp_path), format="delta", catalog="main", schema="custseg")
    with pytest.raises(
        InputDataError, match=r"as main.custseg.gold_customer_features; run 'custseg features'"
    ):
        Lakehouse(fake_spark(table_exists=False), config).read("gold", "customer_features")


def test_delta_without_catalog_writes_a_path(tmp_path):
    lake = Lakehouse(fake_spark(), StorageConfig(root=str(tmp_path), format="delta"))
    df = mock.MagicMock(name="df")
    lake.write(df, "gold", "t")
    writer = df.write.format.return_value.mode.return_value.option.return_value
    writer.save.assert_called_once_with(str(tmp_path / "gold" / "t"))
    writer.saveAsTable.assert_not_called()


# -- MLflow ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"tracking.registry_uri": "databricks-uc"},
            r"tracking.model_name.*three-level Unity Catalog name catalog.schema.model",
        ),
        (
            {
                "tracking.registry_uri": "databricks-uc://prod",
                "tracking.model_name": "custseg.segmenter",
            },
            r"three-level",
        ),
        ({"tracking.tracking_uri": "databricks"}, r"the default for tracking URI 'databricks'"),
    ],
)
def test_unity_catalog_models_need_three_level_names(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)


@pytest.mark.parametrize(
    ("overrides", "unity_catalog"),
    [
        (
            {
                "tracking.registry_uri": "databricks-uc",
                "tracking.model_name": "main.custseg.segmenter",
            },
            True,
        ),
        (
            {
                "tracking.tracking_uri": "databricks",
                "tracking.model_name": "main.custseg.segmenter",
            },
            True,
        ),
        (
            {"tracking.tracking_uri": "databricks", "tracking.registry_uri": "databricks"},
            False,
        ),  # workspace registry
        ({}, False),
    ],
)
def test_accepted_registry_settings(overrides, unity_catalog):
    from custseg.config import uses_unity_catalog

    tracking = load_config(overrides=overrides).tracking
    for dotted, value in overrides.items():
        assert getattr(tracking, dotted.removeprefix("tracking.")) == value, dotted
    if not overrides:
        assert tracking.model_name == "custseg-segmenter"
    assert uses_unity_catalog(tracking.tracking_uri, tracking.registry_uri) is unity_catalog


def test_setup_points_mlflow_at_the_registry(tmp_path, mlflow_store):
    import mlflow

    from custseg import tracking

    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    tracking.setup(TrackingConfig(registry_uri=registry))
    assert mlflow.get_registry_uri() == registry
    assert mlflow.get_tracking_uri() == mlflow_store
    # A later setup without one goes back to MLflow's default, the tracking URI (MLflow also
    # wrote the registry into $MLFLOW_REGISTRY_URI, which custseg reads as the user's choice).
    os.environ.pop("MLFLOW_REGISTRY_URI")
    tracking.setup(TrackingConfig())
    assert mlflow.get_registry_uri() == mlflow_store


# -- shipping the package ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "ships"),
    [
        (SparkConfig(), False),
        (SparkConfig(master="local[2]"), False),
        (SparkConfig(master="local-cluster[2,1,1024]"), True),
        (SparkConfig(master="spark://host:7077"), True),
        (SparkConfig(remote="sc://host:15002"), True),
        (SparkConfig(master="spark://host:7077", ship_package=False), False),
        (SparkConfig(master="local[2]", ship_package=True), True),
    ],
)
def test_which_sessions_get_the_package(config, ships):
    from custseg.spark import ships_package

    assert ships_package(config) is ships


def test_the_package_zip_holds_the_sources_and_imports_from_itself(tmp_path):
    from custseg.spark import package_zip

    archive = package_zip(tmp_path)
    names = zipfile.ZipFile(archive).namelist()
    assert {"custseg/__init__.py", "custseg/defaults.yaml", "custseg/cluster/__init__.py"} <= set(
        names
    )
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    probe = (
        f"import sys; sys.path.insert(0, {str(archive)!r}); "
        "import custseg.config, custseg.cluster; "
        "assert custseg.config.__file__.startswith(sys.path[0]), custseg.config.__file__; "
        "print(custseg.config.load_config().storage.root)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "lakehouse"
