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
   (``_partitioning.choose_partitioner``). Each box has its own task
   (``_partitioning.partition_keys``).
2. Streaming boxes. A box's task holds only the rows it owns: every pass
   sorts a box's rows so its own come first, builds its k-d trees from them,
   then streams the rows of other boxes (halo copies, queries) through them in
   chunks (``_passes.stream_boxes``). Memory follows ``partitionRows``, however many
   rows the eps halo holds: at fixed eps, ten times the customers put ten
   times the neighbours within eps of a box.
3. Core points and local clusters (first pass). Each row goes to its own box
   and, as a halo copy, to every other box within ``eps``. A box counts each
   own row's neighbours among its own rows (a k-NN query, k = min_samples,
   bounded at eps); the rows still short of min_samples then get the halo's
   rows within eps added, chunk by chunk (counts below min_samples are exact,
   so they add up). The connected components of the own core points' eps-graph
   come from each row's few nearest cores (fragments) plus bounded queries
   between fragments (``_kernels.local_clusters``): never the full neighbour lists,
   which hold thousands of rows each in a dense blob. Each own non-core row
   notes its nearest own core within eps. Checkpointed (executors' disk).
4. Links and borders (second pass). Each core point goes to its own box and,
   with its local cluster, to every other box within eps; a non-core row whose
   nearest own core is farther than some other box goes there as a query. A
   box finds, exactly, which of its local clusters each visiting core point
   reaches within eps (``_core_linker.CoreLinker``: an approximate nearest own core, then
   ball queries or dual-tree pair counts), and answers each query with its nearest own
   core if nearer.
5. Merge. The distinct links and the list of local clusters are small
   (clusters, not customers): they are collected and joined on the driver
   with a connected-components pass (``_merging``).
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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import functions as F

from custseg.errors import ParameterError

from .._common.spark_frames import raise_non_finite
from ._frames import (
    FEATURES,
    FOUND_SCHEMA,
    PART,
    ROW_ID,
    box_rows_schema,
    feature_fields,
    feature_names,
    features_of,
    flat_features,
    matrix_of,
    routed_schema,
    to_pandas,
    visit_schema,
)
from ._merging import clusters_and_links, merge_clusters, node_key, row_nodes
from ._partitioning import (
    BoxPartitioner,
    candidate_leaves,
    choose_partitioner,
    partition_keys,
    task_slots,
)
from ._passes import assign_kernel, box_pass, by_box, labeller, link_pass, router, visit_router
from ._thinning import choose_thinning

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


# Rows collected to the driver to choose the splits: about this many per leaf, within bounds.
SAMPLE_ROWS_PER_LEAF = 1_000


MIN_SAMPLE_ROWS = 10_000


MAX_SAMPLE_ROWS = 200_000


# Halo rows a box kernel gathers before it works on them: partitionRows, but at least this many
# (a task holds its own rows and one such chunk; fewer, larger chunks mean fewer tree queries).
MIN_CHUNK_ROWS = 262_144


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

        keep = [c for c in columns if c not in (prediction_col, is_core_col)]
        labels = self.labels.select(
            ROW_ID,
            F.col("prediction").alias(prediction_col),
            F.col("is_core").alias(is_core_col),
        )
        joined = self.indexed.join(labels, on=ROW_ID, how="left")
        return joined.select(*[F.col(f"`{c}`") for c in keep], prediction_col, is_core_col)


# whole: the Spark job of the module docstring top to bottom (partitioning, then the numbered
# passes), each step feeding the next
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
        router(partitioner, keys, eps, d), routed_schema(d)
    )
    chunk_rows = max(MIN_CHUNK_ROWS, partition_rows)
    boxes = _materialise(
        by_box(routed, n_parts).mapInPandas(
            box_pass(partitioner, keys, eps, min_samples, d, thin_rate, chunk_rows),
            box_rows_schema(d),
        )
    )
    # 2. per box: links from other boxes' core points, nearest cores for their non-core rows.
    visits = boxes.mapInPandas(visit_router(partitioner, keys, eps, d), visit_schema(d))
    found = _materialise(
        by_box(visits, n_parts).mapInPandas(link_pass(eps, d, chunk_rows), FOUND_SCHEMA)
    )

    # 3. merge: local clusters (small) and the links between them, joined on the driver.
    cores = boxes.filter("is_core").withColumn("node", node_key())
    nodes, links = clusters_and_links(cores, found)
    node_label = merge_clusters(nodes, links)
    n_core = int(nodes["owned"].sum())
    n_clusters = int(node_label.max()) + 1 if node_label.size else 0
    node_keys = nodes["node"].to_numpy(dtype=np.int64)

    # 4. every training row's label, kept for the model's summary (no second pass).
    labels = row_nodes(boxes, found).mapInPandas(
        labeller(node_keys, node_label, "prediction"), "id long, is_core boolean, prediction int"
    )
    labels = labels.withColumnRenamed("id", ROW_ID)

    labelled = cores.select("id", "node", *names, "dist").mapInPandas(
        labeller(node_keys, node_label, "label"),
        f"id long, {feature_fields(d)}, dist double, label int",
    )
    kept_cover, kept = 0.0, labelled
    if n_core > max_model_points:
        kept_cover, keep = choose_thinning(cores, eps, max_model_points)
        kept = kept.filter(keep)
    # Bounded by max_model_points; sorted here, not by a Spark sort (one job less).
    rows = to_pandas(kept.select("id", *names, "label").limit(max_model_points))
    rows = rows.sort_values("id", kind="stable").reset_index(drop=True)
    labelled_cores = None
    if n_core > max_model_points:  # every core point with its halo copies, for exact scoring
        labelled_cores = (
            labelled.select("id", *names, "label")
            .mapInPandas(
                router(partitioner, keys, eps, d, extra=["label"]),
                routed_schema(d, ", label int"),
            )
            .select(PART, *names, "label")
        )
    return DistributedFit(
        components=features_of(rows, d),
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
    ).mapInPandas(router(fit.partitioner, fit.keys, eps, d, halo=False), routed_schema(d))
    schema = f"{feature_fields(d)}, prediction int, is_core boolean"
    scored = (
        routed.select(PART, *names)
        .groupBy(PART)
        .cogroup(fit.labelled_cores.groupBy(PART))
        .applyInPandas(assign_kernel(eps, d), schema)
    )
    # the same doubles as the row's own vector: the join finds it again
    scored = scored.select(
        F.array(*names).alias(key),
        F.col("prediction").alias(prediction_col),
        F.col("is_core").alias(is_core_col),
    )
    return keyed.join(scored, on=key, how="left").drop(key)


