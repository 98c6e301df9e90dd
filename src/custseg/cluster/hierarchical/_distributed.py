"""The distributed path of SparkHierarchical: exact Ward on weighted micro-cluster summaries.

Above ``maxDriverRows`` customers:

1. the customers are summarised in parallel into ``numMicroClusters``
   micro-clusters (:mod:`._summaries`: count, linear sum, squared sum each);
2. exact Ward runs on the micro-clusters as weighted points
   (:func:`weighted_ward_linkage`). Ward's merge cost between clusters A and B,
   ``|A| |B| / (|A| + |B|) * ||mean_A - mean_B||^2``, depends only on sizes and
   means, so a micro-cluster enters with its customer count as its weight and the
   tree is exactly Ward's tree over those weighted points; the approximation is
   only that each micro-cluster's customers stay together;
3. the tree is cut as the single-node :class:`Hierarchical` cuts it: at
   ``n_clusters``, or at the k in ``k_range`` with the best silhouette, scored on
   a bounded seeded sample of customers;
4. the fitted single-node ``Hierarchical`` labels a customer by its nearest
   micro-cluster centre, then that micro-cluster's segment. ``model.transform``
   runs that rule on every customer in a distributed UDF, and on the training
   data it gives exactly the memberships the summaries were built from.

The tree of the micro-clusters (the upper levels of the full dendrogram) is
kept as ``linkage_matrix_`` for the dashboard.

Only Ward is offered here: the other linkages' merge costs are not functions of
sizes and means, so summaries cannot reproduce them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.cluster.hierarchy import fcluster

from custseg.errors import ParameterError

from .._common.base import warn_fewer_clusters
from .._common.k_search import choose_k_by_silhouette
from .._common.linkage import linkage_matrix
from .._common.validation import check_k_range
from ._micro_clusters import MicroClusters
from ._summaries import micro_cluster_summaries
from .estimator import Hierarchical

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

DISTRIBUTED_LINKAGES = ("ward",)


def weighted_ward_linkage(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Exact Ward linkage of weighted points, in scipy's linkage-matrix format.

    ``points[i]`` stands for ``weights[i]`` observations sitting at that point (a
    micro-cluster's mean and size). With all weights 1 this is scipy's / fastcluster's
    Ward: same merges, same heights (up to rounding), same row order.

    Nearest-neighbour chain algorithm (as scipy and fastcluster use for Ward): O(m^2 d)
    time, O(m d) memory. A cluster is kept as (mean, size); the distance of clusters A
    and B is ``sqrt(2 |A| |B| / (|A| + |B|)) * ||mean_A - mean_B||``, which is the
    Lance-Williams Ward recurrence written in closed form, and is scipy's merge height.
    Column 3 of the result counts the *points* under each node (scipy's convention), not
    the weights.
    """
    centers = np.array(points, dtype=np.float64)  # copied: rows are overwritten by merges
    sizes = np.array(weights, dtype=np.float64)
    m = centers.shape[0]
    if m < 2:
        return np.empty((0, 4))
    active = np.ones(m, dtype=bool)
    merges = np.empty((m - 1, 3))  # (slot a, slot b, height) in the order they happen
    chain: list[int] = []
    for step in range(m - 1):
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        while True:
            x = chain[-1]
            diff = centers - centers[x]
            cost = np.einsum("ij,ij->i", diff, diff) * (sizes * sizes[x] / (sizes + sizes[x]))
            cost[~active] = np.inf
            cost[x] = np.inf
            y = int(np.argmin(cost))
            # On a tie keep the chain's previous element: this is what guarantees the chain
            # ends in a pair of reciprocal nearest neighbours (no cycles).
            if len(chain) > 1 and cost[chain[-2]] <= cost[y]:
                y = chain[-2]
                break
            chain.append(y)
        chain.pop()
        chain.pop()
        best = cost[y]
        size_x, size_y = sizes[x], sizes[y]
        centers[y] = (size_x * centers[x] + size_y * centers[y]) / (size_x + size_y)
        sizes[y] = size_x + size_y
        active[x] = False
        # cost is half the squared Ward distance: scipy's height is sqrt(2 * cost).
        merges[step] = (x, y, np.sqrt(2.0 * best))
    # A stable sort by height: ties keep their merge order, as in scipy.
    return linkage_matrix(merges[np.argsort(merges[:, 2], kind="mergesort")], np.ones(m))


