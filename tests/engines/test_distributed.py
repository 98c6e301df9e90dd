"""custseg on real distributed engines: a standalone cluster (``--master spark://``) and Spark
Connect (``--remote sc://``), each running every stage through the CLI on the seed scenario,
with the same results as the local run, and the dashboard and report reading them.

The executors and the Connect server run an interpreter without custseg installed, so these
runs pass only because custseg ships itself with the job (spark.submit.pyFiles / addArtifacts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from custseg.storage import current_path

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 420


@pytest.fixture(scope="module")
def seed_raw(spark, engines_dir: Path) -> Path:
    from custseg.data.generate import generate

    out = engines_dir / "raw"
    generate(spark, out, preset="seed")
    return out


def run_cli(
    work: Path, raw: Path, *engine: str, worker_python: str | None = None
) -> subprocess.CompletedProcess:
    """``custseg run`` in a subprocess, in its own working folder, lakehouse and MLflow store.

    ``worker_python``: the interpreter the executors' Python workers run (PYSPARK_PYTHON).
    """
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "SPARK_REMOTE")}
    if worker_python:
        env["PYSPARK_PYTHON"] = worker_python
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "custseg.cli",
            "run",
            "--input",
            str(raw),
            "--driver-memory",
            "1g",
            "--tracking-uri",
            f"sqlite:///{work / 'mlflow.db'}",
            "--lakehouse",
            str(work / "lakehouse"),
            *engine,
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, (
        f"custseg run {' '.join(engine)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


def gold(work: Path, table: str) -> pd.DataFrame:
    folder = current_path(work / "lakehouse", "gold", table)
    assert folder is not None, f"gold.{table} was not written under {work}"
    return pd.read_parquet(folder).sort_values("customer_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def local_run(seed_raw: Path, engines_dir: Path) -> Path:
    work = engines_dir / "run-local"
    run_cli(work, seed_raw, "--master", "local[2]")
    return work


def assert_same_results(work: Path, reference: Path) -> None:
    features, expected = gold(work, "customer_features"), gold(reference, "customer_features")
    assert len(features) == len(expected) == 25
    pd.testing.assert_frame_equal(
        features[expected.columns], expected, check_exact=False, rtol=1e-9
    )
    segments, expected_segments = (
        gold(work, "customer_segments"),
        gold(reference, "customer_segments"),
    )
    assert dict(zip(segments["customer_id"], segments["segment"], strict=True)) == dict(
        zip(expected_segments["customer_id"], expected_segments["segment"], strict=True)
    )


def assert_dashboard_and_report_read(work: Path) -> None:
    from custseg.config import load_config
    from custseg.store import gold, runs
    from custseg.store.source import Source

    tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
    source = Source.from_config(
        load_config(
            overrides={
                "storage.root": str(work / "lakehouse"),
                "tracking.tracking_uri": tracking_uri,
            }
        )
    )
    gold.clear_caches()
    runs.clear_caches()
    assert len(gold.segments(source)) == 25
    assert not gold.profiles(source).empty
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "custseg.cli",
            "report",
            "--lakehouse",
            str(work / "lakehouse"),
            "--tracking-uri",
            tracking_uri,
            "--out",
            str(work / "report.html"),
        ],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert "customer" in (work / "report.html").read_text(encoding="utf-8").lower()


def test_standalone_cluster_runs_every_stage(
    standalone: str, bare_python: str, seed_raw: Path, local_run: Path, engines_dir: Path
):
    work = engines_dir / "run-standalone"
    result = run_cli(work, seed_raw, "--master", standalone, worker_python=bare_python)
    assert f"starting Spark ({standalone})" in result.stdout
    assert_same_results(work, local_run)
    assert_dashboard_and_report_read(work)
    # The job really ran on the worker's executor, which received the custseg zip.
    shipped = list((engines_dir / "standalone" / "worker").rglob("custseg-*.zip"))
    assert shipped, "no custseg zip reached the worker's executor folder"


def test_spark_connect_runs_every_stage(
    connect_server: str, seed_raw: Path, local_run: Path, engines_dir: Path
):
    work = engines_dir / "run-connect"
    result = run_cli(work, seed_raw, "--remote", connect_server)
    assert f"starting Spark ({connect_server})" in result.stdout
    assert_same_results(work, local_run)
    assert_dashboard_and_report_read(work)


PROBE = """
import sys
from custseg.config import SparkConfig
from custseg.spark import create_session

spark = create_session(SparkConfig(master="local-cluster[1,1,1024]", driver_memory="1g", log_level="ERROR"))

def where(batches):
    import custseg
    for frame in batches:
        yield frame.assign(module=custseg.__file__, python=sys.executable)

try:
    row = spark.range(1).mapInPandas(where, "id long, module string, python string").collect()[0]
    print(row["module"], row["python"])
finally:
    spark.stop()
"""  # noqa: E501 (the probe script, kept as written)


def test_executors_import_custseg_from_the_shipped_zip(bare_python: str, tmp_path: Path):
    """local-cluster runs real executor processes; with a worker interpreter lacking custseg,
    the import inside a pandas UDF succeeds only through spark.submit.pyFiles."""
    env = {**os.environ, "PYSPARK_PYTHON": bare_python}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    module, python = result.stdout.split()[-2:]
    assert "custseg-" in module and ".zip" in module, module
    assert python == bare_python
