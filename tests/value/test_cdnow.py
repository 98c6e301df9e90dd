"""Public transactions end to end: the CDNOW sample (2,357 customers, 1997-01 to 1998-06, shipped
with lifetimes) through the transactions adapter, features and the value stage's holdout check,
against the published fits and against lifetimes on the same raw file.

Published, on the 39-week calibration period ending 1997-09-30 (time in weeks):
- BG/NBD, Fader, Hardie & Lee (2005), "Counting your customers the easy way", section 5:
  r = 0.243, alpha = 4.414, a = 0.793, b = 2.426;
- Gamma-Gamma, Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", note 025:
  p = 6.25, q = 3.74, gamma = 15.44.
custseg counts in days: alpha is a rate's scale, so alpha in days is 7 x alpha in weeks; the
other parameters do not depend on the time unit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from custseg.config import load_config
from custseg.stages import chain
from custseg.storage import Lakehouse

lifetimes = pytest.importorskip("lifetimes")
datasets = pytest.importorskip("lifetimes.datasets")

CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"
COLUMNS = ["master_id", "customer", "date", "cds", "dollars"]
DAYS_PER_WEEK = 7
TOP_BUCKET = 7  # holdout_by_frequency's default: groups 0, 1, ..., 6 and 7+
PUBLISHED = {
    "bgnbd.r": 0.243,
    "bgnbd.alpha": 4.414 * DAYS_PER_WEEK,
    "bgnbd.a": 0.793,
    "bgnbd.b": 2.426,
    "gamma_gamma.p": 6.25,
    "gamma_gamma.q": 3.74,
    "gamma_gamma.v": 15.44,
}


def _sample_path() -> Path:
    return Path(datasets.__file__).parent / "CDNOW_sample.txt"


def _raw() -> pd.DataFrame:
    lines = pd.read_csv(_sample_path(), sep=r"\s+", header=None, names=COLUMNS, dtype=str)
    return lines.assign(
        date=pd.to_datetime(lines["date"], format="%Y%m%d"),
        dollars=lines["dollars"].astype(float),
    )


@pytest.fixture(scope="module")
def cdnow(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("cdnow")
    mapping = {
        "customer_id": "customer",
        "order_id": None,
        "timestamp": "date",
        "product_id": None,
        "category": None,
        "quantity": "cds",
        "unit_price": None,
        "amount": "dollars",
    }
    transactions = {
        "delimiter": "whitespace",
        "header": False,
        "column_names": COLUMNS,
        "timestamp_format": "yyyyMMdd",
        "columns": mapping,
    }
    config_file = root / "custseg.yml"
    config_file.write_text(yaml.safe_dump({"input": {"transactions": transactions}}))
    config = load_config(
        config_file,
        {
            "input.layout": "transactions",
            "input.path": str(_sample_path()),
            "storage.root": str(root / "lake"),
            "tracking.tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "tracking.artifact_location": (root / "mlruns").as_uri(),
            "value.calibration_end": CALIBRATION_END,
            "value.holdout_end": HOLDOUT_END,
        },
    )
    stages = ["ingest", "features", "value"]
    reports = {r.stage: r for r in chain.run(spark, config, stages, progress=lambda _m: None)}
    return config, reports, Lakehouse(spark, config.storage)


def _holdout_metrics(config) -> dict[str, float]:
    import mlflow  # lazy: only this test reads the run back

    mlflow.set_tracking_uri(config.tracking.tracking_uri)
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.`custseg.stage` = 'value'"
    )
    assert len(runs) == 1
    row = runs.iloc[0]
    return {k: row[f"metrics.holdout.{k}"] for k in PUBLISHED}


def test_every_line_is_kept_and_orders_are_customer_days(cdnow):
    _config, _reports, lake = cdnow
    raw = _raw()
    orders = lake.read("silver", "orders").toPandas()
    assert len(orders) == len(raw.drop_duplicates(["customer", "date"]))
    assert orders["order_value"].sum() == pytest.approx(raw["dollars"].sum(), rel=1e-12)
    assert orders["customer_id"].nunique() == raw["customer"].nunique() == 2357


def test_calibration_fit_matches_the_published_parameters(cdnow):
    config, _reports, _lake = cdnow
    fitted = _holdout_metrics(config)
    for name, published in PUBLISHED.items():
        # The papers print three or four significant figures.
        assert fitted[name] == pytest.approx(published, rel=2e-3), name


@pytest.fixture(scope="module")
def reference():
    """lifetimes on the raw file: its calibration and holdout split and its BG/NBD fit."""
    frame = lifetimes.utils.calibration_and_holdout_data(
        _raw(),
        "customer",
        "date",
        calibration_period_end=CALIBRATION_END,
        observation_period_end=HOLDOUT_END,
        monetary_value_col="dollars",
        freq="D",
    )
    bgf = lifetimes.BetaGeoFitter().fit(
        frame["frequency_cal"], frame["recency_cal"], frame["T_cal"]
    )
    return frame, bgf


def test_calibration_fit_matches_lifetimes_on_the_raw_file(cdnow, reference):
    config, _reports, _lake = cdnow
    frame, bgf = reference
    spenders = frame[(frame["frequency_cal"] > 0) & (frame["monetary_value_cal"] > 0)]
    ggf = lifetimes.GammaGammaFitter().fit(
        spenders["frequency_cal"], spenders["monetary_value_cal"]
    )
    theirs = {f"bgnbd.{k}": v for k, v in bgf.params_.items()}
    theirs.update({f"gamma_gamma.{k}": v for k, v in ggf.params_.items()})
    fitted = _holdout_metrics(config)
    for name in PUBLISHED:
        assert fitted[name] == pytest.approx(theirs[name], rel=1e-3), name


def test_holdout_table_matches_lifetimes(cdnow, reference):
    _config, reports, _lake = cdnow
    frame, bgf = reference
    table = reports["value"].extra["holdout"].set_index("bucket")
    assert table["customers"].sum() == len(frame) == 2357
    # Per group of calibration repeat purchases: the mean actual holdout purchases.
    bucket = frame["frequency_cal"].clip(upper=TOP_BUCKET)
    want = frame.groupby(bucket)["frequency_holdout"].mean()
    assert table.index.tolist() == want.index.astype(int).tolist()
    np.testing.assert_allclose(table["actual"].to_numpy(), want.to_numpy(), rtol=1e-12)
    predicted = bgf.conditional_expected_number_of_purchases_up_to_time(
        frame["duration_holdout"], frame["frequency_cal"], frame["recency_cal"], frame["T_cal"]
    )
    np.testing.assert_allclose(
        table["predicted"].to_numpy(), predicted.groupby(bucket).mean().to_numpy(), rtol=1e-3
    )
