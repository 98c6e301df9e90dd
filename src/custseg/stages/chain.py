"""The chain: the stages in order (ingest, features, segment; value on its own), run under one
lakehouse lock.

``preflight`` checks what the stages need without Spark, so a user mistake
fails before a session starts; ``run`` runs the named stages in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from custseg.config import Config
from custseg.errors import CustsegError, InputDataError
from custseg.stages.features import features
from custseg.stages.report import StageReport
from custseg.storage import exclusive

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def ingest(spark: SparkSession, config: Config, progress=print) -> StageReport:
    """raw -> bronze -> silver, quarantining bad rows (``custseg.stages.ingest``)."""
    # lazy: the ingest stage's modules import pyspark; the chain and preflight do without it
    from custseg.stages.ingest import ingest as run_ingest

    return run_ingest(spark, config, progress=progress)


def segment(spark: SparkSession, config: Config, progress=print) -> StageReport:
    """gold customer_features -> segments, profiles, comparison; tracked and registered in
    MLflow."""
    # lazy: the segment stage loads mlflow (slow); preflight mistakes fail before it loads
    from custseg.stages.segment import segment as run_segment

    return run_segment(spark, config, progress=progress)


def value(spark: SparkSession, config: Config, progress=print) -> StageReport:
    """gold customer_features + silver orders -> RFM and lifetime value; tracked and registered
    in MLflow."""
    # lazy: the value stage loads MLflow and scipy's optimisers; the chain stays light
    from custseg.stages.value import value as run_value

    return run_value(spark, config, progress=progress)


STAGES = {"ingest": ingest, "features": features, "segment": segment, "value": value}
# What `custseg run` chains. value runs on its own (`custseg value`): its models need enough
# repeat buyers, and a fit that cannot converge must not fail the segmentation run.
RUN_STAGES = ["ingest", "features", "segment"]


def preflight(config: Config, stages: list[str]) -> None:
    """Spark-free checks of what the stages need, so a user mistake fails before Spark starts."""
    if "ingest" in stages:
        path = Path(config.input.transactions.path or config.input.path)
        if not path.exists():
            raise InputDataError(f"input folder not found: {path} (pass --input or set input.path)")
        if config.input.layout == "retail-org" and not path.is_dir():
            raise InputDataError(
                f"input {path} is a file; the retail-org layout is a folder with customers/, "
                "sales_orders/, ..."
            )


def run(
    spark: SparkSession, config: Config, stages: list[str] | None = None, progress=print
) -> list[StageReport]:
    """Every stage in order (or the named ones), holding the lakehouse for the whole run."""
    names = stages or RUN_STAGES
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise CustsegError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    reports = []
    with exclusive(config.storage.root):
        for name in names:
            progress(f"[{name}]")
            reports.append(STAGES[name](spark, config, progress=progress))
    return reports
