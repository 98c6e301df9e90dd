"""Segments: one card per segment, the z-score heat map, box plots of a chosen feature."""

from __future__ import annotations

import streamlit as st

from custseg import charts
from custseg.dashboard import ui
from custseg.features import FEATURE_COLUMNS
from custseg.profile import profile_markdown, value_insights, value_table
from custseg.store import gold

src = ui.source()
st.title("Segments")

if ui.ready(src):
    profiles = gold.profiles(src)
    labels = charts.segment_labels(profiles)
    table = ui.customers(src)
    value = gold.segment_value(src).set_index("segment")

    st.caption(
        "What each segment is, what it is worth and what to do about it. Words like "
        "\"high\" place the segment's median among all customers' quintiles."
    )
    ordered = [s for s in charts.ordered(labels) if s in set(profiles["segment"])]
    rows = profiles.set_index("segment")
    columns = st.columns(2)
    for i, segment in enumerate(ordered):
        row = rows.loc[segment]
        with columns[i % 2].container(border=True, key=f"card_{segment + 1}"):
            st.subheader(ui.md(labels[segment]))
            note = " · outlier: too small to act on as a group" if bool(row["is_outlier"]) else ""
            st.caption(ui.md(str(row["archetype_text"]) + note))
            figures = st.columns(4)
            figures[0].metric("Customers", ui.fmt_int(row["size"]))
            figures[1].metric("Share", ui.fmt_pct(row["share"]))
            figures[2].metric("Revenue share", ui.fmt_pct(row["revenue_share"]))
            figures[3].metric("Median spend", ui.fmt_money(row.get("total_spend_median")))
            if segment in value.index:
                worth = st.columns(4)
                worth[0].metric(
                    "Expected value share", ui.fmt_pct(value.at[segment, "lifetime_value_share"])
                )
                worth[1].metric(
                    "Probability alive", ui.fmt_pct(value.at[segment, "probability_alive_mean"])
                )
                worth[2].metric("Value rank", ui.fmt_int(value.at[segment, "value_rank"]))
            st.markdown(ui.md(row["description"]))
            st.markdown("**Action:** " + ui.md(row["action"]))

    st.subheader("Feature profile")
    z = charts.feature_zscores(table, FEATURE_COLUMNS, src.log_features)
    ui.chart(charts.zscore_heatmap(z, labels), key="segments_heatmap")
    st.caption(
        "Mean z-score of each feature per segment (money and count features log-scaled first, "
        "as the model sees them): 0 is the average customer, +1 one standard deviation above."
    )

    st.subheader("Distribution by segment")
    present = [f for f in FEATURE_COLUMNS if f in table.columns]
    pick, scale = st.columns([3, 1])
    feature = pick.selectbox(
        "Feature",
        present,
        index=present.index("total_spend") if "total_spend" in present else 0,
        format_func=charts.feature_title,
        key="segments_feature",
    )
    log = scale.toggle("Log scale", value=feature in src.log_features, key="segments_log")
    ui.chart(charts.box_figure(table, feature, labels, log=log), key="segments_box")

    with st.expander("Profile table (the original analysis's format)"):
        st.markdown(profile_markdown(profiles))

    if not value.empty:
        horizon = int(value["horizon_days"].iloc[0])
        st.subheader(f"Customer value (next {horizon} days)")
        for line in value_insights(value.reset_index()):
            st.markdown("- " + ui.md(line))
        rows = value_table.segment_value_rows(value.reset_index(), labels)
        st.dataframe(
            value_table.as_frame(value_table.SEGMENT_VALUE_HEADERS, rows),
            hide_index=True,
            width="stretch",
            key="segments_value_table",
        )
        st.caption(
            "Expected value: BG/NBD purchases times Gamma-Gamma order value, discounted monthly "
            "(custseg value). Probability alive: the chance a customer has not churned."
        )
        rfm = gold.rfm_segments(src)
        if not rfm.empty:
            with st.expander("RFM segments"):
                rows = value_table.rfm_segment_rows(rfm)
                st.dataframe(
                    value_table.as_frame(value_table.RFM_SEGMENT_HEADERS, rows),
                    hide_index=True,
                    width="stretch",
                    key="segments_rfm_table",
                )
