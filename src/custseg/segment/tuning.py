"""Choose each method's parameters from the data, and record every choice.

- hierarchical and k-means: k by silhouette over ``k_min..k_max`` (``k_max``
  grows with the data unless set, see :func:`k_max_for`), among the k whose
  segments are not fragments: at most two segments (room for outlier groups)
  may be smaller than the minimum useful segment size, ``outlier_share`` of the
  customers (at least 2);
- DBSCAN: min_samples = 2 x the number of features unless set; eps at the
  knee of the k-distance curve, then a sweep of multiples of it, the best
  sweep point by the comparison score;
- HDBSCAN: a sweep of min_cluster_size, the best point by the same score.

Every candidate becomes a ``SweepPoint`` (logged as a nested MLflow run).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from custseg.cluster import DBSCAN, HDBSCAN, Hierarchical, KMeans, k_distance_curve, knee_point
from custseg.cluster._common.k_search import FULL_GRID_MAX, MAX_SMALL_SEGMENTS
from custseg.config import SegmentConfig
from custseg.errors import ParameterError
from custseg.methods import METHODS
from custseg.segment.diagnostics import DBSCANDiagnostics, diagnose_dbscan
from custseg.segment.evaluation import cluster_metrics, stability


@dataclass
class SweepPoint:
    params: dict[str, Any]
    metrics: dict[str, float]


@dataclass
class MethodResult:
    """One method's tuned, fitted result on the customers it was given."""

    method: str
    params: dict[str, Any]
    estimator: Any  # a fitted custseg.cluster single-node estimator
    labels: np.ndarray
    metrics: dict[str, float]
    sweep: list[SweepPoint]
    choice: str  # how the parameters were chosen, in one sentence
    seconds: float = 0.0
    # What fitted the model whose numbers are reported (cluster/_common/engine.py's describe).
    engine: str = "single-node, exact"
    diagnostics: DBSCANDiagnostics | None = None
    k_distance: np.ndarray | None = None
    error: str | None = None  # set when the method could not run on this data
    extras: dict[str, Any] = field(default_factory=dict)


def score(metrics: dict[str, float]) -> float:
    """The comparison score: silhouette on clustered customers, discounted by the noise share.

    A method only wins by separating customers well *and* assigning most of them.
    """
    sil = metrics.get("silhouette", float("nan"))
    if sil != sil or metrics.get("n_clusters", 0) < 2:
        return float("-inf")
    return sil * (1.0 - metrics.get("noise_share", 0.0))


#: The automatic k range: sqrt(n) / 3, at least 10 and at most 100 (30 at 8,100 customers,
#: 100 from 90,000). Wide ranges are searched coarse to fine (cluster/_common/k_search.py).
K_MAX_FLOOR, K_MAX_CEILING = 10, 100


def k_max_for(n: int, configured: int | None) -> int:
    """The largest k tried: the configured one, else one that grows with the number of customers."""
    if configured is not None:
        return configured
    return int(min(K_MAX_CEILING, max(K_MAX_FLOOR, round(math.sqrt(n) / 3))))


def min_segment_size(n: int, config: SegmentConfig) -> int:
    """The smallest segment worth acting on as a group: ``outlier_share`` of the customers, at least
    2."""
    return max(2, math.ceil(config.outlier_share * n))


