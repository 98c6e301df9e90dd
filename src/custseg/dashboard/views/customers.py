"""Customers: search and browse with segment and features, personal data masked, audience export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from custseg import charts
from custseg.dashboard import ui
from custseg.dashboard.masking import audience_csv, mask_personal, personal_columns
from custseg.features import FEATURE_COLUMNS
from custseg.store import gold

PAGE_SIZE = 200
DETAIL_CHOICES = 500


def _show(value: object) -> str:
    """A value as plain text for the detail table; numbers rounded for reading."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() or abs(value) >= 100 else f"{value:,.2f}"
    return str(value)


src = ui.source()
st.title("Customers")

if ui.ready(src):
    labels = ui.labels(src)
    profiles = gold.profiles(src)
    table = ui.customers(src, personal=True)
    has_people = "customer_name" in table.columns

    top = st.columns([2, 3, 3])
    masked = top[0].toggle(
        "Mask personal data",
        value=True,
        key="customers_mask",
        help="Names show initials only; tax ids, addresses and coordinates are hidden.",
    )
    query = (
        top[1]
        .text_input(
            "Search",
            key="customers_search",
            placeholder="customer id" + ("" if masked else " or name"),
            help="Customer id (exact or prefix). Names are searchable only when masking is off.",
        )
        .strip()
    )
    segment_options = [None, *charts.ordered(labels)]
    chosen = top[2].selectbox(
        "Segment",
        segment_options,
        key="customers_segment",
        format_func=lambda s: "all segments" if s is None else labels.get(s, str(s)),
    )
    if not has_people:
        st.info(
            "The lakehouse has no silver customers table with names (e.g. a transactions layout): "
            "customers are shown by id only."
        )

    found = table
    if chosen is not None:
        found = found[found["segment"] == chosen]
    if query:
        hit = found["customer_id"].astype(str).str.startswith(query)
        if has_people and not masked:
            hit |= found["customer_name"].astype(str).str.contains(query, case=False, regex=False)
        found = found[hit]

    columns = [
        "customer_id",
        "customer_name",
        "segment",
        "segment_name",
        "state",
        "city",
        *FEATURE_COLUMNS,
        "tax_id",
        "tax_code",
        "ship_to_address",
        "postcode",
    ]
    view = mask_personal(found[[c for c in columns if c in found.columns]], enabled=masked)
    pages = max(1, -(-len(view) // PAGE_SIZE))
    status, paging = st.columns([4, 1])
    status.caption(
        f"customers-found: {len(view)} · {'masked' if masked else 'UNMASKED personal data'}"
        + (f" · {PAGE_SIZE} per page, {pages} pages" if pages > 1 else "")
    )
    page = (
        paging.number_input("Page", min_value=1, max_value=pages, value=1, key="customers_page")
        if pages > 1
        else 1
    )
    shown = view.iloc[(int(page) - 1) * PAGE_SIZE : int(page) * PAGE_SIZE]
    st.dataframe(
        shown,
        hide_index=True,
        key="customers_table",
        column_config={
            f: st.column_config.NumberColumn(format="%.0f") for f in FEATURE_COLUMNS if f in shown
        },
    )

    st.subheader("One customer")
    ids = view["customer_id"].astype(str).head(DETAIL_CHOICES).to_list()
    if not ids:
        st.info("No customer matches the search.")
    else:
        picked = st.selectbox("Customer id", ids, key="customers_detail")
        record = view[view["customer_id"].astype(str) == picked].iloc[0]
        detail = pd.DataFrame(
            {"field": list(record.index), "value": [_show(v) for v in record.to_list()]}
        )
        st.table(detail, hide_index=True)  # a table shows values as text, never as markup

    st.subheader("Audience export")
    st.caption(
        "The customers of one segment with the segment, the reason and the suggested action, "
        "as CSV. "
        "Names follow the masking switch above; tax ids, street addresses and coordinates "
        "are never exported."
    )
    export_options = [s for s in charts.ordered(labels) if s in set(table["segment"])]
    if export_options:
        pick, button = st.columns([3, 2])
        segment = pick.selectbox(
            "Segment to export",
            export_options,
            key="customers_export_segment",
            format_func=lambda s: labels.get(s, str(s)),
        )
        count = int((table["segment"] == segment).sum())
        button.download_button(
            f"Download {count:,} customers (CSV)",
            data=audience_csv(table, profiles, segment, masked=masked),
            file_name=f"audience_segment_{segment}.csv",
            mime="text/csv",
            key="customers_download",
        )
    hidden = personal_columns(table)
    if hidden and masked:
        st.caption("Masked columns: " + ", ".join(hidden))
