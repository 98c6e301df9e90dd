"""Plotly figures shared by the dashboard and the report, with the segment labels they use.

Every figure takes plain pandas/numpy inputs (from :mod:`custseg.store`)
and returns a ``plotly.graph_objects.Figure``. Segments keep one colour
everywhere (noise is grey). Text that comes from the data goes through
:func:`text`, because Plotly renders a small HTML subset inside labels.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from custseg.store.gold import NOISE

if TYPE_CHECKING:
    import plotly.graph_objects as go

NOISE_COLOR = "#9e9e9e"
NOISE_LABEL = "noise (unassigned)"
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
)
TEMPLATE = "plotly_white"
FEATURE_TITLES = {
    "units_purchased": "Units purchased",
    "total_spend": "Total spend",
    "tenure_days": "Tenure (days)",
    "recency_days": "Recency (days)",
    "loyalty_segment": "Loyalty segment",
    "num_orders": "Orders",
    "avg_order_value": "Avg order value",
    "product_diversity": "Product diversity",
    "category_diversity": "Category diversity",
}


def segment_label(segment: int, name: str | None) -> str:
    """How a segment is named in every chart and filter: "3 · bargain hunters", noise
    "noise (unassigned)"."""
    if int(segment) == NOISE:
        return NOISE_LABEL
    return f"{int(segment)} · {name}" if name else str(int(segment))


def segment_labels(profile_frame: pd.DataFrame) -> dict[int, str]:
    """segment -> label, in segment order (noise first)."""
    if profile_frame.empty:
        return {}
    return {
        int(r.segment): segment_label(int(r.segment), str(r.archetype))
        for r in profile_frame.itertuples(index=False)
    }


def feature_zscores(
    table: pd.DataFrame, feature_names: Sequence[str], log_features: Sequence[str] = ()
) -> pd.DataFrame:
    """Per segment (rows) the mean z-score of each feature (columns) over all customers.

    Heavy-tailed features (``log_features``, as the model scales them) are log1p'd first, so one
    giant order does not wash out every other segment's colour.
    """
    present = [f for f in feature_names if f in table.columns]
    if table.empty or not present:
        return pd.DataFrame()
    X = table[present].astype("float64").copy()
    for f in present:
        if f in log_features:
            X[f] = np.log1p(X[f].clip(lower=0))
    std = X.std(ddof=0).replace(0.0, np.nan)
    Z = (X - X.mean()) / std
    out = Z.groupby(table["segment"].astype("int64")).mean()
    return out.fillna(0.0)


def sample_rows(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows, the same ones every time for the same frame (charts stay steady)."""
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed).sort_index()


def text(value: Any) -> str:
    """Data text made literal for Plotly labels (which would otherwise read <b>, <br>, <a>)."""
    return html.escape(str(value), quote=False)


def feature_title(name: str) -> str:
    return FEATURE_TITLES.get(name, name.replace("_", " "))


def ordered(labels: Mapping[int, str]) -> list[int]:
    """Segments in chart order: 1, 2, ..., noise last."""
    return sorted(labels, key=lambda s: (s == NOISE, s))


def colors(labels: Mapping[int, str]) -> dict[str, str]:
    """label -> colour; a segment's colour depends on its number only, so it is stable across
    runs."""
    out = {}
    for segment, label in labels.items():
        out[label] = NOISE_COLOR if segment == NOISE else PALETTE[(int(segment) - 1) % len(PALETTE)]
    return out


def _go():
    import plotly.graph_objects as go  # lazy: optional dependency (dashboard extra)

    return go


def _layout(fig: go.Figure, title: str, height: int = 380, **kwargs: Any) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0.01},
        height=height,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        **kwargs,
    )
    return fig


