"""Cluster quality figures for the method comparison.

Internal scores (silhouette, Davies-Bouldin, Calinski-Harabasz) are computed on
the non-noise customers of one seeded sample, so they cost the same at any
size and every method is scored on the same rows. Stability is the mean
adjusted Rand index between the full fit and refits on bootstrap subsamples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from custseg.config import SegmentConfig

NAN = float("nan")
# The configured default (segment.silhouette_sample), for callers that pass none.
DEFAULT_SAMPLE_SIZE: int = SegmentConfig.model_fields["silhouette_sample"].default


def sample_indices(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample of at most ``size`` rows (all rows when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def cluster_metrics(
    X: np.ndarray,
    labels: np.ndarray,
    truth: np.ndarray | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> dict[str, float]:
    """Clusters found, noise and largest-cluster shares, internal scores, ARI against truth."""

    labels = np.asarray(labels)
    n = labels.size
    clustered = labels >= 0
    sizes = np.bincount(labels[clustered]) if clustered.any() else np.array([], dtype=int)
    sizes = sizes[sizes > 0]
    out: dict[str, float] = {
        "n_clusters": float(sizes.size),
        "noise_share": float(1.0 - clustered.mean()) if n else NAN,
        "largest_share": float(sizes.max() / n) if sizes.size else 0.0,
        "silhouette": NAN,
        "davies_bouldin": NAN,
        "calinski_harabasz": NAN,
        "ari_truth": NAN,
    }
    idx = sample_indices(n, sample_size, seed)
    keep = idx[clustered[idx]]
    if keep.size >= 3 and 2 <= np.unique(labels[keep]).size <= keep.size - 1:
        Xs, ls = X[keep], labels[keep]
        out["silhouette"] = float(silhouette_score(Xs, ls))
        out["davies_bouldin"] = float(davies_bouldin_score(Xs, ls))
        out["calinski_harabasz"] = float(calinski_harabasz_score(Xs, ls))
    if truth is not None:
        # Noise counts as one more group: a method that calls everything noise scores 0.
        out["ari_truth"] = float(adjusted_rand_score(truth, labels))
    return out


def stability(
    refit: Callable[[np.ndarray, int], np.ndarray],
    X: np.ndarray,
    labels: np.ndarray,
    bootstraps: int,
    seed: int,
    fraction: float = 0.8,
    max_points: int = 5_000,
) -> float:
    """Mean ARI between ``labels`` and refits on ``bootstraps`` random subsamples.

    ``refit(X_sub, b)`` returns the labels of a fresh fit on ``X_sub``. Subsamples
    are drawn without replacement (duplicated rows would inflate densities).
    """

    if bootstraps <= 0:
        return NAN
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    size = max(2, min(int(n * fraction), max_points))
    if size >= n and n > 2:
        size = n - 1
    scores = []
    for b in range(bootstraps):
        idx = np.sort(rng.choice(n, size=size, replace=False))
        try:
            sub = refit(X[idx], b)
        except ValueError:  # e.g. a subsample smaller than min_samples
            continue
        scores.append(adjusted_rand_score(labels[idx], sub))
    return float(np.mean(scores)) if scores else NAN


def finite_or_none(value: Any) -> Any:
    """NaN -> None for tables and JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
