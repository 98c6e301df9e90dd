"""Score customers with a segmenter: distributed, the model travels to the executors.

The same function assigns the training customers in the segment stage and
new customers in the score stage (``custseg score``), so both follow one rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from custseg.errors import InputDataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from custseg.segment.segmenter import Segmenter

SCORE_SCHEMA = "customer_id string, segment int, pc1 double, pc2 double"


def score_frame(
    features: DataFrame, segmenter: Segmenter, id_col: str = "customer_id"
) -> DataFrame:
    """customer_id, segment (-1 = noise) and the 2-D projection for every row of ``features``.

    Runs in mapInPandas: no collect, the segmenter is shipped inside the closure.
    """

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
