"""Streamlit helpers shared by the pages: the data source, empty states, formatting, caching.

Customer-supplied text (names, addresses, ids, states) is only ever handed to
``st.dataframe``, ``st.table``, ``st.text`` or widget options, which show it
as text; Markdown is used for custseg's own sentences only, escaped with
:func:`md`, and nothing here uses ``unsafe_allow_html``.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from custseg import charts
from custseg.formatting import fmt_int, fmt_money, fmt_num, fmt_pct, fmt_time
from custseg.store import gold, runs
from custseg.store.source import Source

__all__ = [
    "chart",
    "customers",
    "fmt_int",
    "fmt_money",
    "fmt_num",
    "fmt_pct",
    "fmt_time",
    "labels",
    "md",
    "ready",
    "sidebar",
    "source",
]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md(value: Any) -> str:
    """Text escaped for st.markdown: shows literally, never as Markdown, HTML or LaTeX."""
    return _MD_SPECIAL.sub(r"\\\1", str(value))


def source() -> Source:
    """Where this dashboard reads from (set by `custseg dashboard` in the environment)."""
    return Source.from_env()


def sidebar(src: Source) -> None:
    with st.sidebar:
        st.caption("Data source")
        st.text(f"tables: {src.describe()}\nMLflow: {src.tracking_uri}")
        if st.button(
            "Reload data", help="Read the tables and the MLflow store again", key="reload"
        ):
            gold.clear_caches()
            runs.clear_caches()
            st.cache_data.clear()
            st.rerun()


def ready(src: Source) -> bool:
    """True when a segmentation run is there; else explain what to run and return False."""
    hint = gold.missing_hint(src)
    if hint is None:
        return True
    st.info(hint, icon="ℹ️")
    return False


def _version_key(src: Source, tables: tuple[tuple[str, str], ...]) -> str:
    keys = []
    for layer, table in tables:
        live = gold.live_table(src, layer, table)
        keys.append(live.key if live is not None else "-")
    return "|".join(keys)


@st.cache_data(max_entries=4, show_spinner=False)
def _customers(
    src: Source, personal: bool, version: str
) -> pd.DataFrame:  # version: cache key only
    return gold.customer_table(src, personal=personal)


def customers(src: Source, personal: bool = False) -> pd.DataFrame:
    """gold.customer_table, cached per table versions (a new run is picked up automatically)."""
    version = _version_key(
        src, (("gold", "customer_segments"), ("gold", "customer_features"), ("silver", "customers"))
    )
    return _customers(src, personal, version)


def labels(src: Source) -> dict[int, str]:
    return charts.segment_labels(gold.profiles(src))


# --------------------------------------------------------------------------- output


def chart(fig: Any, key: str) -> None:
    """A Plotly chart at full width (one place to change how charts are embedded)."""
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})
