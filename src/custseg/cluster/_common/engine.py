"""Which engine fits a Spark estimator's data, and how far its answer is from the exact one.

Up to a size the exact single-node algorithm runs on the driver, then (where an
executor is given more memory, ``one_executor``) in one Spark task; above that the
estimator's distributed path runs. The size is estimated, not fixed: the
exact fit's peak memory grows with rows x features (and, for HDBSCAN, rows x
the neighbours of its core distances), so the number of rows that fit is the
memory this process may use divided by that cost. Exact Ward's time is quadratic
in the rows and exact HDBSCAN's grows faster than linearly, so they have a row cap
as well. ``maxDriverRows``
overrides the estimate (0: always the distributed path).

The distributed paths of SparkHierarchical, SparkHDBSCAN and SparkKMeans are
approximate (summaries, Spark ML's initialisation): their models carry an
agreement estimate, the adjusted Rand index between the model's labels and the
exact algorithm's on a seeded sample of the rows.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import psutil
from sklearn.metrics import adjusted_rand_score

log = logging.getLogger(__name__)

#: The share of this machine's available memory an exact fit may use: the Spark JVM and
#: its Python workers share the machine in local mode.
MEMORY_SHARE = 0.5
#: Rows of the seeded sample the agreement estimate fits the exact algorithm on.
AGREEMENT_SAMPLE_ROWS = 20_000
#: Rows of the seeded sample a distributed path chooses its parameters on (k by silhouette).
CHOICE_SAMPLE_ROWS = 100_000


@dataclass(frozen=True)
class ExactCost:
    """Peak memory of an exact single-node fit, in bytes, and a time bound in rows.

    The byte figures are twice the peak resident memory measured on 100,000 rows of
    4 and 16 features (``benchmarks/bench_quality.py`` prints the measurement).
    """

    per_row: int
    per_value: int  # per row and feature
    per_neighbour: int = 0  # per row and neighbour of the core distance (HDBSCAN)
    max_rows: int | None = None  # above it the exact algorithm's time is quadratic and long
    why_max: str = ""


EXACT_COSTS: dict[str, ExactCost] = {
    "dbscan": ExactCost(per_row=1_200, per_value=64),
    "hdbscan": ExactCost(
        per_row=1_200,
        per_value=64,
        per_neighbour=32,
        max_rows=200_000,
        why_max="exact HDBSCAN's time grows faster than its rows (24-116 s at 100,000 rows of "
        "2-16 features on 2 cores)",
    ),
    "kmeans": ExactCost(per_row=900, per_value=32),
    "hierarchical": ExactCost(
        per_row=600,
        per_value=16,
        max_rows=100_000,
        why_max="exact Ward's time grows with rows squared (about a minute at 100,000 on 2 cores)",
    ),
}


@dataclass(frozen=True)
class DriverLimit:
    """The most rows the exact single-node fit takes, and why (one clause)."""

    rows: int
    reason: str


def available_memory() -> int:
    """Bytes of memory available to new allocations on this machine."""

    return int(psutil.virtual_memory().available)


def exact_bytes(method: str, n_rows: int, n_features: int, neighbours: int = 0) -> int:
    """The estimated peak memory of the exact fit of ``n_rows`` x ``n_features``."""
    cost = EXACT_COSTS[method]
    per_row = cost.per_row + cost.per_value * n_features + cost.per_neighbour * neighbours
    return int(per_row) * int(n_rows)


def driver_limit(
    method: str,
    n_features: int,
    *,
    neighbours: int = 0,
    configured: int | None = None,
    memory: int | None = None,
) -> DriverLimit:
    """The driver limit of ``method`` on ``n_features`` features: ``configured``, else estimated."""
    if configured is not None:
        return DriverLimit(configured, f"maxDriverRows={configured:,}")
    budget = MEMORY_SHARE * (available_memory() if memory is None else memory)
    where = f"{_gib(budget)} ({MEMORY_SHARE:.0%} of the memory available)"
    limit = memory_limit(method, n_features, neighbours, budget, where)
    return limit if limit.rows else DriverLimit(1, limit.reason)  # one row always fits


def memory_limit(
    method: str, n_features: int, neighbours: int, budget: float, where: str
) -> DriverLimit:
    """The rows whose exact fit fits ``budget`` bytes (``where``: that budget, in words),
    or the method's time cap when lower."""
    per_row = exact_bytes(method, 1, n_features, neighbours)
    rows = math.floor(budget / per_row)
    cost = EXACT_COSTS[method]
    if cost.max_rows is not None and cost.max_rows < rows:
        return DriverLimit(cost.max_rows, f"{cost.max_rows:,} rows: {cost.why_max}")
    return DriverLimit(
        rows,
        f"estimated: {per_row:,} bytes per row x {n_features} features fit {rows:,} rows "
        f"in {where}",
    )


