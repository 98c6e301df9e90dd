"""``custseg report``: the segment metrics in one self-contained HTML file.

Spark-free (the gold tables are read with pyarrow, run facts from MLflow).
The file embeds plotly.js once and every chart's data, so it opens with no
network; a Content-Security-Policy forbids any network fetch anyway. It holds
aggregates only: no customer names, addresses, tax ids or customer ids.
Every text goes through Jinja2's autoescape.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from custseg import __version__, charts
from custseg.errors import EnvironmentProblem, InputDataError
from custseg.features import FEATURE_COLUMNS
from custseg.formatting import fmt_int, fmt_money, fmt_num, fmt_pct, fmt_time
from custseg.methods import METHODS
from custseg.profile import business_insights, profile_markdown, value_insights, value_table
from custseg.report.template import TEMPLATE
from custseg.store import gold, runs, summary
from custseg.store.source import Source

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from custseg.config import Config
    from custseg.store.source import Source

PROJECTION_POINTS = 2_000
PROFILE_HEADER = ("Cluster", "Units Purchased", "Loyalty Segment", "Num Orders", "Count")
COMPARISON_COLUMNS = (
    ("method", "Method", "text"),
    ("choice", "Parameters chosen", "text"),
    ("n_clusters", "Segments", "int"),
    ("noise_share", "Noise", "pct"),
    ("largest_share", "Largest", "pct"),
    ("silhouette", "Silhouette", "num"),
    ("davies_bouldin", "Davies-Bouldin", "num"),
    ("stability", "Stability", "num2"),
    ("ari_truth", "ARI vs truth", "num"),
    ("score", "Score", "num"),
    ("usable", "Usable", "bool"),
    ("recommended", "Recommended", "bool"),
    ("note", "Note", "text"),
    ("engine", "Engine", "text"),
)


def build_report(config: Config, out: Path | str, title: str | None = None) -> Path:
    """Write the report for the lakehouse and MLflow store of ``config`` to ``out``; returns its
    path.

    Raises InputDataError when there is no segmentation run to report on.
    """

    return render_report(Source.from_config(config), out, title=title)


def render_report(source: Source, out: Path | str, title: str | None = None) -> Path:
    """:func:`build_report` for an explicit :class:`~custseg.store.source.Source`."""
    try:
        # lazy: optional dependency (dashboard extra); a missing one is reported below
        import jinja2

        # lazy: optional dependency (dashboard extra); a missing one is reported below
        import plotly  # noqa: F401
    except ImportError as exc:  # pragma: no cover - both come with the dashboard extra
        raise EnvironmentProblem(
            f"the report needs {exc.name}: install the dashboard extra (pip install "
            "'custseg[dashboard]')"
        ) from None

    hint = gold.missing_hint(source)
    if hint is not None:
        raise InputDataError("nothing to report: " + hint.replace("`", "'"))
    context = report_context(source, title)
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )

    html = env.from_string(TEMPLATE).render(**context)
    return _write_atomically(Path(out), html)


def _write_atomically(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(
            tmp, 0o666 & ~umask
        )  # mkstemp makes the file private; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.absolute()


def _chart(fig: go.Figure, name: str) -> Any:
    from markupsafe import Markup  # lazy: optional dependency (dashboard extra, with jinja2)

    # Plotly JSON-encodes the data with "<" and "/" escaped, so data text cannot end the script.
    return Markup(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{name}",
            config={"displaylogo": False, "responsive": True},
        )
    )


# whole: the template's values as one table, in the order the template shows them
def report_context(source: Source, title: str | None = None) -> dict[str, Any]:
    """Everything the template shows, as plain values (tests read it directly)."""
    from markupsafe import Markup  # lazy: optional dependency (dashboard extra, with jinja2)
    from plotly.offline import get_plotlyjs  # lazy: optional dependency (dashboard extra)

    tracking = runs.tracking_info(source)
    k = summary.kpis(source, tracking)
    profiles = gold.profiles(source)
    labels = charts.segment_labels(profiles)
    colors = charts.colors(labels)
    comparison = gold.comparison(source)
    diagnostics = gold.dbscan_diagnostics(source)
    table = gold.customer_table(source, personal=False)
    value = gold.segment_value(source).set_index("segment")

    tiles = [
        ("Customers segmented", fmt_int(k.customers)),
        ("Revenue", fmt_money(k.revenue)),
        ("Segments", fmt_int(k.segments)),
        ("Noise share", fmt_pct(k.noise_share)),
        ("Recommended method", k.recommended or "n/a"),
        ("Last run finished", fmt_time(k.finished)),
        (f"Model @{source.alias}", f"v{k.champion}" if k.champion else "none registered"),
    ]

    cards = []
    for segment in charts.ordered(labels):
        row = profiles[profiles["segment"] == segment].iloc[0]
        cards.append(
            {
                "label": labels[segment],
                "color": colors[labels[segment]],
                "outlier": bool(row["is_outlier"]),
                "archetype_text": row["archetype_text"],
                "description": row["description"],
                "action": row["action"],
                "size": fmt_int(row["size"]),
                "share": fmt_pct(row["share"]),
                "revenue_share": fmt_pct(row["revenue_share"]),
                "median_spend": fmt_money(row.get("total_spend_median")),
                "median_orders": fmt_int(row.get("num_orders_median")),
                "value_share": fmt_pct(value["lifetime_value_share"].get(segment)),
                "alive": fmt_pct(value["probability_alive_mean"].get(segment)),
                "has_value": segment in value.index,
            }
        )

    profile_rows = [
        {
            "cluster": "noise" if int(r.segment) == gold.NOISE else str(int(r.segment)),
            "purchase": r.purchase_text,
            "loyalty": r.loyalty_text,
            "orders": r.archetype_text,
            "count": fmt_int(r.size),
        }
        for r in profiles.itertuples(index=False)
    ]

    figures: dict[str, Any] = {
        "sizes": charts.sizes_figure(profiles, labels),
        "shares": charts.shares_figure(profiles, labels),
        "zscores": charts.zscore_heatmap(
            charts.feature_zscores(table, FEATURE_COLUMNS, source.log_features), labels
        ),
        "projection": charts.projection_figure(
            charts.sample_rows(table[["segment", "pc1", "pc2"]], PROJECTION_POINTS),
            labels,
            title=(
                "Customers in 2-D (first two principal components; a sample of "
                f"{min(len(table), PROJECTION_POINTS):,})"
            ),
        ),
        "comparison": charts.comparison_figure(comparison) if not comparison.empty else None,
        "k_distance": None,
        "dendrogram": None,
        "migration": None,
    }
    curve = gold.k_distance(source)
    if not curve.empty:
        figures["k_distance"] = charts.k_distance_figure(curve, diagnostics)
    Z = gold.linkage_matrix(source)
    if Z is not None:
        figures["dendrogram"] = charts.dendrogram_figure(Z, _hierarchical_k(comparison))
    moves = gold.migration(source)
    migration_note = ""
    if not moves.empty:
        moves = moves.assign(
            previous=moves["previous"].astype(int), current=moves["current"].astype(int)
        )
        figures["migration"] = charts.migration_figure(moves, labels)
        total = int(moves["customers"].sum())
        stayed = int(moves.loc[moves["previous"] == moves["current"], "customers"].sum())
        migration_note = (
            f"{total:,} customers are in both of the last two models; "
            f"{fmt_pct(stayed / total if total else float('nan'))} kept their segment."
        )

    return {
        "title": title or "Customer segments report",
        "version": __version__,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kpis": k,
        "tiles": [{"label": a, "value": b} for a, b in tiles],
        "tracking_note": tracking.error or "",
        "insights": business_insights(profiles) + value_insights(value.reset_index()),
        "value": _value_section(value.reset_index(), labels, gold.rfm_segments(source)),
        "cards": cards,
        "profile_header": PROFILE_HEADER,
        "profile_rows": profile_rows,
        "profile_markdown": profile_markdown(profiles),
        "comparison_header": [
            heading for name, heading, _kind in COMPARISON_COLUMNS if name in comparison.columns
        ],
        "comparison_rows": _comparison_rows(comparison),
        "findings": _findings(comparison, diagnostics),
        "migration_note": migration_note,
        "charts": {
            name: (_chart(fig, name) if fig is not None else None) for name, fig in figures.items()
        },
        "plotly_js": Markup(get_plotlyjs()),
    }


def _value_section(
    value: pd.DataFrame, labels: dict[int, str], rfm: pd.DataFrame
) -> dict[str, Any] | None:
    """The customer-value tables (gold.segment_value, gold.rfm_segments), or None before
    ``custseg value`` ran for these segments."""
    if value.empty:
        return None
    tables = [
        _text_table(
            None,
            value_table.SEGMENT_VALUE_HEADERS,
            value_table.segment_value_rows(value, labels),
            value_table.SEGMENT_VALUE_NUMERIC,
        )
    ]
    if not rfm.empty:  # the named RFM segments exist only with 5 score bins
        tables.append(
            _text_table(
                "RFM segments",
                value_table.RFM_SEGMENT_HEADERS,
                value_table.rfm_segment_rows(rfm),
                value_table.RFM_SEGMENT_NUMERIC,
            )
        )
    return {"horizon": int(value["horizon_days"].iloc[0]), "tables": tables}


def _text_table(
    title: str | None, headers: list[str], rows: list[list[str]], numeric: tuple[int, ...]
) -> dict:
    """Formatted rows as the template draws them: every cell with its alignment class."""
    return {
        "title": title,
        "headers": [
            {"text": h, "cls": "num" if i in numeric else ""} for i, h in enumerate(headers)
        ],
        "rows": [
            [{"text": c, "cls": "num" if i in numeric else ""} for i, c in enumerate(row)]
            for row in rows
        ],
    }


def _hierarchical_k(comparison: pd.DataFrame) -> int | None:
    if comparison.empty:
        return None

    rows = comparison[comparison["method"] == "hierarchical"]
    if rows.empty or pd.isna(rows.iloc[0]["n_clusters"]):
        return None
    return int(rows.iloc[0]["n_clusters"])


def _comparison_rows(comparison: pd.DataFrame) -> list[dict[str, Any]]:

    def cell(value: Any, kind: str) -> dict[str, str]:
        if kind == "pct":
            return {"text": fmt_pct(value), "cls": "num"}
        if kind == "int":
            return {"text": fmt_int(value), "cls": "num"}
        if kind in ("num", "num2"):
            return {"text": fmt_num(value, 2 if kind == "num2" else 3), "cls": "num"}
        if kind == "bool":
            return {"text": "yes" if bool(value) else "", "cls": ""}
        return {
            "text": ""
            if value is None or (isinstance(value, float) and value != value)
            else str(value),
            "cls": "",
        }

    rows = []
    for record in comparison.to_dict("records"):
        cells = [cell(record[name], kind) for name, _, kind in COMPARISON_COLUMNS if name in record]
        rows.append({"recommended": bool(record.get("recommended")), "cells": cells})
    return rows


def _findings(comparison: pd.DataFrame, diagnostics: dict[str, Any] | None) -> list[str]:

    lines = []
    if diagnostics:
        ratio = diagnostics.get("density_ratio")
        lines.append(
            f"{METHODS['dbscan'].label} with eps={float(diagnostics.get('eps', float('nan'))):.3g} "
            "(knee of the k-distance curve "
            f"{float(diagnostics.get('knee_eps', float('nan'))):.3g}) and "
            f"min_samples={diagnostics.get('min_samples')}: {diagnostics.get('n_clusters')} "
            f"clusters, {fmt_pct(diagnostics.get('noise_share'))} noise, the largest cluster holds "
            f"{fmt_pct(diagnostics.get('largest_share'))}; density variation (p90/p10 k-distance) "
            + ("n/a" if ratio is None else f"{float(ratio):.1f}x")
            + f"; verdict: {diagnostics.get('verdict', 'n/a')}."
        )
        lines += [
            f"{str(r)[:1].upper()}{str(r)[1:]}." for r in diagnostics.get("reasons", []) or []
        ]
        if diagnostics.get("recommendation"):
            lines.append(str(diagnostics["recommendation"]))
    else:
        lines.append(
            f"{METHODS['dbscan'].label} did not run in this segmentation (segment.methods)."
        )
    lines += summary.why_recommended(comparison, diagnostics)
    return lines
