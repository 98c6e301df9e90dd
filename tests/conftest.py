"""Shared fixtures: one local[2] Spark session for the whole run, MLflow in a temp SQLite store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest_plugins = [
    "engine_servers"
]  # standalone cluster and Spark Connect fixtures (started on demand)

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from custseg.config import SparkConfig
    from custseg.spark import create_session

    session = create_session(
        SparkConfig(master="local[2]", shuffle_partitions=2, driver_memory="2g", log_level="ERROR")
    )
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def mlflow_store(tmp_path_factory, monkeypatch):
    """Every test talks to its own throwaway SQLite MLflow store, never ./mlflow.db."""
    store = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CUSTSEG_TEST_ARTIFACTS", str(store / "artifacts"))
    yield uri
    # MLflow copies a registry a test sets into $MLFLOW_REGISTRY_URI, and custseg reads that
    # variable as the user's choice: it must not outlive the test (monkeypatch would restore it).
    os.environ.pop("MLFLOW_REGISTRY_URI", None)


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch) -> Path:
    """Run a test inside an empty working folder (lakehouse/ and mlflow.db land here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
