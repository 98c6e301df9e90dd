"""Steps 5 and 6 of the distributed DBSCAN: local clusters joined into clusters, rows labelled.

The local clusters and the links between them are small (clusters, not customers):
they are collected and joined on the driver by connected components; each row then
takes its local cluster's label, or its nearest core's over all boxes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pyspark.sql import functions as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ._frames import ANSWER, LINK, NODE_SHIFT, PART, to_pandas

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def node_key() -> Column:
    """A local cluster's key over all boxes: box key x NODE_SHIFT + local number."""

    return F.col(PART).cast("long") * NODE_SHIFT + F.col("local")


def clusters_and_links(cores: DataFrame, found: DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The local clusters (node, first core id, owned cores) and the distinct links (a, b).

    Both are small (clusters, not customers) and come back in one job.
    """

    nodes = cores.groupBy("node").agg(F.min("id").alias("first_id"), F.count("*").alias("owned"))
    links = found.filter(F.col("kind") == LINK).select("a", "b").distinct()
    both = to_pandas(
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


def row_nodes(boxes: DataFrame, found: DataFrame) -> DataFrame:
    """(id, is_core, node) of every row: its local cluster, or for a non-core row the
    nearest core's over all boxes (ties: the smaller node); node -1 is noise."""

    own = F.when(F.col("local") >= 0, node_key()).otherwise(F.lit(-1).cast("long"))
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


def merge_clusters(nodes: pd.DataFrame, links: pd.DataFrame) -> np.ndarray:
    """Global cluster of each local cluster (row of ``nodes``), numbered by first core id."""

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
