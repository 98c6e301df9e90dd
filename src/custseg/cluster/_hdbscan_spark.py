"""HDBSCAN above ``maxDriverRows``: exact core distances on Spark, the tree on bubble summaries.

The path ``SparkHDBSCAN`` takes when the customers do not fit the driver. It is a
*summarised* HDBSCAN (in the spirit of MR-HDBSCAN*'s data bubbles), not an exact one:

1. **Bubbles.** A bounded sample (at most ``8 x maxBubbles`` rows) comes to the driver
   and a balanced k-d tree with ``B <= maxBubbles`` leaves is built on it (median splits
   on the feature of widest mean absolute deviation; a median tied with a node's largest
   value splits just below it). Each leaf is a *bubble*: a small box that adapts to
   density. Up to ``maxBubbles`` customers, each distinct row gets a bubble of its own. The top levels of the same tree cut the space into ``P`` *cells*, the unit
   of parallel work.
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
   weights (``_condensed_tree``: every customer counts in a cluster's stability, and a
   single bubble is never a cluster of its own), which labels every bubble. A noise
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
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from custseg.errors import ParameterError

from ._condensed_tree import weighted_hdbscan
from ._neighbours import inverse, spatial_order
from ._spark import collect_features, raise_non_finite

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import Column, DataFrame, SparkSession

    from ._hdbscan import HDBSCAN

log = logging.getLogger(__name__)

SAMPLE_PER_BUBBLE = 8  # sample rows per bubble: enough for a stable median split at the leaves
CELL_TARGET_ROWS = 250_000  # customers per cell: one k-d tree query task each
MIN_CELLS = 4  # at least this many tasks, so both cores work even at 100,000 customers
# Neighbours per customer, beyond its min_samples, that propose bubble-to-bubble edges. The
# mutual-reachability spanning tree can use an edge between two customers that are not
# among each other's min_samples nearest: with only those (36 on digits) ARI was 0.71,
# with 9 more 1.0.
EDGE_NEIGHBOURS = 15
HALO_QUANTILE = 0.9  # of the sampled core-distance estimates in a cell: its halo radius
HALO_BUDGET = 3.0  # ... but a cell's halo holds at most this many times its own customers
HALO_BUDGET_PROBES = 200_000  # sample rows that estimate the halo sizes
SAMPLE_SEED = 17
HALO_PROBES = 20_000
MAX_BUBBLE_EDGES = 32


# -- the k-d split tree -----------------------------------------------------------
@dataclass
class SplitTree:
    """A complete binary k-d tree in heap order: node ``i`` has children ``2i+1`` and ``2i+2``.

    Internal node ``i`` sends ``x`` right when ``x[dims[i]] > values[i]``. Leaves are
    numbered ``0 .. 2**depth - 1`` left to right.
    """

    dims: np.ndarray  # int64, (2**depth - 1,)
    values: np.ndarray  # float64, (2**depth - 1,)

    @property
    def depth(self) -> int:
        return int(round(math.log2(self.dims.size + 1)))

    @property
    def n_leaves(self) -> int:
        return self.dims.size + 1

    def leaf_of(self, X: np.ndarray) -> np.ndarray:
        """The leaf (bubble) of each row of ``X``."""
        node = np.zeros(X.shape[0], dtype=np.int64)
        rows = np.arange(X.shape[0])
        for _ in range(self.depth):
            node = 2 * node + 1 + (X[rows, self.dims[node]] > self.values[node])
        return node - self.dims.size

    def boxes(self, depth: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (``(2**depth, n_features)``, infinite at the outside) of the
        nodes at ``depth`` (``n_features``: features the tree never splits on count too)."""
        lo = np.full((1, n_features), -np.inf)
        hi = np.full((1, n_features), np.inf)
        for level in range(depth):
            first = 2**level - 1
            dims = self.dims[first : first + 2**level]
            values = self.values[first : first + 2**level]
            rows = np.arange(2**level)
            left_hi, right_lo = hi.copy(), lo.copy()
            left_hi[rows, dims] = np.minimum(left_hi[rows, dims], values)
            right_lo[rows, dims] = np.maximum(right_lo[rows, dims], values)
            lo = np.stack([lo, right_lo], axis=1).reshape(-1, n_features)
            hi = np.stack([left_hi, hi], axis=1).reshape(-1, n_features)
        return lo, hi


