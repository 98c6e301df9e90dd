"""Overview: the KPI tiles, segment sizes and revenue shares, the business insights."""

from __future__ import annotations

import streamlit as st

from custseg import charts
from custseg.dashboard import ui
from custseg.profile import business_insights
from custseg.store import gold, runs, summary

src = ui.source()
st.title("Customer segments: overview")

if ui.ready(src):
    tracking = runs.tracking_info(src)
    k = summary.kpis(src, tracking)
    profiles = gold.profiles(src)
    labels = charts.segment_labels(profiles)

    row1 = st.columns(4)
    row1[0].metric("Customers segmented", ui.fmt_int(k.customers))
    row1[1].metric(
        "Revenue", ui.fmt_money(k.revenue), help="Total spend of the segmented customers"
    )
    row1[2].metric(
        "Segments", ui.fmt_int(k.segments), help="Noise (unassigned customers) not counted"
    )
    row1[3].metric("Noise share", ui.fmt_pct(k.noise_share), help="Customers no segment describes")
    row2 = st.columns([1, 1, 1.5, 1])
    row2[0].metric(
        "Recommended method",
        k.recommended or "n/a",
        help="By the comparison rule; see the Methods page",
    )
    row2[1].metric(
        "Segments from", k.method or "n/a", help="The method the gold tables were written with"
    )
    row2[2].metric("Last run finished (UTC)", ui.fmt_time(k.finished, zone=False))
    champion = f"v{k.champion}" if k.champion else "none"
    row2[3].metric(
        f"Model @{src.alias}",
        champion,
        delta=None
        if not k.table_version or k.table_version == k.champion
        else f"tables from v{k.table_version}",
        delta_color="off",
        help=f"Registered model {src.model_name}: the version the alias points to",
    )
    if tracking.error:
        st.warning(tracking.error)

    left, right = st.columns(2)
    with left:
        ui.chart(charts.sizes_figure(profiles, labels), key="overview_sizes")
    with right:
        ui.chart(charts.shares_figure(profiles, labels), key="overview_shares")

    st.subheader("Business insights")
    st.markdown("\n".join(f"- {ui.md(line)}" for line in business_insights(profiles)))
    st.caption(
        f"Run {k.run_id or 'n/a'}: see the Segments page for what each segment means "
        "and what to do."
    )
