"""Steps 2 to 4 of the distributed DBSCAN: the functions Spark runs on each box.

Routers send each row to its own box and, as a halo copy, to the boxes within eps;
each box's task holds only its own rows and streams the rest through them in chunks
(:func:`stream_boxes`): the first pass finds core points and local clusters, the second
the links between boxes and the nearest cores of other boxes' border rows. They are
closures over small numpy state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .._common.neighbours import spatial_order
from ._core_linker import CoreLinker
from ._frames import ANSWER, HALO, LINK, NODE_SHIFT, OWN, PART, QUERY, feature_names, features_of
from ._kernels import (
    COUNT_LEAF_SIZE,
    TIE_BAND,
    count_own,
    count_within,
    local_clusters,
    nearest_core,
    nearest_listed_core,
    nearest_within,
)
from ._partitioning import BoxPartitioner, leaves_of
from ._thinning import distance_to_sampled, thinning_hash

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


# Rows per pandas frame a box kernel yields (bounds the Arrow conversion's copy).
OUTPUT_ROWS = 131_072


def router(
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
            X = features_of(batch, d)
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


def visit_router(partitioner: BoxPartitioner, keys: np.ndarray, eps: float, d: int) -> Any:
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
            X = features_of(batch, d)
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


def by_box(df: DataFrame, n_parts: int) -> DataFrame:
    """Each box in its own task, its own rows first (kind OWN sorts first): a box kernel
    builds its structures from its own rows, then streams the rest through them."""
    return df.repartition(n_parts, PART).sortWithinPartitions(PART, "kind")


class BoxWork:
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
    """Run box kernels over a partition sorted by (PART, kind) (see ``by_box``).

    ``open_box(part, own_rows)`` builds a :class:`BoxWork` from all of a box's
    own rows; the box's other rows then stream through it. A partition normally
    holds one box (``partition_keys``); several are handled one after another.
    """
    current: int | None = None
    done: set[int] = set()
    owned: list[pd.DataFrame] = []
    box: BoxWork | None = None

    def opened() -> BoxWork:
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


# whole: a factory: most lines are the nested class and run() that Spark ships to the executors as
# one closure
def box_pass(
    partitioner: BoxPartitioner,
    keys: np.ndarray,
    eps: float,
    min_samples: int,
    d: int,
    thin_rate: float,
    chunk_rows: int,
) -> Any:
    """mapInPandas over ``by_box`` rows: each box's own rows with their core flags, local
    clusters and nearest own cores (``box_rows_schema``)."""

    class CorePass(BoxWork):
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
            self.X = features_of(self.own, d) if len(own) else np.empty((0, d))
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
            self.edge = edge[spatial_order(self.X[edge])]  # see _common.neighbours

        def process(self, chunk: pd.DataFrame) -> Iterator[pd.DataFrame]:
            rows = self.edge[self.counts[self.edge] < min_samples]
            if rows.size:
                halo = features_of(chunk, d)
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


# whole: a factory: most lines are the nested class and run() that Spark ships to the executors as
# one closure
def link_pass(eps: float, d: int, chunk_rows: int) -> Any:
    """mapInPandas over ``by_box`` visit rows: the links from other boxes' core points to
    each box's local clusters (``CoreLinker``), and the nearest own core of other boxes'
    non-core rows where it is nearer than theirs (``FOUND_SCHEMA``)."""

    class LinkPass(BoxWork):
        def __init__(self, part: int, own: pd.DataFrame) -> None:
            super().__init__(chunk_rows)
            X = features_of(own, d) if len(own) else np.empty((0, d))
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
                a, b = self.linker.links(
                    features_of(halo, d), halo["node"].to_numpy(dtype=np.int64)
                )
                self.a.append(a)
                self.b.append(b)
            queries = chunk[kind == QUERY]
            if len(queries):
                nearest, dist = nearest_within(
                    features_of(queries, d), self.linker.cores, eps, tree=self.linker.tree
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


def labeller(keys: np.ndarray, labels: np.ndarray, out_col: str) -> Any:
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


def assign_kernel(eps: float, d: int) -> Any:
    def kernel(rows: pd.DataFrame, cores: pd.DataFrame) -> pd.DataFrame:
        X = features_of(rows, d)
        labels, is_core = nearest_core(
            X, features_of(cores, d), cores["label"].to_numpy(dtype=np.int64), eps
        )
        out = rows[feature_names(d)].reset_index(drop=True)
        out["prediction"] = labels.astype(np.int32)
        out["is_core"] = is_core
        return out

    return kernel
