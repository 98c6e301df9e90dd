"""Fit a custseg Spark estimator on another engine, in a subprocess, and bring the labels back.

One SparkContext per process: the suite's local[2] session cannot share a process with a
``local-cluster[...]`` session (separate executor JVMs and Python workers), so those fits run
here, in a child interpreter. The same script also fits through a Spark Connect server.

    labels = fit_on_engine("local-cluster[2,1,1024]", "SparkDBSCAN", {"eps": 0.6}, X, tmp_path)
    labels = fit_on_engine(connect_server, "SparkDBSCAN", {"eps": 0.6}, X, tmp_path)

The result maps each output column of ``model.transform`` (``segment``, ``is_core``, ...)
to a numpy array in the row order of ``X``. ``fit_all_on_engine`` runs several fits in one
application (tests/cluster/conftest.py batches every test's engine fits that way). Run as a
script it is the child side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

LOCAL_CLUSTER = "local-cluster[2,1,1024]"


def fit_on_engine(
    engine: str,
    estimator: str,
    params: dict[str, Any],
    X: np.ndarray,
    tmp_path: Path,
    *,
    timeout: float = 900,
) -> dict[str, np.ndarray]:
    """Fit ``custseg.cluster.<estimator>(**params)`` on ``engine`` (a master URL or sc://...)."""
    return fit_all_on_engine(engine, {"job": (estimator, params, X)}, tmp_path, timeout=timeout)[
        "job"
    ]


def fit_all_on_engine(
    engine: str,
    jobs: dict[str, tuple[str, dict[str, Any], np.ndarray]],
    tmp_path: Path,
    *,
    timeout: float = 900,
) -> dict[str, dict[str, np.ndarray]]:
    """Several fits, ``{name: (estimator, params, X)}``, in one application on ``engine``:
    starting a local-cluster application costs far more than a small fit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    request: dict[str, Any] = {"engine": engine, "jobs": {}}
    for name, (estimator, params, X) in jobs.items():
        X = np.ascontiguousarray(X, dtype=np.float64)
        data = tmp_path / f"engine-input-{name}.parquet"
        features = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1]).cast(
            pa.list_(pa.float64())
        )
        ids = pa.array(np.arange(len(X), dtype=np.int64))
        pq.write_table(pa.table({"id": ids, "features": features}), data)
        out = tmp_path / f"engine-output-{name}.npz"
        request["jobs"][name] = {
            "estimator": estimator,
            "params": params,
            "data": str(data),
            "out": str(out),
        }
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TZ": "UTC",
    }
    env.pop("SPARK_REMOTE", None)
    result = subprocess.run(
        [sys.executable, __file__, json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=str(tmp_path),
    )
    if result.returncode != 0:
        raise AssertionError(
            f"fit on {engine} failed ({result.returncode}):\n{result.stderr[-4000:]}"
        )
    outputs = {}
    for name, job in request["jobs"].items():
        with np.load(job["out"]) as npz:
            outputs[name] = {column: npz[column] for column in npz.files}
    return outputs


def _child(request: dict[str, Any]) -> None:
    import custseg.cluster
    from custseg.config import SparkConfig
    from custseg.spark import create_session

    engine = request["engine"]
    config = (
        SparkConfig(remote=engine, log_level="ERROR")
        if engine.startswith("sc://")
        else SparkConfig(master=engine, driver_memory="2g", shuffle_partitions=4, log_level="ERROR")
    )
    spark = create_session(config)
    try:
        for job in request["jobs"].values():
            df = spark.read.parquet(job["data"])
            model = getattr(custseg.cluster, job["estimator"])(**job["params"]).fit(df)
            scored = model.transform(df).drop("features").toPandas().sort_values("id")
            # Nullable Spark ints / booleans arrive as pandas extension arrays; npz wants plain
            # numpy.
            columns = {c: _plain(scored[c]) for c in scored.columns if c != "id"}
            np.savez(job["out"], **columns)
    finally:
        spark.stop()


def _plain(column: Any) -> np.ndarray:
    if str(column.dtype) == "boolean":
        return column.to_numpy(dtype=bool, na_value=False)
    if str(column.dtype).startswith("Int"):
        return column.to_numpy(dtype=np.int64, na_value=-2)  # -2: null, distinct from noise (-1)
    return column.to_numpy()


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
