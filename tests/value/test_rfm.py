"""RFM scores and segments against an independent pandas reference (and lifetimes' recency)."""

from __future__ import annotations

import itertools
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from value_inputs import TX_SCHEMA, random_transactions
from value_reference import reference_scores, reference_segment

from custseg.errors import ConfigError, InputDataError
from custseg.value.rfm import (
    SEGMENT_NAMES,
    SEGMENT_RULES,
    _segment_column,
    fm_score,
    rfm_scores,
    rfm_segment_summary,
    segment_of,
)
from custseg.value.summary import transaction_summary

ALL_SCORES = list(itertools.product(range(1, 6), repeat=3))


def customers(n: int, seed: int = 1) -> pd.DataFrame:
    """Heavy ties: half the customers bought once, recency in whole days, spend rounded."""
    rng = np.random.default_rng(seed)
    orders = np.where(rng.random(n) < 0.5, 1, rng.integers(2, 12, size=n))
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "recency_days": rng.integers(0, 60, size=n).astype(float),
            "num_orders": orders.astype(float),
            "total_spend": np.round(rng.gamma(2, 40, size=n), 0) - 10,
            "region": rng.choice(["north", "south", "tiny"], size=n, p=[0.6, 0.397, 0.003]),
        }
    )


def reference_rfm(frame: pd.DataFrame, bins: int, group: str | None = None) -> pd.DataFrame:
    parts = [frame] if group is None else [g for _, g in frame.groupby(group)]
    out = []
    for part in parts:
        part = part.copy()
        part["r_score"] = reference_scores(part["recency_days"], bins, higher_is_better=False)
        part["f_score"] = reference_scores(part["num_orders"], bins)
        part["m_score"] = reference_scores(part["total_spend"], bins)
        out.append(part)
    return pd.concat(out).set_index("customer_id").sort_index()


def spark_rfm(spark, frame: pd.DataFrame, bins: int = 5, group: str | None = None):
    scored = rfm_scores(spark.createDataFrame(frame), bins=bins, group_col=group)
    return scored.toPandas().set_index("customer_id").sort_index()


def test_every_score_combination_has_exactly_one_segment():
    for r, f, m in ALL_SCORES:
        matching = [rule.name for rule in SEGMENT_RULES if rule.matches(r, fm_score(f, m))]
        assert matching == [reference_segment(r, f, m)], (r, f, m)
        assert segment_of(r, f, m) == matching[0]
    assert {segment_of(*s) for s in ALL_SCORES} == set(SEGMENT_NAMES)
    assert all(rule.description and rule.action for rule in SEGMENT_RULES)


def test_spark_segment_rules_equal_the_python_ones(spark):
    import pyspark.sql.functions as F  # pyspark: only this test needs it directly

    grid = pd.DataFrame(ALL_SCORES, columns=["r_score", "f_score", "m_score"])
    frame = spark.createDataFrame(grid).withColumn(
        "fm_score", F.floor((F.col("f_score") + F.col("m_score") + 1) / 2)
    )
    got = frame.withColumn(
        "rfm_segment", _segment_column(F.col("r_score"), F.col("fm_score"))
    ).toPandas()
    want = [segment_of(r, f, m) for r, f, m in ALL_SCORES]
    assert got.sort_values(["r_score", "f_score", "m_score"])["rfm_segment"].tolist() == want


def test_scores_and_segments_equal_the_reference_with_heavy_ties(spark):
    frame = customers(1000)
    got, want = spark_rfm(spark, frame), reference_rfm(frame, 5)
    for column in ("r_score", "f_score", "m_score"):
        assert got[column].tolist() == want[column].tolist(), column
    # half bought once: all of them share the first place, so F = 1
    assert set(got.loc[frame.set_index("customer_id")["num_orders"] == 1, "f_score"]) == {1}
    want_segments = [
        segment_of(r, f, m)
        for r, f, m in want[["r_score", "f_score", "m_score"]].itertuples(index=False)
    ]
    assert got["rfm_segment"].tolist() == want_segments


def test_scores_within_groups_including_a_tiny_one(spark):
    frame = customers(1000, seed=2)
    got, want = spark_rfm(spark, frame, group="region"), reference_rfm(frame, 5, "region")
    assert (frame["region"] == "tiny").sum() < 5
    for column in ("r_score", "f_score", "m_score"):
        assert got[column].tolist() == want[column].tolist(), column


