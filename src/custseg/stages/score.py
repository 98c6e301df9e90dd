"""The score stage: gold.<table> -> gold.<output>, a segment for every customer with a registered
model.

Scoring itself is ``custseg.scoring.score_frame``, the rule the segment
stage uses too; this stage loads the model, names the segments and writes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyspark.sql.functions as F

from custseg import tracking
from custseg.config import Config
from custseg.errors import ModelError
from custseg.scoring import score_frame
from custseg.stages.report import StageReport
from custseg.storage import Lakehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _check_model_uri(model_uri: str) -> None:
    """Models load only from a registry (models:/), a run (runs:/) or a local path the user
    names."""
    if model_uri.startswith(("models:/", "runs:/")):
        return
    if "://" in model_uri and not model_uri.startswith("file://"):
        raise ModelError(f"model URI {model_uri!r} is not a registry model, a run or a local path")
    if not Path(model_uri.removeprefix("file://")).exists():
        raise ModelError(f"model path not found: {model_uri}")


def score(
    spark: SparkSession,
    config: Config,
    model_uri: str | None = None,
    table: str = "customer_features",
    output: str = "customer_scores",
    progress=print,
) -> StageReport:
    """Assign a segment to every customer of gold.<table> with the registered model; writes
    gold.<output>."""
    started = time.perf_counter()
    tracking.setup(config.tracking)
    uri = model_uri or tracking.champion_uri(config.tracking)
    _check_model_uri(uri)
    progress(f"  loading {uri}")
    segmenter = tracking.load_segmenter(uri)
    lake = Lakehouse(spark, config.storage)
    features = lake.read("gold", table)
    names = (
        F.create_map(
            *[x for k, v in sorted(segmenter.segment_names.items()) for x in (F.lit(k), F.lit(v))]
        )
        if segmenter.segment_names
        else None
    )
    scored = score_frame(features, segmenter)
    scored = scored.withColumns(
        {
            "segment_name": names[F.col("segment")]
            if names is not None
            else F.lit(None).cast("string"),
            "method": F.lit(segmenter.method),
            "model_uri": F.lit(uri),
            "scored_at": F.current_timestamp(),
        }
    )
    progress(f"  gold.{output}")
    lake.write(scored, "gold", output)
    report = StageReport("score")
    written = lake.read("gold", output)
    report.tables[f"gold.{output}"] = written.count()
    report.extra["segment_counts"] = {
        int(r["segment"]): int(r["count"]) for r in written.groupBy("segment").count().collect()
    }
    report.notes.append(f"model: {uri} ({segmenter.method})")
    report.seconds = time.perf_counter() - started
    return report
