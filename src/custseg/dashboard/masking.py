"""Personal data, masked in one place: the dashboard's customer table and the audience export.

Which columns are personal is decided by ``custseg.data.schemas.PERSONAL_COLUMNS``
(names, tax ids, street addresses, coordinates, postcodes). Masked, a name
keeps its initials ("WALKER, STEVEN" -> "W. S."), every other personal value
becomes "•••" and coordinates become empty. Unmasked data is only ever shown
when the user turns masking off.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from custseg.data.schemas import PERSONAL_COLUMNS

MASK = "•••"
NAME_COLUMNS = ("customer_name",)
NUMERIC_PERSONAL = ("lon", "lat")
_WORD = re.compile(r"[^\W\d_]+")
# Characters that make a spreadsheet treat a cell as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def mask_name(value: Any) -> Any:
    """Initials only: "WALKER,  STEVEN" -> "W. S."; missing stays missing."""
    if _missing(value):
        return value
    initials = [w[0].upper() for w in _WORD.findall(str(value))][:3]
    return " ".join(f"{i}." for i in initials) if initials else MASK


def mask_value(column: str, value: Any) -> Any:
    """One personal value masked according to its column."""
    if _missing(value):
        return value
    if column in NAME_COLUMNS:
        return mask_name(value)
    if column in NUMERIC_PERSONAL:
        return float("nan")
    return MASK


def personal_columns(frame: pd.DataFrame, extra: Iterable[str] = ()) -> list[str]:
    """The personal columns ``frame`` holds."""
    wanted = [*PERSONAL_COLUMNS, *extra]
    return [c for c in frame.columns if c in wanted]


def mask_personal(frame: pd.DataFrame, enabled: bool = True) -> pd.DataFrame:
    """A copy of ``frame`` with every personal column masked (``enabled=False``: unchanged copy)."""
    out = frame.copy()
    if not enabled:
        return out
    for column in personal_columns(out):
        if column in NUMERIC_PERSONAL:
            out[column] = float("nan")
        else:
            out[column] = out[column].astype(object).map(lambda v, c=column: mask_value(c, v))
    return out


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            )
    return out


def _numbers(values: pd.Series) -> pd.Series:
    x = pd.to_numeric(values, errors="coerce")
    return pd.Series(
        ["n/a" if pd.isna(v) else f"{v:,.0f}" for v in x], index=values.index, dtype=object
    )


def _reasons(members: pd.DataFrame, archetype_text: str) -> pd.Series:
    """Why each customer is in its segment's audience, one line each (vectorised: audiences can
    be large)."""
    parts = []
    if "num_orders" in members:
        parts.append(_numbers(members["num_orders"]) + " orders")
    if "total_spend" in members:
        parts.append("spend " + _numbers(members["total_spend"]))
    if "recency_days" in members:
        parts.append("last order " + _numbers(members["recency_days"]) + " days ago")
    if not parts:
        return pd.Series(archetype_text, index=members.index, dtype=object)
    own = parts[0]
    for part in parts[1:]:
        own = own + ", " + part
    return archetype_text + " (this customer: " + own + ")"


AUDIENCE_COLUMNS = [
    "customer_id",
    "customer_name",
    "state",
    "city",
    "segment",
    "segment_name",
    "reason",
    "action",
]


def audience_export(
    table: pd.DataFrame, profiles: pd.DataFrame, segment: int, masked: bool = True
) -> pd.DataFrame:
    """The customers of one segment as a campaign audience: who, which segment, why, what to do.

    ``table`` is :func:`custseg.store.gold.customer_table` (with personal columns);
    names are masked unless ``masked=False``. Tax ids, street addresses and coordinates are
    never exported. Cells are made safe against spreadsheet formula injection.
    """
    members = table[table["segment"].astype("int64") == int(segment)]
    info = profiles[profiles["segment"].astype("int64") == int(segment)]
    archetype_text = str(info.iloc[0]["archetype_text"]) if not info.empty else ""
    action = str(info.iloc[0]["action"]) if not info.empty else ""
    out = pd.DataFrame(
        {
            "customer_id": members["customer_id"].astype(str),
            "customer_name": members.get("customer_name"),
            "state": members.get("state"),
            "city": members.get("city"),
            "segment": members["segment"].astype("int64"),
            "segment_name": members.get("segment_name", ""),
            "reason": _reasons(members, archetype_text),
            "action": action,
        }
    )
    out = mask_personal(out, enabled=masked)
    return csv_safe(out[AUDIENCE_COLUMNS]).reset_index(drop=True)


def audience_csv(
    table: pd.DataFrame, profiles: pd.DataFrame, segment: int, masked: bool = True
) -> bytes:
    """:func:`audience_export` as UTF-8 CSV bytes (with a BOM, so spreadsheets read accents
    right)."""
    return audience_export(table, profiles, segment, masked).to_csv(index=False).encode("utf-8-sig")
