"""The method comparison table and the one rule that picks the recommended method.

The rule: a method is *usable* when it finds at least two segments, labels at
most 25% of customers noise, puts at most 90% in its largest segment and is
stable (mean bootstrap ARI >= 0.5, when measured). Among usable methods the
highest score wins: silhouette on clustered customers x (1 - noise share).
Ties go to the more interpretable method: hierarchical, k-means, HDBSCAN,
DBSCAN (each method's ``preference`` in ``custseg.methods``). When no method
is usable, the best score is used as a fallback: the table's note says no
method is usable and nothing calls it recommended.

DBSCAN's diagnosis ends with advice that names only methods this same run
found usable (:func:`advise_dbscan`), so it never points at a method the
table marks unusable.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

from custseg.methods import PREFERENCE
from custseg.segment.evaluation import finite_or_none
from custseg.segment.tuning import MethodResult, score

if TYPE_CHECKING:
    import pandas as pd

MAX_NOISE = 0.25
MAX_LARGEST = 0.90
MIN_STABILITY = 0.5

COLUMNS = [
    "method",
    "params",
    "choice",
    "n_clusters",
    "noise_share",
    "largest_share",
    "silhouette",
    "davies_bouldin",
    "calinski_harabasz",
    "stability",
    "ari_truth",
    "score",
    "usable",
    "recommended",
    "note",
    "seconds",
    "engine",
]


def usability(result: MethodResult) -> tuple[bool, str]:
    """(usable, why not) for one method's result."""
    if result.error:
        return False, f"could not run: {result.error}"
    m = result.metrics
    problems = []
    if m.get("n_clusters", 0) < 2:
        problems.append(f"found {int(m.get('n_clusters', 0))} segment(s)")
    if m.get("noise_share", 0) > MAX_NOISE:
        problems.append(f"{m['noise_share']:.0%} noise")
    if m.get("largest_share", 0) > MAX_LARGEST:
        problems.append(f"largest segment holds {m['largest_share']:.0%}")
    stab = m.get("stability", float("nan"))
    if stab == stab and stab < MIN_STABILITY:
        problems.append(f"unstable (bootstrap ARI {stab:.2f})")
    return not problems, "; ".join(problems)


def advise_dbscan(results: list[MethodResult]) -> None:
    """Set a weak DBSCAN diagnosis's recommendation from the other methods' results in this run."""
    dbscan = next((r for r in results if r.method == "dbscan" and r.diagnostics is not None), None)
    if dbscan is None or dbscan.diagnostics.verdict != "weak":
        return
    others = [r for r in results if r.method != "dbscan"]
    usable = [r.method for r in sorted(others, key=lambda r: -score(r.metrics)) if usability(r)[0]]
    if usable:
        advice = f"Use {_join(usable)} instead: usable in this run"
        if "hdbscan" in usable:
            advice += " (HDBSCAN adapts eps to each region's density)"
        advice += "."
    elif others:
        advice = (
            f"No other method in this run is usable either ({_join([r.method for r in others])}): "
            "these customers have no clear segments at this scale; read the segments as rough "
            "groups."
        )
    else:
        advice = (
            "Add hdbscan or hierarchical to segment.methods: HDBSCAN adapts to varying density."
        )
    dbscan.diagnostics.recommendation = advice


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def any_usable(results: list[MethodResult]) -> bool:
    return any(usability(r)[0] for r in results)


def recommend(results: list[MethodResult]) -> str:
    """The recommended method's name (see the module docstring for the rule)."""
    runnable = [r for r in results if not r.error]
    if not runnable:
        raise ValueError("no clustering method could run on this data")
    usable = [r for r in runnable if usability(r)[0]] or runnable

    def key(r: MethodResult) -> tuple[float, int]:
        rank = PREFERENCE.index(r.method) if r.method in PREFERENCE else len(PREFERENCE)
        return (round(score(r.metrics), 6), -rank)

    return max(usable, key=key).method


def comparison_table(results: list[MethodResult], recommended: str) -> pd.DataFrame:

    rows = []
    fallback = not any_usable(results)
    for r in results:
        ok, why = usability(r)
        note = why
        if fallback and r.method == recommended:
            note = f"no method is usable ({why}); used as the best score, not a recommendation"
        if r.diagnostics is not None and r.diagnostics.verdict == "weak":
            note = r.diagnostics.summary()
        s = score(r.metrics) if not r.error else float("-inf")
        rows.append(
            {
                "method": r.method,
                "params": json.dumps(r.params, sort_keys=True),
                "choice": r.choice,
                **{k: finite_or_none(r.metrics.get(k, float("nan"))) for k in COLUMNS[3:11]},
                "score": None if s == float("-inf") else s,
                "usable": ok,
                "recommended": r.method == recommended and not fallback,
                "note": note,
                "seconds": r.seconds,
                "engine": r.engine,
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("n_clusters",):
        frame[col] = frame[col].astype("Int64")
    return frame


def comparison_markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table for the CLI and the report."""

    def fmt(value, digits=3):
        if value is None or (isinstance(value, float) and value != value):
            return "-"
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value)

    head = (
        "| Method | Segments | Noise | Largest | Silhouette | Davies-Bouldin | Stability | "
        "ARI vs truth | Recommended | Engine |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(
            f"| {r.method} | {fmt(r.n_clusters)} | {fmt(r.noise_share, 2)} | "
            f"{fmt(r.largest_share, 2)} | {fmt(r.silhouette)} | {fmt(r.davies_bouldin)} | "
            f"{fmt(r.stability, 2)} | {fmt(r.ari_truth)} | {'yes' if r.recommended else ''} | "
            f"{r.engine} |"
        )
    return "\n".join(lines)
