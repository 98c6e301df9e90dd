"""The seed scenario end to end: generate -> ingest -> features -> segment, as the original
analysis saw it.

Hierarchical clustering finds the four groups of 16, 7, 1 and 1; DBSCAN is
reported as weak with measured reasons; no personal data reaches MLflow.
"""

import csv

import pytest

from custseg.config import load_config
from custseg.data.generate import generate
from custseg.stages import chain
from custseg.storage import Lakehouse


@pytest.fixture(scope="module")
def seed_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("seed")
    generate(spark, root / "raw", preset="seed", seed=42)
    config = load_config(
        overrides={
            "input.path": str(root / "raw"),
            "storage.root": str(root / "lakehouse"),
            "tracking.tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "tracking.artifact_location": (root / "mlruns").as_uri(),
        }
    )
    reports = {r.stage: r for r in chain.run(spark, config, progress=lambda _m: None)}
    return root, config, reports, Lakehouse(spark, config.storage)


def test_hierarchical_finds_the_four_seed_groups(seed_run):
    _root, _config, reports, lake = seed_run
    segment = reports["segment"]
    table = segment.extra["comparison"].set_index("method")
    assert segment.extra["recommended"] == "hierarchical"
    assert table.loc["hierarchical", "n_clusters"] == 4
    assert table.loc["hierarchical", "ari_truth"] == pytest.approx(1.0)
    sizes = sorted(lake.read("gold", "segment_profiles").toPandas()["size"], reverse=True)
    assert sizes == [16, 7, 1, 1]


def test_seed_profiles_read_like_the_original_table(seed_run):
    _root, _config, reports, _lake = seed_run
    profiles = reports["segment"].extra["profiles"].set_index("size")
    assert profiles.loc[16, "archetype"] == "steady engaged"
    singles = set(profiles.loc[1, "archetype"])
    assert singles == {"one-time bulk buyer", "single very-high-value purchase"}
    assert profiles.loc[1, "is_outlier"].all()
    markdown = reports["segment"].extra["profile_markdown"]
    assert markdown.startswith(
        "| Cluster | Units Purchased | Loyalty Segment | Num Orders | Count |"
    )


def test_dbscan_is_reported_weak_with_reasons(seed_run):
    _root, _config, reports, _lake = seed_run
    row = reports["segment"].extra["comparison"].set_index("method").loc["dbscan"]
    assert not row["recommended"]
    assert row["note"].startswith("DBSCAN is weak here:")
    # The advice names the methods usable in this run, and only those.
    table = reports["segment"].extra["comparison"].set_index("method")
    usable = [m for m in table.index if m != "dbscan" and bool(table.loc[m, "usable"])]
    advice = row["note"].split("Use ", 1)[1]
    assert usable and all(m in advice for m in usable)
    assert not any(m in advice for m in table.index if m not in usable and m != "dbscan")


def test_customers_without_orders_are_counted(seed_run):
    _root, _config, reports, _lake = seed_run
    features = reports["features"]
    assert features.tables["gold.customer_features"] == 25
    assert any("have no orders (left out of clustering)" in note for note in features.notes)


def test_no_personal_data_in_mlflow(seed_run):
    root, _config, _reports, _lake = seed_run
    with open(root / "raw" / "customers" / "customers.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    canaries = {
        r[c]
        for r in rows
        for c in ("customer_name", "street", "ship_to_address", "tax_id")
        if r[c] and len(r[c]) >= 6
    }
    assert canaries
    blobs = [(root / "mlflow.db").read_bytes()]
    blobs += [p.read_bytes() for p in (root / "mlruns").rglob("*") if p.is_file()]
    found = {c for c in canaries for blob in blobs if c.encode() in blob}
    assert not found, f"personal data in MLflow: {sorted(found)[:5]}"


@pytest.mark.slow
def test_realistic_data_recommended_method_recovers_the_archetypes(spark, tmp_path):
    generate(spark, tmp_path / "raw", customers=10_000, seed=42)
    config = load_config(
        overrides={
            "input.path": str(tmp_path / "raw"),
            "storage.root": str(tmp_path / "lakehouse"),
            "tracking.tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "tracking.artifact_location": (tmp_path / "mlruns").as_uri(),
            "segment.stability_bootstraps": 2,
        }
    )
    stages = ["ingest", "features", "segment"]
    segment = chain.run(spark, config, stages, progress=lambda _m: None)[-1]
    table = segment.extra["comparison"].set_index("method")
    assert table.loc[segment.extra["recommended"], "ari_truth"] >= 0.9
    assert table["ari_truth"].notna().all()
