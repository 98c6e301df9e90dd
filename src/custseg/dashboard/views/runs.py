"""Runs: MLflow segment runs with metrics, registered versions and the champion, segment
migration."""

from __future__ import annotations

import streamlit as st

from custseg import charts
from custseg.dashboard import ui
from custseg.store import gold, runs

src = ui.source()
st.title("Runs and models")

tracking = runs.tracking_info(src)
if tracking.error:
    st.info(tracking.error)
elif tracking.runs.empty:
    st.info(
        f"The MLflow store has no segment runs in experiment '{src.experiment}' yet: "
        "run `custseg run` (or `custseg demo`), then reload."
    )
else:
    st.subheader("Segment runs")
    runs = tracking.runs
    order = [
        "started",
        "finished",
        "status",
        "recommended",
        "model_version",
        "customers",
        "n_clusters",
        "noise_share",
        "silhouette",
        "davies_bouldin",
        "stability",
        "ari_truth",
        "run_id",
    ]
    shown = runs[[c for c in order if c in runs.columns]].rename(
        columns={"n_clusters": "segments", "ari_truth": "ARI vs truth"}
    )
    st.dataframe(
        shown,
        hide_index=True,
        key="runs_table",
        column_config={
            "started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "finished": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "noise_share": st.column_config.NumberColumn(format="percent"),
            "silhouette": st.column_config.NumberColumn(format="%.3f"),
            "davies_bouldin": st.column_config.NumberColumn(format="%.3f"),
            "stability": st.column_config.NumberColumn(format="%.2f"),
            "ARI vs truth": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    st.caption(
        "Metrics are the recommended method's in each run; every method's metrics are in MLflow "
        f"(`mlflow ui --backend-store-uri {src.tracking_uri}`)."
    )
    if len(runs) > 1:
        metric = st.selectbox(
            "Metric over runs",
            ["silhouette", "noise_share", "n_clusters", "davies_bouldin", "stability"],
            key="runs_metric",
        )
        ui.chart(charts.run_metric_figure(runs, metric), key="runs_metric_chart")

st.subheader("Registered model versions")
if tracking.versions.empty:
    if not tracking.error:
        st.info(
            f"No version of model '{src.model_name}' is registered yet: "
            "`custseg segment` registers one."
        )
else:
    versions = tracking.versions.assign(
        champion=tracking.versions["champion"].map({True: f"@{src.alias}", False: ""})
    )
    st.dataframe(
        versions,
        hide_index=True,
        key="runs_versions",
        column_config={"created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
    )
    st.caption(
        f"models:/{src.model_name}@{src.alias} is version {tracking.champion or 'none'}: "
        "the model `custseg score` uses by default."
    )

st.subheader("Segment migration")
moves = gold.migration(src)
if moves.empty:
    st.info(
        "No migration yet: it appears after a retrain "
        "(the second `custseg segment` on a lakehouse), "
        "counting how many customers moved between the last two models' segments."
    )
else:
    labels = charts.segment_labels(gold.profiles(src))
    moves = moves.assign(
        previous=moves["previous"].astype(int), current=moves["current"].astype(int)
    )
    total = int(moves["customers"].sum())
    stayed = int(moves.loc[moves["previous"] == moves["current"], "customers"].sum())
    tiles = st.columns(3)
    tiles[0].metric("Customers in both models", f"{total:,}")
    tiles[1].metric("Kept their segment", ui.fmt_pct(stayed / total if total else float("nan")))
    tiles[2].metric("Moved", f"{total - stayed:,}")
    current = gold.segments(src)
    if (
        not current.empty
        and "run_id" in moves
        and moves["run_id"].iloc[0] != current["run_id"].iloc[0]
    ):
        st.caption("This migration is from an earlier retrain, not from the latest run.")
    ui.chart(charts.migration_figure(moves, labels), key="runs_migration")
