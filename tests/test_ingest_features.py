"""Ingestion and features on a hand-written retail-org fixture with the real data's quirks.

The fixture has semicolon products, epoch strings, customer_id as a string in
orders, history rows, a quoted name with a comma, a blank JSON line and a
nested promotion struct. Every feature value below is worked out by hand.
"""

from pathlib import Path

import pytest

from custseg.config import load_config
from custseg.stages import chain
from custseg.storage import Lakehouse

FIXTURE = Path(__file__).parent / "fixtures" / "retail_org_mini"
DAY = 86_400.0
T1 = 1567086400  # the latest order = the as-of instant
STAGES = ["ingest", "features", "segment"]  # three customers: too few to fit the value models


@pytest.fixture(scope="module")
def mini_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    config = load_config(overrides={"input.path": str(FIXTURE), "storage.root": str(root)})
    reports = chain.run(spark, config, STAGES, progress=lambda _m: None)
    return Lakehouse(spark, config.storage), reports


def test_rows_conserved_and_nothing_quarantined(mini_run):
    _lake, reports = mini_run
    rows = reports[0].extra["rows"]
    assert rows["customers"] == {"rows_in": 4, "rows_kept": 4, "rows_quarantined": 0}
    assert rows["sales_orders"] == {"rows_in": 3, "rows_kept": 3, "rows_quarantined": 0}
    assert rows["products"]["rows_in"] == 3
    assert reports[0].tables["silver.customers"] == 3  # history row folded into the current one


def test_current_customer_row_and_history(mini_run):
    lake, _ = mini_run
    smith = lake.read("silver", "customers").where("customer_id = '11124497'").collect()
    assert len(smith) == 1
    assert smith[0]["loyalty_segment"] == 1 and smith[0]["valid_to"] is None
    assert smith[0]["history_rows"] == 2
    assert smith[0]["customer_name"] == "SMITH,  SHIRLEY"


def test_features_match_hand_computed_values(mini_run):
    lake, reports = mini_run
    rows = {r["customer_id"]: r.asDict() for r in lake.read("gold", "customer_features").collect()}
    assert set(rows) == {"11124497", "10883402"}  # 25000001 has no orders: left out
    smith, rosen = rows["11124497"], rows["10883402"]
    assert smith["units_purchased"] == 6 and smith["total_spend"] == 550
    assert smith["num_orders"] == 2 and smith["avg_order_value"] == 275
    assert smith["product_diversity"] == 2 and smith["category_diversity"] == 2
    assert smith["recency_days"] == 0 and smith["loyalty_segment"] == 1
    assert smith["tenure_days"] == pytest.approx((T1 - 1500000000) / DAY)
    assert rosen["units_purchased"] == 1 and rosen["total_spend"] == 1599
    assert rosen["avg_order_value"] == 1599 and rosen["category_diversity"] == 1
    assert rosen["recency_days"] == pytest.approx(2.0)
    assert rosen["tenure_days"] == pytest.approx((T1 - 1540000000) / DAY)
    assert any("1 have no orders" in note for note in reports[1].notes)


def test_customers_without_orders_can_be_kept(spark, tmp_path):
    config = load_config(
        overrides={
            "input.path": str(FIXTURE),
            "storage.root": str(tmp_path),
            "features.include_customers_without_orders": True,
            "features.as_of": "2019-08-29",
        }
    )
    chain.run(spark, config, STAGES, progress=lambda _m: None)
    rows = {
        r["customer_id"]: r
        for r in Lakehouse(spark, config.storage).read("gold", "customer_features").collect()
    }
    assert rows["25000001"]["num_orders"] == 0 and rows["25000001"]["total_spend"] == 0
    assert rows["25000001"]["recency_days"] == rows["25000001"]["tenure_days"]
