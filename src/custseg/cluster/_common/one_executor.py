"""The exact single-node fit on one executor, for data the driver cannot hold but one
executor can.

On a cluster the driver is often the smaller machine. Above the driver limit, and up to
one executor's limit (``maxExecutorRows``, else estimated from the Python memory an
executor is given, ``spark.executor.pyspark.memory``), the features are shuffled into a
single partition and the exact algorithm runs in that one Spark task; the fitted
estimator comes back to the driver pickled, with the task's host and process id so the
fit report can say where it ran. Warnings the fit raised (fewer clusters than asked) are
carried back and raised again on the driver.

Without a stated executor memory the executor limit is 0: in local mode the executors
are this machine, whose memory the driver limit already counts.
"""

from __future__ import annotations

import os
import pickle
import socket
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from custseg.errors import ParameterError

from .engine import DriverLimit, memory_limit

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import Column, DataFrame

    from .base import BaseClusterer

#: The Spark setting that states the memory of an executor's Python workers.
EXECUTOR_MEMORY_CONF = "spark.executor.pyspark.memory"
_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_memory(text: str) -> int:
    """Bytes of a Spark memory setting: '4g', '512m', '2048' (MiB, Spark's default unit)."""
    value = text.strip().lower().removesuffix("b")
    unit = _UNITS.get(value[-1:])
    number = value[:-1] if unit else value
    try:
        amount = float(number)
    except ValueError:
        raise ParameterError(f"{EXECUTOR_MEMORY_CONF} is not a memory size: {text!r}") from None
    return int(amount * (unit or _UNITS["m"]))


def executor_limit(
    method: str,
    n_features: int,
    *,
    neighbours: int = 0,
    configured: int | None = None,
    stated_memory: str | None = None,
) -> DriverLimit:
    """The most rows the exact fit takes on one executor: ``configured``, else estimated from
    ``stated_memory`` (the value of ``spark.executor.pyspark.memory``; None: not stated)."""
    if configured is not None:
        return DriverLimit(configured, f"maxExecutorRows={configured:,}")
    if not stated_memory:
        return DriverLimit(0, f"{EXECUTOR_MEMORY_CONF} is not set")
    return memory_limit(method, n_features, neighbours, parse_memory(stated_memory), stated_memory)


def fit_on_one_executor(
    dataset: DataFrame, features: Column, clusterer: BaseClusterer, n_features: int
) -> tuple[BaseClusterer, dict[str, Any]]:
    """Fit ``clusterer`` exactly in one Spark task; the fitted estimator and where it ran.

    The rows must already be checked (no null, ragged, NaN or infinite features).
    """

    names = [f"x{j}" for j in range(n_features)]
    flat = dataset.select(*[F.get(features, j).alias(name) for j, name in enumerate(names)])

    def fit(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        blocks = [batch[names].to_numpy(np.float64) for batch in batches]
        X = np.concatenate(blocks) if blocks else np.zeros((0, n_features))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fitted = clusterer.fit(X)
        raised = [(w.category, str(w.message)) for w in caught]
        yield pd.DataFrame(
            {
                "model": [pickle.dumps(fitted)],
                "warnings": [pickle.dumps(raised)],
                "host": [socket.gethostname()],
                "pid": [os.getpid()],
                "rows": [X.shape[0]],
            }
        )

    schema = "model binary, warnings binary, host string, pid long, rows long"
    # One partition, one task: the shuffle moves every row to the executor that fits.
    rows = flat.repartition(1).mapInPandas(fit, schema).collect()
    outputs = [row for row in rows if row["rows"]]
    if len(outputs) != 1:  # pragma: no cover - repartition(1) makes exactly one task
        raise RuntimeError(f"the one-executor fit ran in {len(outputs)} tasks")
    out = outputs[0]
    for category, message in pickle.loads(out["warnings"]):
        warnings.warn(message, category, stacklevel=3)
    where = {"host": out["host"], "pid": int(out["pid"]), "rows": int(out["rows"])}
    return pickle.loads(out["model"]), where
