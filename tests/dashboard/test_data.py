"""The Spark-free loading layer: sources, tables, empty states, MLflow facts, derived figures."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from custseg import charts
from custseg.config import load_config
from custseg.store import gold, runs, summary
from custseg.store.source import ENV_WAREHOUSE_ID, Source, absolute_tracking_uri


def test_source_round_trips_through_the_environment(tmp_path):
    source = Source(
        lakehouse=tmp_path / "lh",
        tracking_uri="sqlite:////x/mlflow.db",
        experiment="e",
        model_name="m",
        alias="prod",
        log_features=("total_spend",),
    )
    assert Source.from_env(source.to_env()) == source


def test_source_without_variables_is_the_default_configs(tmp_path, monkeypatch):
    """The server process started with nothing set reads what a run on the defaults wrote."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert Source.from_env({}) == Source.from_config(load_config())


def test_source_from_config_makes_the_sqlite_store_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    source = Source.from_config(load_config(overrides={"storage.root": "lh"}))
    assert source.lakehouse == tmp_path / "lh"
    assert source.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert source.log_features  # the packaged defaults


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///mlflow.db", "sqlite:///{cwd}/mlflow.db"),
        ("sqlite:////abs/m.db", "sqlite:////abs/m.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("databricks", "databricks"),
    ],
)
def test_absolute_tracking_uri(uri, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_tracking_uri(uri) == expected.format(cwd=tmp_path)


def test_missing_tables_read_empty_and_the_hint_names_a_command(tmp_path):
    source = Source(lakehouse=tmp_path / "nowhere", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    assert gold.segments(source).empty and gold.profiles(source).empty
    assert gold.linkage_matrix(source) is None and gold.dbscan_diagnostics(source) is None
    assert "custseg demo" in gold.missing_hint(source)
    (tmp_path / "nowhere").mkdir()
    assert "custseg run" in gold.missing_hint(source)


def test_catalog_tables_without_a_warehouse_are_explained(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_WAREHOUSE_ID, raising=False)
    source = Source(
        lakehouse=tmp_path, tracking_uri="sqlite:////m.db", catalog_schema="main.custseg"
    )
    hint = gold.missing_hint(source)
    assert "Unity Catalog tables (main.custseg.gold_*)" in hint and "\n" not in hint
    assert ENV_WAREHOUSE_ID in hint
    assert Source.from_env(source.to_env()) == source
    assert Source.from_env(Source(lakehouse=tmp_path).to_env()).catalog_schema is None
    databricks = load_config(Path(__file__).parents[2] / "conf" / "databricks.yaml")
    assert Source.from_config(databricks).catalog_schema == "main.custseg"
    monkeypatch.setenv(ENV_WAREHOUSE_ID, "abc123")
    assert Source.from_config(databricks).warehouse_id == "abc123"
    assert Source.from_env(Source.from_config(databricks).to_env()).warehouse_id == "abc123"


def _as_delta(parquet_root, delta_root):
    """Every live Parquet table of a lakehouse rewritten as a Delta table at the same place."""
    from deltalake import write_deltalake

    from custseg.storage import current_path

    for layer_dir in sorted(p for p in parquet_root.iterdir() if p.is_dir()):
        for table_dir in sorted(p for p in layer_dir.iterdir() if p.is_dir()):
            live = current_path(parquet_root, layer_dir.name, table_dir.name)
            if live is not None:
                write_deltalake(delta_root / layer_dir.name / table_dir.name, pq.read_table(live))


def _ordered(frame):
    """Rows in a canonical order: a table's file order is not part of its contents."""
    keys = [c for c in frame.columns if frame[c].map(np.isscalar).all()]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _assert_reads_alike(source, parquet):
    """Every view the dashboard and the report show reads the same from ``source`` as from
    ``parquet``."""
    for read in (
        gold.segments,
        gold.profiles,
        gold.comparison,
        gold.features,
        gold.migration,
        gold.k_distance,
    ):
        pd.testing.assert_frame_equal(
            _ordered(read(source)), _ordered(read(parquet)), check_dtype=False
        )
    pd.testing.assert_frame_equal(
        _ordered(gold.customer_table(source, personal=True)),
        _ordered(gold.customer_table(parquet, personal=True)),
    )
    np.testing.assert_array_equal(gold.linkage_matrix(source), gold.linkage_matrix(parquet))
    assert summary.kpis(source).customers == summary.kpis(parquet).customers


def test_delta_lakehouse_reads_like_parquet(dash_lake, tmp_path):
    import dataclasses

    from deltalake import write_deltalake

    parquet = dash_lake.source
    delta = dataclasses.replace(parquet, lakehouse=tmp_path / "delta-lakehouse")
    _as_delta(parquet.lakehouse, delta.lakehouse)
    assert gold.missing_hint(delta) is None
    live = gold.live_table(delta, "gold", "customer_segments")
    assert live is not None and live.delta_version == 0
    _assert_reads_alike(delta, parquet)

    # A new Delta version is read (and keyed) as the live one; the old one is not served from cache.
    segments = pq.read_table(gold.live_table(parquet, "gold", "customer_segments").path)
    write_deltalake(live.path, segments.slice(0, 10), mode="overwrite")
    newer = gold.live_table(delta, "gold", "customer_segments")
    assert newer.delta_version == 1 and newer.key != live.key
    assert len(gold.segments(delta)) == 10


def test_catalog_tables_read_through_a_sql_warehouse_like_the_lakehouse(
    dash_lake, spark, monkeypatch
):
    """With storage.catalog set, the dashboard reads `catalog.schema.<layer>_<table>` with SQL.

    In a Databricks App the SQL goes to a Databricks SQL warehouse; here it goes to the
    test's Spark session, whose catalog holds the dashboard lakehouse's live tables.
    """
    import dataclasses

    from custseg.storage import current_path

    parquet = dash_lake.source
    spark.sql("CREATE DATABASE IF NOT EXISTS dash_uc")
    try:
        for layer_dir in sorted(p for p in parquet.lakehouse.iterdir() if p.is_dir()):
            for table_dir in sorted(p for p in layer_dir.iterdir() if p.is_dir()):
                live = current_path(parquet.lakehouse, layer_dir.name, table_dir.name)
                if live is not None:
                    spark.sql(
                        f"CREATE TABLE spark_catalog.dash_uc.{layer_dir.name}_{table_dir.name} "
                        f"USING parquet LOCATION '{live}'"
                    )
        statements = []

        def warehouse(statement):
            statements.append(statement)
            return spark.sql(statement).toArrow()

        monkeypatch.setitem(gold.SQL_RUNNERS, "local-spark", warehouse)
        gold.clear_caches()
        runs.clear_caches()
        uc = dataclasses.replace(
            parquet, catalog_schema="spark_catalog.dash_uc", warehouse_id="local-spark"
        )
        assert gold.missing_hint(uc) is None
        live = gold.live_table(uc, "gold", "customer_segments")
        assert (
            live.catalog_table == "spark_catalog.dash_uc.gold_customer_segments"
            and live.modified() is None
        )
        assert gold.live_table(uc, "gold", "hierarchy_linkage_missing") is None
        _assert_reads_alike(uc, parquet)
        assert statements[0] == "SHOW TABLES IN `spark_catalog`.`dash_uc`"
        assert "SELECT * FROM `spark_catalog`.`dash_uc`.`gold_customer_segments`" in statements
        # Within a time slot every table is read once; a name with a backtick is quoted, not
        # injected.
        reads = len(statements)
        gold.segments(uc)
        assert len(statements) == reads
        assert gold._quoted_name("a.b`c") == "`a`.`b``c`"
    finally:
        gold.clear_caches()
        runs.clear_caches()
        spark.sql("DROP DATABASE IF EXISTS dash_uc CASCADE")


def test_missing_store_is_reported_not_created(tmp_path):
    store = tmp_path / "mlflow.db"
    info = runs.tracking_info(Source(lakehouse=tmp_path, tracking_uri=f"sqlite:///{store}"))
    assert info.error and "custseg run" in info.error
    assert info.runs.empty and info.champion is None
    assert not store.exists()


def test_tables_of_the_run(dash_lake):
    source = dash_lake.source
    seg = gold.segments(source)
    assert len(seg) == len(dash_lake.features)
    table = gold.customer_table(source)
    assert {"segment", "state", "total_spend", "pc1"} <= set(table.columns)
    assert not {"customer_name", "tax_id", "street", "lat"} & set(
        table.columns
    )  # personal only on request
    personal = gold.customer_table(source, personal=True)
    assert dash_lake.hostile_name in set(personal["customer_name"])
    assert list(table["customer_id"]) == sorted(table["customer_id"])


def test_kpis_and_tracking_facts(dash_lake):
    source = dash_lake.source
    info = runs.tracking_info(source)
    assert info.error is None
    assert len(info.runs) == 2 and info.champion == "2"
    assert list(info.versions["champion"]) == [True, False]
    k = summary.kpis(source, info)
    assert k.customers == len(dash_lake.features)
    assert k.revenue == pytest.approx(dash_lake.features["total_spend"].sum())
    assert k.segments == 4 and k.noise_share == 0.0
    assert k.table_version == "2" and k.champion == "2"
    assert k.finished is not None and k.finished.tzinfo is not None
    assert k.recommended == summary.recommendation(gold.comparison(source))["method"]


def test_diagnostics_linkage_and_migration(dash_lake):
    source = dash_lake.source
    d = gold.dbscan_diagnostics(source)
    assert {"knee_eps", "noise_share", "density_ratio", "verdict"} <= set(d)
    Z = gold.linkage_matrix(source)
    assert Z.shape == (len(dash_lake.features) - 1, 4)
    moves = gold.migration(source)
    assert moves["customers"].sum() == len(dash_lake.features)


def test_table_cache_follows_a_new_version(dash_lake, tmp_path):
    """A new write is a new version folder: the next read sees it without clearing any cache."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "lakehouse"
    shutil.copytree(dash_lake.source.lakehouse, root)
    source = Source(lakehouse=root)
    before = gold.comparison(source)
    folder = root / "gold" / "method_comparison"
    (folder / "v00000099").mkdir()
    pq.write_table(pa.Table.from_pandas(before.head(1)), folder / "v00000099" / "part-0.parquet")
    (folder / "v00000099" / "_SUCCESS").touch()
    (folder / "_current").write_text("v00000099\n")
    assert len(gold.comparison(source)) == 1 < len(before)


def test_feature_zscores_sign_and_shape():
    table = pd.DataFrame(
        {"segment": [1, 1, 2, 2], "a": [1.0, 1.0, 3.0, 3.0], "b": [5.0, 5.0, 5.0, 5.0]}
    )
    z = charts.feature_zscores(table, ["a", "b", "missing"], log_features=())
    assert list(z.columns) == ["a", "b"] and list(z.index) == [1, 2]
    assert z.loc[1, "a"] == pytest.approx(-1.0) and z.loc[2, "a"] == pytest.approx(1.0)
    assert (z["b"] == 0).all()  # no variance: no colour, not NaN


def test_why_recommended_refers_to_a_weak_dbscan_once_without_repeating_its_diagnosis():
    comparison = pd.DataFrame(
        {
            "method": ["dbscan", "hdbscan"],
            "score": [0.1, 0.5],
            "usable": [False, True],
            "recommended": [False, True],
            "note": ["DBSCAN is weak here: 78% of customers are labelled noise.", ""],
        }
    )
    diagnostics = {
        "verdict": "weak",
        "reasons": ["78% of customers are labelled noise"],
        "recommendation": "Use hdbscan instead: usable in this run.",
    }
    lines = summary.why_recommended(comparison, diagnostics)
    assert lines[0].startswith("hdbscan is recommended")
    assert lines[1:] == ["dbscan is not usable here: see the DBSCAN diagnostics."]
    assert not any("78%" in line for line in lines)  # the diagnosis itself is said once, elsewhere


def test_why_recommended_never_recommends_when_no_method_is_usable():
    comparison = pd.DataFrame(
        {
            "method": ["hierarchical", "kmeans"],
            "score": [0.30, 0.20],
            "usable": [False, False],
            "recommended": [False, False],
            "note": [
                "no method is usable (unstable); used as the best score, not a recommendation",
                "unstable",
            ],
        }
    )
    lines = summary.why_recommended(comparison, None)
    assert lines[0].startswith(
        "No method is usable on this data; the segments come from hierarchical"
    )
    assert lines[1:] == ["kmeans is not usable here: unstable."]
    assert not any("is recommended" in line for line in lines)


def test_sample_rows_is_stable():
    frame = pd.DataFrame({"x": np.arange(100)})
    assert charts.sample_rows(frame, 10).equals(charts.sample_rows(frame, 10))
    assert len(charts.sample_rows(frame, 1000)) == 100


def test_loading_needs_no_spark(tmp_path):
    """The dashboard's data layer must open without a JVM: importing it pulls no pyspark.sql
    session code."""
    import subprocess

    code = (
        "import sys; import custseg.store.gold, custseg.store.runs, custseg.store.summary, "
        "custseg.charts, custseg.report; "
        "print('pyspark.sql.session' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(tmp_path)
    )
    assert out.stdout.strip() == "False"
