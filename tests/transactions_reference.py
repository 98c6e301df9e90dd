"""An independent pandas computation of the per-customer features, for checking the Spark ones.

It follows the definitions users read in docs/bring-your-own-data.md, written
from scratch with pandas: returns are netted, an order is its order id (or a
customer-day) timed at its earliest line, orders count only when they hold a
purchase, diversity counts purchased products and categories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)


def reference_features(
    lines: pd.DataFrame, *, prefix: str | None = None, by_day: bool = False
) -> pd.DataFrame:
    """Lines with customer_id, order_id (or None), ts, product_id, category, quantity and
    unit_price or amount."""
    df = lines[lines["customer_id"].notna() & (lines["customer_id"] != "")].copy()
    if by_day or "order_id" not in df or df["order_id"].isna().all():
        df["order_id"] = df["customer_id"] + "|" + df["ts"].dt.strftime("%Y-%m-%d")
    cancelled = df["order_id"].str.startswith(prefix) if prefix else False
    if "amount" in df:
        returned = (df["quantity"] < 0) | (df["amount"] < 0) | cancelled
        df["spend"] = np.where(returned, -df["amount"].abs(), df["amount"])
    else:
        returned = (df["quantity"] < 0) | cancelled
        df["spend"] = df["unit_price"] * np.where(returned, -df["quantity"].abs(), df["quantity"])
    df["returned"] = returned
    df["units"] = np.where(returned, -df["quantity"].abs(), df["quantity"])
    df["order_ts"] = df.groupby("order_id")["ts"].transform("min")
    as_of = df["order_ts"].max()
    rows = []
    for customer, own in df.groupby("customer_id"):
        bought = own[~own["returned"]]
        first, last = bought["order_ts"].min(), bought["order_ts"].max()
        orders = bought["order_id"].nunique()
        net = own["spend"].sum()
        gross = bought["spend"].sum()
        rows.append(
            {
                "customer_id": customer,
                "num_orders": float(orders),
                "units_purchased": float(own["units"].sum()),
                "total_spend": net,
                "gross_spend": gross,
                "returned_value": -own.loc[own["returned"], "spend"].sum(),
                "first_purchase": first,
                "last_purchase": last,
                "tenure_days": (as_of - first) / DAY if orders else np.nan,
                "recency_days": (as_of - last) / DAY if orders else np.nan,
                "avg_order_value": net / orders if orders else 0.0,
                "product_diversity": float(bought["product_id"].nunique())
                if "product_id" in own
                else np.nan,
                "category_diversity": float(bought["category"].fillna("unknown").nunique())
                if "category" in own
                else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("customer_id").sort_index()
