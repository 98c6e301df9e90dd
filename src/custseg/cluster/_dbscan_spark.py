"""Distributed exact DBSCAN with the Spark DataFrame API (the large path of ``SparkDBSCAN``).

The result is scikit-learn's: core points and noise identical, core points
partitioned into the same clusters (numbered like scikit-learn, by each
cluster's first core point in the DataFrame's row order), each border point
in a cluster that has a core point within ``eps`` of it.

How it runs (only mapInPandas / applyInPandas, joins, aggregations and sorts):

1. Partitioning. A bounded sample of the features (the only rows that reach
   the driver) chooses k-d style splits: each split cuts at the quantile that
   keeps the leaf counts balanced, on the dimension where the fewest sample
   points lie within ``eps`` of the cut (the split that costs the smallest
   halo). Leaves are boxes that tile the space; each row belongs to exactly
   one. Balanced counts keep a dense blob from piling onto one task. A box
   owns at most ``partitionRows`` rows; more, smaller boxes are used where the
   sample shows that they are quicker on the session's task slots
   (``choose_partitioner``). Each box has its own task (``partition_keys``).
2. Streaming boxes. A box's task holds only the rows it owns: every pass
   sorts a box's rows so its own come first, builds its k-d trees from them,
   then streams the rows of other boxes (halo copies, queries) through them in
   chunks (``stream_boxes``). Memory follows ``partitionRows``, however many
   rows the eps halo holds: at fixed eps, ten times the customers put ten
   times the neighbours within eps of a box.
3. Core points and local clusters (first pass). Each row goes to its own box
   and, as a halo copy, to every other box within ``eps``. A box counts each
   own row's neighbours among its own rows (a k-NN query, k = min_samples,
   bounded at eps); the rows still short of min_samples then get the halo's
   rows within eps added, chunk by chunk (counts below min_samples are exact,
   so they add up). The connected components of the own core points' eps-graph
   come from each row's few nearest cores (fragments) plus bounded queries
   between fragments (``local_clusters``): never the full neighbour lists,
   which hold thousands of rows each in a dense blob. Each own non-core row
   notes its nearest own core within eps. Checkpointed (executors' disk).
4. Links and borders (second pass). Each core point goes to its own box and,
   with its local cluster, to every other box within eps; a non-core row whose
   nearest own core is farther than some other box goes there as a query. A
   box finds, exactly, which of its local clusters each visiting core point
   reaches within eps (``CoreLinker``: an approximate nearest own core, then
   ball queries or dual-tree pair counts), and answers each query with its nearest own core if nearer.
5. Merge. The distinct links and the list of local clusters are small
   (clusters, not customers): they are collected and joined on the driver
   with a connected-components pass (a union-find).
6. Labels. Every training row's label is a lookup of its local cluster, or of
   its nearest core over all boxes (ties: the smaller cluster key): the fitted
   model exposes them as ``summary.predictions``, and ``transform`` of the
   training DataFrame returns them instead of recomputing. The rows are
   numbered once and kept (disk), so the numbering cannot change between the
   steps.

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
    COUNT_LEAF_SIZE,
    LEAF_SIZE,
    QUERY_CHUNK,
    TIE_BAND,
    CoreLinker,
    count_own,
    count_within,
    local_clusters,
    nearest_core,
    nearest_listed_core,
    nearest_within,
)
from ._neighbours import inverse, spatial_order
from ._spark import raise_non_finite

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# Rows collected to the driver to choose the splits: about this many per leaf, within bounds.
SAMPLE_ROWS_PER_LEAF = 1_000
MIN_SAMPLE_ROWS = 10_000
MAX_SAMPLE_ROWS = 200_000
# Rows x boxes x dimensions per chunk when finding the boxes near rows (~64 MB of doubles).
LOAD_CHUNK_CELLS = 8_000_000
# Splits finer than partitionRows asks for are measured up to this many boxes per task slot.
BOXES_PER_SLOT = 4
# Halo rows a box kernel gathers before it works on them: partitionRows, but at least this many
# (a task holds its own rows and one such chunk; fewer, larger chunks mean fewer tree queries).
MIN_CHUNK_ROWS = 262_144
# Rows per pandas frame a box kernel yields (bounds the Arrow conversion's copy).
OUTPUT_ROWS = 131_072
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


def routed_schema(d: int, extra: str = "") -> str:
    """Rows sent to boxes: ``kind`` OWN (the box owns the row) or HALO (a copy within eps)."""
    return f"id long, {PART} int, kind int, {_feature_fields(d)}{extra}"


def box_rows_schema(d: int) -> str:
    """A box's own rows after the first pass (kept on executors' disk): ``local`` is the
    row's local cluster (-1: none within eps in this box), ``near`` a non-core row's
    distance to its nearest own core (inf: none), ``shipped`` whether other boxes may hold
    a nearer core, ``dist`` the thinning distance (NaN when not thinning)."""
    return (
        f"id long, {PART} int, is_core boolean, local int, near double, shipped boolean, "
        f"dist double, {_feature_fields(d)}"
    )


def visit_schema(d: int) -> str:
    """Rows of the second pass: OWN core points (``node`` their local cluster), HALO core
    points of other boxes (``node`` their home cluster), QUERY rows (non-core rows of
    other boxes, ``bound`` their nearest core so far)."""
    return f"kind int, id long, {PART} int, node long, bound double, {_feature_fields(d)}"


# What the second pass finds: LINK (a, b) nodes of one cluster; ANSWER: row id's nearest
# core in another box is in node b, at distance dist.
FOUND_SCHEMA = "kind int, id long, a long, b long, dist double"
OWN, HALO, QUERY = 0, 1, 2
LINK, ANSWER = 1, 2


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

    def near_leaves(
        self, X: np.ndarray, radius: float | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row, leaf) pairs of every leaf within ``radius`` of the row (its own leaf included).

        ``radius`` is one number or one per row. The reach is widened by the tie
        band, so a point exactly that far from a row is never missed by rounding;
        an extra copy only costs a little work. Rows go in chunks (bounded memory).
        """
        n = X.shape[0]
        reach = np.broadcast_to(np.asarray(radius, dtype=np.float64), (n,)) * (1.0 + 4 * TIE_BAND)
        chunk = max(1, LOAD_CHUNK_CELLS // max(1, self.n_leaves * X.shape[1]))
        rows_parts, leaves_parts = [], []
        for start in range(0, n, chunk):
            block = X[start : start + chunk]
            gap = np.maximum(
                np.maximum(
                    self.lower[None] - block[:, None, :], block[:, None, :] - self.upper[None]
                ),
                0.0,
            )
            r = reach[start : start + chunk]
            near = np.einsum("nld,nld->nl", gap, gap) <= (r * r)[:, None]
            rows, leaves = np.nonzero(near)
            rows_parts.append(rows + start)
            leaves_parts.append(leaves.astype(np.int32))
        if not rows_parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
        return np.concatenate(rows_parts), np.concatenate(leaves_parts)


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
    """Sample rows each box reads, its own plus its halo copies."""
    _, leaves = partitioner.near_leaves(sample, eps)
    return np.bincount(leaves, minlength=partitioner.n_leaves).astype(np.int64)


def candidate_leaves(min_leaves: int, slots: int | None) -> list[int]:
    """Box counts worth measuring: ``min_leaves`` x 1, 2, 4, ... up to ``BOXES_PER_SLOT`` per slot."""
    counts = [min_leaves]
    if slots is not None:
        while counts[-1] * 2 <= max(min_leaves, BOXES_PER_SLOT * max(1, slots)):
            counts.append(counts[-1] * 2)
    return counts


def choose_partitioner(
    sample: np.ndarray, min_leaves: int, eps: float, slots: int | None
) -> BoxPartitioner:
    """The split into ``min_leaves`` boxes, or into more where more are quicker.

    ``min_leaves`` boxes keep each within ``partitionRows`` own rows, the rows a
    task holds (its halo only streams through it), so more boxes never cost
    memory. Each box is one task and reads its own rows and its halo copies; with
    ``slots`` tasks at once a split takes about
    ``max(fullest box, all rows / slots)``, measured on the sample. Splits of
    ``candidate_leaves`` boxes are measured and the quickest kept (ties: fewer
    boxes). More boxes let every slot work where ``min_leaves`` is below the slots;
    where eps is wide against the boxes (dense data) their halos copy more rows and
    they lose. ``slots`` None (a cluster that does not say) keeps ``min_leaves``.
    """
    width = max(1, slots or 1)
    best: BoxPartitioner | None = None
    best_duration = math.inf
    for leaves in candidate_leaves(min_leaves, slots):
        candidate = build_partitioner(sample, leaves, eps)
        if slots is None:
            return candidate
        loads = box_loads(candidate, sample, eps)
        duration = max(float(loads.max()), float(loads.sum()) / width)
        if duration < best_duration:
            best, best_duration = candidate, duration
    assert best is not None
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
        d = _check_features(
            points, n_rows, features_col, dataset, features
        )  # also fills the persisted rows
    except Exception:
        indexed.unpersist()
        raise
    slots = task_slots(dataset.sparkSession)
    min_leaves = max(1, math.ceil(n_rows / partition_rows))
    sample = _sample(points, n_rows, candidate_leaves(min_leaves, slots)[-1], seed, d)
    partitioner = choose_partitioner(sample, min_leaves, eps, slots)
    n_parts = partitioner.n_leaves
    keys = partition_keys(n_parts)
    thin_rate = 0.0 if n_rows <= max_model_points else max_model_points / (2.0 * n_rows)
    names = feature_names(d)

    # 1. per box: core flags, local clusters, own nearest cores (own rows, then the halo streamed).
    routed = flat_features(points, d).mapInPandas(
        _router(partitioner, keys, eps, d), routed_schema(d)
    )
    chunk_rows = max(MIN_CHUNK_ROWS, partition_rows)
    boxes = _materialise(
        _by_box(routed, n_parts).mapInPandas(
            _box_pass(partitioner, keys, eps, min_samples, d, thin_rate, chunk_rows),
            box_rows_schema(d),
        )
    )
    # 2. per box: links from other boxes' core points, nearest cores for their non-core rows.
    visits = boxes.mapInPandas(_visit_router(partitioner, keys, eps, d), visit_schema(d))
    found = _materialise(
        _by_box(visits, n_parts).mapInPandas(_link_pass(eps, d, chunk_rows), FOUND_SCHEMA)
    )

    # 3. merge: local clusters (small) and the links between them, joined on the driver.
    cores = boxes.filter("is_core").withColumn("node", _node())
    nodes, links = _clusters_and_links(cores, found)
    node_label = _merge(nodes, links)
    n_core = int(nodes["owned"].sum())
    n_clusters = int(node_label.max()) + 1 if node_label.size else 0
    node_keys = nodes["node"].to_numpy(dtype=np.int64)

    # 4. every training row's label, kept for the model's summary (no second pass).
    labels = _row_nodes(boxes, found).mapInPandas(
        _labeller(node_keys, node_label, "prediction"), "id long, is_core boolean, prediction int"
    )
    labels = labels.withColumnRenamed("id", ROW_ID)

    labelled = cores.select("id", "node", *names, "dist").mapInPandas(
        _labeller(node_keys, node_label, "label"),
        f"id long, {_feature_fields(d)}, dist double, label int",
    )
    kept_cover, kept = 0.0, labelled
    if n_core > max_model_points:
        kept_cover, keep = _thin(cores, eps, max_model_points)
        kept = kept.filter(keep)
    # Bounded by max_model_points; sorted here, not by a Spark sort (one job less).
    rows = _to_pandas(kept.select("id", *names, "label").limit(max_model_points))
    rows = rows.sort_values("id", kind="stable").reset_index(drop=True)
    labelled_cores = None
    if n_core > max_model_points:  # every core point with its halo copies, for exact scoring
        labelled_cores = (
            labelled.select("id", *names, "label")
            .mapInPandas(
                _router(partitioner, keys, eps, d, extra=["label"]),
                routed_schema(d, ", label int"),
            )
            .select(PART, *names, "label")
        )
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
        labelled_cores=labelled_cores,
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
    ).mapInPandas(_router(fit.partitioner, fit.keys, eps, d, halo=False), routed_schema(d))
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


