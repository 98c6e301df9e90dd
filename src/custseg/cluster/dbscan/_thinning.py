"""Which core points a large distributed DBSCAN model keeps (at most ``maxModelPoints``).

A hashed sample of the core points plus every core point farther than a cover radius
from all of them; the smallest radius that fits the budget is chosen in one
aggregation. Every kept point is a true core point.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import functions as F
from scipy.spatial import cKDTree

from .._common.neighbours import inverse, spatial_order
from ._kernels import APPROX, LEAF_SIZE, QUERY_CHUNK

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


# Candidate cover radii of a thinned model (eps * 2**(-j/4)).
THIN_BINS = 25


def thinning_hash(ids: np.ndarray) -> np.ndarray:
    """A deterministic uniform value in [0, 1) per row id (the same in every box)."""
    mixed = (ids.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    mixed ^= mixed >> np.uint64(29)
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(32)
    return (mixed >> np.uint64(11)).astype(np.float64) / float(2**53)


def distance_to_sampled(
    X: np.ndarray, sampled: np.ndarray, query: np.ndarray, eps: float
) -> np.ndarray:
    """For each ``query`` row of X, the distance to some near ``sampled`` row (inf: none found
    within eps).

    An approximate nearest-neighbour query: the distance it returns is a true
    distance to a sampled row, so it bounds the distance to the nearest one,
    which is all a cover radius needs.
    """

    out = np.full(int(query.sum()), np.inf)
    if not sampled.any() or not out.size:
        return out
    tree = cKDTree(X[sampled], leafsize=LEAF_SIZE)
    rows = X[query]
    order = spatial_order(rows)  # see _common.neighbours
    rows = rows[order]
    for start in range(0, rows.shape[0], QUERY_CHUNK):
        out[start : start + QUERY_CHUNK] = tree.query(
            rows[start : start + QUERY_CHUNK], k=1, eps=APPROX, distance_upper_bound=eps
        )[0]
    return out[inverse(order)]


def cover_bins(eps: float) -> np.ndarray:
    """Candidate cover radii for a thinned model, largest first: eps * 2**(-j/4), j = 0..24."""
    return eps * 2.0 ** (-np.arange(THIN_BINS) / 4.0)


def choose_thinning(owned_cores: DataFrame, eps: float, max_points: int) -> tuple[float, Column]:
    """(cover, condition): which core points a thinned model keeps, at most ``max_points``.

    Kept: a hashed sample of the core points (each box knows every sampled core
    within reach, its own and its halo's) plus every core point farther than the
    cover from all of them. The cover is the smallest radius of ``cover_bins`` that
    keeps the total within budget (one small aggregation); inf if none does, and
    then only the sample is kept.
    """

    bins = cover_bins(eps)
    stats = owned_cores.agg(
        F.count_if(F.col("dist") == 0.0).alias("sampled"),
        *[F.count_if(F.col("dist") > float(b)).alias(f"over{j}") for j, b in enumerate(bins)],
    ).first()
    assert stats is not None
    sampled = int(stats["sampled"])
    for j in range(bins.size - 1, -1, -1):
        if sampled + int(stats[f"over{j}"]) <= max_points:
            cover = float(bins[j])
            return cover, (F.col("dist") == 0.0) | (F.col("dist") > cover)
    return math.inf, F.col("dist") == 0.0
