"""The generic transactions adapter on a UCI Online Retail style extract."""

from pathlib import Path

import pytest

from custseg import pipeline
from custseg.config import load_config
from custseg.errors import InputDataError
from custseg.storage import Lakehouse

FIXTURE = Path(__file__).parent / "fixtures" / "online_retail_mini"


def _config(root, **overrides):
    values = {"input.path": str(FIXTURE / "online_retail.csv"), "storage.root": str(root), **overrides}
    return load_config(FIXTURE / "custseg.yml", values)


def test_online_retail_runs_through_the_same_pipeline(spark, tmp_path):
    config = _config(tmp_path)
    reports = pipeline.run(spark, config, progress=lambda _m: None)
    ingest = reports[0]
    assert ingest.extra["rows"]["transactions"] == {"rows_in": 7, "rows_kept": 4, "rows_quarantined": 3}
    assert ingest.quarantined == {
        ("transactions", "negative_quantity"): 1,
        ("transactions", "missing_field"): 1,
        ("transactions", "wrong_type"): 1,
    }
    rows = {r["customer_id"]: r for r in Lakehouse(spark, config.storage).read("gold", "customer_features").collect()}
    assert set(rows) == {"17850", "13047"}
    a = rows["17850"]
    assert a["num_orders"] == 2 and a["units_purchased"] == 18
    assert a["total_spend"] == pytest.approx(6 * 2.55 + 6 * 3.39 + 6 * 1.85)
    assert a["product_diversity"] == 3 and a["category_diversity"] == 1  # no categories: one "unknown"
    assert a["recency_days"] == pytest.approx(0.0)
    assert rows["13047"]["recency_days"] == pytest.approx((2 * 86400 - 6 * 60) / 86400)


def test_missing_mapped_column_is_named(spark, tmp_path):
    config = _config(tmp_path, **{"input.transactions.columns.quantity": "Qty"})
    with pytest.raises(InputDataError, match=r"lacks the mapped column\(s\) quantity='Qty'"):
        pipeline.run(spark, config, ["ingest"], progress=lambda _m: None)
