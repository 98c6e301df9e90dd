"""Bad parameters and bad input: ParameterError naming the parameter, the range and the value."""

from __future__ import annotations

import re

import numpy as np
import pytest

from custseg.cluster import (
    DBSCAN,
    HDBSCAN,
    Hierarchical,
    KMeans,
    k_distance_curve,
    knee_point,
)
from custseg.errors import ParameterError

X25 = np.random.default_rng(0).normal(size=(25, 3))

BAD = [
    (DBSCAN, {"eps": -1.0}, "eps must be > 0, got -1.0"),
    (DBSCAN, {"eps": 0}, "eps must be > 0, got 0"),
    (DBSCAN, {"eps": float("nan")}, "eps must be > 0, got nan"),
    (DBSCAN, {"eps": "0.5"}, "eps must be > 0, got '0.5'"),
    (DBSCAN, {"eps": 0.5, "min_samples": 0}, "min_samples must be an integer >= 1, got 0"),
    (DBSCAN, {"eps": 0.5, "min_samples": 2.5}, "min_samples must be an integer >= 1, got 2.5"),
    (DBSCAN, {"eps": 0.5, "min_samples": True}, "min_samples must be an integer >= 1, got True"),
    (
        DBSCAN,
        {"eps": 0.5, "min_samples": 50},
        "min_samples (50) exceeds the number of customers (25)",
    ),
    (Hierarchical, {"n_clusters": 30}, "n_clusters (30) exceeds the number of customers (25)"),
    (Hierarchical, {"n_clusters": 0}, "n_clusters must be None or an integer >= 1, got 0"),
    (
        Hierarchical,
        {"linkage": "centroid"},
        "linkage must be one of 'ward', 'complete', 'average', 'single', got 'centroid'",
    ),
    (
        Hierarchical,
        {"k_range": (5, 3)},
        "k_range must be a pair (low, high) of integers with 2 <= low <= high, got (5, 3)",
    ),
    (Hierarchical, {"k_range": (1, 3)}, "got (1, 3)"),
    (Hierarchical, {"k_range": 4}, "got 4"),
    (
        Hierarchical,
        {"k_range": (30, 40)},
        "k_range starts at 30, but choosing k by silhouette needs k <= the number of customers"
        " minus one (24)",
    ),
    (Hierarchical, {"silhouette_sample": 1}, "silhouette_sample must be an integer >= 2, got 1"),
    (KMeans, {"k": 30}, "k (30) exceeds the number of customers (25)"),
    (KMeans, {"k": -2}, "k must be None or an integer >= 1, got -2"),
    (KMeans, {"n_init": 0}, "n_init must be an integer >= 1, got 0"),
    (KMeans, {"k_range": (2,)}, "k_range must be a pair"),
    (HDBSCAN, {"min_cluster_size": 1}, "min_cluster_size must be an integer >= 2, got 1"),
    (
        HDBSCAN,
        {"min_cluster_size": 50},
        "min_cluster_size (50) exceeds the number of customers (25)",
    ),
    (HDBSCAN, {"min_samples": 0}, "min_samples must be None or an integer >= 2, got 0"),
    (
        HDBSCAN,
        {"min_cluster_size": 5, "min_samples": 26},
        "min_samples (26) exceeds the number of customers (25)",
    ),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"), BAD, ids=[f"{c.__name__}-{k}" for c, k, _ in BAD]
)
def test_bad_parameters(cls: type, kwargs: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        cls(**kwargs).fit(X25)


def test_parameter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="eps"):
        DBSCAN(eps=-1.0).fit(X25)


def test_parameters_checked_before_the_data() -> None:
    """A bad parameter is reported even when the data is bad too."""
    with pytest.raises(ParameterError, match="eps must be > 0"):
        DBSCAN(eps=-1.0).fit([[np.nan]])


BAD_X = [
    (
        np.vstack([X25[:10], [[np.nan, 0, 0]], X25[10:], [[0, np.inf, 0]]]),
        "NaN or infinite values in 2 of 27 rows (feature 0: 1, feature 1: 1)",
    ),
    (np.zeros((0, 3)), "X has no rows"),
    (np.zeros((5, 0)), "X has no columns"),
    (np.zeros(5), "X must be 2-D (customers x features), got an array of shape (5,)"),
    ([["a", "b"]], "X must be a numeric matrix"),
]


@pytest.mark.parametrize(
    "cls_kwargs",
    [
        (DBSCAN, {"eps": 0.5, "min_samples": 2}),
        (Hierarchical, {}),
        (KMeans, {}),
        (HDBSCAN, {"min_cluster_size": 2}),
    ],
    ids=lambda c: c[0].__name__,
)
@pytest.mark.parametrize(
    ("X", "message"), BAD_X, ids=["nan", "no-rows", "no-cols", "1-d", "strings"]
)
def test_bad_input(cls_kwargs: tuple[type, dict], X: object, message: str) -> None:
    cls, kwargs = cls_kwargs
    with pytest.raises(ParameterError, match=re.escape(message)):
        cls(**kwargs).fit(X)


@pytest.mark.parametrize(
    "model",
    [
        DBSCAN(eps=1.0, min_samples=2),
        Hierarchical(n_clusters=2),
        KMeans(k=2),
        HDBSCAN(min_cluster_size=5),
    ],
    ids=lambda m: type(m).__name__,
)
def test_predict_checks_features(model: object) -> None:
    model.fit(X25)  # type: ignore[attr-defined]
    with pytest.raises(
        ParameterError, match=re.escape("X has 2 features, but the model was fitted on 3 features")
    ):
        model.predict(np.zeros((4, 2)))  # type: ignore[attr-defined]
    with pytest.raises(ParameterError, match="NaN or infinite values in 1 of 2 rows"):
        model.predict([[0.0, 0.0, 0.0], [np.nan, 0.0, 0.0]])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: k_distance_curve(X25, 0), "k must be an integer >= 1, got 0"),
        (lambda: k_distance_curve(X25, 26), "k (26) exceeds the number of customers (25)"),
        (lambda: knee_point([]), "curve must hold at least one value"),
        (lambda: knee_point([0.1, np.nan]), "curve holds 1 NaN or infinite values"),
        (lambda: knee_point([3.0, 1.0]), "curve must be sorted ascending"),
    ],
    ids=["k-zero", "k-above-n", "empty", "nan", "unsorted"],
)
def test_diagnostics_bad_input(call: object, message: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        call()  # type: ignore[operator]


def test_set_params_unknown() -> None:
    with pytest.raises(ParameterError, match="DBSCAN has no parameter 'epsilon'"):
        DBSCAN(eps=1.0).set_params(epsilon=2.0)
    assert DBSCAN(eps=1.0).set_params(eps=2.0).get_params() == {"eps": 2.0, "min_samples": 10}
