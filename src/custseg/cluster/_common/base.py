"""Pieces shared by the single-node estimators.

- :class:`BaseClusterer`: the scikit-learn shaped base (``fit_predict``,
  ``get_params``, ``to_dict`` / ``from_dict`` plumbing).
- :func:`relabel_by_size`: labels 0..k-1 ordered by decreasing cluster size.
- :func:`thread_map`: chunked tree queries on all cores (scikit-learn's
  trees release the GIL).
- :class:`RowLookup`: exact lookup of training rows, so that predicting the
  training data gives back the training labels for methods whose rule for new
  points (nearest centroid, approximate_predict) differs from their fit.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from custseg.errors import ModelError, ParameterError

from .validation import check_features, check_n_features

FORMAT_VERSION = 1
_PREDICT_CHUNK = 65_536
_MIN_THREADED_ROWS = 20_000

C = TypeVar("C", bound="BaseClusterer")
T = TypeVar("T")


def n_threads() -> int:
    """Threads for the driver-side kernels (scikit-learn's trees release the GIL)."""
    return max(1, os.cpu_count() or 1)


def thread_map(fn: Callable[[int, int], T], bounds: Sequence[tuple[int, int]]) -> Iterator[T]:
    """``fn(start, stop)`` for each chunk, in order, at most ``n_threads()`` chunks in flight.

    Below ``_MIN_THREADED_ROWS`` rows in all it runs inline: threads would cost
    more than they save (and Spark tasks, which score ~10,000-row batches,
    keep to their one core).
    """
    workers = min(n_threads(), len(bounds))
    if workers <= 1 or bounds[-1][1] - bounds[0][0] < _MIN_THREADED_ROWS:
        for start, stop in bounds:
            yield fn(start, stop)
        return
    with ThreadPoolExecutor(workers) as pool:
        for i in range(0, len(bounds), workers):
            yield from pool.map(lambda b: fn(*b), bounds[i : i + workers])


def even_chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``[(0, size), (size, 2 size), ...]`` covering ``range(n)``."""
    return [(start, min(n, start + size)) for start in range(0, n, max(1, size))]


class BaseClusterer:
    """Base of the single-node estimators: parameters in ``__init__``, results after ``fit``."""

    method: ClassVar[str] = ""

    # -- scikit-learn conventions -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: C, **params: Any) -> C:
        """Set constructor parameters, as scikit-learn's ``set_params``."""
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ParameterError(
                    f"{type(self).__name__} has no parameter {key!r}; accepted: {', '.join(valid)}"
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def fit(self: C, X: Any, y: Any = None) -> C:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return ``labels_`` (noise = -1)."""
        return self.fit(X).labels_

    def validate_params(self) -> None:
        """Check the parameters alone (no data); raises ParameterError."""
        raise NotImplementedError  # pragma: no cover

    def check_data_size(self, n_rows: int) -> None:
        """Check the parameters against the number of customers; raises ParameterError."""

    def core_neighbours(self) -> int:
        """Neighbours per row the exact fit keeps in memory (its size estimate, ``engine``)."""
        return 0

    def params_for_sample(self, ratio: float) -> dict[str, Any]:
        """This fitted model's parameters for the exact fit of a sample ``ratio`` times smaller
        (the agreement estimate of ``engine``): the same number of clusters, or the same
        density."""
        return self.get_params()

    # -- fitted state ----------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise ModelError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def _check_predict_input(self, X: Any) -> np.ndarray:
        self._check_fitted()
        arr = check_features(X)
        check_n_features(arr, self.n_features_in_)
        return arr

    def predict(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_outputs(self, X: np.ndarray) -> tuple[np.ndarray, ...]:
        """The columns a Spark model's transform adds, in order (here: the label)."""
        return (self.predict(X),)

    # -- persistence -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """What ``predict`` needs, as numpy arrays and JSON-able values (no training data
        needed)."""
        self._check_fitted()
        out: dict[str, Any] = {
            "method": self.method,
            "format_version": FORMAT_VERSION,
            "params": _jsonable(self.get_params()),
            "n_features_in": int(self.n_features_in_),
        }
        out.update(self._state_to_dict())
        if hasattr(self, "fit_report_"):  # set by the Spark estimators: which engine fitted
            out["fit_report"] = _jsonable(self.fit_report_)
        return out

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Rebuild a fitted estimator from :meth:`to_dict`'s output."""
        method = data.get("method")
        if method != cls.method:
            raise ModelError(
                f"{cls.__name__}.from_dict got a {method!r} model, expected {cls.method!r}"
            )
        version = int(data.get("format_version", -1))
        if version > FORMAT_VERSION:
            raise ModelError(
                f"model format version {version} is newer than this custseg reads "
                f"({FORMAT_VERSION})"
            )
        params = dict(data["params"])
        for key, value in list(params.items()):
            if isinstance(value, list):  # JSON turns tuples into lists
                params[key] = tuple(value)
        obj = cls(**params)
        obj.n_features_in_ = int(data["n_features_in"])
        obj._state_from_dict(data)
        if "fit_report" in data:
            obj.fit_report_ = dict(data["fit_report"])
        return obj

    def _state_to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _state_from_dict(self, data: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    n_features_in_: int
    labels_: np.ndarray


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def warn_fewer_clusters(found: int, asked: int, param: str) -> None:
    """Warn, as scikit-learn's KMeans does (ConvergenceWarning), that the data held fewer
    distinct clusters than asked: the model reports the ``found`` it really has."""

    warnings.warn(
        f"Number of distinct clusters ({found}) found smaller than {param} ({asked}): "
        "the data has fewer distinct customers or groups; the model keeps the clusters found",
        ConvergenceWarning,
        stacklevel=3,
    )


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Labels 0..k-1 by decreasing cluster size (ties: first appearance); -1 stays -1."""
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, dtype=np.int64)
    valid = labels >= 0
    if not valid.any():
        return out
    uniq, first, counts = np.unique(labels[valid], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    mapping = np.empty(uniq.size, dtype=np.int64)
    mapping[order] = np.arange(uniq.size)
    out[valid] = mapping[np.searchsorted(uniq, labels[valid])]
    return out


def centroids(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean of each cluster 0..k-1."""
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, labels, X)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    return sums / counts[:, None]


def nearest_centroid(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each row, in chunks (memory ~ chunk x k)."""
    out = np.empty(X.shape[0], dtype=np.int64)
    sq_centers = np.einsum("ij,ij->i", centers, centers)
    for start in range(0, X.shape[0], _PREDICT_CHUNK):
        block = X[start : start + _PREDICT_CHUNK]
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2 ; ||x||^2 is constant per row.
        d = sq_centers[None, :] - 2.0 * block @ centers.T
        out[start : start + block.shape[0]] = np.argmin(d, axis=1)
    return out


class RowLookup:
    """Exact lookup of training rows: ``find(X)`` -> (found mask, training label).

    Rows are compared byte for byte (after -0.0 -> 0.0), so a customer whose
    features did not change gets its training label back.
    """

    def __init__(self, X: np.ndarray, labels: np.ndarray) -> None:
        X = np.ascontiguousarray(X, dtype=np.float64) + 0.0
        keys = _row_keys(X)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._labels = np.asarray(labels, dtype=np.int64)[order]

    def find(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._keys.size == 0:
            return np.zeros(X.shape[0], dtype=bool), np.full(X.shape[0], -1, dtype=np.int64)
        keys = _row_keys(np.ascontiguousarray(X, dtype=np.float64) + 0.0)
        pos = np.minimum(np.searchsorted(self._keys, keys), self._keys.size - 1)
        found = self._keys[pos] == keys
        return found, np.where(found, self._labels[pos], -1)


def _row_keys(X: np.ndarray) -> np.ndarray:
    return X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
