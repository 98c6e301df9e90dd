"""Numbers and dates as people read them, shared by the dashboard and the report (no Streamlit
here)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any


def fmt_int(value: Any) -> str:
    """1818 -> "1,818"; missing -> "n/a"."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(x) else f"{round(x):,}"


def fmt_money(value: Any) -> str:
    """Compact amounts: 17.6M, 912.4k, 530."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(x):
        return "n/a"
    for bound, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= bound:
            return f"{x / bound:,.1f}{suffix}"
    return f"{x:,.0f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """0.1234 -> "12.3%"."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(x) else f"{100 * x:.{digits}f}%"


def fmt_num(value: Any, digits: int = 3) -> str:
    """A metric with ``digits`` decimals; missing -> "-"."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def fmt_time(value: datetime | None, zone: bool = True) -> str:
    """A UTC timestamp to the minute: "2026-11-26 14:01 UTC" (``zone=False`` leaves " UTC" off)."""
    if value is None:
        return "n/a"
    return value.strftime("%Y-%m-%d %H:%M") + (" UTC" if zone else "")


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table of already formatted cells (pipes escaped, line breaks folded)."""

    def cell(value: Any) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
