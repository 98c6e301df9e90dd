"""The benchmark data the clustering issues name, made the same way in every benchmark.

An 8-dimensional mixture of 5 Gaussian blobs (centres uniform in [-6, 6]^8, standard
deviations 0.3, 0.5, 0.8, 1.2, 0.4, weights 0.35, 0.25, 0.20, 0.15, 0.05) plus 2% uniform
noise in [-8, 8]^8. The skewed variant puts half the points in the first (tightest) blob.

``blob_mixture`` makes the data in numpy (for the references); ``write_blob_mixture`` writes
it to Parquet in blocks, so 10,000,000 points never sit in one process's memory at once.
Both give the same rows for the same (n, seed, skewed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

DIMENSIONS = 8
STDS = np.array([0.3, 0.5, 0.8, 1.2, 0.4])
WEIGHTS = np.array([0.35, 0.25, 0.20, 0.15, 0.05])
SKEWED_WEIGHTS = np.array([0.50, 0.20, 0.15, 0.10, 0.05])
NOISE_SHARE = 0.02
BLOCK = 1_000_000


def centres(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-6, 6, size=(len(STDS), DIMENSIONS))


def _block(start: int, stop: int, seed: int, skewed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows start..stop: the features and the true blob (-1 for uniform noise)."""
    rng = np.random.default_rng([seed, start])
    n = stop - start
    weights = SKEWED_WEIGHTS if skewed else WEIGHTS
    truth = rng.choice(len(STDS), size=n, p=weights)
    noise = rng.random(n) < NOISE_SHARE
    truth[noise] = -1
    X = centres(seed)[truth] + rng.standard_normal((n, DIMENSIONS)) * STDS[truth][:, None]
    X[noise] = rng.uniform(-8, 8, size=(int(noise.sum()), DIMENSIONS))
    return X, truth


def blocks(n: int, seed: int = 0, skewed: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, n, BLOCK):
        yield _block(start, min(n, start + BLOCK), seed, skewed)


def blob_mixture(n: int, seed: int = 0, skewed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(X, truth) for n points; truth is the blob index, -1 for the uniform noise."""
    parts = list(blocks(n, seed, skewed))
    return np.vstack([x for x, _ in parts]), np.concatenate([t for _, t in parts])


def write_blob_mixture(path: Path, n: int, seed: int = 0, skewed: bool = False) -> Path:
    """Parquet with columns id (long), features (array<double>), truth (int), block by block."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    start = 0
    for i, (X, truth) in enumerate(blocks(n, seed, skewed)):
        features = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), DIMENSIONS).cast(
            pa.list_(pa.float64())
        )
        ids = pa.array(np.arange(start, start + len(X), dtype=np.int64))
        pq.write_table(
            pa.table({"id": ids, "features": features, "truth": pa.array(truth.astype(np.int32))}),
            path / f"part-{i:05d}.parquet",
        )
        start += len(X)
    return path