def _check_features(
    points: DataFrame, n_rows: int, name: str, dataset: DataFrame, features: Column
) -> int:
    """Refuse nulls, NaN / infinity and ragged vectors, as the driver path does; return d.
    ``dataset`` and ``features`` are the caller's: its column metadata names the features."""

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
            f"featuresCol {name!r} holds vectors of different lengths "
            f"({stats['shortest']} to {stats['longest']})"
        )
    if stats["shortest"] < 1:
        raise ParameterError(f"featuresCol {name!r} holds empty vectors (no features)")
    if stats["bad"]:
        raise_non_finite(dataset, features, name)  # names the features that hold them
        raise ParameterError(
            f"featuresCol {name!r} holds NaN or infinite values in {stats['bad']} of {n_rows} "
            "rows; "
            "impute or drop them before clustering"
        )
    return int(stats["shortest"])


def _sample(points: DataFrame, n_rows: int, n_leaves: int, seed: int, d: int) -> np.ndarray:
    """A bounded random sample of the features: the only rows the driver sees."""
    target = min(n_rows, MAX_SAMPLE_ROWS, max(MIN_SAMPLE_ROWS, SAMPLE_ROWS_PER_LEAF * n_leaves))
    fraction = min(1.0, 1.2 * target / n_rows)
    rows = to_pandas(points.select("f").sample(fraction=fraction, seed=seed).limit(target))
    if len(rows) == 0:  # a tiny, unlucky sample: fall back to the first rows
        rows = to_pandas(points.select("f").limit(target))
    return matrix_of(rows["f"], d)


def _materialise(df: DataFrame) -> DataFrame:
    """Compute once and keep (executors' disk): later steps read it several times.

    The kernels are deterministic, so where checkpoints are unavailable
    (some serverless engines) the plan is simply recomputed.
    """

    try:
        return df.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
    except Exception:  # noqa: BLE001 - an engine without local checkpoints
        return df
