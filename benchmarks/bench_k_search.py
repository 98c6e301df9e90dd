"""The k search (issue 20): coarse to fine over 2..100 against every k over 2..50, the
search it replaced, on the tuning sample of 10^6 customers.

    .venv/bin/python benchmarks/bench_k_search.py
    .venv/bin/python benchmarks/bench_k_search.py --rows 100000 --methods kmeans

Above ``segment.max_driver_customers`` (100,000) the segment stage tunes on a sample of
that many customers, so 100,000 rows is what the search sees at 10^6 customers. Data:
the benchmarks' 8-d mixture of 5 blobs with 2% noise (``_data.py``) and, to show the
search reaching far, 100 separated 2-d blobs. Each line: the k chosen, how many k were
scored, and the time of the new search against the old one, as a ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import _record  # noqa: E402
from _data import blob_mixture  # noqa: E402


def grid_blobs(n: int) -> np.ndarray:
    from sklearn.datasets import make_blobs

    grid = np.stack(np.meshgrid(np.arange(10), np.arange(10)), -1).reshape(-1, 2) * 10.0
    return make_blobs(n_samples=n, centers=grid, cluster_std=1.0, random_state=0)[0]


def search(method: str, X: np.ndarray, high: int, every_k: bool) -> tuple[int, int, float]:
    from custseg.cluster import Hierarchical, KMeans
    from custseg.cluster._common import k_search as _k_search

    saved = _k_search.FULL_GRID_MAX
    _k_search.FULL_GRID_MAX = 10**9 if every_k else saved  # every k: the old linear search
    try:
        cls = Hierarchical if method == "hierarchical" else KMeans
        started = time.perf_counter()
        model = cls(k_range=(2, high), min_segment_size=max(2, len(X) // 100)).fit(X)
        seconds = time.perf_counter() - started
    finally:
        _k_search.FULL_GRID_MAX = saved
    return model.n_clusters_, len(model.silhouette_by_k_) + len(model.skipped_k_), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--methods", default="kmeans,hierarchical")
    _record.add_argument(parser)
    args = parser.parse_args()
    data = {"blobs_8d": blob_mixture(args.rows)[0], "grid_100": grid_blobs(args.rows)}
    print(
        f"{'data':<10}{'method':<14}{'old: every k 2..50':>26}"
        f"{'new: coarse-fine 2..100':>30}{'ratio':>8}"
    )
    for name, X in data.items():
        for method in args.methods.split(","):
            old = search(method, X, 50, every_k=True)
            new = search(method, X, 100, every_k=False)
            print(
                f"{name:<10}{method:<14}"
                f"{f'k={old[0]}, {old[1]} k, {old[2]:.1f} s':>26}"
                f"{f'k={new[0]}, {new[1]} k, {new[2]:.1f} s':>30}"
                f"{new[2] / old[2]:>7.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    _record.run(main)
