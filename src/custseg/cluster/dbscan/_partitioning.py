"""Step 1 of the distributed DBSCAN: the spatial boxes, chosen on the driver (numpy).

k-d splits of a bounded sample into boxes of balanced counts, cut where the fewest
sample points lie within eps of the cut; how many boxes, measured against the
session's task slots; and one partition key per box so that each box gets its own task.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from ._kernels import TIE_BAND

# Rows x boxes x dimensions per chunk when finding the boxes near rows (~64 MB of doubles).
LOAD_CHUNK_CELLS = 8_000_000


# Splits finer than partitionRows asks for are measured up to this many boxes per task slot.
BOXES_PER_SLOT = 4


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
    """Box counts worth measuring: ``min_leaves`` x 1, 2, 4, ... up to ``BOXES_PER_SLOT`` per
    slot."""
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


def leaves_of(keys: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """The box (leaf) number of each PART value (``keys`` holds each box's PART key)."""
    by_key = np.argsort(keys)
    return by_key[np.searchsorted(keys[by_key], parts)].astype(np.int32)
