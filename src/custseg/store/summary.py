"""What a segmentation run says, summed up from the gold tables and MLflow: the recommended
method and why, and the headline figures (the Overview tiles and the report's summary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from custseg.store.gold import NOISE, comparison, features, live_table, profiles, segments
from custseg.store.runs import TrackingInfo
from custseg.store.source import Source

if TYPE_CHECKING:
    import pandas as pd


def recommendation(comparison_frame: pd.DataFrame) -> dict[str, Any] | None:
    """The recommended row of the comparison table as a dict, or None."""
    if comparison_frame.empty or "recommended" not in comparison_frame.columns:
        return None
    rows = comparison_frame[comparison_frame["recommended"].astype(bool)]
    return rows.iloc[0].to_dict() if not rows.empty else None


def why_recommended(
    comparison_frame: pd.DataFrame, diagnostics: dict[str, Any] | None
) -> list[str]:
    """Plain sentences on why the recommended method won; DBSCAN's own diagnosis is shown beside
    them (DBSCAN diagnostics), so it is referred to here, not repeated."""
    if comparison_frame.empty:
        return []
    best = recommendation(comparison_frame)
    out = []
    if best is None:
        used = comparison_frame[
            comparison_frame["note"].astype(str).str.contains("not a recommendation")
        ]
        if used.empty:
            return []
        out.append(
            f"No method is usable on this data; the segments come from {used.iloc[0]['method']}, "
            "the best score, and are rough groups rather than a recommendation."
        )
    else:
        out.append(
            f"{best['method']} is recommended: the highest score (silhouette on clustered "
            "customers x (1 - noise share)) among the usable methods"
            + (f", {best['score']:.3f}" if _finite(best.get("score")) else "")
            + "."
        )
    for row in comparison_frame.to_dict("records"):
        if best is not None and row["method"] == best["method"]:
            continue
        if row["method"] == "dbscan" and diagnostics:
            if diagnostics.get("verdict") == "weak":
                out.append("dbscan is not usable here: see the DBSCAN diagnostics.")
            elif _finite(row.get("score")):
                out.append(
                    f"DBSCAN worked (verdict ok) but scored lower ({float(row['score']):.3f})."
                )
            continue
        if (
            not bool(row.get("usable", True))
            and row.get("note")
            and "not a recommendation" not in str(row["note"])
        ):
            out.append(f"{row['method']} is not usable here: {row['note']}.")
    return [" ".join(s.split()) for s in out]


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


@dataclass
class Kpis:
    customers: int
    revenue: float
    segments: int
    noise_share: float
    recommended: str | None
    method: str | None
    run_id: str | None
    table_version: str | None  # the model version the gold tables were written with
    finished: datetime | None
    champion: str | None


def kpis(source: Source, tracking: TrackingInfo | None = None) -> Kpis:
    """The Overview tiles and the report's summary, from the gold tables (and MLflow when given)."""
    seg = segments(source)
    prof = profiles(source)
    feats = features(source)
    comp = comparison(source)
    n = len(seg)
    revenue = float("nan")
    if not feats.empty and not seg.empty:
        revenue = float(feats[feats["customer_id"].isin(seg["customer_id"])]["total_spend"].sum())
    noise = float((seg["segment"] == NOISE).mean()) if n else float("nan")
    best = recommendation(comp)
    first = seg.iloc[0] if n else None
    run_id = str(first["run_id"]) if first is not None and "run_id" in seg.columns else None
    finished = tracking.finished(run_id) if tracking is not None else None
    if finished is None:
        live = live_table(source, "gold", "customer_segments")
        if live is not None:
            finished = live.modified()
    return Kpis(
        customers=n,
        revenue=revenue,
        segments=int((prof["segment"] != NOISE).sum()) if not prof.empty else 0,
        noise_share=noise,
        recommended=str(best["method"]) if best else None,
        method=str(first["method"]) if first is not None and "method" in seg.columns else None,
        run_id=run_id,
        table_version=str(first["model_version"])
        if first is not None and "model_version" in seg.columns
        else None,
        finished=finished,
        champion=tracking.champion if tracking is not None else None,
    )