def exact_report(n_rows: int, n_features: int, limit: DriverLimit) -> dict[str, Any]:
    """The fit report of an exact fit on the driver."""
    return {
        "engine": "single-node",
        "exact": True,
        "on": "driver",
        "rows": int(n_rows),
        "features": int(n_features),
        "driver_limit": limit.rows,
        "why": f"{n_rows:,} rows <= the driver limit ({limit.reason})",
    }


def executor_report(
    n_rows: int, n_features: int, limit: DriverLimit, executor: DriverLimit, where: dict[str, Any]
) -> dict[str, Any]:
    """The fit report of an exact fit in one Spark task (``where``: its host and process)."""
    return {
        "engine": "single-node",
        "exact": True,
        "on": "one executor",
        "host": where["host"],
        "pid": where["pid"],
        "rows": int(n_rows),
        "features": int(n_features),
        "driver_limit": limit.rows,
        "executor_limit": executor.rows,
        "why": f"{n_rows:,} rows > the driver limit ({limit.reason}) and <= one executor's "
        f"({executor.reason})",
    }


def distributed_report(
    n_rows: int,
    n_features: int,
    limit: DriverLimit,
    exact: bool,
    agreement: float | None = None,
    agreement_rows: int = 0,
) -> dict[str, Any]:
    """The fit report of the distributed path (``agreement``: None when it is exact)."""
    report: dict[str, Any] = {
        "engine": "spark",
        "exact": exact,
        "rows": int(n_rows),
        "features": int(n_features),
        "driver_limit": limit.rows,
        "why": f"{n_rows:,} rows > the driver limit ({limit.reason})",
    }
    if agreement is not None:
        report["agreement_ari"] = float(agreement)
        report["agreement_rows"] = int(agreement_rows)
    return report


def describe(report: dict[str, Any]) -> str:
    """One phrase for the comparison table and the log, e.g. 'Spark, approximate (ARI 0.93 ...)'."""
    if report["engine"] == "single-node":
        on_executor = report.get("on") == "one executor"
        return "single-node, exact, on one executor" if on_executor else "single-node, exact"
    if report["exact"]:
        return "Spark, exact"
    ari = report.get("agreement_ari")
    shown = "not measured" if ari is None else f"ARI {ari:.3f} against exact"
    return f"Spark, approximate ({shown} on a sample of {report.get('agreement_rows', 0):,})"


def agreement(clusterer: Any, fitted: Any, sample: np.ndarray, ratio: float) -> float:
    """ARI between ``fitted``'s labels of ``sample`` and the exact algorithm fitted on it.

    ``ratio`` is rows / sample rows: density parameters are scaled to the sample
    (``params_for_sample``) so that they mean the same density there.
    """

    with warnings.catch_warnings():  # fewer clusters in the sample: the ARI says it
        warnings.simplefilter("ignore")
        exact = type(clusterer)(**fitted.params_for_sample(ratio)).fit(sample)
    return float(adjusted_rand_score(exact.labels_, fitted.predict(sample)))


def log_report(estimator: str, report: dict[str, Any]) -> None:
    log.info("%s: %s; %s", estimator, describe(report), report["why"])


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"
