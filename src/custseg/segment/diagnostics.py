"""Why DBSCAN fails on customer data, measured rather than asserted.

One eps cannot fit segments of different densities: the k-distance (distance
to the min_samples-th neighbour) then spreads over a wide range, the knee of
its curve is a compromise, and DBSCAN labels the sparse segments noise or
merges the dense ones into one giant cluster. These figures say which happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# Thresholds of the verdict; documented in the README's "When DBSCAN fails".
MAX_NOISE_SHARE = 0.20
MAX_LARGEST_SHARE = 0.80
MAX_DENSITY_RATIO = 3.0  # 90th / 10th percentile of the k-distance


@dataclass
class DBSCANDiagnostics:
    eps: float
    knee_eps: float
    min_samples: int
    n_clusters: int
    noise_share: float
    largest_share: float
    density_ratio: float  # p90 / p10 of the k-distance: 1 = uniform density
    k_distance_cv: float  # coefficient of variation of the k-distance
    verdict: str  # "ok" or "weak"
    reasons: list[str] = field(default_factory=list)
    recommendation: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.verdict == "ok":
            return (
                f"DBSCAN (eps={self.eps:.3g}, min_samples={self.min_samples}) found "
                f"{self.n_clusters} clusters."
            )
        return (
            "DBSCAN is weak here: " + "; ".join(self.reasons) + f". {self.recommendation}"
        ).strip()


def diagnose_dbscan(
    k_distances: np.ndarray,
    labels: np.ndarray,
    eps: float,
    knee_eps: float,
    min_samples: int,
) -> DBSCANDiagnostics:
    """Noise share, giant cluster, density variation and the verdict for one DBSCAN result."""
    labels = np.asarray(labels)
    n = labels.size
    clustered = labels[labels >= 0]
    sizes = np.bincount(clustered) if clustered.size else np.array([], dtype=int)
    sizes = sizes[sizes > 0]
    noise_share = float((labels < 0).mean()) if n else 0.0
    largest_share = float(sizes.max() / n) if sizes.size else 0.0
    kd = np.asarray(k_distances, dtype=np.float64)
    kd = kd[np.isfinite(kd)]
    p10, p90 = np.percentile(kd, [10, 90]) if kd.size else (np.nan, np.nan)
    ratio = float(p90 / p10) if kd.size and p10 > 0 else float("inf") if kd.size else float("nan")
    cv = float(kd.std() / kd.mean()) if kd.size and kd.mean() > 0 else float("nan")

    reasons = []
    if sizes.size == 0:
        reasons.append(
            f"every customer is noise (no point has {min_samples} neighbours within eps={eps:.3g})"
        )
    elif noise_share > MAX_NOISE_SHARE:
        reasons.append(f"{noise_share:.0%} of customers are labelled noise")
    if sizes.size == 1:
        reasons.append(f"it found a single cluster holding {largest_share:.0%} of customers")
    elif largest_share > MAX_LARGEST_SHARE:
        reasons.append(f"one giant cluster holds {largest_share:.0%} of customers")
    if ratio == ratio and ratio > MAX_DENSITY_RATIO:
        reasons.append(
            f"densities vary: the 90th-percentile k-distance is {ratio:.1f}x the 10th, so no "
            "single eps fits every segment"
        )
    weak = bool(reasons) and (
        sizes.size <= 1 or noise_share > MAX_NOISE_SHARE or largest_share > MAX_LARGEST_SHARE
    )
    # The advice depends on what else this run found usable: segment.comparison.advise_dbscan.
    recommendation = ""
    return DBSCANDiagnostics(
        eps=float(eps),
        knee_eps=float(knee_eps),
        min_samples=int(min_samples),
        n_clusters=int(sizes.size),
        noise_share=noise_share,
        largest_share=largest_share,
        density_ratio=ratio,
        k_distance_cv=cv,
        verdict="weak" if weak else "ok",
        reasons=reasons,
        recommendation=recommendation,
    )


def downsample_curve(curve: np.ndarray, points: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(rank, distance) pairs of a sorted curve, at most ``points`` of them, ends kept."""
    curve = np.asarray(curve)
    if curve.size <= points:
        return np.arange(curve.size), curve
    idx = np.unique(np.linspace(0, curve.size - 1, points).round().astype(int))
    return idx, curve[idx]
