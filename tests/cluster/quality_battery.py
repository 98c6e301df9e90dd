"""The quality battery: each Spark estimator's distributed path against the exact algorithm,
on data of many shapes, not Gaussian blobs only.

Every data set comes from what the package index installs: scikit-learn's bundled data
(iris, wine, breast cancer, digits: real tabular data) and its generators (non-convex
moons and circles, elongated clusters, varied densities, 50 and 100 clusters, 2 to 64
dimensions, duplicated rows). The Spark estimators are forced onto their distributed
path (``maxDriverRows=0``) whatever the size, so the battery measures the approximation
itself; the exact single-node estimator with the same parameters is the reference.

``tests/cluster/test_quality_floors.py`` runs a small subset with floors in CI;
``benchmarks/bench_quality.py`` runs all of it and prints one table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import datasets
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from custseg.cluster import (
    DBSCAN,
    HDBSCAN,
    Hierarchical,
    KMeans,
    SparkDBSCAN,
    SparkHDBSCAN,
    SparkHierarchical,
    SparkKMeans,
    k_distance_curve,
    knee_point,
)

METHODS = ("hdbscan", "hierarchical", "dbscan", "kmeans")


@dataclass
class Shape:
    name: str
    X: np.ndarray
    k: int  # the number of groups the data was made with (hierarchical and k-means cut at it)


def _standard(X: np.ndarray) -> np.ndarray:
    return StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))


def _grid_blobs(n: int, n_clusters: int, seed: int) -> tuple[np.ndarray, int]:
    side = int(np.ceil(np.sqrt(n_clusters)))
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)[:n_clusters]
    X, _ = datasets.make_blobs(n_samples=n, centers=grid * 10.0, cluster_std=1.2, random_state=seed)
    return X, n_clusters


def _varied(n: int, seed: int) -> np.ndarray:
    X, _ = datasets.make_blobs(
        n_samples=n, centers=4, cluster_std=[0.4, 1.0, 2.0, 0.7], random_state=seed
    )
    return X


def _elongated(n: int, seed: int) -> np.ndarray:
    X, _ = datasets.make_blobs(n_samples=n, centers=3, random_state=seed)
    return X @ np.array([[0.6, -0.64], [-0.41, 0.85]])


def _duplicated(n: int, seed: int) -> np.ndarray:
    X, _ = datasets.make_blobs(n_samples=n // 4, centers=5, n_features=3, random_state=seed)
    return np.repeat(X, 4, axis=0)  # every customer four times: exports with repeated rows


def _mixture_64(n: int, seed: int) -> np.ndarray:
    X, _ = datasets.make_blobs(
        n_samples=n, centers=12, n_features=64, cluster_std=4.0, random_state=seed
    )
    return X


def shapes(scale: int = 1, names: tuple[str, ...] | None = None) -> list[Shape]:
    """The battery; ``scale`` multiplies the generated sets' rows (1: a few thousand)."""
    s = scale
    makers: dict[str, Callable[[], Shape]] = {
        "iris": lambda: Shape("iris", _standard(datasets.load_iris().data), 3),
        "wine": lambda: Shape("wine", _standard(datasets.load_wine().data), 3),
        "breast_cancer": lambda: Shape(
            "breast_cancer", _standard(datasets.load_breast_cancer().data), 2
        ),
        "digits_64d": lambda: Shape("digits_64d", _standard(datasets.load_digits().data), 10),
        "moons": lambda: Shape(
            "moons", datasets.make_moons(2_000 * s, noise=0.06, random_state=0)[0], 2
        ),
        "circles": lambda: Shape(
            "circles",
            datasets.make_circles(2_000 * s, factor=0.5, noise=0.05, random_state=0)[0],
            2,
        ),
        "elongated": lambda: Shape("elongated", _elongated(3_000 * s, 170), 3),
        "varied_density": lambda: Shape("varied_density", _varied(3_000 * s, 4), 4),
        "duplicates": lambda: Shape("duplicates", _duplicated(2_000 * s, 7), 5),
        "mixture_64d": lambda: Shape("mixture_64d", _mixture_64(3_000 * s, 11), 12),
        "clusters_50": lambda: Shape("clusters_50", *_grid_blobs(10_000 * s, 50, 50)),
        "clusters_100": lambda: Shape("clusters_100", *_grid_blobs(20_000 * s, 100, 100)),
    }
    chosen = names if names is not None else tuple(makers)
    return [makers[name]() for name in chosen]


def parameters(method: str, shape: Shape) -> dict[str, Any]:
    """The same parameters for the exact and the distributed fit, chosen from the data."""
    n, d = shape.X.shape
    if method == "hdbscan":
        return {"min_cluster_size": max(5, round(0.2 * n / shape.k))}
    if method == "dbscan":
        min_samples = 2 * d
        eps = float(knee_point(k_distance_curve(shape.X, min_samples))[1])
        return {"eps": eps, "min_samples": min_samples}
    if method == "hierarchical":
        return {"n_clusters": shape.k}
    return {"k": shape.k}


EXACT = {"hdbscan": HDBSCAN, "hierarchical": Hierarchical, "dbscan": DBSCAN, "kmeans": KMeans}
SPARK = {
    "hdbscan": SparkHDBSCAN,
    "hierarchical": SparkHierarchical,
    "dbscan": SparkDBSCAN,
    "kmeans": SparkKMeans,
}


def self_agreement(method: str, shape: Shape, exact: np.ndarray, seeds: int = 3) -> float:
    """The lowest ARI of the exact algorithm with itself when a seeded 5% of the rows is
    dropped, over ``seeds`` draws.

    The ceiling of any approximation: where the exact answer flips under so small a change
    (Ward's top split of two moons), agreeing with it is luck, not quality.
    """
    import warnings

    n = len(shape.X)
    scores = []
    for seed in range(seeds):
        keep = np.sort(np.random.default_rng(seed).choice(n, int(0.95 * n), replace=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = EXACT[method](**parameters(method, shape)).fit(shape.X[keep]).labels_
        scores.append(adjusted_rand_score(exact[keep], again))
    return float(min(scores))


def compare(
    spark: Any,
    shape: Shape,
    method: str,
    measure: Callable[[], AbstractContextManager[Any]] | None = None,
) -> dict[str, Any]:
    """One row of the table: ARI of the distributed path against exact, noise shares, times."""
    import warnings

    params = parameters(method, shape)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = EXACT[method](**params).fit(shape.X).labels_
    exact_seconds = time.perf_counter() - started
    df = spark.createDataFrame([(row.tolist(),) for row in shape.X], ["features"]).cache()
    df.count()
    with (measure or nullcontext)() as measured:
        started = time.perf_counter()
        model = SPARK[method](**params, maxDriverRows=0).fit(df)
        labels = model.clusterer.predict(shape.X)
        seconds = time.perf_counter() - started
    df.unpersist()
    report = model.clusterer.fit_report_
    return {
        "data": shape.name,
        "rows": shape.X.shape[0],
        "dims": shape.X.shape[1],
        "method": method,
        "ari": float(adjusted_rand_score(exact, labels)),
        "exact_self_ari": self_agreement(method, shape, exact),
        "noise_exact": float(np.mean(exact == -1)),
        "noise": float(np.mean(labels == -1)),
        "seconds": seconds,
        "exact_seconds": exact_seconds,
        "agreement_ari": report.get("agreement_ari"),
        "peak_bytes": getattr(measured, "peak_tree_bytes", None),
    }
