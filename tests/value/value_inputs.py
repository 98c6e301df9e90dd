"""Inputs shaped like real exports for the customer-value tests, shared by their modules."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

TX_SCHEMA = "customer_id string, order_ts timestamp, order_value double"
ORDER_SCHEMA = TX_SCHEMA + ", purchase_lines long"
END = datetime(2024, 3, 20, 15, 0)  # a Wednesday afternoon
LIFETIMES_FREQ = {"day": "D", "week": "W"}


def export_orders() -> pd.DataFrame:
    """Orders shaped like real exports: each customer stands for one awkward case."""
    rows = [
        # several orders on one day, then a later one
        ("same_day", "2024-03-01 09:00", 10.0, 2),
        ("same_day", "2024-03-01 12:00", 5.0, 1),
        ("same_day", "2024-03-01 18:00", 7.5, 3),
        ("same_day", "2024-03-05 10:00", 20.0, 1),
        # 23:59 and 00:01 across a day boundary (same week)
        ("midnight", "2024-03-01 23:59", 3.0, 1),
        ("midnight", "2024-03-02 00:01", 4.0, 1),
        ("one_order", "2024-02-10 08:00", 42.0, 2),
        # returns only: no transaction at all
        ("returns_only", "2024-02-01 10:00", -30.0, 0),
        ("returns_only", "2024-02-03 10:00", -5.0, 0),
        # a returns order between purchases, a zero and a negative net purchase order
        ("net_values", "2024-01-02 10:00", 50.0, 2),
        ("net_values", "2024-01-09 10:00", -20.0, 0),
        ("net_values", "2024-01-16 10:00", 0.0, 1),
        ("net_values", "2024-02-16 10:00", -12.0, 1),
        # exactly at the end, later that day, and the next day
        ("at_end", "2024-03-04 10:00", 8.0, 1),
        ("at_end", "2024-03-20 15:00", 9.0, 1),
        ("at_end", "2024-03-20 18:00", 11.0, 1),
        ("at_end", "2024-03-21 00:00", 13.0, 1),
        ("after_end", "2024-03-25 10:00", 99.0, 1),
        # identical rows
        ("duplicates", "2024-02-20 10:00", 6.0, 1),
        ("duplicates", "2024-02-20 10:00", 6.0, 1),
        ("duplicates", "2024-02-27 10:00", 6.0, 1),
        # a year boundary: Saturday and Sunday share a W-SUN week, Monday starts the next
        ("new_year", "2023-12-30 10:00", 1.0, 1),
        ("new_year", "2023-12-31 23:00", 2.0, 1),
        ("new_year", "2024-01-01 01:00", 4.0, 1),
        ("new_year", "2024-01-08 01:00", 8.0, 1),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "order_ts", "order_value", "purchase_lines"])
    frame["order_ts"] = pd.to_datetime(frame["order_ts"])
    return frame


def random_transactions(customers: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 9, size=customers)
    ids = np.repeat([f"c{i:05d}" for i in range(customers)], counts)
    start = pd.Timestamp("2023-06-01").value
    span = pd.Timedelta(days=300).value
    stamps = pd.to_datetime(start + rng.integers(0, span, size=len(ids)) // 1000 * 1000)
    values = np.round(rng.lognormal(3, 1, size=len(ids)) - 5, 2)
    return pd.DataFrame({"customer_id": ids, "order_ts": stamps, "order_value": values})
