"""How rows travel inside the distributed DBSCAN: column names, row kinds, schemas.

Every step of ``_distributed`` (and the kernels of ``_passes``) reads and writes these
frames; the features travel as one double column each (x0, x1, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


# Column names used inside the distributed plan.
PART = "__custseg_part"


ROW_ID = "__custseg_row_id"


FEATURES = "__custseg_features"


NODE_SHIFT = 2**31


# Inside the plan the features travel as one double column each (x0, x1, ...): Arrow and
# pandas move flat doubles several times faster, and in less memory, than array<double>,
# which pandas holds as one numpy array object per row.
def feature_names(d: int) -> list[str]:
    return [f"x{j}" for j in range(d)]


def feature_fields(d: int) -> str:
    return ", ".join(f"{name} double" for name in feature_names(d))


def routed_schema(d: int, extra: str = "") -> str:
    """Rows sent to boxes: ``kind`` OWN (the box owns the row) or HALO (a copy within eps)."""
    return f"id long, {PART} int, kind int, {feature_fields(d)}{extra}"


def box_rows_schema(d: int) -> str:
    """A box's own rows after the first pass (kept on executors' disk): ``local`` is the
    row's local cluster (-1: none within eps in this box), ``near`` a non-core row's
    distance to its nearest own core (inf: none), ``shipped`` whether other boxes may hold
    a nearer core, ``dist`` the thinning distance (NaN when not thinning)."""
    return (
        f"id long, {PART} int, is_core boolean, local int, near double, shipped boolean, "
        f"dist double, {feature_fields(d)}"
    )


def visit_schema(d: int) -> str:
    """Rows of the second pass: OWN core points (``node`` their local cluster), HALO core
    points of other boxes (``node`` their home cluster), QUERY rows (non-core rows of
    other boxes, ``bound`` their nearest core so far)."""
    return f"kind int, id long, {PART} int, node long, bound double, {feature_fields(d)}"


# What the second pass finds: LINK (a, b) nodes of one cluster; ANSWER: row id's nearest
# core in another box is in node b, at distance dist.
FOUND_SCHEMA = "kind int, id long, a long, b long, dist double"


OWN, HALO, QUERY = 0, 1, 2


LINK, ANSWER = 1, 2


def flat_features(df: DataFrame, d: int) -> DataFrame:
    """``df`` with its array column ``f`` replaced by the columns x0..x{d-1}."""

    others = [F.col(c) for c in df.columns if c != "f"]
    return df.select(*others, *[F.col("f")[j].alias(x) for j, x in enumerate(feature_names(d))])


def features_of(frame: pd.DataFrame, d: int) -> np.ndarray:
    """The (rows, d) float64 matrix of a frame's x0..x{d-1} columns."""
    return frame[feature_names(d)].to_numpy(dtype=np.float64)


def matrix_of(column: pd.Series, d: int) -> np.ndarray:
    if len(column) == 0:
        return np.empty((0, d))
    return np.vstack(column.to_numpy()).astype(np.float64, copy=False)


def to_pandas(df: DataFrame) -> pd.DataFrame:
    """Collect a small result (never per-customer data: samples, clusters, links, kept cores)."""
    return cast(pd.DataFrame, df.toPandas())
