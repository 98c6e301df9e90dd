"""Segment and population statistics: pandas by hand, Spark against pandas, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from custseg.errors import InputDataError
from custseg.profile import (
    PROFILE_FEATURES,
    describe_segments,
    profile_markdown,
    segment_statistics,
    segment_statistics_pandas,
)


def test_pandas_statistics_by_hand(two_segments: pd.DataFrame) -> None:
    stats = segment_statistics_pandas(two_segments, ["total_spend", "num_orders"])
    seg = stats.segments.set_index("segment")
    assert seg["size"].tolist() == [5, 5]
    assert seg["revenue"].tolist() == [150, 1500]
    assert seg.loc[0, "total_spend_median"] == 30
    assert seg.loc[0, "total_spend_std"] == pytest.approx(np.std([10, 20, 30, 40, 50], ddof=1))
    assert seg.loc[1, "num_orders_mean"] == pytest.approx(1.4)
    pop = stats.population
    # Inverted CDF on ten values: the 2nd, 4th, 5th, 6th, 8th sorted values.
    assert pop.loc["num_orders", ["q20", "q40", "median", "q60", "q80"]].tolist() == [1, 2, 2, 5, 7]
    assert pop.loc["total_spend", ["min", "max", "count"]].tolist() == [10, 500, 10]
    assert stats.n_customers == 10
    assert stats.total_revenue == 1650


def test_single_customer_segment_has_nan_std(seed_customers: pd.DataFrame) -> None:
    stats = segment_statistics_pandas(seed_customers, ["total_spend"])
    assert math.isnan(stats.segments.set_index("segment").loc[4, "total_spend_std"])


def test_without_spend_column(two_segments: pd.DataFrame) -> None:
    stats = segment_statistics_pandas(two_segments, ["num_orders"], spend_col=None)
    assert stats.segments["revenue_share"].isna().all()
    profiles = describe_segments(stats)
    assert "of revenue" not in profiles.loc[0, "description"]


def test_null_feature_values_are_skipped(two_segments: pd.DataFrame) -> None:
    two_segments["num_orders"] = two_segments["num_orders"].astype("float64")
    two_segments.loc[0, "num_orders"] = np.nan
    stats = segment_statistics_pandas(two_segments, ["num_orders"])
    assert stats.population.loc["num_orders", "count"] == 9
    assert stats.segments.loc[0, "size"] == 5
    assert stats.segments.loc[0, "num_orders_median"] == 7  # 6, 7, 8, 9: the 2nd


@pytest.mark.parametrize(
    ("change", "features", "message"),
    [
        (lambda d: d, ["nope"], r"lacks column\(s\) \['nope'\]"),
        (lambda d: d, [], "at least one column"),
        (lambda d: d, ["num_orders", "num_orders"], "distinct"),
        (lambda d: d, ["segment"], "cannot also be a feature"),
        (
            lambda d: d.assign(num_orders=d["num_orders"].astype(str)),
            ["num_orders"],
            "num_orders is object",
        ),
        (
            lambda d: d.assign(segment=d["segment"].where(d.index > 1)),
            ["num_orders"],
            "2 null value",
        ),
        (lambda d: d.iloc[0:0], ["num_orders"], "empty"),
    ],
)
def test_pandas_bad_input(two_segments: pd.DataFrame, change, features, message: str) -> None:
    with pytest.raises(InputDataError, match=message):
        segment_statistics_pandas(change(two_segments), features)


@pytest.mark.spark
def test_spark_statistics_equal_pandas(spark, seed_customers: pd.DataFrame) -> None:
    data = seed_customers.copy()
    # Add noise customers and a missing value so null handling is compared too.
    extra = data.iloc[[0, 5, 17]].assign(segment=-1, customer_id=["n0", "n1", "n2"])
    data = pd.concat([data, extra], ignore_index=True)
    data["tenure_days"] = data["tenure_days"].astype("float64")
    data.loc[3, "tenure_days"] = np.nan
    df = spark.createDataFrame(data)

    got = segment_statistics(df, PROFILE_FEATURES)
    want = segment_statistics_pandas(data, PROFILE_FEATURES)

    assert got.n_customers == want.n_customers == 28
    assert got.total_revenue == pytest.approx(want.total_revenue)
    pd.testing.assert_frame_equal(got.segments, want.segments, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(got.population, want.population, check_exact=False, rtol=1e-9)
    # Same numbers, same words: the Spark path gives the identical table.
    assert profile_markdown(describe_segments(got)) == profile_markdown(describe_segments(want))


@pytest.mark.spark
def test_spark_medians_within_tolerance_on_larger_data(spark) -> None:
    rng = np.random.default_rng(7)
    n = 5000
    data = pd.DataFrame(
        {
            "segment": rng.integers(-1, 4, n),
            "total_spend": rng.lognormal(6, 1, n),
            "num_orders": rng.poisson(4, n).astype("float64"),
        }
    )
    got = segment_statistics(
        spark.createDataFrame(data), ["total_spend", "num_orders"], accuracy=10_000
    )
    want = segment_statistics_pandas(data, ["total_spend", "num_orders"])
    for f in ("total_spend", "num_orders"):
        for stat in ("q20", "q40", "median", "q60", "q80"):
            x = data[f].to_numpy()
            rank_got = np.mean(x <= got.population.loc[f, stat])
            rank_want = np.mean(x <= want.population.loc[f, stat])
            assert abs(rank_got - rank_want) <= 0.001, (f, stat)
        np.testing.assert_allclose(got.segments[f"{f}_mean"], want.segments[f"{f}_mean"], rtol=1e-9)


@pytest.mark.spark
def test_spark_bad_input(spark, two_segments: pd.DataFrame) -> None:
    df = spark.createDataFrame(two_segments)
    with pytest.raises(InputDataError, match=r"lacks column\(s\) \['nope'\]"):
        segment_statistics(df, ["nope"])
    with pytest.raises(InputDataError, match="customer_id is string"):
        segment_statistics(df, ["customer_id"])
    with pytest.raises(InputDataError, match="2 null value"):
        segment_statistics(
            df.selectExpr(
                "CASE WHEN customer_id IN ('c0', 'c1') THEN NULL ELSE segment END AS segment",
                "total_spend",
                "num_orders",
            ),
            ["num_orders"],
        )


def test_typical_gap_days_spark_equals_pandas_and_hand(spark) -> None:
    from custseg.profile.statistics import typical_gap_days, typical_gap_days_pandas

    # Gaps (last - first) / (orders - 1): 10, 5, 2.5 (a 30-minute stamp counts), 30; one-order
    # rows ignored.
    ts = pd.Timestamp
    pdf = pd.DataFrame(
        {
            "num_orders": [3, 5, 2, 2, 1, 1],
            "first_purchase": [
                ts("2024-01-01"),
                ts("2024-01-01"),
                ts("2024-03-01 00:00"),
                ts("2024-01-01"),
                ts("2024-02-01"),
                ts("2024-02-02"),
            ],
            "last_purchase": [
                ts("2024-01-21"),
                ts("2024-01-21"),
                ts("2024-03-03 12:00"),
                ts("2024-01-31"),
                ts("2024-02-01"),
                ts("2024-02-02"),
            ],
        }
    )
    assert typical_gap_days_pandas(pdf) == pytest.approx(
        5.0
    )  # inverted-CDF median of 2.5, 5, 10, 30
    assert typical_gap_days(spark.createDataFrame(pdf)) == pytest.approx(5.0)
    assert math.isnan(typical_gap_days_pandas(pdf[pdf["num_orders"] == 1]))
    assert math.isnan(typical_gap_days(spark.createDataFrame(pdf[pdf["num_orders"] == 1])))
