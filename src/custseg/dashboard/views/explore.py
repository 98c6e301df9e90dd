"""Explore: customers on the 2-D projection, with filters that update every chart on the page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from custseg import charts
from custseg.dashboard import ui
from custseg.store import gold

MAX_POINTS = 4_000

src = ui.source()
st.title("Explore customers")

if ui.ready(src):
    labels = ui.labels(src)
    table = ui.customers(src)
    total = len(table)

    # -- filters: one row, applied to every chart and table below ---------------------
    f1, f2, f3, f4 = st.columns([3, 2, 2, 3])
    segment_options = [s for s in charts.ordered(labels) if s in set(table["segment"])]
    chosen_segments = f1.multiselect(
        "Segment",
        segment_options,
        format_func=lambda s: labels.get(s, str(s)),
        placeholder="all segments",
        key="explore_segment",
    )
    loyalty_options = (
        sorted(int(v) for v in table["loyalty_segment"].dropna().unique())
        if "loyalty_segment" in table
        else []
    )
    chosen_loyalty = f2.multiselect(
        "Loyalty segment", loyalty_options, placeholder="all tiers", key="explore_loyalty"
    )
    state_options = (
        sorted(str(v) for v in table["state"].dropna().unique()) if "state" in table else []
    )
    chosen_states = f3.multiselect(
        "State", state_options, placeholder="all states", key="explore_state"
    )
    spend = (
        table["total_spend"].astype("float64")
        if "total_spend" in table
        else pd.Series(dtype="float64")
    )
    low, high = (
        (float(np.floor(spend.min())), float(np.ceil(spend.max())))
        if spend.notna().any()
        else (0.0, 0.0)
    )
    if high > low:
        spend_range = f4.slider(
            "Total spend", min_value=low, max_value=high, value=(low, high), key="explore_spend"
        )
    else:
        spend_range = (low, high)
        f4.caption("Total spend: no range to filter")

    mask = pd.Series(True, index=table.index)
    if chosen_segments:
        mask &= table["segment"].isin(chosen_segments)
    if chosen_loyalty:
        mask &= table["loyalty_segment"].isin(chosen_loyalty)
    if chosen_states:
        mask &= table["state"].astype(str).isin(chosen_states)
    if high > low:
        mask &= spend.between(spend_range[0], spend_range[1]) | spend.isna()
    selection = table[mask]

    # -- what the selection is ----------------------------------------------------------
    tiles = st.columns(4)
    tiles[0].metric("Customers in selection", f"{len(selection):,} of {total:,}")
    tiles[1].metric(
        "Revenue in selection",
        ui.fmt_money(
            selection["total_spend"].sum() if "total_spend" in selection else float("nan")
        ),
    )
    tiles[2].metric(
        "Segments in selection",
        ui.fmt_int(selection.loc[selection["segment"] != gold.NOISE, "segment"].nunique()),
    )
    tiles[3].metric(
        "Median orders",
        ui.fmt_int(selection["num_orders"].median())
        if len(selection) and "num_orders" in selection
        else "n/a",
    )
    st.caption(f"explore-selection: {len(selection)} customers")

    if selection.empty:
        st.info("No customer matches these filters: widen the spend range or clear a filter.")
    else:
        shown = charts.sample_rows(selection, MAX_POINTS)
        note = (
            f" ({len(shown):,} of {len(selection):,} shown)" if len(shown) < len(selection) else ""
        )
        present = {s: labels[s] for s in charts.ordered(labels) if s in set(selection["segment"])}
        ui.chart(
            charts.projection_figure(
                shown, present, title="Customers in 2-D (first two principal components)" + note
            ),
            key="explore_projection",
        )
        left, right = st.columns(2)
        sizes = selection.groupby("segment").agg(
            size=("customer_id", "size"), revenue=("total_spend", "sum")
        )
        sizes = sizes.reindex(
            [s for s in present if s in sizes.index]
        )  # chart order: 1, 2, ..., noise
        sizes["share"] = sizes["size"] / sizes["size"].sum()
        all_revenue = sizes["revenue"].sum()
        sizes["revenue_share"] = sizes["revenue"] / all_revenue if all_revenue else np.nan
        with left:
            ui.chart(
                charts.sizes_figure(
                    sizes.reset_index(), present, title="Segment sizes in the selection"
                ),
                key="explore_sizes",
            )
        with right:
            ui.chart(
                charts.box_figure(selection, "total_spend", present, log=True),
                key="explore_spend_box",
            )

        st.subheader("The selection by segment")
        medians = (
            selection.groupby("segment")[["total_spend", "num_orders", "recency_days"]]
            .median()
            .reindex(sizes.index)
        )
        summary = pd.DataFrame(
            {
                "segment": [present[s] for s in sizes.index],
                "customers": sizes["size"].astype(int).to_list(),
                "share of selection": [ui.fmt_pct(v) for v in sizes["share"]],
                "median spend": [ui.fmt_money(v) for v in medians["total_spend"]],
                "median orders": [ui.fmt_int(v) for v in medians["num_orders"]],
                "median recency (days)": [ui.fmt_int(v) for v in medians["recency_days"]],
            }
        )
        st.table(summary, hide_index=True)