def cut_weighted(Z: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    """Segment of each weighted point when the tree is cut into (at most) k clusters.

    scipy's ``fcluster(Z, k, "maxclust")`` partition, numbered 0..k-1 by decreasing
    total weight (customers), ties by first appearance, as ``relabel_by_size`` does
    for unweighted points.
    """

    m = weights.shape[0]
    if m == 1:
        return np.zeros(1, dtype=np.int64)
    raw = fcluster(Z, k, criterion="maxclust")
    uniq, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    totals = np.bincount(inverse, weights=weights)
    order = np.lexsort((first, -totals))
    mapping = np.empty(uniq.size, dtype=np.int64)
    mapping[order] = np.arange(uniq.size)
    return mapping[inverse]


def fit_on_summaries(clusterer: Hierarchical, micro: MicroClusters) -> Hierarchical:
    """Ward on the micro-clusters, cut as ``clusterer`` asks; returns a fitted Hierarchical."""
    if clusterer.linkage not in DISTRIBUTED_LINKAGES:
        raise ParameterError(_linkage_message(clusterer.linkage, micro.micro.n_rows))
    means, weights = micro.means, micro.counts.astype(np.float64)
    Z = weighted_ward_linkage(means, weights)
    silhouette_by_k: dict[int, float] = {}
    if clusterer.n_clusters is not None:
        # Fewer micro-clusters than n_clusters: identical or too few distinct customers
        # (the summary seeds numMicroClusters >= n_clusters centres). Cut what there is.
        if clusterer.n_clusters > micro.n_micro:
            warn_fewer_clusters(micro.n_micro, clusterer.n_clusters, "n_clusters")
        micro_labels = cut_weighted(Z, min(clusterer.n_clusters, micro.n_micro), weights)
    else:
        low, high = check_k_range("k_range", clusterer.k_range)
        if low > micro.n_micro:
            raise ParameterError(
                f"k_range starts at {low}, above the number of micro-clusters ({micro.n_micro}) "
                "the data was summarised into; raise numMicroClusters"
            )
        sample_micro = micro.assign(micro.sample)
        labels_by_k: dict[int, np.ndarray] = {}

        def sample_labels_for_k(k: int) -> np.ndarray:
            labels_by_k[k] = cut_weighted(Z, k, weights)
            return labels_by_k[k][sample_micro]

        # The minimum segment size in customers, as a count of the sample's rows.
        sample_min_size = max(
            1, math.ceil(clusterer.min_segment_size * len(micro.sample) / max(1, micro.n_rows))
        )
        best_k, silhouette_by_k, _, _ = choose_k_by_silhouette(
            micro.sample,
            sample_labels_for_k,
            (low, min(high, micro.n_micro)),
            clusterer.silhouette_sample,
            clusterer.random_state,
            min_segment_size=sample_min_size,
        )
        micro_labels = labels_by_k[best_k]
    return Hierarchical.from_micro_clusters(
        clusterer.get_params(),
        micro_centers=micro.centers,
        micro_weights=micro.counts,
        micro_labels=micro_labels,
        micro_linear_sums=micro.linear_sums,
        linkage_matrix=Z,
        silhouette_by_k=silhouette_by_k,
    )


def fit_distributed(
    dataset: DataFrame,
    features: Column,
    clusterer: Hierarchical,
    *,
    n_rows: int,
    n_micro: int,
    col_name: str,
    max_driver_rows: int,
) -> Hierarchical:
    """The whole large path: summaries in parallel, Ward on them, a fitted Hierarchical back."""
    check_distributed_linkage(clusterer.linkage, n_rows, max_driver_rows)
    micro = micro_cluster_summaries(
        dataset, features, n_micro, n_rows=n_rows, seed=clusterer.random_state, col_name=col_name
    )
    return fit_on_summaries(clusterer, micro)


def check_distributed_linkage(linkage: str, n_rows: int, max_driver_rows: int | None) -> None:
    if linkage not in DISTRIBUTED_LINKAGES:
        raise ParameterError(_linkage_message(linkage, n_rows, max_driver_rows))


def _linkage_message(linkage: str, n_rows: int, max_driver_rows: int | None = None) -> str:
    above = f"above maxDriverRows ({max_driver_rows})" if max_driver_rows else "on micro-clusters"
    supported = ", ".join(repr(name) for name in DISTRIBUTED_LINKAGES)
    return (
        f"linkage {linkage!r} is not supported by the distributed path, which fits {above}; "
        f"it supports {supported} (the data has {n_rows} rows: use linkage='ward' or raise "
        "maxDriverRows)"
    )
