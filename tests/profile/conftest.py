"""Customer tables for the profile tests, small enough to work the expected words out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

# The seed-like scenario (25 customers). Population quintile cut points are the
# 5th, 10th, 15th and 20th of the 25 sorted values (inverted CDF), a segment
# median of 16 customers is their 8th value, of 7 customers their 4th.
_STEADY_ORDERS = [4] * 5 + [5] * 6 + [6] * 5
# units, spend, orders, tenure, recency, products, categories
_HIGH_VALUE = [
    (20, 1100, 2, 1500, 9, 14, 6),
    (22, 2500, 4, 1600, 15, 15, 6),
    (24, 2800, 4, 1700, 20, 16, 7),
    (26, 3000, 5, 1800, 25, 17, 7),
    (28, 3200, 5, 1900, 30, 18, 7),
    (30, 3500, 5, 1950, 35, 19, 8),
    (32, 4000, 6, 2000, 40, 20, 8),
]


def seed_table() -> pd.DataFrame:
    """16 steady customers (segment 1), 7 high-value loyal (2), one bulk buyer (3), one huge order
    (4)."""
    rows = []
    for i in range(16):
        spend, orders = 1000 + 25 * i, _STEADY_ORDERS[i]
        rows.append(
            {
                "customer_id": f"s{i:02d}",
                "segment": 1,
                "units_purchased": 40 + i,
                "total_spend": float(spend),
                "tenure_days": 500 + 20 * i,
                "recency_days": 3 + i,
                "loyalty_segment": 1 if i < 6 else 2,
                "num_orders": orders,
                "avg_order_value": round(spend / orders, 2),
                "product_diversity": 8 + i // 4 + i % 2,
                "category_diversity": 3 + i // 6,
            }
        )
    for j, (units, spend, orders, tenure, recency, products, categories) in enumerate(_HIGH_VALUE):
        rows.append(
            {
                "customer_id": f"h{j}",
                "segment": 2,
                "units_purchased": units,
                "total_spend": float(spend),
                "tenure_days": tenure,
                "recency_days": recency,
                "loyalty_segment": 3,
                "num_orders": orders,
                "avg_order_value": round(spend / orders, 2),
                "product_diversity": products,
                "category_diversity": categories,
            }
        )
    rows.append(
        {
            "customer_id": "bulk",
            "segment": 3,
            "units_purchased": 1000,
            "total_spend": 900.0,
            "tenure_days": 200,
            "recency_days": 150,
            "loyalty_segment": 0,
            "num_orders": 1,
            "avg_order_value": 900.0,
            "product_diversity": 1,
            "category_diversity": 1,
        }
    )
    rows.append(
        {
            "customer_id": "vip",
            "segment": 4,
            "units_purchased": 50,
            "total_spend": 50000.0,
            "tenure_days": 100,
            "recency_days": 60,
            "loyalty_segment": 3,
            "num_orders": 1,
            "avg_order_value": 50000.0,
            "product_diversity": 3,
            "category_diversity": 2,
        }
    )
    return pd.DataFrame(rows)


def two_segment_table() -> pd.DataFrame:
    """Ten customers, segments 0 and 1 (five each), three features; words worked out in the
    tests."""
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(10)],
            "segment": [0] * 5 + [1] * 5,
            "total_spend": [10.0, 20, 30, 40, 50, 100, 200, 300, 400, 500],
            "num_orders": [5, 6, 7, 8, 9, 1, 1, 1, 2, 2],
            "recency_days": [1, 2, 3, 4, 5, 50, 60, 70, 80, 90],
        }
    )


@pytest.fixture()
def seed_customers() -> pd.DataFrame:
    return seed_table()


@pytest.fixture()
def two_segments() -> pd.DataFrame:
    return two_segment_table()
