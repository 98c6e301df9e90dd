"""The Spark transaction summary against lifetimes and an independent pandas reference."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from value_inputs import (
    END,
    LIFETIMES_FREQ,
    ORDER_SCHEMA,
    TX_SCHEMA,
    export_orders,
    random_transactions,
)
from value_reference import reference_summary, reference_transactions

from custseg.errors import ConfigError, InputDataError
from custseg.value.summary import (
    spend_statistics,
    sufficient_statistics,
    transaction_summary,
    transactions_from_orders,
)

lifetimes_utils = pytest.importorskip("lifetimes.utils")

pytestmark = pytest.mark.spark


def spark_summary(spark, tx: pd.DataFrame, end, period="day", cut="period") -> pd.DataFrame:
    frame = spark.createDataFrame(tx, TX_SCHEMA)
    out = transaction_summary(frame, end, period=period, cut=cut).toPandas()
    return out.set_index("customer_id").sort_index()


def lifetimes_summary(tx: pd.DataFrame, end, period: str) -> pd.DataFrame:
    out = lifetimes_utils.summary_data_from_transaction_data(
        tx,
        "customer_id",
        "order_ts",
        monetary_value_col="order_value",
        observation_period_end=end,
        freq=LIFETIMES_FREQ[period],
    )
    return out.sort_index()


def assert_same(ours: pd.DataFrame, other: pd.DataFrame, columns=None) -> None:
    columns = columns or ["frequency", "recency", "T", "monetary_value"]
    assert list(ours.index) == list(other.index)
    for column in columns:
        np.testing.assert_allclose(
            ours[column].astype(float), other[column].astype(float), rtol=1e-9, err_msg=column
        )


def test_transactions_leave_out_orders_of_returns_only(spark):
    orders = export_orders()
    frame = spark.createDataFrame(orders, ORDER_SCHEMA)
    got = transactions_from_orders(frame).toPandas()
    assert list(got.columns) == ["customer_id", "order_ts", "order_value"]
    want = reference_transactions(orders)
    assert sorted(got.itertuples(index=False)) == sorted(want.itertuples(index=False))
    assert "returns_only" not in set(got["customer_id"])


@pytest.mark.parametrize("period", ["day", "week"])
def test_summary_equals_lifetimes_and_reference_on_export_cases(spark, period):
    tx = reference_transactions(export_orders())
    ours = spark_summary(spark, tx, END, period)
    assert_same(ours, lifetimes_summary(tx, END, period))
    reference = reference_summary(tx, END, period)
    assert_same(ours, reference)
    assert (ours["first_purchase"] == reference["first_purchase"]).all()
    assert (ours["last_purchase"] == reference["last_purchase"]).all()
    assert "returns_only" not in ours.index and "after_end" not in ours.index


def test_summary_by_day_on_hand_worked_cases(spark):
    ours = spark_summary(spark, reference_transactions(export_orders()), END, "day")
    # three orders on 1 March are one period worth 22.5; the repeat period is 5 March
    assert ours.loc["same_day", ["frequency", "recency", "monetary_value"]].tolist() == [1, 4, 20]
    assert ours.loc["midnight", "frequency"] == 1
    assert ours.loc["one_order", ["frequency", "recency", "monetary_value"]].tolist() == [0, 0, 0]
    # the end's whole day counts (lifetimes' period cut); the next day does not
    assert ours.loc["at_end", ["frequency", "monetary_value"]].tolist() == [1, 20.0]
    assert ours.loc["net_values", "monetary_value"] == pytest.approx(-6.0)
    assert ours.loc["duplicates", ["frequency", "monetary_value"]].tolist() == [1, 6.0]


def test_week_periods_across_the_year_boundary(spark):
    ours = spark_summary(spark, reference_transactions(export_orders()), END, "week")
    # Sat 30 Dec and Sun 31 Dec are one W-SUN week; Mon 1 Jan and Mon 8 Jan two more
    assert ours.loc["new_year", ["frequency", "recency", "monetary_value"]].tolist() == [2, 2, 6]
    assert ours.loc["midnight", "frequency"] == 0
    # Thursday 21 March is in the end's week, so the period cut keeps it in the repeat week
    assert ours.loc["at_end", ["frequency", "monetary_value"]].tolist() == [1, 33.0]


@pytest.mark.parametrize("period", ["day", "week"])
def test_exact_cut_drops_everything_after_the_end(spark, period):
    tx = reference_transactions(export_orders())
    ours = spark_summary(spark, tx, END, period, cut="exact")
    assert_same(ours, reference_summary(tx, END, period, cut="exact"))
    # lifetimes' calibration side: filter on the timestamp, then summarise
    assert_same(ours, lifetimes_summary(tx[tx["order_ts"] <= END], END, period))
    assert ours.loc["at_end", "frequency"] == 1


@pytest.mark.parametrize(
    "end",
    [date(2024, 3, 20), datetime(2024, 3, 20, 16, 0, tzinfo=timezone(timedelta(hours=1)))],
    ids=["date", "aware-datetime"],
)
def test_observation_end_as_date_or_aware_datetime(spark, end):
    tx = reference_transactions(export_orders())
    ours = spark_summary(spark, tx, end, "day")
    naive = (
        pd.Timestamp(end).tz_convert("UTC").tz_localize(None) if isinstance(end, datetime) else end
    )
    assert_same(ours, lifetimes_summary(tx, naive, "day"))


@pytest.mark.parametrize("period", ["day", "week"])
def test_thousands_of_random_customers(spark, period):
    tx = random_transactions(2000)
    end = datetime(2024, 2, 14, 12, 30)
    ours = spark_summary(spark, tx, end, period)
    assert_same(ours, lifetimes_summary(tx, end, period))
    assert 1000 < len(ours) < 2000


def test_one_customer(spark):
    tx = pd.DataFrame(
        {
            "customer_id": ["only"] * 3,
            "order_ts": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-03 00:00", "2024-01-03 01:00"]
            ),
            "order_value": [1.0, 2.0, 3.0],
        }
    )
    ours = spark_summary(spark, tx, date(2024, 1, 10), "day")
    assert_same(ours, lifetimes_summary(tx, "2024-01-10", "day"))
    assert ours.loc["only", ["frequency", "recency", "T", "monetary_value"]].tolist() == [
        1,
        2,
        9,
        5,
    ]


def test_summary_does_not_depend_on_the_session_time_zone(spark):
    tx = reference_transactions(export_orders())
    frame = spark.createDataFrame(tx, TX_SCHEMA)
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        summary = transaction_summary(frame, END, period="week")
        got = summary.select("customer_id", "frequency", "recency", "T").toPandas()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    want = reference_summary(tx, END, "week")
    got = got.set_index("customer_id").sort_index()
    assert_same(got, want, ["frequency", "recency", "T"])


def test_sufficient_statistics_group_identical_customers(spark):
    tx = random_transactions(500, seed=3)
    end = datetime(2024, 2, 1)
    summary = transaction_summary(spark.createDataFrame(tx, TX_SCHEMA), end, period="week")
    stats = sufficient_statistics(summary)
    reference = reference_summary(tx, end, "week")
    want = (
        reference.groupby(["frequency", "recency", "T"]).size().rename("n_customers").reset_index()
    )
    assert list(stats.columns) == ["frequency", "recency", "T", "n_customers"]
    np.testing.assert_array_equal(stats.to_numpy(dtype=float), want.to_numpy(dtype=float))
    assert stats["n_customers"].sum() == len(reference)


def test_spend_statistics_report_non_positive_repeat_customers(spark):
    tx = reference_transactions(export_orders())
    summary = transaction_summary(spark.createDataFrame(tx, TX_SCHEMA), END)
    spend = spend_statistics(summary)
    reference = reference_summary(tx, END)
    repeat = reference[reference["frequency"] > 0]
    positive = repeat[repeat["monetary_value"] > 0]
    want = positive.groupby(["frequency", "monetary_value"]).size().reset_index()
    assert list(spend.table.columns) == ["frequency", "monetary_value", "n_customers"]
    np.testing.assert_allclose(spend.table.to_numpy(dtype=float), want.to_numpy(dtype=float))
    assert spend.excluded_non_positive == int((repeat["monetary_value"] <= 0).sum()) == 1
    assert spend.repeat_customers == len(repeat)


def test_spend_statistics_of_random_customers(spark):
    tx = random_transactions(1000, seed=11)
    summary = transaction_summary(spark.createDataFrame(tx, TX_SCHEMA), datetime(2024, 3, 1))
    spend = spend_statistics(summary)
    reference = reference_summary(tx, datetime(2024, 3, 1))
    repeat = reference[reference["frequency"] > 0]
    assert spend.table["n_customers"].sum() == int((repeat["monetary_value"] > 0).sum())
    assert spend.excluded_non_positive == int((repeat["monetary_value"] <= 0).sum())
    assert spend.excluded_non_positive > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"period": "month"}, ConfigError, "period must be one of day, week, got 'month'"),
        ({"cut": "strict"}, ConfigError, "cut must be one of period, exact, got 'strict'"),
        ({"observation_end": "2024-01-01"}, ConfigError, "expected a date or datetime"),
    ],
)
def test_bad_arguments(spark, kwargs, error, match):
    frame = spark.createDataFrame(reference_transactions(export_orders()), TX_SCHEMA)
    arguments = {"observation_end": END, **kwargs}
    with pytest.raises(error, match=match):
        transaction_summary(frame, **arguments)


def test_missing_columns_are_named(spark):
    frame = spark.createDataFrame(pd.DataFrame({"customer_id": ["a"], "value": [1.0]}))
    with pytest.raises(InputDataError, match="transactions lacks column\\(s\\) order_ts"):
        transaction_summary(frame, END)
    with pytest.raises(InputDataError, match="orders lacks column\\(s\\) order_ts"):
        transactions_from_orders(frame)
