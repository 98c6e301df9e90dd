"""Matplotlib figures logged to MLflow: k-distance curve, dendrogram, 2-D projection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.cluster.hierarchy import dendrogram

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(width: float = 7.0, height: float = 4.0) -> Figure:
    # lazy: the Agg backend is chosen only when a figure is drawn; importing this module sets no
    # global state
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display on servers and in CI
    # lazy: matplotlib.figure after the backend is set (see above)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def k_distance_figure(curve: np.ndarray, knee_eps: float, eps: float, min_samples: int) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(np.arange(curve.size), curve, lw=1.2)
    ax.axhline(knee_eps, color="tab:orange", ls="--", label=f"knee eps = {knee_eps:.3g}")
    if abs(eps - knee_eps) > 1e-12:
        ax.axhline(eps, color="tab:green", ls=":", label=f"chosen eps = {eps:.3g}")
    ax.set_xlabel("customers, sorted by k-distance")
    ax.set_ylabel(f"distance to neighbour {min_samples}")
    ax.set_title("DBSCAN k-distance curve")
    ax.legend()
    fig.tight_layout()
    return fig


def dendrogram_figure(linkage_matrix: np.ndarray, k: int) -> Figure:

    fig = _figure(8.0, 4.5)
    ax = fig.add_subplot()
    if linkage_matrix.shape[0] >= 1:
        dendrogram(
            linkage_matrix,
            truncate_mode="lastp",
            p=min(30, linkage_matrix.shape[0] + 1),
            ax=ax,
            no_labels=False,
        )
        if k >= 2 and linkage_matrix.shape[0] >= k - 1:
            cut = (
                (linkage_matrix[-(k - 1), 2] + linkage_matrix[-k, 2]) / 2
                if linkage_matrix.shape[0] >= k
                else 0
            )
            ax.axhline(cut, color="tab:red", ls="--", label=f"cut at k = {k}")
            ax.legend()
    ax.set_title("Hierarchical clustering (upper levels)")
    ax.set_ylabel("merge distance")
    fig.tight_layout()
    return fig


def projection_figure(xy: np.ndarray, segments: np.ndarray, names: dict[int, str]) -> Figure:
    fig = _figure(7.0, 5.0)
    ax = fig.add_subplot()
    for seg in sorted(np.unique(segments)):
        mask = segments == seg
        label = f"{seg}: {names.get(int(seg), '')}" if seg >= 0 else "noise"
        ax.scatter(
            xy[mask, 0],
            xy[mask, 1],
            s=6,
            alpha=0.6,
            label=label,
            color="lightgrey" if seg < 0 else None,
        )
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title("Customers by segment (2-D projection)")
    ax.legend(markerscale=2, fontsize=7, loc="best")
    fig.tight_layout()
    return fig
