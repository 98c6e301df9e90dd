"""The k search of Hierarchical and KMeans: the k with the highest silhouette, coarse to fine.

Scoring every k of a wide range costs one clustering and one silhouette per k,
so a range of 2..100 is not scored in full. The search first scores a coarse
grid: every k when the range is short, else a geometric one (each k about
:data:`GRID_RATIO` times the one before, both ends included), which is dense at
small k where one more segment changes the most. It then narrows in on the best
k: while an unscored k lies between the best and its nearest scored
neighbours, it scores the midpoints of those gaps. For 2..100 that is about 30
clusterings instead of 99, and a silhouette peak at any k of the range is found
when the curve rises towards it from the grid points around it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn import config_context

from custseg.errors import ParameterError

#: A k may hold at most this many segments below ``min_segment_size``: room for outlier
#: groups (the seed analysis has two single-customer segments), not for a k that only
#: splits customers into fragments too small to act on.
MAX_SMALL_SEGMENTS = 2
#: Ranges of up to this many k are scored in full.
FULL_GRID_MAX = 16
#: The ratio between neighbouring k of the coarse grid of a wider range.
GRID_RATIO = 1.2
# Distance chunks of the silhouette (scikit-learn's default is 1 GB).
_SILHOUETTE_MEMORY_MB = 128


def k_grid(low: int, high: int) -> list[int]:
    """The coarse grid over ``low..high`` (both included): every k, or a geometric grid."""
    if high - low + 1 <= FULL_GRID_MAX:
        return list(range(low, high + 1))
    grid = [low]
    while grid[-1] < high:
        grid.append(min(high, max(grid[-1] + 1, round(grid[-1] * GRID_RATIO))))
    return grid


# whole: the coarse-to-fine search shares scores, skipped and labels with its nested visit(); split,
# that state would travel through every piece
def choose_k_by_silhouette(
    X: np.ndarray,
    labels_for_k: Callable[[int], np.ndarray],
    k_range: tuple[int, int],
    sample_size: int,
    random_state: int,
    param_name: str = "k_range",
    min_segment_size: int = 1,
) -> tuple[int, dict[int, float], np.ndarray, list[int]]:
    """The k in ``k_range`` (both ends included) with the highest silhouette, coarse to fine.

    A k whose clusters include more than :data:`MAX_SMALL_SEGMENTS` below
    ``min_segment_size`` rows is not a candidate (it is returned in the list of
    skipped k). Above ``sample_size`` rows the silhouette is computed on one
    seeded sample, the same for every k so the scores are comparable. Ties go
    to the smaller k. Returns ``(best_k, {k: score}, labels at best_k, skipped k)``;
    the scores hold only the k the search visited.
    """
    # lazy: sklearn.metrics is slow to import; loaded on the first fit, not by import
    # custseg.cluster
    from sklearn.metrics import silhouette_score

    n = X.shape[0]
    low, high = k_range
    if low > n - 1:
        raise ParameterError(
            f"{param_name} starts at {low}, but choosing k by silhouette needs k <= the number "
            f"of customers minus one ({n - 1})"
        )
    high = min(high, n - 1)
    if n > sample_size:
        rng = np.random.default_rng(random_state)
        idx = np.sort(rng.choice(n, size=sample_size, replace=False))
    else:
        idx = np.arange(n)
    Xs = X[idx]
    scores: dict[int, float] = {}
    skipped: list[int] = []
    visited: set[int] = set()
    best_labels: dict[int, np.ndarray] = {}

    def visit(k: int) -> None:
        visited.add(k)
        labels = labels_for_k(k)
        sizes = np.unique(labels, return_counts=True)[1]
        if int((sizes < min_segment_size).sum()) > MAX_SMALL_SEGMENTS:
            skipped.append(k)
            return
        sample_labels = labels[idx]
        n_distinct = np.unique(sample_labels).size
        if n_distinct < 2 or n_distinct > Xs.shape[0] - 1:
            return  # silhouette undefined (ties collapsed clusters, or sample too small)
        with config_context(working_memory=_SILHOUETTE_MEMORY_MB):
            scores[k] = float(silhouette_score(Xs, sample_labels))
        if k == _best(scores):
            best_labels.clear()  # keep only the best k's labels
            best_labels[k] = labels

    for k in k_grid(low, high):
        visit(k)
    while scores:
        best = _best(scores)
        below = [k for k in visited if k < best]
        above = [k for k in visited if k > best]
        gaps = [(max(below), best)] if below else []
        gaps += [(best, min(above))] if above else []
        midpoints = [(a + b) // 2 for a, b in gaps if b - a > 1]
        if not midpoints:
            break
        for k in midpoints:
            visit(k)
    if not scores:
        return low, scores, labels_for_k(low), sorted(skipped)
    best = _best(scores)
    return best, dict(sorted(scores.items())), best_labels[best], sorted(skipped)


def _best(scores: dict[int, float]) -> int:
    """The k with the highest score; ties go to the smaller k."""
    return max(scores, key=lambda k: (scores[k], -k))
