"""Independent pandas computations of the customer-value figures, for checking the Spark ones.

Written from the definitions in the custseg.value docstrings, not from lifetimes: periods are
pandas Periods (``D`` or ``W-SUN``) and ages are differences of their ordinals, a customer at
a time in a plain loop.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

FREQ = {"day": "D", "week": "W-SUN"}


def reference_transactions(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders with a purchase line, as customer_id, order_ts, order_value."""
    bought = orders[orders["purchase_lines"] > 0]
    return bought[["customer_id", "order_ts", "order_value"]].reset_index(drop=True)


def reference_summary(
    tx: pd.DataFrame, end, period: str = "day", cut: str = "period"
) -> pd.DataFrame:
    """frequency, recency, T, monetary_value, first/last purchase per customer (index)."""
    freq = FREQ[period]
    end = pd.Timestamp(end)
    end_period = end.to_period(freq)
    rows = {}
    for customer, own in tx.groupby("customer_id"):
        if cut == "exact":
            own = own[own["order_ts"] <= end]
        periods = own["order_ts"].dt.to_period(freq)
        own = own[periods <= end_period]
        if own.empty:
            continue
        values: dict[int, float] = {}
        for ts, value in zip(own["order_ts"], own["order_value"], strict=True):
            key = ts.to_period(freq).ordinal
            values[key] = values.get(key, 0.0) + value
        keys = sorted(values)
        repeat = [values[k] for k in keys[1:]]
        rows[customer] = {
            "frequency": len(keys) - 1,
            "recency": float(keys[-1] - keys[0]),
            "T": float(end_period.ordinal - keys[0]),
            "monetary_value": float(np.mean(repeat)) if repeat else 0.0,
            "first_purchase": own["order_ts"].min(),
            "last_purchase": own["order_ts"].max(),
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "customer_id"
    return frame.sort_index()


def reference_holdout(
    tx: pd.DataFrame, calibration_end, holdout_end, period: str = "day"
) -> pd.DataFrame:
    """Calibration summary (``_cal``) joined with holdout purchase periods and mean value."""
    freq = FREQ[period]
    cal_end, hold_end = pd.Timestamp(calibration_end), pd.Timestamp(holdout_end)
    cal = reference_summary(tx, cal_end, period, cut="exact")
    cal = cal[["frequency", "recency", "T", "monetary_value"]].add_suffix("_cal")
    hold = tx[(tx["order_ts"] > cal_end) & (tx["order_ts"] <= hold_end)]
    duration = hold_end.to_period(freq).ordinal - cal_end.to_period(freq).ordinal
    out = []
    for customer, row in cal.iterrows():
        own = hold[hold["customer_id"] == customer]
        out.append(
            {
                "customer_id": customer,
                **row.to_dict(),
                "frequency_holdout": float(own["order_ts"].dt.to_period(freq).nunique()),
                "monetary_value_holdout": float(own["order_value"].mean()) if len(own) else 0.0,
                "duration_holdout": float(duration),
            }
        )
    return pd.DataFrame(out).set_index("customer_id").sort_index()


def reference_scores(values: pd.Series, bins: int, higher_is_better: bool = True) -> pd.Series:
    """1 + floor(bins * (min-rank - 1) / n): tied values share the score of their first place."""
    ranks = (values if higher_is_better else -values).rank(method="min")
    return (1 + np.floor(bins * (ranks - 1) / len(values))).astype(int)


def reference_segment(r: int, f: int, m: int) -> str:
    """The R-versus-FM grid of custseg.value.rfm, written out as a lookup table by hand."""
    fm = math.floor((f + m) / 2 + 0.5)
    grid = {
        5: [
            "New customers",
            "Potential loyalists",
            "Potential loyalists",
            "Champions",
            "Champions",
        ],
        4: ["Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Loyal"],
        3: ["About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"],
        2: ["Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"],
        1: ["Lost", "Lost", "At risk", "At risk", "Can't lose them"],
    }
    name = grid[r][fm - 1]
    return "Loyal customers" if name == "Loyal" else name


def reference_frequency_table(
    frame: pd.DataFrame, top: int, predicted: str | None = None
) -> pd.DataFrame:
    """Mean holdout purchases per calibration frequency, frequencies >= top in one bucket."""
    bucket = frame["frequency_cal"].clip(upper=top).astype(int)
    columns = {"customers": ("frequency_holdout", "size")}
    columns["actual"] = ("frequency_holdout", "mean")
    if predicted:
        columns["predicted"] = (predicted, "mean")
    table = frame.assign(bucket=bucket).groupby("bucket").agg(**columns).reset_index()
    return table
