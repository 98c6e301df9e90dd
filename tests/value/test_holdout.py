"""The calibration and holdout split against lifetimes and an independent pandas reference."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from value_inputs import END, LIFETIMES_FREQ, TX_SCHEMA, export_orders, random_transactions
from value_reference import reference_frequency_table, reference_holdout, reference_transactions

from custseg.errors import ConfigError, InputDataError
from custseg.value.holdout import HOLDOUT_COLUMNS, calibration_and_holdout, holdout_by_frequency

lifetimes_utils = pytest.importorskip("lifetimes.utils")

pytestmark = pytest.mark.spark

CAL_END = datetime(2024, 3, 1, 12, 0)  # one of same_day's orders is stamped exactly here
COMPARED = [c for c in HOLDOUT_COLUMNS if c != "customer_id"]


def spark_holdout(spark, tx, cal_end, hold_end, period="day") -> pd.DataFrame:
    frame = spark.createDataFrame(tx, TX_SCHEMA)
    out = calibration_and_holdout(frame, cal_end, hold_end, period=period).toPandas()
    assert list(out.columns) == HOLDOUT_COLUMNS
    return out.set_index("customer_id").sort_index()


def lifetimes_holdout(tx, cal_end, hold_end, period) -> pd.DataFrame:
    out = lifetimes_utils.calibration_and_holdout_data(
        tx,
        "customer_id",
        "order_ts",
        calibration_period_end=cal_end,
        observation_period_end=hold_end,
        freq=LIFETIMES_FREQ[period],
        monetary_value_col="order_value",
    )
    return out.sort_index()


def assert_same(ours: pd.DataFrame, other: pd.DataFrame) -> None:
    assert list(ours.index) == list(other.index)
    for column in COMPARED:
        np.testing.assert_allclose(
            ours[column].astype(float), other[column].astype(float), rtol=1e-9, err_msg=column
        )


@pytest.mark.parametrize("period", ["day", "week"])
def test_export_cases_equal_lifetimes_and_reference(spark, period):
    tx = reference_transactions(export_orders())
    ours = spark_holdout(spark, tx, CAL_END, END, period)
    assert_same(ours, lifetimes_holdout(tx, CAL_END, END, period))
    assert_same(ours, reference_holdout(tx, CAL_END, END, period))
    # first seen after calibration_end: not predictable, left out as lifetimes does
    assert {"midnight", "at_end", "after_end", "returns_only"}.isdisjoint(ours.index)


def test_export_cases_by_hand(spark):
    ours = spark_holdout(spark, reference_transactions(export_orders()), CAL_END, END)
    # 09:00 and 12:00 (exactly at the end) are calibration; 18:00 and 5 March are holdout
    row = ours.loc["same_day"]
    assert [row.frequency_cal, row.monetary_value_cal, row.frequency_holdout] == [0, 0, 2]
    assert row.monetary_value_holdout == pytest.approx((7.5 + 20.0) / 2)
    assert ours.loc["one_order", ["frequency_holdout", "monetary_value_holdout"]].tolist() == [0, 0]
    assert (ours["duration_holdout"] == 19).all()


@pytest.mark.parametrize("period", ["day", "week"])
def test_thousands_of_random_customers(spark, period):
    tx = random_transactions(2000, seed=5)
    cal_end, hold_end = datetime(2023, 12, 31, 23, 0), datetime(2024, 3, 15, 6, 0)
    ours = spark_holdout(spark, tx, cal_end, hold_end, period)
    assert_same(ours, lifetimes_holdout(tx, cal_end, hold_end, period))
    assert ours["frequency_holdout"].gt(0).any()


def test_an_empty_holdout_gives_zeros_where_lifetimes_raises(spark):
    tx = reference_transactions(export_orders())
    late = datetime(2030, 1, 1)
    ours = spark_holdout(spark, tx, late, datetime(2030, 2, 1))
    assert (ours["frequency_holdout"] == 0).all() and (ours["monetary_value_holdout"] == 0).all()
    with pytest.raises(ValueError, match="There is no data available"):
        lifetimes_holdout(tx, late, datetime(2030, 2, 1), "day")


@pytest.mark.parametrize("predicted", [None, "predicted_purchases"])
@pytest.mark.parametrize("top", [1, 3, 7])
def test_holdout_by_frequency_equals_reference(spark, predicted, top):
    tx = random_transactions(800, seed=9)
    frame = calibration_and_holdout(
        spark.createDataFrame(tx, TX_SCHEMA), datetime(2024, 1, 15), datetime(2024, 3, 28)
    )
    # a stand-in for a model's prediction: any per-customer number will do
    frame = frame.withColumn("predicted_purchases", frame["frequency_cal"] * 0.5 + 0.25)
    got = holdout_by_frequency(frame, top=top, predicted_col=predicted)
    want = reference_frequency_table(frame.toPandas(), top, predicted)
    assert list(got["bucket"]) == list(want["bucket"])
    assert got["label"].iloc[-1] == f"{top}+"
    assert list(got["customers"]) == list(want["customers"])
    np.testing.assert_allclose(got["actual"], want["actual"], rtol=1e-12)
    if predicted:
        np.testing.assert_allclose(got["predicted"], want["predicted"], rtol=1e-12)
    else:
        assert "predicted" not in got.columns


@pytest.mark.parametrize(
    ("cal_end", "hold_end", "period", "match"),
    [
        (END, CAL_END, "day", "calibration_end \\(2024-03-20 15:00:00\\) must be before"),
        (END, END, "day", "must be before holdout_end"),
        (CAL_END, END, "month", "period must be one of day, week, got 'month'"),
    ],
)
def test_bad_arguments(spark, cal_end, hold_end, period, match):
    frame = spark.createDataFrame(reference_transactions(export_orders()), TX_SCHEMA)
    with pytest.raises(ConfigError, match=match):
        calibration_and_holdout(frame, cal_end, hold_end, period=period)


def test_bad_frequency_table_arguments(spark):
    frame = spark.createDataFrame(reference_transactions(export_orders()), TX_SCHEMA)
    table = calibration_and_holdout(frame, CAL_END, END)
    with pytest.raises(ConfigError, match="top must be an integer >= 1, got 0"):
        holdout_by_frequency(table, top=0)
    with pytest.raises(InputDataError, match="lacks column\\(s\\) p_hat"):
        holdout_by_frequency(table, predicted_col="p_hat")
