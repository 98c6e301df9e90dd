"""Stable segment numbers across retrains, and who moved where.

A retrained model numbers its clusters arbitrarily. :func:`match_segments`
maps each new segment to the champion's segment whose centroid is closest,
by the assignment of least total distance (Hungarian algorithm), so segment 3
keeps meaning the same customers' behaviour from one model version to the
next. :func:`migration_matrix` (pandas) and :func:`migration_counts` (Spark)
then count customers moving between segments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from custseg.errors import InputDataError, ParameterError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

NOISE = -1
_Labels = TypeVar("_Labels", np.ndarray, pd.Series, list)


def _centroid_matrix(
    centroids: Mapping[int, np.ndarray], name: str
) -> tuple[list[int], np.ndarray]:
    ids = sorted(int(k) for k in centroids if int(k) != NOISE)
    if not ids:
        return [], np.empty((0, 0))
    rows = [np.asarray(centroids[k], dtype="float64").ravel() for k in ids]
    widths = {r.size for r in rows}
    if len(widths) != 1:
        raise ParameterError(
            f"{name} centroids must all have the same length, got lengths {sorted(widths)}"
        )
    matrix = np.vstack(rows)
    if not np.isfinite(matrix).all():
        raise ParameterError(f"{name} centroids must be finite, got NaN or infinity")
    return ids, matrix


def match_segments(
    new_centroids: Mapping[int, np.ndarray], champion_centroids: Mapping[int, np.ndarray]
) -> dict[int, int]:
    """Map each new segment number to a champion segment number, or a fresh one.

    Segments are paired to minimise the total Euclidean distance between
    centroids (``scipy.optimize.linear_sum_assignment``). New segments left
    over when the new model has more segments than the champion get fresh
    numbers after the largest champion number, in order of their own number.
    Noise (-1) always maps to -1.

    >>> match_segments(
    ...     {0: np.array([5.0]), 1: np.array([0.0])}, {7: np.array([0.1]), 8: np.array([4.9])}
    ... )
    {0: 8, 1: 7}
    """
    new_ids, new = _centroid_matrix(new_centroids, "new")
    old_ids, old = _centroid_matrix(champion_centroids, "champion")
    mapping: dict[int, int] = {NOISE: NOISE} if any(int(k) == NOISE for k in new_centroids) else {}
    if new_ids and old_ids:
        if new.shape[1] != old.shape[1]:
            raise ParameterError(
                f"new centroids have {new.shape[1]} features but champion centroids have "
                f"{old.shape[1]}"
            )
        rows, cols = linear_sum_assignment(cdist(new, old))
        mapping.update({new_ids[r]: old_ids[c] for r, c in zip(rows, cols, strict=True)})
    fresh = (max(old_ids) + 1) if old_ids else 0
    for k in new_ids:
        if k not in mapping:
            mapping[k] = fresh
            fresh += 1
    return dict(sorted(mapping.items()))


def relabel(labels: _Labels, mapping: Mapping[int, int]) -> _Labels:
    """Apply ``mapping`` to labels (numpy array, pandas Series or list; same type back).

    Noise (-1) stays -1 unless mapped; a label the mapping lacks is an error,
    since silently keeping it could collide with a mapped number.
    """
    values = np.asarray(labels)
    unique = np.unique(values)
    missing = [int(u) for u in unique if int(u) != NOISE and int(u) not in mapping]
    if missing:
        raise ParameterError(
            f"mapping has no entry for label(s) {missing}; it maps {sorted(mapping)}"
        )
    full = {NOISE: NOISE, **{int(k): int(v) for k, v in mapping.items()}}
    out = np.array([full[int(v)] for v in values.ravel()], dtype="int64").reshape(values.shape)
    if isinstance(labels, pd.Series):
        return pd.Series(out, index=labels.index, name=labels.name)
    if isinstance(labels, list):
        return out.tolist()
    return out


def migration_matrix(previous: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Counts of customers in segment a before (rows) and segment b now (columns).

    Both series are indexed by customer id; only customers present in both
    are counted (an inner join). Rows and columns list every segment seen on
    their side, sorted, with zeros where nobody moved.
    """
    for name, series in (("previous", previous), ("current", current)):
        duplicated = series.index[series.index.duplicated()].unique()
        if len(duplicated):
            raise InputDataError(
                f"{name} segments repeat customer id(s) {list(duplicated[:5])}: one row per "
                "customer expected"
            )
    joined = pd.concat({"previous": previous, "current": current}, axis=1, join="inner")
    rows = sorted(pd.unique(previous.dropna()).astype("int64").tolist())
    cols = sorted(pd.unique(current.dropna()).astype("int64").tolist())
    counts = pd.crosstab(joined["previous"].astype("int64"), joined["current"].astype("int64"))
    matrix = counts.reindex(index=rows, columns=cols, fill_value=0).astype("int64")
    matrix.index.name = "previous"
    matrix.columns.name = "current"
    return matrix


def migration_counts(
    df_prev: DataFrame,
    df_curr: DataFrame,
    id_col: str = "customer_id",
    seg_col: str | Sequence[str] = "segment",
) -> DataFrame:
    """Spark version of :func:`migration_matrix` in long form: ``previous, current, customers``.

    An inner join on ``id_col`` and a ``groupBy``; the result has one row
    per (previous, current) pair that occurs, sorted, and is small enough to
    ``toPandas()``. ``seg_col`` may be one name for both tables or a
    (previous, current) pair.
    """
    # lazy: pyspark stays out of import custseg.profile (the dashboard and report use it without
    # Spark)
    from pyspark.sql import functions as F

    prev_seg, curr_seg = (seg_col, seg_col) if isinstance(seg_col, str) else tuple(seg_col)
    for name, frame, col in (("previous", df_prev, prev_seg), ("current", df_curr, curr_seg)):
        missing = [c for c in (id_col, col) if c not in frame.columns]
        if missing:
            raise InputDataError(
                f"{name} segments lack column(s) {missing}; they have {frame.columns}"
            )
    left = df_prev.select(
        F.col(id_col).alias("_id"), F.col(prev_seg).cast("long").alias("previous")
    )
    right = df_curr.select(
        F.col(id_col).alias("_id"), F.col(curr_seg).cast("long").alias("current")
    )
    return (
        left.join(right, on="_id", how="inner")
        .groupBy("previous", "current")
        .agg(F.count(F.lit(1)).alias("customers"))
        .orderBy("previous", "current")
    )
