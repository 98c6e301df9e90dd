"""Agreement of a labelling with the planted truth, computed in Spark (nothing per customer
collected)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def ari_from_contingency(counts: np.ndarray) -> float:
    """Adjusted Rand index from a contingency table (rows: one labelling, columns: the other)."""

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    n = counts.sum()
    index = pairs(counts)
    rows, cols = pairs(counts.sum(axis=1)), pairs(counts.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2)
    maximum = (rows + cols) / 2
    return 1.0 if maximum == expected else (index - expected) / (maximum - expected)


def truth_ari_in_spark(spark: Any, scored: Path) -> float:
    """ARI of the written labels against truth, from a groupBy count (labels x blobs cells)."""
    table = spark.read.parquet(str(scored)).groupBy("truth", "segment").count().toPandas()
    counts = table.pivot_table(
        index="truth", columns="segment", values="count", fill_value=0
    ).to_numpy()
    return ari_from_contingency(counts.astype(np.float64))
