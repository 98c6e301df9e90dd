"""Steps 1 to 3 of the distributed HDBSCAN: the plan, and what each cell's task computes.

The plan (split tree, cells, halo radii; small and picklable) is made on the driver
from a sample. On the executors every customer is tagged with its bubble and cell and
copied into the halos that reach it, and each cell computes its customers' core
distances and its bubble and bubble-pair summaries (numpy / scipy on pandas frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial import cKDTree

from .._common.neighbours import inverse, spatial_order
from ._split_tree import SplitTree, box_distance, build_split_tree

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
        tree=tree,
        cell_depth=cell_depth,
        cell_lo=cell_lo,
        cell_hi=cell_hi,
        halo=halo,
        min_samples=min_samples,
        n_neighbours=min_samples + EDGE_NEIGHBOURS,
    )


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
    rows = sample[
        rng.choice(sample.shape[0], size=min(sample.shape[0], HALO_BUDGET_PROBES), replace=False)
    ]
    cell = tree.leaf_of(rows) >> (tree.depth - cell_depth)
    own = np.bincount(cell, minlength=2**cell_depth)
    caps = np.full(2**cell_depth, np.inf)
    for c in range(caps.size):
        budget = int(HALO_BUDGET * own[c])
        distance = box_distance(rows[cell != c], cell_lo[c], cell_hi[c])
        if distance.size > budget:
            caps[c] = np.partition(distance, budget)[budget] if budget else 0.0
    return caps


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
    out = pd.DataFrame(
        {
            "key": plan.partition_keys[cells + 1],
            "cell": cells.astype(np.int32),
            "leaf": leaf[rows].astype(np.int32),
            "home": np.arange(rows.size) < X.shape[0],
        }
    )
    for j in range(X.shape[1]):
        out[f"x{j}"] = X[rows, j]
    return out


# whole: core distances, bubbles and edges of one cell from the same k-NN result, in the order of
# the docstring
def summarise_cell(
    plan: Plan, leaf: np.ndarray, home: np.ndarray, X: np.ndarray, cell: int
) -> pd.DataFrame:
    """Core distances of a cell's customers, then its bubble rows and bubble-pair edge rows.

    Output columns: ``a`` (bubble), ``b`` (other bubble; -1 on a bubble row), ``w`` (edge
    weight, or the bubble's level), ``mid`` (the bubble's median core distance), ``n``
    (customers in the bubble),
    ``inexact`` (customers whose core distance is only an upper bound), ``s0..`` (feature sums).
    """

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
    out = pd.DataFrame(
        {
            "a": np.concatenate([leaves, a[pick]]).astype(np.int32),
            "b": np.concatenate([np.full(n_bubbles, -1), b[pick]]).astype(np.int32),
            "w": np.concatenate([levels, w[pick]]).astype(np.float64),
            "mid": np.concatenate([mid_core, np.zeros(n_edges)]).astype(np.float64),
            "n": np.concatenate([counts, np.zeros(n_edges)]).astype(np.int64),
            "inexact": np.concatenate([n_inexact, np.zeros(n_edges)]).astype(np.int64),
        }
    )
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
