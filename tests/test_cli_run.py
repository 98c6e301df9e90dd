"""The command line end to end: generate the seed scenario, run every stage, score with the
champion."""

import re
import subprocess
import sys

import pytest


def _custseg(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "custseg.cli", *args, "--master", "local[2]"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
    )


@pytest.mark.slow
def test_generate_run_score(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the embedded default: ./mlflow.db
    gen = _custseg("generate", "--preset", "seed", "--out", "raw", cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr[-2000:]
    run = _custseg("run", "--input", "raw", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "| Cluster | Units Purchased | Loyalty Segment | Num Orders | Count |" in out
    assert "| Method | Segments | Noise |" in out
    assert "quarantined 0" in out and "Business insights" in out
    assert (tmp_path / "mlflow.db").is_file() and (
        tmp_path / "lakehouse" / "gold" / "customer_segments"
    ).is_dir()
    score = _custseg("score", "--model", "models:/custseg-segmenter@champion", cwd=tmp_path)
    assert score.returncode == 0, score.stderr[-2000:]
    assert re.search(r"gold\.customer_scores\s+25 rows", score.stdout), score.stdout
    missing = _custseg("score", "--model", "/no/such/model", cwd=tmp_path)
    assert missing.returncode == 2 and "model path not found: /no/such/model" in missing.stderr