def build_split_tree(sample: np.ndarray, depth: int) -> SplitTree:
    """Median splits on the feature of largest variance, ``depth`` levels.

    Vectorised level by level (a level is a few sorts of the sample): the sample rows
    are kept grouped by node, and each node splits at its lower median, "<= value" going
    left, so the halves stay balanced without ties. A node with fewer than two rows sends
    everything left.
    """
    n, d = sample.shape
    dims = np.zeros(2**depth - 1, dtype=np.int64)
    values = np.full(2**depth - 1, np.inf)
    order = np.arange(n)  # sample rows, grouped by node
    node = np.zeros(n, dtype=np.int64)  # node (within the level) of each position of order
    for level in range(depth):
        m = 2**level
        counts = np.bincount(node, minlength=m)
        pts = sample[order]
        sums = np.column_stack([np.bincount(node, pts[:, j], minlength=m) for j in range(d)])
        safe = np.maximum(counts, 1)[:, None]
        means = sums / safe
        # The widest feature by mean absolute deviation, not variance: a sparse column (one
        # customer far out, the rest tied) has a large variance but a median split that
        # leaves one row on a side, and a tree of such splits has mostly empty leaves.
        spread = np.column_stack(
            [np.bincount(node, np.abs(pts[:, j] - means[node, j]), minlength=m) for j in range(d)]
        )
        dim = np.argmax(spread / safe, axis=1)
        v = pts[np.arange(n), dim[node]]
        by_value = np.lexsort((v, node))
        order, node, v = order[by_value], node[by_value], v[by_value]
        starts = np.cumsum(counts) - counts
        split = counts >= 2
        last = np.minimum(starts + counts - 1, max(n - 1, 0))
        value = np.where(split, v[np.minimum(starts + (counts - 1) // 2, max(n - 1, 0))], np.inf)
        # Tied at the median up to the node's largest value (integer-valued features): "<="
        # would send every row left, and the next level would choose the same split again,
        # so the node would never divide. Split just below the top value instead: the rows
        # holding it go right. (Zero spread on every feature: identical rows, never split.)
        top = v[last]
        first_top = np.full(m, n)  # per node, the first position holding its largest value
        at_top = np.flatnonzero(v == top[node])
        np.minimum.at(first_top, node[at_top], at_top)
        below = first_top - 1  # v is sorted within each node
        stuck = split & (value >= top) & (below >= starts)
        value = np.where(stuck, v[np.clip(below, 0, max(n - 1, 0))], value)
        first = m - 1
        dims[first : first + m] = np.where(split, dim, 0)
        values[first : first + m] = value
        child = 2 * node + (v > value[node])
        regroup = np.argsort(child, kind="stable")
        order, node = order[regroup], child[regroup]
    return SplitTree(dims, values)


def box_distance(X: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of ``X`` to the box ``[lo, hi]`` (0 inside)."""
    gap = np.maximum(np.maximum(lo - X, X - hi), 0.0)
    return np.sqrt(np.einsum("ij,ij->i", gap, gap))


# -- the plan: everything the executors need, small and picklable ----------------------
@dataclass
class Plan:
    tree: SplitTree
    cell_depth: int  # cells are the tree's nodes at this depth
    cell_lo: np.ndarray  # (P, d)
    cell_hi: np.ndarray  # (P, d)
    halo: np.ndarray  # (P,) halo radius of each cell
    min_samples: int
    n_neighbours: int  # >= min_samples
    # Per cell -1, 0, .., P-1: a long whose Spark hash sends the cell to its own partition.
    partition_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_cells(self) -> int:
        return 2**self.cell_depth

    def cell_of_leaf(self, leaf: np.ndarray) -> np.ndarray:
        return leaf >> (self.tree.depth - self.cell_depth)


def make_plan(sample: np.ndarray, n_rows: int, min_samples: int, max_bubbles: int) -> Plan:
    """Split tree, cells and halo radii from a sample of ``n_rows`` customers."""
    from scipy.spatial import cKDTree

    n_sample, n_features = sample.shape
    # Leaves: a power of two, one customer (and sample row) each where maxBubbles allows,
    # so small data is not summarised at all; fewer customers per bubble means a finer,
    # closer-to-exact hierarchy. (Two per bubble put wine's 178 rows at ARI 0.46.)
    wanted = max(2, 4 * min(n_sample, n_rows))
    depth = max(1, min(math.ceil(math.log2(wanted)), math.floor(math.log2(max_bubbles))))
    cell_depth = int(math.ceil(math.log2(max(MIN_CELLS, n_rows / CELL_TARGET_ROWS))))
    cell_depth = max(1, min(cell_depth, depth))
    tree = build_split_tree(sample, depth)
    cell_lo, cell_hi = tree.boxes(cell_depth, n_features)

    # Halo radius per cell: a high quantile of the core distances the sample suggests. A
    # k-th neighbour distance scales as density^(-1/d); d = the number of features is the
    # cautious choice (the smallest shrink for a sample fraction < 1).
    # Estimated on at most HALO_PROBES sample rows (against the whole sample): a quantile
    # needs no more, and the query stays a few seconds at any size.
    k = min(min_samples, n_sample)
    rng = np.random.default_rng(SAMPLE_SEED)
    probes = sample[rng.choice(n_sample, size=min(n_sample, HALO_PROBES), replace=False)]
    sample_core = cKDTree(sample).query(probes, k=[k], workers=1)[0][:, -1]
    sample_core *= (n_sample / n_rows) ** (1.0 / n_features)
    sample_cell = tree.leaf_of(probes) >> (depth - cell_depth)
    halo = np.zeros(2**cell_depth)
    for c in range(halo.size):
        in_cell = sample_core[sample_cell == c]
        halo[c] = float(np.quantile(in_cell, HALO_QUANTILE)) if in_cell.size else 0.0
    halo = np.minimum(halo, halo_caps(sample, tree, cell_depth, cell_lo, cell_hi))
    return Plan(
        tree=tree, cell_depth=cell_depth, cell_lo=cell_lo, cell_hi=cell_hi, halo=halo,
        min_samples=min_samples, n_neighbours=min_samples + EDGE_NEIGHBOURS,
    )  # fmt: skip


def halo_caps(
    sample: np.ndarray, tree: SplitTree, cell_depth: int, cell_lo: np.ndarray, cell_hi: np.ndarray
) -> np.ndarray:
    """Per cell, the largest halo radius that copies at most ``HALO_BUDGET`` times its own
    customers into it, as estimated on (at most ``HALO_BUDGET_PROBES`` rows of) the sample.

    Sparse cells (uniform noise) get core distances of several units, and a halo that wide
    reaches into most of the space: at 10^7 customers such cells held up to 45 times their
    own customers and the halos copied every customer 8.5 times. Capped, a cell's task
    stays within ``1 + HALO_BUDGET`` times its own rows. The cap also narrows dense cells'
    halos in 8 dimensions: the customers whose core distance it leaves unproven are counted
    (step 2); at 10^7 blob points 3.7% of the core distances came out too large (by 1.7% at
    the median), against 0.8% uncapped.
    """
    rng = np.random.default_rng(SAMPLE_SEED + 1)
    rows = sample[rng.choice(sample.shape[0], size=min(sample.shape[0], HALO_BUDGET_PROBES),
                             replace=False)]  # fmt: skip
    cell = tree.leaf_of(rows) >> (tree.depth - cell_depth)
    own = np.bincount(cell, minlength=2**cell_depth)
    caps = np.full(2**cell_depth, np.inf)
    for c in range(caps.size):
        budget = int(HALO_BUDGET * own[c])
        distance = box_distance(rows[cell != c], cell_lo[c], cell_hi[c])
        if distance.size > budget:
            caps[c] = np.partition(distance, budget)[budget] if budget else 0.0
    return caps


# -- executor side ----------------------------------------------------------------
def tag_rows(plan: Plan, X: np.ndarray, valid: np.ndarray) -> pd.DataFrame:
    """Each customer once in its own cell (home) and once in each other cell whose halo reaches it.

    Rows that are not ``valid`` (null, ragged, NaN or infinite features) go to cell -1,
    where they are only counted, so the driver can refuse the data with their number.
    """
    valid = valid & np.isfinite(X).all(axis=1)
    X = np.where(valid[:, None], X, 0.0)
    leaf = plan.tree.leaf_of(X)
    cell = np.where(valid, plan.cell_of_leaf(leaf), -1)
    parts_cell, parts_rows = [cell], [np.arange(X.shape[0])]
    for c in range(plan.n_cells):
        near = box_distance(X, plan.cell_lo[c], plan.cell_hi[c]) <= plan.halo[c]
        near &= (cell != c) & valid
        rows = np.flatnonzero(near)
        parts_cell.append(np.full(rows.size, c))
        parts_rows.append(rows)
    rows = np.concatenate(parts_rows)
    cells = np.concatenate(parts_cell)
    out = pd.DataFrame({"key": plan.partition_keys[cells + 1], "cell": cells.astype(np.int32),
                        "leaf": leaf[rows].astype(np.int32),
                        "home": np.arange(rows.size) < X.shape[0]})  # fmt: skip
    for j in range(X.shape[1]):
        out[f"x{j}"] = X[rows, j]
    return out


def summarise_cell(
    plan: Plan, leaf: np.ndarray, home: np.ndarray, X: np.ndarray, cell: int
) -> pd.DataFrame:
    """Core distances of a cell's customers, then its bubble rows and bubble-pair edge rows.

    Output columns: ``a`` (bubble), ``b`` (other bubble; -1 on a bubble row), ``w`` (edge
    weight, or the bubble's level), ``mid`` (the bubble's median core distance), ``n``
    (customers in the bubble),
    ``inexact`` (customers whose core distance is only an upper bound), ``s0..`` (feature sums).
    """
    from scipy.spatial import cKDTree

    n_features = X.shape[1]
    home_rows = np.flatnonzero(home)
    k = min(plan.n_neighbours, X.shape[0])
    # One core per Spark task (workers=1); scipy's tree is the fastest exact k-NN here.
    tree = cKDTree(X)
    dist, ind = _knn(tree, X[home_rows], np.arange(1, k + 1))  # home rows only
    ms = min(plan.min_samples, k)
    core = np.full(X.shape[0], np.nan)
    core_home = core[home_rows] = dist[:, ms - 1]
    # Halo customers that are some home customer's neighbour (about a third of the halo):
    # their distance to the min_samples-th neighbour here is an upper bound of their core
    # distance (exact in their own cell), used on the edges to them. No other halo
    # customer's core distance is read.
    used = np.unique(ind)
    halo_rows = used[~home[used]]
    if halo_rows.size:
        core[halo_rows] = _knn(tree, X[halo_rows], [ms])[0][:, -1]
    # A customer outside the halo is more than (halo radius + the home customer's distance to
    # its cell's boundary) away (the segment between them crosses the boundary), so a core
    # distance within that reach is exact; the others are upper bounds.
    lo, hi = plan.cell_lo[cell], plan.cell_hi[cell]
    inside = np.minimum(X[home_rows] - lo, hi - X[home_rows]).min(axis=1)
    inexact = core_home > plan.halo[cell] + inside
    home_leaf = leaf[home_rows]

    # Bubble rows: count, feature sums, level, inexact count. A bubble joins the hierarchy
    # as one node, so its level is where *all* its customers are there and connected: the
    # largest core distance of its members, raised to the mutual reachability at which
    # its members connect to each other. (A lower level, such as the median, lets a box
    # that holds the fringes of two clusters merge them far too early.)
    order = np.argsort(home_leaf, kind="stable")
    leaves, starts, counts = np.unique(home_leaf[order], return_index=True, return_counts=True)
    if leaves.size == 0:  # pragma: no cover - a cell group always has home customers
        return pd.DataFrame(
            columns=["a", "b", "w", "mid", "n", "inexact"] + [f"s{j}" for j in range(n_features)]
        )
    top_core = np.maximum.reduceat(core_home[order], starts)
    mid_core = (
        pd.Series(core_home[order])
        .groupby(np.repeat(np.arange(leaves.size), counts))
        .median()
        .to_numpy()
    )
    sums = np.add.reduceat(X[home_rows][order], starts, axis=0)
    n_inexact = np.add.reduceat(inexact[order].astype(np.int64), starts)
    levels = np.maximum(top_core, _internal_levels(leaf, home_rows, dist, ind, core, leaves, X))

    # Edge rows: mutual reachability from each customer to its neighbours in other bubbles.
    nbr = ind.ravel()
    a = np.repeat(home_leaf, k)
    b = leaf[nbr]
    w = np.maximum(np.maximum(dist.ravel(), np.repeat(core_home, k)), core[nbr])
    keep = a != b
    a, b, w = a[keep], b[keep], w[keep]
    key = a.astype(np.int64) * plan.tree.n_leaves + b
    order = np.lexsort((w, key))
    first = np.ones(order.size, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pick = order[first]
    # Keep each bubble's MAX_BUBBLE_EDGES lightest edges: a spanning tree uses light edges,
    # and the collected summary stays O(maxBubbles) however many customers a bubble holds.
    by_weight = pick[np.lexsort((w[pick], a[pick]))]
    rank = np.arange(by_weight.size) - np.searchsorted(a[by_weight], a[by_weight], side="left")
    pick = by_weight[rank < MAX_BUBBLE_EDGES]

    n_bubbles, n_edges = leaves.size, pick.size
    out = pd.DataFrame({
        "a": np.concatenate([leaves, a[pick]]).astype(np.int32),
        "b": np.concatenate([np.full(n_bubbles, -1), b[pick]]).astype(np.int32),
        "w": np.concatenate([levels, w[pick]]).astype(np.float64),
        "mid": np.concatenate([mid_core, np.zeros(n_edges)]).astype(np.float64),
        "n": np.concatenate([counts, np.zeros(n_edges)]).astype(np.int64),
        "inexact": np.concatenate([n_inexact, np.zeros(n_edges)]).astype(np.int64),
    })  # fmt: skip
    for j in range(n_features):
        out[f"s{j}"] = np.concatenate([sums[:, j], np.zeros(n_edges)])
    return out


def _knn(tree: Any, queries: np.ndarray, k: Any) -> tuple[np.ndarray, np.ndarray]:
    """``tree.query(queries, k)`` on one core, run in spatial order (``_neighbours``)."""
    order = spatial_order(queries)
    dist, ind = tree.query(queries[order], k=k, workers=1)
    undo = inverse(order)
    return dist[undo], ind[undo]


def _internal_levels(
    leaf: np.ndarray,
    home_rows: np.ndarray,
    dist: np.ndarray,
    ind: np.ndarray,
    core: np.ndarray,
    leaves: np.ndarray,
    X: np.ndarray,
) -> np.ndarray:
    """Per bubble: the mutual reachability at which its members are all connected.

    The largest edge of the spanning forest of the within-bubble neighbour edges; a bubble
    those edges leave in pieces gets twice the largest distance of a member from the
    members' centroid (an upper bound of any distance between two of them).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

    n, k = X.shape[0], ind.shape[1]
    nbr = ind.ravel()  # dist / ind: the home rows' neighbours
    rows = np.repeat(home_rows, k)
    w = np.maximum(np.maximum(dist.ravel(), core[rows]), core[nbr])
    keep = (leaf[rows] == leaf[nbr]) & (rows != nbr)
    w = np.maximum(w[keep], np.finfo(np.float64).tiny)  # scipy reads 0 as "no edge"
    graph = coo_matrix((w, (rows[keep], nbr[keep])), shape=(n, n)).tocsr()
    forest = minimum_spanning_tree(graph).tocoo()
    out = pd.Series(0.0, index=leaves)
    if forest.nnz:
        top = pd.Series(forest.data).groupby(leaf[forest.row]).max()
        out = out.add(top.reindex(leaves).fillna(0.0), fill_value=0.0)
    _, comp = connected_components(forest, directed=False)
    pieces = pd.Series(comp[home_rows]).groupby(leaf[home_rows]).nunique()
    split = pieces[pieces > 1].index.to_numpy()
    if split.size:
        pts = home_rows[np.isin(leaf[home_rows], split)]
        groups = leaf[pts]
        centre = pd.DataFrame(X[pts]).groupby(groups).transform("mean").to_numpy()
        radius = pd.Series(np.sqrt(((X[pts] - centre) ** 2).sum(axis=1))).groupby(groups).max()
        out[split] = np.maximum(out[split].to_numpy(), 2.0 * radius.reindex(split).to_numpy())
    return out.reindex(leaves).to_numpy(np.float64)


# -- driver side ------------------------------------------------------------------
@dataclass
class BubbleSummary:
    leaves: np.ndarray  # leaf ids of the non-empty bubbles
    counts: np.ndarray  # customers per bubble
    levels: np.ndarray  # level per bubble: where all its customers are connected
    mids: np.ndarray  # median core distance per bubble
    centroids: np.ndarray  # (m, d)
    edges: np.ndarray  # (e, 3): bubble index a, bubble index b, mutual reachability
    n_inexact_core: int


def read_summary(table: pd.DataFrame, n_features: int) -> BubbleSummary:
    """The collected cell outputs as bubble arrays (bubbles indexed 0..m-1)."""
    bubbles = table[table["b"] < 0].sort_values("a")
    edges = table[table["b"] >= 0]
    leaves = bubbles["a"].to_numpy(np.int64)
    counts = bubbles["n"].to_numpy(np.int64)
    sums = bubbles[[f"s{j}" for j in range(n_features)]].to_numpy(np.float64)
    index = pd.Series(np.arange(leaves.size), index=leaves)
    a = index.reindex(edges["a"].to_numpy()).to_numpy()
    b = index.reindex(edges["b"].to_numpy()).to_numpy()
    return BubbleSummary(
        leaves=leaves, counts=counts, levels=bubbles["w"].to_numpy(np.float64),
        mids=bubbles["mid"].to_numpy(np.float64),
        centroids=sums / counts[:, None],
        edges=np.column_stack([a, b, edges["w"].to_numpy(np.float64)]),
        n_inexact_core=int(bubbles["inexact"].sum()),
    )  # fmt: skip


def bubble_spanning_tree(summary: BubbleSummary) -> np.ndarray:
    """Minimum spanning tree ``(m - 1, 3)`` of the bubble graph under mutual reachability."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

    m = summary.leaves.size
    levels = summary.levels
    a = summary.edges[:, 0].astype(np.int64)
    b = summary.edges[:, 1].astype(np.int64)
    w = np.maximum(summary.edges[:, 2], np.maximum(levels[a], levels[b]))
    a, b, w = _connect_components(summary, a, b, w)
    # scipy reads a stored 0 as "no edge": lift zero weights (duplicate customers) a hair.
    w = np.maximum(w, np.finfo(np.float64).tiny)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * m + hi
    order = np.lexsort((w, key))
    first = np.ones(order.size, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pick = order[first]
    graph = coo_matrix((w[pick], (lo[pick], hi[pick])), shape=(m, m)).tocsr()
    mst = minimum_spanning_tree(graph).tocoo()
    n_parts = connected_components(mst, directed=False)[0]
    if n_parts != 1:  # pragma: no cover - _connect_components guarantees one component
        raise RuntimeError(f"bubble spanning tree has {n_parts} components")
    return np.column_stack([mst.row, mst.col, mst.data]).astype(np.float64)


def _connect_components(
    summary: BubbleSummary, a: np.ndarray, b: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add Borůvka edges between components of the neighbour graph, by nearest centroids.

    The k-nearest-neighbour edges connect bubbles within dense regions; well separated
    groups need one more edge each. Their weight is ``max(centroid distance, levels)``,
    a summary-level estimate (these are the top splits of the hierarchy).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import KDTree

    m = summary.leaves.size
    centroids, levels = summary.centroids, summary.levels
    tree = KDTree(centroids) if m > 1 else None
    while m > 1:
        graph = coo_matrix((np.ones(a.size), (a, b)), shape=(m, m))
        n_parts, comp = connected_components(graph, directed=False)
        if n_parts == 1:
            break
        best_w = np.full(n_parts, np.inf)
        best = np.zeros((n_parts, 2), dtype=np.int64)
        k = min(m, 32)
        assert tree is not None
        dist, ind = tree.query(centroids, k=k)
        foreign = comp[ind] != comp[:, None]
        has = foreign.any(axis=1)
        rows = np.flatnonzero(has)
        # The lightest foreign candidate under mutual reachability, not the nearest
        # centroid: where levels (core distances) dominate, as in many dimensions, the
        # nearest foreign bubble is often not the one the component joins first.
        reach = np.maximum(dist[rows], np.maximum(levels[rows][:, None], levels[ind[rows]]))
        reach = np.where(foreign[rows], reach, np.inf)
        j = np.argmin(reach, axis=1)
        cand_b = ind[rows, j]
        cand_w = reach[np.arange(rows.size), j]
        for r, q, cw in zip(rows, cand_b, cand_w, strict=True):
            c = comp[r]
            if cw < best_w[c]:
                best_w[c], best[c] = cw, (r, q)
        # Components whose every bubble saw only its own component among k neighbours:
        # brute force against all foreign centroids (rare: one huge, isolated component).
        for c in np.flatnonzero(~np.isfinite(best_w)):
            mine = np.flatnonzero(comp == c)
            other = np.flatnonzero(comp != c)
            for start in range(0, mine.size, 1024):
                block = mine[start : start + 1024]
                d = np.sqrt(((centroids[block, None, :] - centroids[None, other, :]) ** 2).sum(-1))
                d = np.maximum(d, np.maximum(levels[block][:, None], levels[other][None, :]))
                i, q = np.unravel_index(np.argmin(d), d.shape)
                if d[i, q] < best_w[c]:
                    best_w[c], best[c] = d[i, q], (block[i], other[q])
        a = np.concatenate([a, best[:, 0]])
        b = np.concatenate([b, best[:, 1]])
        w = np.concatenate([w, best_w])
    return a, b, w


def label_bubbles(summary: BubbleSummary, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN's condensed tree and excess-of-mass selection over the weighted bubbles
    (``_condensed_tree``), then :func:`rescue_noise`."""
    if summary.leaves.size < 2:
        return np.full(summary.leaves.size, -1, dtype=np.int64)
    mst = bubble_spanning_tree(summary)
    labels, epsilon = weighted_hdbscan(mst, summary.counts, min_cluster_size)
    if labels.max() < 0:
        return labels
    return rescue_noise(summary, labels, epsilon)


def rescue_noise(
    summary: BubbleSummary, labels: np.ndarray, epsilon: np.ndarray, rounds: int = 10
) -> np.ndarray:
    """Give a noise bubble the cluster most of its customers belong to in exact HDBSCAN.

    A customer is in cluster C when its core distance is at most C's birth distance
    ``epsilon[C]`` and it connects to C below that distance. A bubble is noise under its
    level (its *largest* core distance), but when its median core distance and its
    mutual-reachability edge to a bubble of C are both within ``epsilon[C]``, at least half
    of its customers qualify, so the bubble joins C. Repeated, so chains of such bubbles join.
    """
    labels = labels.copy()
    a = summary.edges[:, 0].astype(np.int64)
    b = summary.edges[:, 1].astype(np.int64)
    w = summary.edges[:, 2]
    src = np.concatenate([a, b])  # both directions: the noise side, the clustered side
    dst = np.concatenate([b, a])
    ww = np.concatenate([w, w])
    for _ in range(rounds):
        cand = (labels[src] < 0) & (labels[dst] >= 0)
        if not cand.any():
            break
        s, d = src[cand], dst[cand]
        weight = np.maximum(ww[cand], summary.mids[s])
        ok = weight <= epsilon[labels[d]]
        if not ok.any():
            break
        s, d, weight = s[ok], d[ok], weight[ok]
        order = np.lexsort((weight, s))
        first = np.ones(order.size, dtype=bool)
        first[1:] = s[order][1:] != s[order][:-1]
        pick = order[first]
        labels[s[pick]] = labels[d[pick]]
    return labels


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
    from ._hdbscan import HDBSCAN

    min_samples = clusterer.min_samples or clusterer.min_cluster_size
    tree, summary, labels = fit_summary(
        dataset, features, n_rows, min_samples=min_samples,
        min_cluster_size=clusterer.min_cluster_size, max_bubbles=max_bubbles,
        features_name=features_name,
    )  # fmt: skip
    leaf_labels = np.full(tree.n_leaves, -1, dtype=np.int64)  # empty bubbles: noise
    leaf_labels[summary.leaves] = labels
    leaf_counts = np.zeros(tree.n_leaves, dtype=np.int64)
    leaf_counts[summary.leaves] = summary.counts
    return HDBSCAN.from_bubbles(
        clusterer.get_params(), tree.dims, tree.values, leaf_labels, leaf_counts,
        n_features=summary.centroids.shape[1], n_inexact_core=summary.n_inexact_core,
    )  # fmt: skip


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
    from pyspark.sql import functions as F

    started = time.perf_counter()
    sample_rows = SAMPLE_PER_BUBBLE * max_bubbles
    fraction = min(1.0, 1.2 * sample_rows / n_rows)
    sample_df = dataset.select(features.alias("f")).sample(False, fraction, seed=SAMPLE_SEED)
    sample = collect_features(sample_df.limit(sample_rows), features_name)
    # Non-finite rows are counted (and refused) by the main job, with the exact number.
    sample = sample[np.isfinite(sample).all(axis=1)]
    if sample.shape[0] < 2:
        raise ParameterError(
            f"the sample of the {n_rows} customers holds {sample.shape[0]} rows; at least 2 are needed"
        )
    n_features = sample.shape[1]
    plan = make_plan(sample, n_rows, min_samples, max_bubbles)
    del sample
    plan.partition_keys = partition_keys(dataset.sparkSession, plan.n_cells + 1)
    log.info(
        "HDBSCAN distributed: %d customers, %d bubbles, %d cells, halo radii %.3g..%.3g; "
        "sample and plan %.1f s",
        n_rows, plan.tree.n_leaves, plan.n_cells, plan.halo.min(), plan.halo.max(),
        time.perf_counter() - started,
    )  # fmt: skip

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
            return pd.DataFrame({"a": [-1], "b": [-1], "w": [0.0], "mid": [0.0], "n": [len(pdf)],
                                 "inexact": [0], **{f"s{j}": [0.0] for j in range(n_features)}})  # fmt: skip
        return summarise_cell(
            plan, pdf["leaf"].to_numpy(np.int64), pdf["home"].to_numpy(bool),
            pdf[names].to_numpy(np.float64), cell,
        )  # fmt: skip

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
        summary.leaves.size, summary.edges.shape[0], int(labels.max()) + 1 if labels.size else 0,
        summary.n_inexact_core, summarised - started, time.perf_counter() - summarised,
    )  # fmt: skip
    return plan.tree, summary, labels


def partition_keys(spark: SparkSession, n_parts: int) -> np.ndarray:
    """For each of ``n_parts`` partitions, a long that Spark's hash partitioning sends there.

    Computed by Spark itself (``pmod(hash(key), n)`` is what ``repartition(n, key)`` uses),
    on a few thousand numbers: a tiny job.
    """
    from pyspark.sql import functions as F

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
