"""One small real segmentation run for the dashboard tests, built once per session.

Planted customer features (four well separated groups) go through the real
segment stage twice (so there are two model versions, a champion and a
segment migration); silver.customers holds names, tax ids and addresses,
including a customer whose name is an HTML script tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.features import FEATURE_COLUMNS

HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_ID = "c00007"
FORMULA_NAME = '=HYPERLINK("http://example.invalid")'
SIZES = (120, 70, 40, 30)
STATES = ("CA", "NY", "TX", "OR")
APP = Path(__file__).resolve().parents[2] / "src" / "custseg" / "dashboard" / "app.py"


@dataclass
class DashLake:
    root: Path
    config: object  # custseg.config.Config
    source: object  # custseg.store.source.Source
    customers: pd.DataFrame  # the silver customers table as written (personal data)
    features: pd.DataFrame
    hostile_name: str = HOSTILE_NAME
    hostile_id: str = HOSTILE_ID
    formula_name: str = FORMULA_NAME

    def env(self) -> dict[str, str]:
        return self.source.to_env()


def planted_features(seed: int = 0) -> pd.DataFrame:
    """Four well separated, log-normal groups of customers in the nine features."""
    rng = np.random.default_rng(seed)
    centres = [
        [12, 600, 400, 10, 2, 6, 100, 9, 4],
        [3, 2500, 800, 40, 3, 2, 1250, 3, 2],
        [150, 6000, 60, 300, 0, 1, 6000, 2, 1],
        [40, 300, 900, 500, 1, 3, 100, 5, 3],
    ]
    blocks = []
    for centre, size in zip(centres, SIZES, strict=True):
        blocks.append(np.asarray(centre, dtype=float) * np.exp(rng.normal(0, 0.08, (size, 9))))
    frame = pd.DataFrame(np.vstack(blocks), columns=FEATURE_COLUMNS)
    frame["loyalty_segment"] = frame["loyalty_segment"].round().clip(0, 3)
    frame.insert(0, "customer_id", [f"c{i:05d}" for i in range(len(frame))])
    return frame


def silver_customers(ids: pd.Series) -> pd.DataFrame:
    n = len(ids)
    first = ["ANNA", "BEN", "CARLA", "DAVID", "EVA", "FRANK"]
    names = [f"SMITH{i:03d}, {first[i % len(first)]}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "customer_id": ids.to_numpy(),
            "tax_id": [f"9{i:08d}" for i in range(n)],
            "tax_code": ["EIN" if i % 3 == 0 else None for i in range(n)],
            "customer_name": names,
            "state": [STATES[i % len(STATES)] for i in range(n)],
            "city": [f"TOWN{i % 7}" for i in range(n)],
            "postcode": [f"{10000 + i}" for i in range(n)],
            "street": [f"Maple Street {i}" for i in range(n)],
            "number": [str(i) for i in range(n)],
            "unit": [None] * n,
            "region": ["Region"] * n,
            "district": ["District"] * n,
            "lon": np.linspace(-120, -70, n),
            "lat": np.linspace(30, 45, n),
            "ship_to_address": [f"{STATES[i % len(STATES)]}, Maple Street {i}" for i in range(n)],
        }
    )
    frame.loc[frame["customer_id"] == HOSTILE_ID, "customer_name"] = HOSTILE_NAME
    frame.loc[frame["customer_id"] == "c00008", "customer_name"] = FORMULA_NAME
    return frame


@pytest.fixture(scope="session")
def dash_lake(spark, tmp_path_factory) -> DashLake:
    import mlflow
    from mlflow.tracking._tracking_service import utils as mlflow_utils

    from custseg.config import load_config
    from custseg.stages.segment import segment as run_segment
    from custseg.storage import Lakehouse
    from custseg.store.source import Source

    root = tmp_path_factory.mktemp("dashboard")
    config = load_config(
        overrides={
            "storage.root": str(root / "lakehouse"),
            "tracking.tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "tracking.artifact_location": (root / "mlruns").as_uri(),
            "segment.stability_bootstraps": 0,
            "segment.hdbscan.min_cluster_sizes": [25],
            "segment.dbscan.sweep": [1.0, 1.5],
            "segment.hierarchical.k_max": 6,
            "segment.kmeans.k_max": 6,
        }
    )
    features = planted_features()
    customers = silver_customers(features["customer_id"])
    lake = Lakehouse(spark, config.storage)
    lake.write(spark.createDataFrame(features), "gold", "customer_features")
    lake.write(spark.createDataFrame(customers), "silver", "customers")
    previous_uri = mlflow_utils._tracking_uri
    try:
        for _ in range(2):  # a first model and a retrain: two versions, a champion, a migration
            run_segment(spark, config, progress=lambda _m: None)
    finally:
        # The stage points MLflow's global URI at this store; give later tests their own back.
        if previous_uri:
            mlflow.set_tracking_uri(previous_uri)
        else:
            mlflow_utils._tracking_uri = None
    return DashLake(root, config, Source.from_config(config), customers, features)


@pytest.fixture()
def dash_env(dash_lake, monkeypatch) -> DashLake:
    """The environment `custseg dashboard` gives the Streamlit app, pointing at the session's
    run."""
    for key, value in dash_lake.env().items():
        monkeypatch.setenv(key, value)
    return dash_lake


@pytest.fixture()
def empty_env(tmp_path, monkeypatch) -> Path:
    """A working folder with no lakehouse and no MLflow store at all."""
    from custseg.store.source import Source

    source = Source(
        lakehouse=tmp_path / "lakehouse", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    for key, value in source.to_env().items():
        monkeypatch.setenv(key, value)
    return tmp_path


@pytest.fixture()
def app():
    """A fresh AppTest of the dashboard (run it, switch pages, read elements)."""
    from streamlit.testing.v1 import AppTest

    def make():
        return AppTest.from_file(str(APP), default_timeout=90)

    return make
