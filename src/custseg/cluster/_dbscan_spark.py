"""Distributed exact DBSCAN with the Spark DataFrame API (the large path of ``SparkDBSCAN``).

The result is scikit-learn's: core points and noise identical, core points
partitioned into the same clusters (numbered like scikit-learn, by each
cluster's first core point in the DataFrame's row order), each border point
in a cluster that has a core point within ``eps`` of it.

How it runs (only mapInPandas / applyInPandas, joins and aggregations):

1. Partitioning. A bounded sample of the features (the only rows that reach
   the driver) chooses k-d style splits: each split cuts at the quantile that
   keeps the leaf counts balanced, on the dimension where the fewest sample
   points lie within ``eps`` of the cut (the split that costs the smallest
   halo). Leaves are boxes that tile the space; each row belongs to exactly
   one. Balanced counts keep a dense blob from piling onto one task. About
   ``partitionRows`` rows per box, unless the sample shows that the eps halos
   of boxes that small would copy most rows many times (dense data): then a
   coarser split that copies fewer rows is used when it is quicker for the
   session's task slots, within ``maxBoxGrowth`` of the finest split's fullest
   box (``choose_partitioner``).
2. Core points. Each row is sent to its own box and, as a halo copy, to every
   other box within ``eps`` of it. Per box, a k-d tree k-NN query (k =
   min_samples, bounded at eps) over owned + halo rows decides which owned
   rows are core: the box grown by eps holds every neighbour of its rows.
   Each box has its own task (``partition_keys``), so no task idles while
   another holds two boxes.
3. Local clusters and borders, in the same job. Core points go out again with
   their halo copies, non-core rows to their own box only. Per box, the
   connected components of the core points' eps-graph come from each row's
   few nearest cores (fragments) plus one bounded query per row and nearby
   fragment to join fragments (``local_clusters``): memory and time follow
   the rows, never the full neighbour lists, which hold thousands of rows
   each in a dense blob. Each non-core row takes the local cluster of its
   nearest core within eps (the box holds every core within eps of it), or
   stays noise. The result is checkpointed once (executors' disk).
4. Merge. A core point that is a halo copy in one box and owned by another
   links the two local clusters. The distinct links and the list of local
   clusters are small (clusters, not customers): they are collected and
   joined on the driver with a connected-components pass (a union-find).
5. Labels. Every training row's label is then a lookup of its local cluster
   (a map over the checkpoint, no further query): the fitted model exposes
   them as ``summary.predictions``, and ``transform`` of the training
   DataFrame returns them instead of recomputing. The rows are numbered once
   and kept (disk), so the numbering cannot change between the steps.

Exact comparisons at eps: distances within a relative 1e-9 of eps are
settled with the squared distance summed dimension by dimension against
eps * eps, the comparison scikit-learn's trees make.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from custseg.errors import ParameterError

from ._dbscan_kernels import (
    APPROX,
    LEAF_SIZE,
    QUERY_CHUNK,
    TIE_BAND,
    core_flags,
    local_clusters,
    nearest_core,
)
from ._neighbours import inverse, spatial_order

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# Rows collected to the driver to choose the splits: about this many per leaf, within bounds.
SAMPLE_ROWS_PER_LEAF = 1_000
MIN_SAMPLE_ROWS = 10_000
MAX_SAMPLE_ROWS = 200_000
# Rows x boxes x dimensions per chunk when counting the sample's halo copies (~64 MB of doubles).
LOAD_CHUNK_CELLS = 8_000_000
# Candidate cover radii of a thinned model (eps * 2**(-j/4)).
THIN_BINS = 25
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


def _feature_fields(d: int) -> str:
    return ", ".join(f"{name} double" for name in feature_names(d))


def routed_schema(d: int) -> str:
    return f"id long, {PART} int, halo boolean, {_feature_fields(d)}"


def routed_core_schema(d: int) -> str:
    return f"{routed_schema(d)}, is_core boolean"


def clustered_schema(d: int) -> str:
    return (
        f"id long, {PART} int, halo boolean, is_core boolean, local int, {_feature_fields(d)}, "
        "dist double"
    )


def flat_features(df: DataFrame, d: int) -> DataFrame:
    """``df`` with its array column ``f`` replaced by the columns x0..x{d-1}."""
    from pyspark.sql import functions as F

    others = [F.col(c) for c in df.columns if c != "f"]
    return df.select(*others, *[F.col("f")[j].alias(x) for j, x in enumerate(feature_names(d))])


def _features(frame: pd.DataFrame, d: int) -> np.ndarray:
    """The (rows, d) float64 matrix of a frame's x0..x{d-1} columns."""
    return frame[feature_names(d)].to_numpy(dtype=np.float64)


