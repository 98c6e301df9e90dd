"""Parameter and input checks shared by the clustering estimators.

Every check raises :class:`custseg.errors.ParameterError` with a message that
names the parameter, the accepted range and the value received, so that the
CLI can print it as one line ("eps must be > 0, got -1.0").
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from custseg.errors import ParameterError


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(name: str, value: Any) -> float:
    """A finite real number > 0 (eps)."""
    if not _is_real(value) or not np.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be > 0, got {value!r}")
    return float(value)


def check_int(name: str, value: Any, minimum: int) -> int:
    """An integer >= ``minimum`` (min_samples, n_clusters, ...)."""
    if not _is_int(value) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_optional_int(name: str, value: Any, minimum: int) -> int | None:
    """``None`` or an integer >= ``minimum``."""
    if value is None:
        return None
    if not _is_int(value) or value < minimum:
        raise ParameterError(f"{name} must be None or an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """One of a fixed set of strings (linkage)."""
    if value not in choices:
        accepted = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{name} must be one of {accepted}, got {value!r}")
    return str(value)


def check_k_range(name: str, value: Any) -> tuple[int, int]:
    """A pair ``(low, high)`` of integers with ``2 <= low <= high`` (both ends included)."""
    try:
        pair = tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else None
    except TypeError:
        pair = None
    if (
        pair is None
        or len(pair) != 2
        or not all(_is_int(v) for v in pair)
        or pair[0] < 2
        or pair[1] < pair[0]
    ):
        raise ParameterError(
            f"{name} must be a pair (low, high) of integers with 2 <= low <= high, got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def check_not_above_rows(name: str, value: int, n_rows: int) -> None:
    """A data-dependent bound: "min_samples (50) exceeds the number of customers (25)"."""
    if value > n_rows:
        raise ParameterError(f"{name} ({value}) exceeds the number of customers ({n_rows})")


def check_features(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a C-contiguous float64 matrix of customers x features, all finite.

    NaN or infinite values are refused (with how many rows hold them) rather than
    silently dropped: a row dropped here would be a customer without a segment.
    """
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"{name} must be a numeric matrix (customers x features): {exc}"
        ) from None
    if arr.ndim != 2:
        raise ParameterError(
            f"{name} must be 2-D (customers x features), got an array of shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ParameterError(f"{name} has no rows (customers)")
    if arr.shape[1] == 0:
        raise ParameterError(f"{name} has no columns (features)")
    finite = np.isfinite(arr)
    if not finite.all():
        names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        refuse_non_finite(
            name, int((~finite.all(axis=1)).sum()), arr.shape[0], (~finite).sum(axis=0), names
        )
    # +0.0 turns -0.0 into 0.0, so byte-wise lookups of training rows are exact.
    return np.ascontiguousarray(arr) + 0.0


def refuse_non_finite(
    name: str,
    bad_rows: int,
    n_rows: int,
    bad_per_feature: Sequence[int],
    feature_names: Sequence[str] | None = None,
) -> None:
    """Raise the one-line error for NaN / infinite features, naming the columns that hold them.

    ``bad_per_feature[j]``: rows whose feature j is NaN or infinite; the features are
    named by ``feature_names`` when known (a DataFrame's columns, a vector's ML
    attributes), else by position.
    """
    bad = [(j, int(n)) for j, n in enumerate(bad_per_feature) if n]
    if feature_names is not None and len(feature_names) != len(bad_per_feature):
        feature_names = None
    shown = [
        f"{feature_names[j]!r}: {n}" if feature_names else f"feature {j}: {n}" for j, n in bad[:3]
    ]
    more = f", and {len(bad) - 3} more features" if len(bad) > 3 else ""
    raise ParameterError(
        f"{name} holds NaN or infinite values in {bad_rows} of {n_rows} rows "
        f"({', '.join(shown)}{more}); impute or drop them before clustering"
    )


def check_n_features(X: np.ndarray, expected: int) -> None:
    """New data must have the features the model was fitted on."""
    if X.shape[1] != expected:
        raise ParameterError(
            f"X has {X.shape[1]} features, but the model was fitted on {expected} features"
        )


def check_k_fits(name: str, k: int | None, k_range: tuple[int, int], n_rows: int) -> None:
    """A given k must not exceed the customers; a searched range must start below them."""
    if k is not None:
        check_not_above_rows(name, k, n_rows)
        return
    low = check_k_range("k_range", k_range)[0]
    if low > n_rows - 1:
        raise ParameterError(
            f"k_range starts at {low}, but choosing k by silhouette needs k <= the number "
            f"of customers minus one ({n_rows - 1})"
        )
