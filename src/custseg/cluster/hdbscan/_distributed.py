"""HDBSCAN above ``maxDriverRows``: exact core distances on Spark, the tree on bubble summaries.

The path ``SparkHDBSCAN`` takes when the customers do not fit the driver. It is a
*summarised* HDBSCAN (in the spirit of MR-HDBSCAN*'s data bubbles), not an exact one:

1. **Bubbles.** A bounded sample (at most ``8 x maxBubbles`` rows) comes to the driver
   and a balanced k-d tree with ``B <= maxBubbles`` leaves is built on it (median splits
   on the feature of widest mean absolute deviation; a median tied with a node's largest
   value splits just below it). Each leaf is a *bubble*: a small box that adapts to
   density. Up to ``maxBubbles`` customers, each distinct row gets a bubble of its own.
   The top levels of the same tree cut the space into ``P`` *cells*, the unit of
   parallel work.
2. **Core distances (distributed, exact where checked).** Every customer is tagged with
   its bubble and cell (``mapInPandas``) and also copied, as a *halo*, to every other
   cell whose box lies within that cell's halo radius. Each cell (``applyInPandas``)
   runs a k-d tree k-nearest-neighbour query for its own customers over its customers
   plus its halo. A halo radius is a high quantile of the core distances a sample
   suggests for the cell, capped so that the halo holds at most ``HALO_BUDGET`` times the
   cell's own customers (a sparse cell would otherwise copy in most of the data). A core
   distance (scikit-learn's convention: the distance to the ``min_samples``-th neighbour,
   the point itself included) is exact whenever it is no larger than the halo radius plus the
   customer's distance to its cell's boundary, since then every closer customer is in
   the halo; the others (isolated customers in sparse regions, where the sample
   under-estimated the radius or the cap cut it) keep an upper bound, and how many they
   are is logged and stored (``n_inexact_core``). There is no second pass for them. The
   proof is conservative: in 8 dimensions most customers lie near some cell boundary, so
   at 10^7 customers 39% were not proven exact while about 3.7% were actually too large.
3. **Summaries (distributed).** Per bubble: the number of customers, the feature sum
   (centroid) and its *level*, when it joins the density hierarchy: the largest core
   distance of its customers, or the mutual reachability at which they connect to each
   other if that is larger. Per pair of bubbles: the smallest mutual-reachability distance
   between a customer and one of its k nearest neighbours in the other bubble. Only
   these bounded summaries are collected: O(maxBubbles), never O(customers).
4. **Tree (driver).** The bubble graph's edges weigh ``max(edge, level_a, level_b)``;
   bubbles the k-nearest-neighbour edges leave in separate components are joined
   Borůvka-style by their nearest centroids. Its minimum spanning tree goes through
   HDBSCAN's condensed tree and excess-of-mass selection with the bubble sizes as
   weights (``_condensed_tree``, ``_bubble_tree``: every customer counts in a cluster's
   stability, and a single bubble is never a cluster of its own), which labels every
   bubble. A noise
   bubble then joins a cluster when at least half of its customers would (median core
   distance and its edge to the cluster within the cluster's birth distance): the exact
   noise rule, by majority.
5. **Labels.** A customer gets its bubble's label (``-1`` = noise). The fitted
   :class:`~custseg.cluster.HDBSCAN` keeps only the split tree and the bubble labels,
   so ``model.transform`` on the training data gives exactly the labels measured here,
   and a new customer is labelled by the bubble it falls in.

What is exact and what is not. Exact: the core distances counted as exact (most of
them; see step 2) and every mutual-reachability value on a bubble-graph edge, computed
from customers. Summarised: (a) the hierarchy is built over bubbles, not customers, so a
bubble is clustered or noise as a whole and joins at one level; (b) candidate edges are
only those between k-nearest neighbours (k = min_samples + 15); (c) the edges that
join separated groups are centroid estimates (they set the top splits' birth levels);
(d) the noise rule is a majority per bubble. With one customer per bubble (up to
``maxBubbles`` customers) (a) and (d) vanish and the result is close to exact (ARI
0.93-1.0 on the quality battery, wine's and digits' real data included); with millions, a
bubble holds tens to hundreds of customers and the hierarchy is resolved only to bubble
size. The noise rule is then too generous: at 10^6 blob points (about 15 customers per
bubble) it leaves no customer as noise where exact HDBSCAN leaves 1.9%, because the
bubble tree's clusters are born at larger distances than the customers' would be.
``benchmarks/bench_hdbscan.py`` measures the agreement with exact HDBSCAN.

Only the DataFrame API is used (mapInPandas, repartition, applyInPandas, one tiny
``spark.range`` job); the jobs: the sample, then one pass that tags, shuffles and
summarises (the estimator's row count comes before).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from custseg.errors import ParameterError

from .._common.spark_frames import collect_features, raise_non_finite
from ._bubble_tree import BubbleSummary, label_bubbles, read_summary
from ._cells import SAMPLE_SEED, make_plan, summarise_cell, tag_rows
from ._split_tree import SplitTree
from .estimator import HDBSCAN

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import Column, DataFrame, SparkSession


log = logging.getLogger(__name__)


SAMPLE_PER_BUBBLE = 8  # sample rows per bubble: enough for a stable median split at the leaves


def fit_distributed(
    dataset: DataFrame,
    features: Column,
    clusterer: HDBSCAN,
    n_rows: int,
    *,
    max_bubbles: int,
    features_name: str,
) -> HDBSCAN:
    """Steps 1-5 of the module docstring: a fitted, summarised :class:`HDBSCAN`."""

    min_samples = clusterer.min_samples or clusterer.min_cluster_size
    tree, summary, labels = fit_summary(
        dataset,
        features,
        n_rows,
        min_samples=min_samples,
        min_cluster_size=clusterer.min_cluster_size,
        max_bubbles=max_bubbles,
        features_name=features_name,
    )
    leaf_labels = np.full(tree.n_leaves, -1, dtype=np.int64)  # empty bubbles: noise
    leaf_labels[summary.leaves] = labels
    leaf_counts = np.zeros(tree.n_leaves, dtype=np.int64)
    leaf_counts[summary.leaves] = summary.counts
    return HDBSCAN.from_bubbles(
        clusterer.get_params(),
        tree.dims,
        tree.values,
        leaf_labels,
        leaf_counts,
        n_features=summary.centroids.shape[1],
        n_inexact_core=summary.n_inexact_core,
    )


# whole: the Spark job in order (sample, plan, one pass over the cells, the tree on the driver), its
# log lines timed from one start
def fit_summary(
    dataset: DataFrame,
    features: Column,
    n_rows: int,
    *,
    min_samples: int,
    min_cluster_size: int,
    max_bubbles: int,
    features_name: str,
) -> tuple[SplitTree, BubbleSummary, np.ndarray]:
    """Steps 1-4 on Spark and the driver: the split tree, the bubble summary, the bubble labels."""

    started = time.perf_counter()
    sample_rows = SAMPLE_PER_BUBBLE * max_bubbles
    fraction = min(1.0, 1.2 * sample_rows / n_rows)
    sample_df = dataset.select(features.alias("f")).sample(False, fraction, seed=SAMPLE_SEED)
    sample = collect_features(sample_df.limit(sample_rows), features_name)
    # Non-finite rows are counted (and refused) by the main job, with the exact number.
    sample = sample[np.isfinite(sample).all(axis=1)]
    if sample.shape[0] < 2:
        raise ParameterError(
            f"the sample of the {n_rows} customers holds {sample.shape[0]} rows; "
            "at least 2 are needed"
        )
    n_features = sample.shape[1]
    plan = make_plan(sample, n_rows, min_samples, max_bubbles)
    del sample
    plan.partition_keys = partition_keys(dataset.sparkSession, plan.n_cells + 1)
    log.info(
        "HDBSCAN distributed: %d customers, %d bubbles, %d cells, halo radii %.3g..%.3g; "
        "sample and plan %.1f s",
        n_rows,
        plan.tree.n_leaves,
        plan.n_cells,
        plan.halo.min(),
        plan.halo.max(),
        time.perf_counter() - started,
    )

    # Flat double columns travel through Arrow much faster than array<double>; F.get gives
    # null (not an error) past the end of a short vector, and "len" catches long ones.
    columns = [F.get(features, j).alias(f"x{j}") for j in range(n_features)]
    flat = dataset.select(F.coalesce(F.size(features), F.lit(-1)).alias("len"), *columns)
    tag_schema = "key long, cell int, leaf int, home boolean, " + ", ".join(
        f"x{j} double" for j in range(n_features)
    )
    names = [f"x{j}" for j in range(n_features)]

    def tag(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            valid = batch["len"].to_numpy() == n_features
            yield tag_rows(plan, batch[names].to_numpy(np.float64), valid)

    out_schema = "a int, b int, w double, mid double, n long, inexact long, " + ", ".join(
        f"s{j} double" for j in range(n_features)
    )

    def summarise(pdf: pd.DataFrame) -> pd.DataFrame:
        cell = int(pdf["cell"].iloc[0])
        if cell < 0:  # the refused rows: their count only
            return pd.DataFrame(
                {
                    "a": [-1],
                    "b": [-1],
                    "w": [0.0],
                    "mid": [0.0],
                    "n": [len(pdf)],
                    "inexact": [0],
                    **{f"s{j}": [0.0] for j in range(n_features)},
                }
            )
        return summarise_cell(
            plan,
            pdf["leaf"].to_numpy(np.int64),
            pdf["home"].to_numpy(bool),
            pdf[names].to_numpy(np.float64),
            cell,
        )

    tagged = flat.mapInPandas(tag, tag_schema)
    # Each cell is one heavy task: hash partitioning on a key chosen per cell gives every
    # cell its own partition (hashing the cell id itself would pile some cells onto one
    # core), with no sampling pass (as range partitioning would run). Grouping by (key,
    # cell) reuses that partitioning: no second shuffle. AQE leaves a given count alone.
    per_cell = tagged.repartition(plan.n_cells + 1, F.col("key"))
    table: pd.DataFrame = (
        per_cell.groupBy("key", "cell").applyInPandas(summarise, out_schema).toPandas()
    )
    refused = table[table["a"] < 0]
    if len(refused) and int(refused["n"].sum()):
        raise_non_finite(dataset, features, features_name)  # names the features (NaN / infinity)
        raise ParameterError(
            f"featuresCol {features_name!r} is null, ragged or holds NaN / infinite values in "
            f"{int(refused['n'].sum())} of {n_rows} rows; impute or drop them before clustering"
        )
    table = table[table["a"] >= 0]
    summarised = time.perf_counter()
    summary = read_summary(table, n_features)
    labels = label_bubbles(summary, min_cluster_size)
    log.info(
        "HDBSCAN distributed: %d non-empty bubbles, %d edges, %d clusters, %d core distances "
        "not proven exact; Spark pass done at %.1f s, tree on the driver %.1f s",
        summary.leaves.size,
        summary.edges.shape[0],
        int(labels.max()) + 1 if labels.size else 0,
        summary.n_inexact_core,
        summarised - started,
        time.perf_counter() - summarised,
    )
    return plan.tree, summary, labels


def partition_keys(spark: SparkSession, n_parts: int) -> np.ndarray:
    """For each of ``n_parts`` partitions, a long that Spark's hash partitioning sends there.

    Computed by Spark itself (``pmod(hash(key), n)`` is what ``repartition(n, key)`` uses),
    on a few thousand numbers: a tiny job.
    """

    span = max(64, 64 * n_parts)
    rows: pd.DataFrame = (
        spark.range(span)
        .select(F.col("id"), F.pmod(F.hash(F.col("id")), F.lit(n_parts)).alias("part"))
        .toPandas()  # a few thousand small rows; no shuffle
    )
    first = rows.groupby("part")["id"].min()
    keys = np.full(n_parts, -1, dtype=np.int64)
    keys[first.index.to_numpy(np.int64)] = first.to_numpy(np.int64)
    if (keys < 0).any():  # pragma: no cover - 64 tries per partition always hit
        raise RuntimeError(f"no partition key found for {int((keys < 0).sum())} partitions")
    return keys