# -- partitioning (driver side, numpy) ---------------------------------------------------------
@dataclass(frozen=True)
class BoxPartitioner:
    """Leaf boxes ``[lower, upper)`` of k-d splits; together they tile the whole space."""

    lower: np.ndarray  # (n_leaves, d), -inf on the outer sides
    upper: np.ndarray  # (n_leaves, d), +inf on the outer sides

    @property
    def n_leaves(self) -> int:
        return int(self.lower.shape[0])

    def route(self, X: np.ndarray) -> np.ndarray:
        """Leaf of each row (the one box that holds it)."""
        inside = np.all(
            (X[:, None, :] >= self.lower[None]) & (X[:, None, :] < self.upper[None]), axis=2
        )
        return np.argmax(inside, axis=1).astype(np.int32)

    def near_leaves(self, X: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
        """(row, leaf) pairs of every leaf within eps of the row (its own leaf included).

        The reach is eps widened by the tie band, so a point exactly eps away from
        a row is never missed by rounding; an extra copy only costs a little work.
        """
        gap = np.maximum(
            np.maximum(self.lower[None] - X[:, None, :], X[:, None, :] - self.upper[None]), 0.0
        )
        reach = eps * (1.0 + 4 * TIE_BAND)
        near = np.einsum("nld,nld->nl", gap, gap) <= reach * reach
        rows, leaves = np.nonzero(near)
        return rows, leaves.astype(np.int32)


def build_partitioner(sample: np.ndarray, n_leaves: int, eps: float) -> BoxPartitioner:
    """k-d splits of ``sample`` into ``n_leaves`` boxes of balanced counts.

    Each node cuts at the quantile that splits its leaves in two halves (halfway
    between the two sample values there, so a gap between clusters stays free of
    halo copies), on the dimension with the fewest sample points within eps of
    the cut (the smallest halo); ties go to the widest dimension. A node whose
    points are all equal stays one box.
    """
    d = sample.shape[1]
    lowers: list[np.ndarray] = []
    uppers: list[np.ndarray] = []

    def split(idx: np.ndarray, leaves: int, lower: np.ndarray, upper: np.ndarray) -> None:
        if leaves <= 1 or idx.size < 2:
            lowers.append(lower)
            uppers.append(upper)
            return
        left_leaves = leaves // 2
        best: tuple[float, float, int, float] | None = None
        for dim in range(d):
            values = np.sort(sample[idx, dim])
            at = min(values.size - 1, round(values.size * left_leaves / leaves))
            cut = values[at]
            if cut <= values[0]:  # duplicates at the bottom: cut above them
                above = values[values > values[0]]
                if above.size == 0:
                    continue
                cut = above[0]
            else:  # halfway into the gap below the quantile: a gap between clusters stays empty
                cut = 0.5 * (values[at - 1] + cut) if values[at - 1] < cut else cut
            halo = float(np.count_nonzero(np.abs(values - cut) <= eps))
            key = (halo, -float(values[-1] - values[0]), dim, float(cut))
            if best is None or key < best:
                best = key
        if best is None:  # every point identical: no cut separates them
            lowers.append(lower)
            uppers.append(upper)
            return
        dim, cut = best[2], best[3]
        goes_left = sample[idx, dim] < cut
        left_upper, right_lower = upper.copy(), lower.copy()
        left_upper[dim] = cut
        right_lower[dim] = cut
        split(idx[goes_left], left_leaves, lower, left_upper)
        split(idx[~goes_left], leaves - left_leaves, right_lower, upper)

    split(np.arange(sample.shape[0]), max(1, n_leaves), np.full(d, -np.inf), np.full(d, np.inf))
    return BoxPartitioner(np.vstack(lowers), np.vstack(uppers))


def box_loads(partitioner: BoxPartitioner, sample: np.ndarray, eps: float) -> np.ndarray:
    """Sample rows each box holds, its own plus its halo copies (in chunks: bounded memory)."""
    loads = np.zeros(partitioner.n_leaves, dtype=np.int64)
    chunk = max(1, LOAD_CHUNK_CELLS // (partitioner.n_leaves * sample.shape[1]))
    for start in range(0, sample.shape[0], chunk):
        _, leaves = partitioner.near_leaves(sample[start : start + chunk], eps)
        loads += np.bincount(leaves, minlength=partitioner.n_leaves)
    return loads


def choose_partitioner(
    sample: np.ndarray, n_leaves: int, eps: float, max_box_growth: float, slots: int | None
) -> BoxPartitioner:
    """The split into ``n_leaves`` boxes, or a coarser one when halos make it faster.

    Where eps is wide against the boxes (dense data: ten times the rows in the
    same space make the boxes thinner, not eps), every row is copied into many
    boxes, and the work grows with the copies rather than the rows. The finest
    split and its halvings (half, a quarter, ... the boxes) are measured on the
    sample: rows per box, own plus halo copies. Each box is one task, so with
    ``slots`` tasks running at once a split takes about
    ``max(fullest box, all rows / slots)``; the quickest split is used, provided
    its fullest box (a task's memory) holds at most ``max_box_growth`` times
    what the finest split's fullest box holds. ``slots`` None (not known) counts
    as one slot per box of the finest split, which keeps the finest split unless
    a coarser one is as quick. ``max_box_growth`` 1 always uses the finest split.
    """
    finest = build_partitioner(sample, n_leaves, eps)
    if max_box_growth <= 1.0 or finest.n_leaves <= 1:
        return finest
    width = max(1, slots if slots is not None else finest.n_leaves)

    def duration(loads: np.ndarray) -> float:
        return max(float(loads.max()), float(loads.sum()) / width)

    loads = box_loads(finest, sample, eps)
    budget = max_box_growth * float(loads.max())
    best, best_duration = finest, duration(loads)
    leaves = n_leaves // 2
    while leaves >= 1:
        candidate = build_partitioner(sample, leaves, eps)
        loads = box_loads(candidate, sample, eps)
        if float(loads.max()) <= budget and duration(loads) < best_duration:
            best, best_duration = candidate, duration(loads)
        leaves //= 2
    return best


def task_slots(spark: Any) -> int | None:
    """How many tasks the session runs at once, where its master says so.

    ``local[N]`` -> N, ``local`` -> 1, ``local[*]`` -> this machine's cores (the
    driver's: right unless a Spark Connect server runs elsewhere),
    ``local-cluster[W,C,M]`` -> W x C; otherwise ``spark.default.parallelism`` when
    set, else None (a cluster that does not say).
    """
    import os
    import re

    def conf(key: str) -> str | None:
        try:
            return cast("str | None", spark.conf.get(key, None))
        except Exception:  # noqa: BLE001 - an engine that hides its configuration
            return None

    master = (conf("spark.master") or "").strip()
    if master == "local":
        return 1
    if local := re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]", master):
        return (os.cpu_count() or 1) if local.group(1) == "*" else int(local.group(1))
    if cluster := re.fullmatch(r"local-cluster\[(\d+),\s*(\d+),\s*\d+\]", master):
        return int(cluster.group(1)) * int(cluster.group(2))
    parallelism = conf("spark.default.parallelism")
    return int(parallelism) if parallelism and parallelism.isdigit() else None


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
    """For each ``query`` row of X, the distance to some near ``sampled`` row (inf: none found within eps).

    An approximate nearest-neighbour query: the distance it returns is a true
    distance to a sampled row, so it bounds the distance to the nearest one,
    which is all a cover radius needs.
    """
    from scipy.spatial import cKDTree

    out = np.full(int(query.sum()), np.inf)
    if not sampled.any() or not out.size:
        return out
    tree = cKDTree(X[sampled], leafsize=LEAF_SIZE)
    rows = X[query]
    order = spatial_order(rows)  # see _neighbours
    rows = rows[order]
    for start in range(0, rows.shape[0], QUERY_CHUNK):
        out[start : start + QUERY_CHUNK] = tree.query(
            rows[start : start + QUERY_CHUNK], k=1, eps=APPROX, distance_upper_bound=eps
        )[0]
    return out[inverse(order)]


def cover_bins(eps: float) -> np.ndarray:
    """Candidate cover radii for a thinned model, largest first: eps * 2**(-j/4), j = 0..24."""
    return eps * 2.0 ** (-np.arange(THIN_BINS) / 4.0)


def _matrix(column: pd.Series, d: int) -> np.ndarray:
    if len(column) == 0:
        return np.empty((0, d))
    return np.vstack(column.to_numpy()).astype(np.float64, copy=False)


def spark_hash_int(values: np.ndarray) -> np.ndarray:
    """Spark's ``hash()`` of int values (Murmur3 x86_32, seed 42), as HashPartitioning uses it."""
    mask = np.uint64(0xFFFFFFFF)
    v = values.astype(np.uint64) & mask

    def rotl(x: np.ndarray, r: int) -> np.ndarray:
        return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & mask

    k = (v * np.uint64(0xCC9E2D51)) & mask
    k = (rotl(k, 15) * np.uint64(0x1B873593)) & mask
    h = np.uint64(42) ^ k
    h = (rotl(h, 13) * np.uint64(5) + np.uint64(0xE6546B64)) & mask
    h ^= np.uint64(4)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & mask
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & mask
    h ^= h >> np.uint64(16)
    return h.astype(np.int64) - (h >= np.uint64(2**31)).astype(np.int64) * 2**32


def partition_keys(n_parts: int) -> np.ndarray:
    """One int key per box such that ``repartition(n_parts, key)`` puts each box in its own task.

    Hash partitioning of the box numbers 0..n-1 would put several boxes in one
    task and leave others idle; these keys hash to distinct partitions.
    """
    keys = np.full(n_parts, -1, dtype=np.int64)
    start = 0
    while (keys < 0).any():
        candidates = np.arange(start, start + 4 * n_parts + 64, dtype=np.int64)
        buckets = np.mod(spark_hash_int(candidates), n_parts)
        for key, bucket in zip(candidates.tolist(), buckets.tolist(), strict=True):
            if keys[bucket] < 0:
                keys[bucket] = key
        start += candidates.size
    return keys


# -- the distributed fit --------------------------------------------------------------------
@dataclass
class DistributedFit:
    """What the large fit leaves behind for the model."""

    components: np.ndarray  # kept core points (all of them, or a thinned set of them)
    core_labels: np.ndarray
    n_clusters: int
    n_core: int
    cover: float  # 0.0: every core point kept; else the largest distance of a core to a kept one
    partitioner: BoxPartitioner
    keys: np.ndarray  # the PART value of each box
    labels: DataFrame  # (ROW_ID, prediction int, is_core boolean): every training row
    indexed: DataFrame  # the training rows with ROW_ID (persisted)
    labelled_cores: DataFrame | None  # (part, x0.., label) owned + halo cores, when not all kept

    def predictions(self, columns: list[str], prediction_col: str, is_core_col: str) -> DataFrame:
        """The training rows (``columns``) with their DBSCAN labels: no recomputation."""
        from pyspark.sql import functions as F

        keep = [c for c in columns if c not in (prediction_col, is_core_col)]
        labels = self.labels.select(
            ROW_ID,
            F.col("prediction").alias(prediction_col),
            F.col("is_core").alias(is_core_col),
        )
        joined = self.indexed.join(labels, on=ROW_ID, how="left")
        return joined.select(*[F.col(f"`{c}`") for c in keep], prediction_col, is_core_col)


def fit_distributed(
    dataset: DataFrame,
    features: Column,
    *,
    eps: float,
    min_samples: int,
    n_rows: int,
    features_col: str,
    partition_rows: int,
    max_box_growth: float,
    max_model_points: int,
    seed: int = 0,
) -> DistributedFit:
    """Exact DBSCAN of ``features`` (array<double>) on Spark; see the module docstring."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    # Row ids must not change between the steps: the rows are numbered once and kept.
    indexed = (
        dataset.withColumn(FEATURES, features)
        .withColumn(ROW_ID, F.monotonically_increasing_id())
        .persist(StorageLevel.DISK_ONLY)
    )
    points = indexed.select(F.col(ROW_ID).alias("id"), F.col(FEATURES).alias("f"))
    try:
        d = _check_features(points, n_rows, features_col)  # also fills the persisted rows
    except Exception:
        indexed.unpersist()
        raise
    n_leaves = max(1, math.ceil(n_rows / partition_rows))
    sample = _sample(points, n_rows, n_leaves, seed, d)
    slots = task_slots(dataset.sparkSession)
    partitioner = choose_partitioner(sample, n_leaves, eps, max_box_growth, slots)
    n_parts = partitioner.n_leaves
    keys = partition_keys(n_parts)
    thin_rate = 0.0 if n_rows <= max_model_points else max_model_points / (2.0 * n_rows)

    # 1. core points: every row with its halo copies, one bounded k-NN pass per box.
    routed = flat_features(points, d).mapInPandas(
        _router(partitioner, keys, eps, d), routed_schema(d)
    )
    # 2. local clusters: core points again with their halo copies, non-core rows in their box only.
    routed_cores = (
        routed.repartition(n_parts, PART)
        .groupBy(PART)
        .applyInPandas(_core_kernel(partitioner, keys, eps, min_samples, d), routed_core_schema(d))
    )
    clustered = _materialise(
        routed_cores.repartition(n_parts, PART)
        .groupBy(PART)
        .applyInPandas(_cluster_kernel(eps, d, thin_rate), clustered_schema(d))
    )

    # 3. merge: local clusters (small) and the links between them, joined on the driver.
    cores = clustered.filter("is_core")
    nodes, links = _clusters_and_links(cores)
    node_label = _merge(nodes, links)
    n_core = int(nodes["owned"].sum())
    n_clusters = int(node_label.max()) + 1 if node_label.size else 0
    node_keys = nodes["node"].to_numpy(dtype=np.int64)
    labeller = _labeller(node_keys, node_label)

    # 4. every training row's label, kept for the model's summary (no second pass).
    owned = clustered.filter(~F.col("halo"))
    labels = owned.select("id", PART, "local", "is_core").mapInPandas(
        labeller, "id long, prediction int, is_core boolean"
    )
    labels = labels.withColumnRenamed("id", ROW_ID)

    names = feature_names(d)
    labelled = cores.select("id", PART, "local", "halo", *names, "dist").mapInPandas(
        labeller,
        f"id long, {PART} int, halo boolean, {_feature_fields(d)}, dist double, label int",
    )
    kept_cover, kept = 0.0, labelled.filter(~F.col("halo"))
    if n_core > max_model_points:
        kept_cover, keep = _thin(cores.filter(~F.col("halo")), eps, max_model_points)
        kept = kept.filter(keep)
    # Bounded by max_model_points; sorted here, not by a Spark sort (one job less).
    rows = _to_pandas(kept.select("id", *names, "label").limit(max_model_points))
    rows = rows.sort_values("id", kind="stable").reset_index(drop=True)
    return DistributedFit(
        components=_features(rows, d),
        core_labels=rows["label"].to_numpy(dtype=np.int64),
        n_clusters=n_clusters,
        n_core=n_core,
        cover=kept_cover,
        partitioner=partitioner,
        keys=keys,
        labels=labels,
        indexed=indexed,
        labelled_cores=(
            labelled.select(PART, *names, "label") if n_core > max_model_points else None
        ),
    )


def assign_exact(
    dataset: DataFrame,
    features: Column,
    fit: DistributedFit,
    eps: float,
    prediction_col: str,
    is_core_col: str,
) -> DataFrame:
    """Add (prediction, is_core) from the nearest core point within eps, distributed.

    Each distinct feature vector goes to its box and meets the box's core points
    (owned and halo); the result is joined back on the features, so any column
    type passes through untouched. Rows with null or non-finite features get nulls.
    """
    from pyspark.sql import functions as F

    if fit.labelled_cores is None:
        raise ParameterError("assign_exact needs the labelled core points of a distributed fit")
    d = int(fit.components.shape[1])
    key = f"__custseg_f_{PART}"
    keyed = dataset.withColumn(key, features)
    distinct = keyed.select(F.col(key).alias("f")).distinct()
    finite = F.forall("f", lambda x: ~F.isnan(x) & (F.abs(x) != float("inf")))
    usable = distinct.filter(F.col("f").isNotNull() & (F.size("f") == d) & finite)
    names = feature_names(d)
    routed = flat_features(
        usable.withColumn("id", F.lit(0).cast("long")).select("id", "f"), d
    ).mapInPandas(_router(fit.partitioner, fit.keys, eps, d, halo="none"), routed_schema(d))
    schema = f"{_feature_fields(d)}, prediction int, is_core boolean"
    scored = (
        routed.select(PART, *names)
        .groupBy(PART)
        .cogroup(fit.labelled_cores.groupBy(PART))
        .applyInPandas(_assign_kernel(eps, d), schema)
    )
    # the same doubles as the row's own vector: the join finds it again
    scored = scored.select(
        F.array(*names).alias(key),
        F.col("prediction").alias(prediction_col),
        F.col("is_core").alias(is_core_col),
    )
    return keyed.join(scored, on=key, how="left").drop(key)


# -- driver-side steps ----------------------------------------------------------------------
def _to_pandas(df: DataFrame) -> pd.DataFrame:
    """Collect a small result (never per-customer data: samples, clusters, links, kept cores)."""
    return cast(pd.DataFrame, df.toPandas())


def _check_features(points: DataFrame, n_rows: int, name: str) -> int:
    """Refuse nulls, NaN / infinity and ragged vectors, as the driver path does; return d."""
    from pyspark.sql import functions as F

    bad_value = F.exists("f", lambda x: x.isNull() | F.isnan(x) | (F.abs(x) == float("inf")))
    stats = points.agg(
        F.count_if(F.col("f").isNull()).alias("nulls"),
        F.min(F.size("f")).alias("shortest"),
        F.max(F.size("f")).alias("longest"),
        F.count_if(bad_value).alias("bad"),
    ).first()
    assert stats is not None
    if stats["nulls"]:
        raise ParameterError(
            f"featuresCol {name!r} is null in {stats['nulls']} of {n_rows} rows; "
            "impute or drop them before clustering"
        )
    if stats["shortest"] != stats["longest"]:
        raise ParameterError(
            f"featuresCol {name!r} holds vectors of different lengths ({stats['shortest']} to {stats['longest']})"
        )
    if stats["shortest"] < 1:
        raise ParameterError(f"featuresCol {name!r} holds empty vectors (no features)")
    if stats["bad"]:
        raise ParameterError(
            f"featuresCol {name!r} holds NaN or infinite values in {stats['bad']} of {n_rows} rows; "
            "impute or drop them before clustering"
        )
    return int(stats["shortest"])


def _sample(points: DataFrame, n_rows: int, n_leaves: int, seed: int, d: int) -> np.ndarray:
    """A bounded random sample of the features: the only rows the driver sees."""
    target = min(n_rows, MAX_SAMPLE_ROWS, max(MIN_SAMPLE_ROWS, SAMPLE_ROWS_PER_LEAF * n_leaves))
    fraction = min(1.0, 1.2 * target / n_rows)
    rows = _to_pandas(points.select("f").sample(fraction=fraction, seed=seed).limit(target))
    if len(rows) == 0:  # a tiny, unlucky sample: fall back to the first rows
        rows = _to_pandas(points.select("f").limit(target))
    return _matrix(rows["f"], d)


def _materialise(df: DataFrame) -> DataFrame:
    """Compute once and keep (executors' disk): later steps read it several times.

    The kernels are deterministic, so where checkpoints are unavailable
    (some serverless engines) the plan is simply recomputed.
    """
    from pyspark import StorageLevel

    try:
        return df.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
    except Exception:  # noqa: BLE001 - an engine without local checkpoints
        return df


def _clusters_and_links(clustered: DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The local clusters (node, first core id, owned cores) and the distinct links (a, b).

    A core point present in several boxes (owned in one, halo in others) links
    its local clusters there. Both tables come back in one job.
    """
    from pyspark.sql import functions as F

    node = (F.col(PART).cast("long") * NODE_SHIFT + F.col("local")).alias("node")
    nodes = clustered.groupBy(node).agg(
        F.min("id").alias("first_id"), F.count_if(~F.col("halo")).alias("owned")
    )
    links = (
        clustered.groupBy("id")
        .agg(F.collect_set(node).alias("nodes"))
        .filter(F.size("nodes") > 1)
        .select(F.array_min("nodes").alias("a"), F.explode("nodes").alias("b"))
        .filter(F.col("a") != F.col("b"))
        .distinct()
    )
    both = _to_pandas(
        nodes.select(
            F.lit(True).alias("is_node"),
            "node",
            "first_id",
            "owned",
            F.lit(None).cast("long").alias("a"),
            F.lit(None).cast("long").alias("b"),
        ).unionByName(
            links.select(
                F.lit(False).alias("is_node"),
                F.lit(None).cast("long").alias("node"),
                F.lit(None).cast("long").alias("first_id"),
                F.lit(None).cast("long").alias("owned"),
                "a",
                "b",
            )
        )
    )
    is_node = both["is_node"].to_numpy(dtype=bool)
    node_rows = (
        both.loc[is_node, ["node", "first_id", "owned"]].astype(np.int64).reset_index(drop=True)
    )
    link_rows = both.loc[~is_node, ["a", "b"]].astype(np.int64).reset_index(drop=True)
    return node_rows, link_rows


def _merge(nodes: pd.DataFrame, links: pd.DataFrame) -> np.ndarray:
    """Global cluster of each local cluster (row of ``nodes``), numbered by first core id."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys = nodes["node"].to_numpy(dtype=np.int64)
    order = np.argsort(keys)
    keys_sorted = keys[order]
    n = keys.size
    if n == 0:
        return np.empty(0, dtype=np.int64)
    a = order[np.searchsorted(keys_sorted, links["a"].to_numpy(dtype=np.int64))]
    b = order[np.searchsorted(keys_sorted, links["b"].to_numpy(dtype=np.int64))]
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)
    first = np.full(n_comp, np.iinfo(np.int64).max)
    np.minimum.at(first, comp, nodes["first_id"].to_numpy(dtype=np.int64))
    rank = np.empty(n_comp, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n_comp)
    return rank[comp]


def _thin(owned_cores: DataFrame, eps: float, max_points: int) -> tuple[float, Column]:
    """(cover, condition): which core points a thinned model keeps, at most ``max_points``.

    Kept: a hashed sample of the core points (each box knows every sampled core
    within reach, its own and its halo's) plus every core point farther than the
    cover from all of them. The cover is the smallest radius of ``cover_bins`` that
    keeps the total within budget (one small aggregation); inf if none does, and
    then only the sample is kept.
    """
    from pyspark.sql import functions as F

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


# -- the functions Spark runs (closures over small numpy state) --------------------------------
def _router(
    partitioner: BoxPartitioner, keys: np.ndarray, eps: float, d: int, halo: str = "all"
) -> Any:
    """mapInPandas: each row to its own box and, for halo "all" (or "cores" and a core row),
    to every other box within eps; PART holds the box's key (see ``partition_keys``)."""

    def route(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if len(batch) == 0:
                continue
            X = _features(batch, d)
            own = partitioner.route(X)
            if halo == "none":
                out = {"id": batch["id"].to_numpy(), PART: keys[own].astype(np.int32)}
                out["halo"] = np.zeros(len(batch), dtype=bool)
                out.update({name: X[:, j] for j, name in enumerate(feature_names(d))})
                yield pd.DataFrame(out)
                continue
            rows, leaves = partitioner.near_leaves(X, eps)
            copy = leaves != own[rows]
            if halo == "cores":
                core = batch["is_core"].to_numpy(dtype=bool)
                keep = ~copy | core[rows]
                rows, leaves, copy = rows[keep], leaves[keep], copy[keep]
            out = {
                "id": batch["id"].to_numpy()[rows],
                PART: keys[leaves].astype(np.int32),
                "halo": copy,
            }
            out.update({name: X[rows, j] for j, name in enumerate(feature_names(d))})
            if halo == "cores":
                out["is_core"] = core[rows]
            yield pd.DataFrame(out)

    return route


def _core_kernel(
    partitioner: BoxPartitioner, keys: np.ndarray, eps: float, min_samples: int, d: int
) -> Any:
    """applyInPandas: the core flags of the box's owned rows, and those rows routed on for
    the next step (a core row to its own box and every box within eps, any other row to its
    own box only). Routing here, not in a separate mapInPandas, keeps one Python worker per
    task."""
    router = _router(partitioner, keys, eps, d, halo="cores")

    def kernel(group: pd.DataFrame) -> pd.DataFrame:
        owned = ~group["halo"].to_numpy(dtype=bool)
        flags = core_flags(_features(group, d), owned, eps, min_samples)
        out = group.loc[owned, ["id", *feature_names(d)]].reset_index(drop=True)
        out["is_core"] = flags
        routed = list(router(iter([out])))
        if not routed:  # only halo rows here
            return pd.DataFrame(columns=["id", PART, "halo", *feature_names(d), "is_core"])
        return routed[0]

    return kernel


def _cluster_kernel(eps: float, d: int, thin_rate: float) -> Any:
    """Local clusters of the box's core points (owned + halo); each owned non-core row gets
    the local cluster of its nearest core within eps (-1: none, noise)."""

    def kernel(group: pd.DataFrame) -> pd.DataFrame:
        # Sorted by id: the local numbering must not depend on the rows' arrival order.
        group = group.sort_values("id", kind="stable").reset_index(drop=True)
        X = _features(group, d)
        core = group["is_core"].to_numpy(dtype=bool)
        local = np.full(len(group), -1, dtype=np.int64)
        local[core] = local_clusters(X[core], eps)
        other = np.flatnonzero(~core)
        if other.size:
            local[other] = nearest_core(X[other], X[core], local[core], eps)[0]
        dist = np.full(len(group), np.nan)
        if thin_rate > 0.0:
            ids = group["id"].to_numpy(dtype=np.int64)
            sampled = core & (thinning_hash(ids) < thin_rate)
            query = core & ~group["halo"].to_numpy(dtype=bool)
            dist[query] = distance_to_sampled(X, sampled, query, eps)
            dist[sampled] = 0.0
        out = group[["id", PART, "halo", "is_core"]].copy()
        out["local"] = local.astype(np.int32)
        for j, name in enumerate(feature_names(d)):  # every row keeps them; only cores are read
            out[name] = X[:, j]
        out["dist"] = dist
        return out

    return kernel


def _labeller(keys: np.ndarray, labels: np.ndarray) -> Any:
    """mapInPandas: (PART, local) -> global cluster ``label`` / ``prediction`` (-1 stays noise)."""
    order = np.argsort(keys)
    sorted_keys, sorted_labels = keys[order], labels[order]

    def label(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            local = batch["local"].to_numpy(dtype=np.int64)
            node = batch[PART].to_numpy(dtype=np.int64) * NODE_SHIFT + local
            found = np.full(len(batch), -1, dtype=np.int64)
            hit = local >= 0
            if hit.any() and sorted_keys.size:
                found[hit] = sorted_labels[np.searchsorted(sorted_keys, node[hit])]
            if "dist" in batch.columns:  # labelled core points, their features passed through
                out = batch.drop(columns=["local"])
                out["label"] = found.astype(np.int32)
            else:  # every owned row: its prediction
                out = pd.DataFrame(
                    {
                        "id": batch["id"].to_numpy(),
                        "prediction": found.astype(np.int32),
                        "is_core": batch["is_core"].to_numpy(dtype=bool),
                    }
                )
            yield out

    return label


def _assign_kernel(eps: float, d: int) -> Any:
    def kernel(rows: pd.DataFrame, cores: pd.DataFrame) -> pd.DataFrame:
        X = _features(rows, d)
        labels, is_core = nearest_core(
            X, _features(cores, d), cores["label"].to_numpy(dtype=np.int64), eps
        )
        out = rows[feature_names(d)].reset_index(drop=True)
        out["prediction"] = labels.astype(np.int32)
        out["is_core"] = is_core
        return out

    return kernel
