"""Methods: the comparison table, DBSCAN's diagnostics and why another method won, the
dendrogram."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from custseg import charts
from custseg.dashboard import ui
from custseg.methods import METHODS
from custseg.store import gold, summary

DBSCAN, HIERARCHICAL = METHODS["dbscan"].label, METHODS["hierarchical"].label

src = ui.source()
st.title("Methods compared")

COLUMNS = {
    "method": "Method",
    "choice": "Parameters chosen",
    "n_clusters": "Segments",
    "noise_share": "Noise",
    "largest_share": "Largest",
    "silhouette": "Silhouette",
    "davies_bouldin": "Davies-Bouldin",
    "stability": "Stability",
    "ari_truth": "ARI vs truth",
    "score": "Score",
    "usable": "Usable",
    "recommended": "Recommended",
    "note": "Note",
    "seconds": "Seconds",
    "engine": "Engine",
}

if ui.ready(src):
    table = gold.comparison(src)
    if table.empty:
        st.info("No method comparison in the lakehouse: run `custseg segment` to produce one.")
    else:
        shown = table[[c for c in COLUMNS if c in table.columns]].rename(columns=COLUMNS)
        st.dataframe(
            shown,
            hide_index=True,
            key="methods_table",
            column_config={
                "Noise": st.column_config.NumberColumn(format="percent"),
                "Largest": st.column_config.NumberColumn(format="percent"),
                "Silhouette": st.column_config.NumberColumn(format="%.3f"),
                "Davies-Bouldin": st.column_config.NumberColumn(format="%.3f"),
                "Stability": st.column_config.NumberColumn(format="%.2f"),
                "ARI vs truth": st.column_config.NumberColumn(format="%.3f"),
                "Score": st.column_config.NumberColumn(format="%.3f"),
                "Seconds": st.column_config.NumberColumn(format="%.1f"),
            },
        )
        st.caption(
            "A method is usable with at least 2 segments, at most 25% noise, at most 90% in the "
            "largest segment and a stable result; the highest score among usable methods is "
            "recommended."
        )
        ui.chart(charts.comparison_figure(table), key="methods_compare")

    diagnostics = gold.dbscan_diagnostics(src)
    st.subheader("Why this method")
    for sentence in summary.why_recommended(table, diagnostics):
        st.markdown("- " + ui.md(sentence))

    st.subheader(f"{DBSCAN} diagnostics")
    curve = gold.k_distance(src)
    if diagnostics is None or curve.empty:
        st.info(
            f"{DBSCAN} did not run in the last segmentation (segment.methods), "
            "so there is no k-distance curve."
        )
    else:
        tiles = st.columns(5)
        tiles[0].metric("Verdict", str(diagnostics.get("verdict", "n/a")))
        tiles[1].metric("Noise share", ui.fmt_pct(diagnostics.get("noise_share")))
        tiles[2].metric("Largest cluster", ui.fmt_pct(diagnostics.get("largest_share")))
        ratio = diagnostics.get("density_ratio")
        tiles[3].metric(
            "Density variation",
            "n/a" if ratio is None else f"{float(ratio):.1f}x",
            help="90th / 10th percentile of the k-distance: 1 = one density everywhere",
        )
        tiles[4].metric("Knee eps", f"{float(diagnostics.get('knee_eps', float('nan'))):.3g}")
        for reason in diagnostics.get("reasons", []) or []:
            st.markdown("- " + ui.md(reason))
        if diagnostics.get("recommendation"):
            st.markdown("**Recommendation:** " + ui.md(diagnostics["recommendation"]))
        ui.chart(charts.k_distance_figure(curve, diagnostics), key="methods_kdist")
        st.caption(
            "The knee of the sorted k-distance curve is the suggested eps. When densities vary, "
            "no single eps fits every segment: sparse segments become noise or dense ones merge."
        )

    st.subheader(f"{HIERARCHICAL} clustering")
    Z = gold.linkage_matrix(src)
    if Z is None:
        st.info(
            f"{HIERARCHICAL} clustering did not run in the last segmentation, "
            "so there is no dendrogram."
        )
    else:
        hier = table[table["method"] == "hierarchical"] if not table.empty else table
        k = (
            int(hier.iloc[0]["n_clusters"])
            if not hier.empty and pd.notna(hier.iloc[0]["n_clusters"])
            else None
        )
        ui.chart(charts.dendrogram_figure(Z, k), key="methods_dendrogram")
