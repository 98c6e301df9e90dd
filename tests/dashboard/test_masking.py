"""Personal data masking and the audience export."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from custseg.dashboard.masking import (
    AUDIENCE_COLUMNS,
    MASK,
    audience_csv,
    audience_export,
    csv_safe,
    mask_name,
    mask_personal,
)
from custseg.data.schemas import PERSONAL_COLUMNS


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("WALKER,  STEVEN", "W. S."),
        ("HILL STUDIOS, INC.", "H. S. I."),
        ("<script>alert(1)</script>", "S. A. S."),
        ("1234", MASK),
        (None, None),
    ],
)
def test_mask_name_keeps_initials_only(name, masked):
    assert mask_name(name) == masked


def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "customer_name": ["WALKER, STEVEN", "=cmd|' /C calc'!A0"],
            "tax_id": ["123456789", None],
            "tax_code": ["EIN", None],
            "street": ["Park Ave", "Elm St"],
            "number": ["12", "3"],
            "unit": [None, "APT 4"],
            "ship_to_address": ["MI, Park Ave 12", "OH, Elm St 3"],
            "postcode": ["48948", "43609"],
            "lon": [-84.6, -83.5],
            "lat": [42.7, 41.7],
            "state": ["MI", "OH"],
            "city": ["LANSING", "TOLEDO"],
            "segment": [1, 2],
            "segment_name": ["steady engaged", "lapsed / at risk"],
            "num_orders": [5.0, 1.0],
            "total_spend": [1234.0, 99.0],
            "recency_days": [3.0, 400.0],
        }
    )


def test_every_personal_column_is_masked_and_others_kept():
    frame = people()
    masked = mask_personal(frame)
    for column in PERSONAL_COLUMNS:
        original = set(frame[column].dropna().astype(str))
        shown = set(masked[column].dropna().astype(str))
        assert not original & shown, column
    assert masked["lat"].isna().all() and masked["lon"].isna().all()
    assert masked.loc[0, "tax_id"] == MASK and masked.loc[1, "tax_id"] is None
    assert masked[["customer_id", "state", "city", "segment"]].equals(
        frame[["customer_id", "state", "city", "segment"]]
    )
    assert mask_personal(frame, enabled=False).equals(frame)
    assert frame.loc[0, "customer_name"] == "WALKER, STEVEN"  # the input is not modified


def test_csv_safe_defuses_formulas():
    out = csv_safe(
        pd.DataFrame({"a": ["=1+1", "+x", "-y", "@z", "ok", None], "n": [1, 2, 3, 4, 5, 6]})
    )
    assert list(out["a"][:5]) == ["'=1+1", "'+x", "'-y", "'@z", "ok"]
    assert out["n"].tolist() == [1, 2, 3, 4, 5, 6]


def test_audience_export_has_segment_reason_and_no_identifying_details():
    profiles = pd.DataFrame(
        {
            "segment": [1, 2],
            "archetype_text": ["Steady customers", "Lapsed customers"],
            "action": ["Retain", "Win back"],
        }
    )
    audience = audience_export(people(), profiles, segment=2)
    assert list(audience.columns) == AUDIENCE_COLUMNS
    assert audience.loc[0, "customer_id"] == "b" and audience.loc[0, "segment"] == 2
    assert (
        audience.loc[0, "reason"]
        == "Lapsed customers (this customer: 1 orders, spend 99, last order 400 days ago)"
    )
    assert audience.loc[0, "action"] == "Win back"
    assert audience.loc[0, "customer_name"] == "C. C. C."  # masked by default
    unmasked = audience_export(people(), profiles, segment=2, masked=False)
    assert unmasked.loc[0, "customer_name"].startswith("'=cmd")  # formula defused
    text = audience_csv(people(), profiles, segment=1).decode("utf-8-sig")
    back = pd.read_csv(io.StringIO(text), dtype=str)
    assert len(back) == 1 and back.loc[0, "customer_name"] == "W. S."
    for secret in ("123456789", "Park Ave", "48948", "42.7"):
        assert secret not in text


def test_audience_of_an_empty_segment():
    profiles = pd.DataFrame({"segment": [1], "archetype_text": ["x"], "action": ["y"]})
    assert audience_export(people(), profiles, segment=9).empty
    assert not math.isnan(len(audience_csv(people(), profiles, segment=9)))