def sizes_figure(
    profiles: pd.DataFrame, labels: Mapping[int, str], title: str = "Segment sizes (customers)"
) -> go.Figure:
    """Customers per segment (horizontal bars, segment 1 on top)."""
    go = _go()
    color = colors(labels)
    rows = profiles.set_index("segment")
    order = [s for s in ordered(labels) if s in rows.index]
    fig = go.Figure(
        go.Bar(
            y=[text(labels[s]) for s in order],
            x=[int(rows.loc[s, "size"]) for s in order],
            orientation="h",
            marker_color=[color[labels[s]] for s in order],
            hovertemplate="%{y}<br>%{x:,} customers<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(
        fig, title, height=_bars_height(len(order)), xaxis_title="customers", showlegend=False
    )


def shares_figure(profiles: pd.DataFrame, labels: Mapping[int, str]) -> go.Figure:
    """Share of customers next to share of revenue, per segment."""
    go = _go()
    rows = profiles.set_index("segment")
    order = [s for s in ordered(labels) if s in rows.index]
    y = [text(labels[s]) for s in order]
    fig = go.Figure(
        [
            go.Bar(
                name="share of customers",
                y=y,
                x=[100 * float(rows.loc[s, "share"]) for s in order],
                orientation="h",
                marker_color="#4c78a8",
                hovertemplate="%{y}<br>%{x:.1f}% of customers<extra></extra>",
            ),
            go.Bar(
                name="share of revenue",
                y=y,
                x=[100 * float(np.nan_to_num(rows.loc[s, "revenue_share"])) for s in order],
                orientation="h",
                marker_color="#f58518",
                hovertemplate="%{y}<br>%{x:.1f}% of revenue<extra></extra>",
            ),
        ]
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(
        fig,
        "Share of customers and of revenue (%)",
        height=_bars_height(len(order), 2) + 30,
        barmode="group",
        xaxis_title="%",
        legend={"orientation": "h", "y": -0.12, "yanchor": "top", "x": 0},
    )


def _bars_height(n: int, per: int = 1) -> int:
    return max(300, 110 + n * (26 + 10 * per))


def zscore_heatmap(z: pd.DataFrame, labels: Mapping[int, str]) -> go.Figure:
    """Mean feature z-score per segment: red above the average customer, blue below."""
    go = _go()
    order = [s for s in ordered(labels) if s in z.index] or list(z.index)
    sub = z.loc[order]
    bound = float(max(1.0, np.nanmax(np.abs(sub.to_numpy())))) if sub.size else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=sub.to_numpy(),
            x=[feature_title(c) for c in sub.columns],
            y=[text(labels.get(s, str(s))) for s in order],
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            zmin=-bound,
            zmax=bound,
            text=np.round(sub.to_numpy(), 1),
            texttemplate="%{text}",
            hovertemplate="%{y}<br>%{x}: z = %{z:.2f}<extra></extra>",
            colorbar={"title": "z"},
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(
        fig,
        "Feature z-scores by segment (mean over customers)",
        height=max(320, 60 + 42 * len(order)),
    )


def box_figure(
    table: pd.DataFrame, feature: str, labels: Mapping[int, str], log: bool = False
) -> go.Figure:
    """The distribution of one feature in each segment."""
    go = _go()
    color = colors(labels)
    fig = go.Figure()
    for s in ordered(labels):
        values = table.loc[table["segment"] == s, feature]
        if values.empty:
            continue
        fig.add_trace(
            go.Box(y=values, name=text(labels[s]), marker_color=color[labels[s]], boxpoints=False)
        )
    fig.update_yaxes(type="log" if log else "linear", title=feature_title(feature))
    return _layout(fig, f"{feature_title(feature)} by segment", showlegend=False)


def projection_figure(
    table: pd.DataFrame,
    labels: Mapping[int, str],
    title: str = "Customers in 2-D (first two principal components)",
) -> go.Figure:
    """Customers on the model's two principal axes, one trace per segment (no customer ids)."""
    go = _go()
    color = colors(labels)
    fig = go.Figure()
    for s in ordered(labels):
        part = table[table["segment"] == s]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["pc1"],
                y=part["pc2"],
                mode="markers",
                name=text(labels[s]),
                marker={"size": 5, "color": color[labels[s]], "opacity": 0.7},
                hovertemplate=text(labels[s]) + "<br>pc1 %{x:.2f}, pc2 %{y:.2f}<extra></extra>",
            )
        )
    fig.update_xaxes(title="pc1")
    fig.update_yaxes(title="pc2")
    return _layout(fig, title, height=480)


def k_distance_figure(curve: pd.DataFrame, diagnostics: Mapping[str, Any] | None) -> go.Figure:
    """The sorted k-distance curve with the knee (suggested eps) and the eps DBSCAN used."""
    go = _go()
    fig = go.Figure(
        go.Scatter(
            x=curve["rank"],
            y=curve["k_distance"],
            mode="lines",
            name="k-distance",
            line={"color": "#4c78a8"},
            hovertemplate="rank %{x:,}<br>k-distance %{y:.3f}<extra></extra>",
        )
    )
    d = dict(diagnostics or {})
    knee = d.get(
        "knee_eps", curve["knee_eps"].iloc[0] if "knee_eps" in curve and len(curve) else None
    )
    eps = d.get("eps", curve["eps"].iloc[0] if "eps" in curve and len(curve) else None)
    if knee is not None:
        fig.add_hline(
            y=float(knee),
            line_dash="dash",
            line_color="#d62728",
            annotation_text=f"knee {float(knee):.3g}",
            annotation_position="top left",
        )
    if eps is not None and knee is not None and abs(float(eps) - float(knee)) > 1e-9:
        fig.add_hline(
            y=float(eps),
            line_dash="dot",
            line_color="#2ca02c",
            annotation_text=f"eps used {float(eps):.3g}",
            annotation_position="bottom right",
        )
    k = d.get("min_samples")
    return _layout(
        fig,
        f"DBSCAN k-distance curve (k = {k})" if k else "DBSCAN k-distance curve",
        xaxis_title="customers, sorted by k-distance",
        yaxis_title="distance to k-th neighbour",
        showlegend=False,
    )


