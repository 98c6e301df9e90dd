"""Partition equality for clustering tests: the same groups whatever the cluster numbers.

Two label arrays describe the same partition when the noise points (negative labels) are
the same points and the other clusters match one to one after relabelling. Test files in
tests/cluster import it as ``from partitions import same_partition`` (pytest puts this
folder on ``sys.path``, as it does for ``engine_harness``).
"""

from __future__ import annotations

import numpy as np


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` have the same noise and the same clusters up to relabelling.

    >>> same_partition(np.array([0, 0, 1, -1]), np.array([5, 5, 2, -1]))
    True
    >>> same_partition(np.array([0, 0, 1, -1]), np.array([5, 5, 2, 3]))
    False
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or not np.array_equal(a < 0, b < 0):
        return False
    kept = a >= 0
    pairs = set(zip(a[kept].tolist(), b[kept].tolist(), strict=True))
    return len(pairs) == len(set(a[kept].tolist())) == len(set(b[kept].tolist()))


def assert_same_partition(expected: np.ndarray, got: np.ndarray) -> None:
    """Fail, showing both label sets' sizes, unless ``same_partition(expected, got)``."""
    expected, got = np.asarray(expected), np.asarray(got)
    assert same_partition(expected, got), (
        f"different partitions: expected {len(set(expected[expected >= 0].tolist()))} clusters "
        f"and {int((expected < 0).sum())} noise points, got "
        f"{len(set(got[got >= 0].tolist()))} clusters and {int((got < 0).sum())} noise points"
    )