def _check_features(
    points: DataFrame, n_rows: int, name: str, dataset: DataFrame, features: Column
) -> int:
    """Refuse nulls, NaN / infinity and ragged vectors, as the driver path does; return d.
    ``dataset`` and ``features`` are the caller's: its column metadata names the features."""
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
        raise_non_finite(dataset, features, name)  # names the features that hold them
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


def _node() -> Column:
    """A local cluster's key over all boxes: box key x NODE_SHIFT + local number."""
    from pyspark.sql import functions as F

    return F.col(PART).cast("long") * NODE_SHIFT + F.col("local")


def _clusters_and_links(cores: DataFrame, found: DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The local clusters (node, first core id, owned cores) and the distinct links (a, b).

    Both are small (clusters, not customers) and come back in one job.
    """
    from pyspark.sql import functions as F

    nodes = cores.groupBy("node").agg(F.min("id").alias("first_id"), F.count("*").alias("owned"))
    links = found.filter(F.col("kind") == LINK).select("a", "b").distinct()
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


def _row_nodes(boxes: DataFrame, found: DataFrame) -> DataFrame:
    """(id, is_core, node) of every row: its local cluster, or for a non-core row the
    nearest core's over all boxes (ties: the smaller node); node -1 is noise."""
    from pyspark.sql import functions as F

    own = F.when(F.col("local") >= 0, _node()).otherwise(F.lit(-1).cast("long"))
    settled = boxes.filter(~F.col("shipped")).select("id", "is_core", own.alias("node"))
    answers = (
        found.filter(F.col("kind") == ANSWER)
        .groupBy("id")
        .agg(F.min(F.struct("dist", "b")).alias("best"))
    )
    asked = boxes.filter("shipped").select("id", "is_core", "near", own.alias("own"))
    best_dist, best_node = F.col("best.dist"), F.col("best.b")
    elsewhere = best_dist.isNotNull() & (
        (best_dist < F.col("near")) | ((best_dist == F.col("near")) & (best_node < F.col("own")))
    )
    resolved = asked.join(answers, on="id", how="left").select(
        "id", "is_core", F.when(elsewhere, best_node).otherwise(F.col("own")).alias("node")
    )
    return settled.unionByName(resolved)


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
    partitioner: BoxPartitioner,
    keys: np.ndarray,
    eps: float,
    d: int,
    halo: bool = True,
    extra: list[str] | None = None,
) -> Any:
    """mapInPandas: each row to its own box (kind OWN) and, with ``halo``, to every other box
    within eps (kind HALO); PART holds the box's key (see ``partition_keys``). ``extra``
    columns pass through."""
    extra = extra or []

    def route(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if len(batch) == 0:
                continue
            X = _features(batch, d)
            own = partitioner.route(X)
            if halo:
                rows, leaves = partitioner.near_leaves(X, eps)
            else:
                rows, leaves = np.arange(len(batch)), own
            out = {
                "id": batch["id"].to_numpy()[rows],
                PART: keys[leaves].astype(np.int32),
                "kind": np.where(leaves == own[rows], OWN, HALO).astype(np.int32),
            }
            out.update({name: X[rows, j] for j, name in enumerate(feature_names(d))})
            out.update({name: batch[name].to_numpy()[rows] for name in extra})
            yield pd.DataFrame(out)

    return route


def _visit_router(partitioner: BoxPartitioner, keys: np.ndarray, eps: float, d: int) -> Any:
    """mapInPandas over the boxes' own rows: each core point to its own box (OWN) and to every
    other box within eps (HALO), each shipped non-core row to every other box that may hold
    a nearer core (QUERY: within its nearest own core's distance, at most eps)."""

    def route(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            core = batch["is_core"].to_numpy(dtype=bool)
            asked = batch["shipped"].to_numpy(dtype=bool)
            keep = core | asked
            if not keep.any():
                continue
            batch = batch[keep]
            core = core[keep]
            X = _features(batch, d)
            part = batch[PART].to_numpy(dtype=np.int64)
            own = leaves_of(keys, part)
            near = batch["near"].to_numpy(dtype=np.float64)
            rows, leaves = partitioner.near_leaves(X, np.where(core, eps, np.minimum(near, eps)))
            is_own = leaves == own[rows]
            keep_pair = np.where(core[rows], True, ~is_own)  # a query row never visits its own box
            rows, leaves, is_own = rows[keep_pair], leaves[keep_pair], is_own[keep_pair]
            kind = np.where(core[rows], np.where(is_own, OWN, HALO), QUERY).astype(np.int32)
            local = batch["local"].to_numpy(dtype=np.int64)
            out = {
                "kind": kind,
                "id": batch["id"].to_numpy()[rows],
                PART: keys[leaves].astype(np.int32),
                "node": part[rows] * NODE_SHIFT + local[rows],
                "bound": near[rows],
            }
            out.update({name: X[rows, j] for j, name in enumerate(feature_names(d))})
            yield pd.DataFrame(out)

    return route


def leaves_of(keys: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """The box (leaf) number of each PART value (``keys`` holds each box's PART key)."""
    by_key = np.argsort(keys)
    return by_key[np.searchsorted(keys[by_key], parts)].astype(np.int32)


def _by_box(df: DataFrame, n_parts: int) -> DataFrame:
    """Each box in its own task, its own rows first (kind OWN sorts first): a box kernel
    builds its structures from its own rows, then streams the rest through them."""
    return df.repartition(n_parts, PART).sortWithinPartitions(PART, "kind")


class _BoxWork:
    """One box inside a streaming pass: built from the box's own rows, then fed the other
    rows (halo copies, queries) in chunks of about ``chunk_rows``."""

    def __init__(self, chunk_rows: int) -> None:
        self._chunk_rows = chunk_rows
        self._pending: list[pd.DataFrame] = []
        self._pending_rows = 0

    def visit(self, rows: pd.DataFrame) -> Iterator[pd.DataFrame]:
        self._pending.append(rows)
        self._pending_rows += len(rows)
        if self._pending_rows >= self._chunk_rows:
            yield from self._flush()

    def close(self) -> Iterator[pd.DataFrame]:
        yield from self._flush()
        yield from self.finish()

    def _flush(self) -> Iterator[pd.DataFrame]:
        if self._pending:
            chunk = pd.concat(self._pending, ignore_index=True)
            self._pending, self._pending_rows = [], 0
            yield from self.process(chunk)

    def process(self, chunk: pd.DataFrame) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def finish(self) -> Iterator[pd.DataFrame]:
        raise NotImplementedError


def stream_boxes(batches: Iterator[pd.DataFrame], open_box: Any) -> Iterator[pd.DataFrame]:
    """Run box kernels over a partition sorted by (PART, kind) (see ``_by_box``).

    ``open_box(part, own_rows)`` builds a :class:`_BoxWork` from all of a box's
    own rows; the box's other rows then stream through it. A partition normally
    holds one box (``partition_keys``); several are handled one after another.
    """
    current: int | None = None
    done: set[int] = set()
    owned: list[pd.DataFrame] = []
    box: _BoxWork | None = None

    def opened() -> _BoxWork:
        assert current is not None
        own = pd.concat(owned, ignore_index=True) if owned else pd.DataFrame()
        owned.clear()
        return open_box(current, own)

    for batch in batches:
        if len(batch) == 0:
            continue
        part = batch[PART].to_numpy(dtype=np.int64)
        visitor = batch["kind"].to_numpy() != OWN
        change = np.flatnonzero((np.diff(part) != 0) | (np.diff(visitor.astype(np.int8)) != 0)) + 1
        for start, stop in zip([0, *change.tolist()], [*change.tolist(), len(batch)], strict=True):
            piece = batch.iloc[start:stop]
            if int(part[start]) != current:
                if current is not None:
                    yield from (box or opened()).close()
                    done.add(current)
                current, box = int(part[start]), None
                if current in done:
                    raise RuntimeError(f"box {current}: its rows arrived in two runs, not sorted")
                owned.clear()
            if not visitor[start]:
                if box is not None:
                    raise RuntimeError(f"box {current}: own rows arrived after its other rows")
                owned.append(piece)
            else:
                box = box or opened()
                yield from box.visit(piece)
    if current is not None:
        yield from (box or opened()).close()


def _box_pass(
    partitioner: BoxPartitioner,
    keys: np.ndarray,
    eps: float,
    min_samples: int,
    d: int,
    thin_rate: float,
    chunk_rows: int,
) -> Any:
    """mapInPandas over ``_by_box`` rows: each box's own rows with their core flags, local
    clusters and nearest own cores (``box_rows_schema``)."""

    class CorePass(_BoxWork):
        """Core counts from the own rows, then the halo's rows added chunk by chunk to the
        rows still short of min_samples whose eps-ball leaves the box (exact counts: they
        add up; a row farther than eps from every side of its box has no halo neighbour)."""

        def __init__(self, part: int, own: pd.DataFrame) -> None:
            super().__init__(chunk_rows)
            self.part = part
            # Sorted by id: the local numbering must not depend on the rows' arrival order.
            self.own = (
                own.sort_values("id", kind="stable").reset_index(drop=True) if len(own) else own
            )
            self.X = _features(self.own, d) if len(own) else np.empty((0, d))
            self.counts_own = count_own(self.X, eps, min_samples)
            self.counts = self.counts_own.counts.copy()
            leaf = int(leaves_of(keys, np.array([part]))[0])
            self.leaf = leaf
            inside = np.minimum(
                self.X - partitioner.lower[leaf], partitioner.upper[leaf] - self.X
            ).min(axis=1, initial=np.inf)
            edge = np.flatnonzero(
                (self.counts < min_samples) & (inside <= eps * (1.0 + 4 * TIE_BAND))
            )
            self.edge = edge[spatial_order(self.X[edge])]  # see _neighbours

        def process(self, chunk: pd.DataFrame) -> Iterator[pd.DataFrame]:
            rows = self.edge[self.counts[self.edge] < min_samples]
            if rows.size:
                from scipy.spatial import cKDTree

                halo = _features(chunk, d)
                tree = cKDTree(halo, leafsize=COUNT_LEAF_SIZE)
                self.counts[rows] += count_within(tree, halo, self.X[rows], min_samples, eps)
            return iter(())

        def finish(self) -> Iterator[pd.DataFrame]:
            n = len(self.own)
            if n == 0:
                return
            X = self.X
            core = self.counts >= min_samples
            local = np.full(n, -1, dtype=np.int64)
            local[core] = local_clusters(X[core], eps)
            near = np.zeros(n)
            other = np.flatnonzero(~core)
            shipped = np.zeros(n, dtype=bool)
            if other.size:
                nearest, dist = nearest_listed_core(X, self.counts_own, core, other, eps)
                hit = nearest >= 0
                local[other[hit]] = local[nearest[hit]]
                near[other] = dist
                rows, leaves = partitioner.near_leaves(X[other], np.minimum(dist, eps))
                elsewhere = rows[leaves != self.leaf]
                shipped[other[elsewhere]] = True
            thin = np.full(n, np.nan)
            if thin_rate > 0.0:
                ids = self.own["id"].to_numpy(dtype=np.int64)
                sampled = core & (thinning_hash(ids) < thin_rate)
                # Own sampled cores only: a true distance to a sampled core, so still a bound.
                thin[core] = distance_to_sampled(X, sampled, core, eps)
                thin[sampled] = 0.0
            for start in range(0, n, OUTPUT_ROWS):
                part = slice(start, start + OUTPUT_ROWS)
                out = {
                    "id": self.own["id"].to_numpy()[part],
                    PART: np.full(len(X[part]), self.part, dtype=np.int32),
                    "is_core": core[part],
                    "local": local[part].astype(np.int32),
                    "near": near[part],
                    "shipped": shipped[part],
                    "dist": thin[part],
                }
                out.update({name: X[part, j] for j, name in enumerate(feature_names(d))})
                yield pd.DataFrame(out)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        yield from stream_boxes(batches, CorePass)

    return run


def _link_pass(eps: float, d: int, chunk_rows: int) -> Any:
    """mapInPandas over ``_by_box`` visit rows: the links from other boxes' core points to
    each box's local clusters (``CoreLinker``), and the nearest own core of other boxes'
    non-core rows where it is nearer than theirs (``FOUND_SCHEMA``)."""

    class LinkPass(_BoxWork):
        def __init__(self, part: int, own: pd.DataFrame) -> None:
            super().__init__(chunk_rows)
            X = _features(own, d) if len(own) else np.empty((0, d))
            self.nodes = own["node"].to_numpy(dtype=np.int64) if len(own) else np.empty(0, np.int64)
            self.linker = CoreLinker(X, self.nodes, eps)
            self.a: list[np.ndarray] = []
            self.b: list[np.ndarray] = []

        def process(self, chunk: pd.DataFrame) -> Iterator[pd.DataFrame]:
            if self.linker.tree is None:
                return
            kind = chunk["kind"].to_numpy()
            halo = chunk[kind == HALO]
            if len(halo):
                a, b = self.linker.links(_features(halo, d), halo["node"].to_numpy(dtype=np.int64))
                self.a.append(a)
                self.b.append(b)
            queries = chunk[kind == QUERY]
            if len(queries):
                nearest, dist = nearest_within(
                    _features(queries, d), self.linker.cores, eps, tree=self.linker.tree
                )
                hit = (nearest >= 0) & (dist <= queries["bound"].to_numpy(dtype=np.float64))
                yield pd.DataFrame(
                    {
                        "kind": np.full(int(hit.sum()), ANSWER, dtype=np.int32),
                        "id": queries["id"].to_numpy()[hit],
                        "a": np.full(int(hit.sum()), -1, dtype=np.int64),
                        "b": self.nodes[nearest[hit]],
                        "dist": dist[hit],
                    }
                )

        def finish(self) -> Iterator[pd.DataFrame]:
            if not self.a:
                return
            pairs = np.unique(
                np.column_stack([np.concatenate(self.a), np.concatenate(self.b)]), axis=0
            )
            yield pd.DataFrame(
                {
                    "kind": np.full(len(pairs), LINK, dtype=np.int32),
                    "id": np.full(len(pairs), -1, dtype=np.int64),
                    "a": pairs[:, 0],
                    "b": pairs[:, 1],
                    "dist": np.full(len(pairs), np.nan),
                }
            )

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        yield from stream_boxes(batches, LinkPass)

    return run


def _labeller(keys: np.ndarray, labels: np.ndarray, out_col: str) -> Any:
    """mapInPandas: ``node`` (a local cluster, -1 noise) -> its global cluster in ``out_col``."""
    order = np.argsort(keys)
    sorted_keys, sorted_labels = keys[order], labels[order]

    def label(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            node = batch["node"].to_numpy(dtype=np.int64)
            found = np.full(len(batch), -1, dtype=np.int64)
            hit = node >= 0
            if hit.any() and sorted_keys.size:
                found[hit] = sorted_labels[np.searchsorted(sorted_keys, node[hit])]
            out = batch.drop(columns=["node"])
            out[out_col] = found.astype(np.int32)
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