def _k_choice(
    k: int, silhouettes: dict[int, float], skipped: list[int], low: int, high: int, smallest: int
) -> str:
    """Why this k, in one sentence: its silhouette, the runner-up, and the k left out as
    fragments."""
    if k not in silhouettes:
        # Nothing was scored (every k fragmented, or its silhouette was undefined): say so, no
        # score.
        text = f"k={k}, the smallest tried: no k in {low}..{high} has a silhouette to compare"
    else:
        text = f"k={k} by the highest silhouette ({silhouettes[k]:.3f}) over k={low}..{high}"
    visited, in_range = len(silhouettes) + len(skipped), high - low + 1
    if in_range > FULL_GRID_MAX:  # not every k was scored
        text += f" ({visited} of its {in_range} k scored, coarse to fine)"
    others = {kk: v for kk, v in silhouettes.items() if kk != k}
    if others:
        runner = max(others, key=lambda kk: (others[kk], -kk))
        text += f", ahead of k={runner} ({others[runner]:.3f})"
    if skipped:
        text += (
            f"; {len(skipped)} k ({_ranges(skipped)}) not considered: more than "
            f"{MAX_SMALL_SEGMENTS} segments under {smallest:,} customers"
        )
    return text


def _ranges(values: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(out)


def _metrics(
    X: np.ndarray, labels: np.ndarray, truth: np.ndarray | None, config: SegmentConfig
) -> dict[str, float]:
    return cluster_metrics(X, labels, truth, config.silhouette_sample, config.random_seed)


def tune_hierarchical(
    X: np.ndarray, config: SegmentConfig, truth: np.ndarray | None
) -> MethodResult:
    cfg = config.hierarchical
    high, smallest = k_max_for(X.shape[0], cfg.k_max), min_segment_size(X.shape[0], config)
    model = Hierarchical(
        n_clusters=None,
        linkage=cfg.linkage,
        k_range=(cfg.k_min, max(cfg.k_min, high)),
        silhouette_sample=config.silhouette_sample,
        random_state=config.random_seed,
        min_segment_size=smallest,
    ).fit(X)
    k = model.n_clusters_
    sweep = [
        SweepPoint({"k": kk, "linkage": cfg.linkage}, {"silhouette": s})
        for kk, s in sorted(model.silhouette_by_k_.items())
    ]
    metrics = _metrics(X, model.labels_, truth, config)
    metrics["stability"] = stability(
        lambda Xs, _b: Hierarchical(n_clusters=k, linkage=cfg.linkage).fit(Xs).labels_,
        X,
        model.labels_,
        config.stability_bootstraps,
        config.random_seed,
    )
    high = min(max(cfg.k_min, high), X.shape[0] - 1)
    choice = (
        _k_choice(k, model.silhouette_by_k_, model.skipped_k_, cfg.k_min, high, smallest)
        + f", {cfg.linkage} linkage"
    )
    return MethodResult(
        "hierarchical",
        {"n_clusters": k, "linkage": cfg.linkage},
        model,
        model.labels_,
        metrics,
        sweep,
        choice,
    )


def tune_kmeans(X: np.ndarray, config: SegmentConfig, truth: np.ndarray | None) -> MethodResult:
    cfg = config.kmeans
    high, smallest = k_max_for(X.shape[0], cfg.k_max), min_segment_size(X.shape[0], config)
    model = KMeans(
        k=None,
        k_range=(cfg.k_min, max(cfg.k_min, high)),
        random_state=config.random_seed,
        silhouette_sample=config.silhouette_sample,
        min_segment_size=smallest,
    ).fit(X)
    k = model.n_clusters_
    sweep = [
        SweepPoint({"k": kk}, {"silhouette": s}) for kk, s in sorted(model.silhouette_by_k_.items())
    ]
    metrics = _metrics(X, model.labels_, truth, config)
    metrics["stability"] = stability(
        lambda Xs, b: KMeans(k=k, random_state=config.random_seed + b + 1).fit(Xs).labels_,
        X,
        model.labels_,
        config.stability_bootstraps,
        config.random_seed,
    )
    high = min(max(cfg.k_min, high), X.shape[0] - 1)
    choice = _k_choice(k, model.silhouette_by_k_, model.skipped_k_, cfg.k_min, high, smallest)
    return MethodResult("kmeans", {"k": k}, model, model.labels_, metrics, sweep, choice)


def tune_dbscan(X: np.ndarray, config: SegmentConfig, truth: np.ndarray | None) -> MethodResult:
    cfg = config.dbscan
    min_samples = cfg.min_samples or 2 * X.shape[1]
    curve = k_distance_curve(X, min_samples)
    _, knee_eps = knee_point(curve)
    knee_eps = float(knee_eps) if knee_eps > 0 else float(np.max(curve)) or 1.0
    candidates = (
        [cfg.eps] if cfg.eps else sorted({round(knee_eps * m, 6) for m in cfg.sweep if m > 0})
    )
    sweep, fitted = [], {}
    for eps in candidates:
        model = DBSCAN(eps=eps, min_samples=min_samples).fit(X)
        metrics = _metrics(X, model.labels_, truth, config)
        sweep.append(SweepPoint({"eps": eps, "min_samples": min_samples}, metrics))
        fitted[eps] = model
    best = max(sweep, key=lambda p: score(p.metrics))
    if score(best.metrics) == float("-inf"):  # nothing clustered: report the knee itself
        best = min(sweep, key=lambda p: abs(p.params["eps"] - knee_eps))
    eps = best.params["eps"]
    model = fitted[eps]
    metrics = dict(best.metrics)
    metrics["stability"] = stability(
        lambda Xs, _b: DBSCAN(eps=eps, min_samples=min_samples).fit(Xs).labels_,
        X,
        model.labels_,
        config.stability_bootstraps,
        config.random_seed,
    )
    diagnostics = diagnose_dbscan(curve, model.labels_, eps, knee_eps, min_samples)
    how = (
        "configured"
        if cfg.eps
        else f"best of {len(candidates)} multiples of the k-distance knee ({knee_eps:.3g})"
    )
    choice = f"eps={eps:.3g} ({how}), min_samples={min_samples}"
    return MethodResult(
        "dbscan",
        {"eps": eps, "min_samples": min_samples},
        model,
        model.labels_,
        metrics,
        sweep,
        choice,
        diagnostics=diagnostics,
        k_distance=curve,
    )


def tune_hdbscan(X: np.ndarray, config: SegmentConfig, truth: np.ndarray | None) -> MethodResult:
    cfg = config.hdbscan
    n = X.shape[0]
    sizes = [m for m in cfg.min_cluster_sizes if 2 <= m <= n // 2] or [max(2, min(n // 2, 5))]
    sweep, fitted = [], {}
    for size in sizes:
        model = HDBSCAN(min_cluster_size=size, min_samples=cfg.min_samples).fit(X)
        metrics = _metrics(X, model.labels_, truth, config)
        sweep.append(
            SweepPoint({"min_cluster_size": size, "min_samples": cfg.min_samples}, metrics)
        )
        fitted[size] = model
    best = max(sweep, key=lambda p: (score(p.metrics), -p.params["min_cluster_size"]))
    size = best.params["min_cluster_size"]
    model = fitted[size]
    metrics = dict(best.metrics)
    metrics["stability"] = stability(
        lambda Xs, _b: HDBSCAN(min_cluster_size=size, min_samples=cfg.min_samples).fit(Xs).labels_,
        X,
        model.labels_,
        config.stability_bootstraps,
        config.random_seed,
    )
    choice = f"min_cluster_size={size} (best of {sizes})"
    return MethodResult(
        "hdbscan",
        {"min_cluster_size": size, "min_samples": cfg.min_samples},
        model,
        model.labels_,
        metrics,
        sweep,
        choice,
    )


def tune(
    method: str, X: np.ndarray, config: SegmentConfig, truth: np.ndarray | None = None
) -> MethodResult:
    """Tune and fit one method; a method that cannot run on this data reports why instead of failing
    the run."""

    started = time.perf_counter()
    try:
        result = METHODS[method].tuner()(X, config, truth)
    except ParameterError as exc:
        result = MethodResult(method, {}, None, np.full(X.shape[0], -1), {}, [], "", error=str(exc))
    result.seconds = time.perf_counter() - started
    return result