def test_fewer_customers_than_bins(spark):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "recency_days": [1.0, 5.0, 30.0],
            "num_orders": [3.0, 1.0, 1.0],
            "total_spend": [90.0, 20.0, 10.0],
        }
    )
    got = spark_rfm(spark, frame)
    assert got[["r_score", "f_score", "m_score"]].to_numpy().tolist() == [
        [4, 4, 4],
        [2, 1, 2],
        [1, 1, 1],
    ]
    assert got[["r_score", "f_score", "m_score"]].equals(
        reference_rfm(frame, 5)[["r_score", "f_score", "m_score"]].astype("int32")
    )
    one = spark_rfm(spark, frame.iloc[:1])
    # alone, a customer has nobody to beat: every score is 1
    assert one.loc["a", ["r_score", "f_score", "m_score", "rfm_segment"]].tolist() == [
        1,
        1,
        1,
        "Lost",
    ]


def test_other_bins_give_scores_only(spark):
    frame = customers(300, seed=4)
    scored = rfm_scores(spark.createDataFrame(frame), bins=4)
    got, want = scored.toPandas().set_index("customer_id").sort_index(), reference_rfm(frame, 4)
    for column in ("r_score", "f_score", "m_score"):
        assert got[column].tolist() == want[column].tolist(), column
    assert got["rfm_segment"].isna().all() and got["r_score"].max() == 4
    with pytest.raises(ConfigError, match="defined for 5 bins only"):
        rfm_segment_summary(scored)


def test_segment_summary_equals_pandas(spark):
    frame = customers(500, seed=6)
    summary = rfm_segment_summary(rfm_scores(spark.createDataFrame(frame)))
    scored = reference_rfm(frame, 5)
    scored["rfm_segment"] = [
        segment_of(*s) for s in scored[["r_score", "f_score", "m_score"]].itertuples(index=False)
    ]
    want = scored.groupby("rfm_segment").agg(
        customers=("r_score", "size"),
        revenue=("total_spend", "sum"),
        mean_r_score=("r_score", "mean"),
        mean_f_score=("f_score", "mean"),
        mean_m_score=("m_score", "mean"),
    )
    want = want.reindex(SEGMENT_NAMES)
    assert summary["rfm_segment"].tolist() == SEGMENT_NAMES
    got = summary.set_index("rfm_segment")
    assert got["customers"].tolist() == want["customers"].fillna(0).astype(int).tolist()
    np.testing.assert_allclose(got["revenue"], want["revenue"].fillna(0), rtol=1e-9)
    np.testing.assert_allclose(got["customer_share"], want["customers"].fillna(0) / len(frame))
    total = frame["total_spend"].sum()
    np.testing.assert_allclose(got["revenue_share"], want["revenue"].fillna(0) / total)
    for column in ("mean_r_score", "mean_f_score", "mean_m_score"):
        np.testing.assert_allclose(got[column], want[column], rtol=1e-9)


def test_recency_from_the_transaction_summary_matches_lifetimes(spark):
    """R from days since the last purchase: ours (T - recency) against lifetimes' summary."""
    lifetimes_utils = pytest.importorskip("lifetimes.utils")
    tx = random_transactions(400, seed=8)
    end = datetime(2024, 3, 1)
    summary = transaction_summary(spark.createDataFrame(tx, TX_SCHEMA), end)
    ours = summary.selectExpr(
        "customer_id",
        "T - recency AS recency_days",
        "frequency + 1 AS num_orders",
        "monetary_value AS total_spend",
    )
    got = rfm_scores(ours).toPandas().set_index("customer_id").sort_index()
    theirs = lifetimes_utils.summary_data_from_transaction_data(
        tx, "customer_id", "order_ts", "order_value", observation_period_end=end
    ).sort_index()
    assert list(got.index) == list(theirs.index)
    assert (
        got["r_score"].tolist()
        == reference_scores(theirs["T"] - theirs["recency"], 5, higher_is_better=False).tolist()
    )
    assert got["f_score"].tolist() == reference_scores(theirs["frequency"], 5).tolist()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"bins": 1}, ConfigError, "bins must be an integer >= 2, got 1"),
        ({"bins": 2.5}, ConfigError, "bins must be an integer >= 2, got 2.5"),
        ({"monetary_col": "spend"}, InputDataError, "RFM input lacks column\\(s\\) spend"),
        ({"group_col": "segment_id"}, InputDataError, "lacks column\\(s\\) segment_id"),
    ],
)
def test_bad_arguments(spark, kwargs, error, match):
    frame = spark.createDataFrame(customers(5))
    with pytest.raises(error, match=match):
        rfm_scores(frame, **kwargs)