def dendrogram_figure(Z: np.ndarray, n_clusters: int | None = None, leaves: int = 40) -> go.Figure:
    """The top of the hierarchical merge tree (the last ``leaves`` merges), cut at
    ``n_clusters``."""
    # lazy: scipy.cluster.hierarchy loads only for the dendrogram, not on every dashboard page
    from scipy.cluster.hierarchy import dendrogram

    go = _go()
    n = Z.shape[0] + 1
    p = min(leaves, n)
    threshold = None
    if n_clusters and 1 < n_clusters <= Z.shape[0]:
        # The cut between the (n_clusters-1)-th and n_clusters-th last merge.
        lower, upper = Z[-n_clusters, 2], Z[-n_clusters + 1, 2]
        threshold = (lower + upper) / 2
    tree = dendrogram(
        Z,
        truncate_mode="lastp",
        p=p,
        no_plot=True,
        color_threshold=threshold or 0,
        above_threshold_color="#555555",
    )
    fig = go.Figure()
    palette: dict[str, str] = {}
    for xs, ys, c in zip(tree["icoord"], tree["dcoord"], tree["color_list"], strict=True):
        if c not in palette:
            palette[c] = "#555555" if c == "#555555" else PALETTE[len(palette) % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"color": palette[c], "width": 1.5},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    if threshold is not None:
        fig.add_hline(
            y=float(threshold),
            line_dash="dash",
            line_color="#d62728",
            annotation_text=f"cut: {n_clusters} segments",
            annotation_position="top right",
        )
    ticks = [5 + 10 * i for i in range(len(tree["ivl"]))]
    # Collapsed branches read "(n)"; a single-customer leaf would show its row number, which
    # means nothing here.
    names = [str(t) if str(t).startswith("(") else "(1)" for t in tree["ivl"]]
    fig.update_xaxes(tickvals=ticks, ticktext=names, tickangle=-90, tickfont={"size": 9})
    return _layout(
        fig,
        f"Hierarchical (Ward) dendrogram: the last {p - 1} merges",
        height=420,
        yaxis_title="merge distance",
        xaxis_title="(n) = customers under a collapsed branch",
    )


def migration_figure(moves: pd.DataFrame, labels: Mapping[int, str]) -> go.Figure:
    """Customers by previous segment (rows) and current segment (columns)."""
    go = _go()
    matrix = moves.pivot_table(
        index="previous", columns="current", values="customers", aggfunc="sum", fill_value=0
    )
    rows = sorted(matrix.index, key=lambda s: (s == NOISE, s))
    cols = sorted(matrix.columns, key=lambda s: (s == NOISE, s))
    matrix = matrix.loc[rows, cols]
    name = {s: text(labels.get(int(s), str(s))) for s in {*rows, *cols}}
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=[name[c] for c in cols],
            y=[name[r] for r in rows],
            colorscale="Blues",
            text=matrix.to_numpy(),
            texttemplate="%{text:,}",
            hovertemplate="from %{y}<br>to %{x}<br>%{z:,} customers<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="previous model")
    fig.update_xaxes(title="current model")
    return _layout(
        fig, "Segment migration between the last two models", height=max(340, 80 + 40 * len(rows))
    )


def comparison_figure(table: pd.DataFrame) -> go.Figure:
    """Score, silhouette and noise share per method; the recommended one marked."""
    go = _go()
    methods = [
        text(m) + (" (recommended)" if bool(r) else "")
        for m, r in zip(table["method"], table["recommended"], strict=True)
    ]

    def col(name: str) -> list[float]:
        return (
            [float(v) if v is not None and v == v else 0.0 for v in table[name]]
            if name in table
            else [0.0] * len(table)
        )

    fig = go.Figure(
        [
            go.Bar(name="score", x=methods, y=col("score"), marker_color="#4c78a8"),
            go.Bar(name="silhouette", x=methods, y=col("silhouette"), marker_color="#72b7b2"),
            go.Bar(name="noise share", x=methods, y=col("noise_share"), marker_color="#9e9e9e"),
        ]
    )
    return _layout(
        fig,
        "Methods compared (score = silhouette x (1 - noise share))",
        barmode="group",
        legend={"orientation": "h", "y": -0.12, "yanchor": "top", "x": 0},
    )


def run_metric_figure(runs: pd.DataFrame, metric: str) -> go.Figure:
    """One metric of the recommended method over the segment runs, oldest first."""
    go = _go()
    data = runs.dropna(subset=["started"]).sort_values("started")
    fig = go.Figure(
        go.Scatter(
            x=data["started"],
            y=data[metric],
            mode="lines+markers",
            text=data["recommended"].map(text),
            hovertemplate="%{x}<br>" + metric + " %{y:.3f}<br>%{text}<extra></extra>",
        )
    )
    return _layout(
        fig, f"{metric} of the recommended method, per run", height=320, yaxis_title=metric
    )


def sorted_features(names: Sequence[str]) -> list[str]:
    order = list(FEATURE_TITLES)
    return sorted(names, key=lambda n: order.index(n) if n in order else len(order))
