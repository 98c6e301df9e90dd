"""Score customers with a segmenter: distributed, the model travels to the executors.

The same function assigns the training customers in the segment stage and
new customers in ``custseg score``, so both follow one rule.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from custseg.errors import InputDataError, ModelError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from custseg.config import Config
    from custseg.pipeline import StageReport
    from custseg.segment.segmenter import Segmenter

SCORE_SCHEMA = "customer_id string, segment int, pc1 double, pc2 double"


def score_frame(features: DataFrame, segmenter: Segmenter, id_col: str = "customer_id") -> DataFrame:
    """customer_id, segment (-1 = noise) and the 2-D projection for every row of ``features``.

    Runs in mapInPandas: no collect, the segmenter is shipped inside the closure.
    """
    import pandas as pd

    missing = [c for c in [id_col, *segmenter.features] if c not in features.columns]
    if missing:
        raise InputDataError(f"the table to score lacks column(s) {', '.join(missing)}")
    columns = [id_col, *segmenter.features]

    def assign(batches):
        for pdf in batches:
            if pdf.empty:
                continue
            xy = segmenter.project(pdf)
            yield pd.DataFrame(
                {
                    "customer_id": pdf[id_col].astype(str),
                    "segment": segmenter.predict(pdf).astype("int32"),
                    "pc1": xy[:, 0],
                    "pc2": xy[:, 1],
                }
            )

    return features.select(*columns).mapInPandas(assign, SCORE_SCHEMA)


def _check_model_uri(model_uri: str) -> None:
    """Models load only from a registry (models:/), a run (runs:/) or a local path the user names."""
    from pathlib import Path

    if model_uri.startswith(("models:/", "runs:/")):
        return
    if "://" in model_uri and not model_uri.startswith("file://"):
        raise ModelError(f"model URI {model_uri!r} is not a registry model, a run or a local path")
    if not Path(model_uri.removeprefix("file://")).exists():
        raise ModelError(f"model path not found: {model_uri}")


def score(spark: SparkSession, config: Config, model_uri: str | None = None, table: str = "customer_features",
          output: str = "customer_scores", progress=print) -> StageReport:
    """Assign a segment to every customer of gold.<table> with the registered model; writes gold.<output>."""
    import pyspark.sql.functions as F

    from custseg import tracking
    from custseg.pipeline import StageReport
    from custseg.storage import Lakehouse

    started = time.perf_counter()
    tracking.setup(config.tracking)
    uri = model_uri or tracking.champion_uri(config.tracking)
    _check_model_uri(uri)
    progress(f"  loading {uri}")
    segmenter = tracking.load_segmenter(uri)
    lake = Lakehouse(spark, config.storage)
    features = lake.read("gold", table)
    names = F.create_map(*[x for k, v in sorted(segmenter.segment_names.items()) for x in (F.lit(k), F.lit(v))]) if segmenter.segment_names else None
    scored = score_frame(features, segmenter)
    scored = scored.withColumns(
        {
            "segment_name": names[F.col("segment")] if names is not None else F.lit(None).cast("string"),
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
    report.extra["segment_counts"] = {int(r["segment"]): int(r["count"]) for r in written.groupBy("segment").count().collect()}
    report.notes.append(f"model: {uri} ({segmenter.method})")
    report.seconds = time.perf_counter() - started
    return report
