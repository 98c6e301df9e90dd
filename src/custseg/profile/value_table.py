"""The customer-value tables as people read them: one formatting for the CLI, the report and the
dashboard, so the three show the same figures with the same names.

``segment_value_rows`` formats gold.segment_value (one row per segment, ranked by expected
value), ``rfm_segment_rows`` gold.rfm_segments.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from custseg.formatting import fmt_int, fmt_money, fmt_num, fmt_pct
from custseg.profile.rules import NOISE

SEGMENT_VALUE_HEADERS = [
    "Rank",
    "Segment",
    "Customers",
    "Past revenue share",
    "Expected value share",
    "Expected value per customer",
    "Expected purchases per customer",
    "Probability alive",
    "Most common RFM segment",
]
RFM_SEGMENT_HEADERS = ["RFM segment", "Customers", "Share", "Revenue share"]
# The columns holding numbers (right-aligned), by position.
SEGMENT_VALUE_NUMERIC = (0, 2, 3, 4, 5, 6, 7)
RFM_SEGMENT_NUMERIC = (1, 2, 3)


def _plain_label(segment: int, name: str) -> str:
    """The CLI's name of a segment where no chart labels exist: "noise" or "2 Loyal ..."."""
    return "noise" if segment == NOISE else f"{segment} {name}"


def segment_value_rows(value: pd.DataFrame, labels: Mapping[int, str]) -> list[list[str]]:
    """gold.segment_value formatted, best expected value first; ``labels`` names the segments
    (a segment missing from it is named "noise" or "<number> <name>", as in the CLI)."""
    rows = []
    for r in value.sort_values("value_rank", kind="stable").itertuples(index=False):
        segment = int(r.segment)
        rows.append(
            [
                fmt_int(r.value_rank),
                labels.get(segment, _plain_label(segment, str(r.segment_name))),
                fmt_int(r.customers),
                fmt_pct(r.revenue_share),
                fmt_pct(r.lifetime_value_share),
                fmt_money(r.lifetime_value_per_customer),
                fmt_num(r.expected_purchases_per_customer, 2),
                fmt_pct(r.probability_alive_mean),
                f"{r.top_rfm_segment} ({fmt_pct(r.top_rfm_segment_share)})",
            ]
        )
    return rows


def rfm_segment_rows(rfm: pd.DataFrame) -> list[list[str]]:
    """gold.rfm_segments formatted, in the table's order."""
    return [
        [r.rfm_segment, fmt_int(r.customers), fmt_pct(r.customer_share), fmt_pct(r.revenue_share)]
        for r in rfm.itertuples(index=False)
    ]


def as_frame(headers: list[str], rows: list[list[str]]) -> pd.DataFrame:
    """The formatted rows as a table of text with the headers as column names (the dashboard's
    st.dataframe)."""
    return pd.DataFrame(rows, columns=headers)
