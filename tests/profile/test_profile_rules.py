"""Words, archetypes, outliers, the Markdown table and insights: pure pandas, no Spark."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from custseg.profile import (
    ARCHETYPES,
    PROFILE_FEATURES,
    WORDS,
    archetype,
    business_insights,
    describe_segments,
    is_outlier,
    profile_markdown,
    qualitative_word,
    segment_statistics_pandas,
    word_level,
)

CUTS = [10.0, 20.0, 30.0, 40.0]


@pytest.mark.parametrize(
    ("value", "cuts", "expected"),
    [
        # No ties: the usual quintile bins.
        (5, CUTS, 0),
        (15, CUTS, 1),
        (25, CUTS, 2),
        (35, CUTS, 3),
        (45, CUTS, 4),
        # On one cut point: the two bins it separates, rounded toward moderate.
        (10, CUTS, 1),
        (20, CUTS, 2),
        (30, CUTS, 2),
        (40, CUTS, 3),
        # All cut points equal: moderate at the value, extreme off it.
        (7, [7, 7, 7, 7], 2),
        (6, [7, 7, 7, 7], 0),
        (8, [7, 7, 7, 7], 4),
        # Loyalty-like ties: 1, 2, 2, 3.
        (2, [1, 2, 2, 3], 2),
        (3, [1, 2, 2, 3], 3),
        (0, [1, 2, 2, 3], 0),
        (1, [1, 2, 2, 3], 1),
        # 80% zeros: a zero median borders bins 0..3 -> middle 1.5 -> moderate.
        (0, [0, 0, 0, 5], 2),
        (3, [0, 0, 0, 5], 3),
        (0, [0, 0, 5, 5], 1),
    ],
)
def test_word_level_hand_cases(value: float, cuts: list[float], expected: int) -> None:
    assert word_level(value, cuts) == expected


def test_word_level_missing_and_bad_input() -> None:
    assert word_level(float("nan"), CUTS) is None
    assert word_level(1.0, [1.0, float("nan"), 2.0, 3.0]) is None
    with pytest.raises(ValueError, match="cut_points must hold 4 values"):
        word_level(1.0, [1.0, 2.0])


def test_qualitative_word() -> None:
    assert [qualitative_word(v, CUTS) for v in (5, 15, 25, 35, 45)] == list(WORDS)
    assert qualitative_word(99.0, [1, 1, 1, 1], constant=True) == "moderate"
    assert qualitative_word(float("nan"), CUTS) == "unknown"


def test_two_segment_table_words_and_archetypes(two_segments: pd.DataFrame) -> None:
    stats = segment_statistics_pandas(two_segments, ["total_spend", "num_orders", "recency_days"])
    profiles = describe_segments(stats, typical_gap_days=20.0).set_index("segment")
    # Ten customers: cut points are the 2nd, 4th, 6th, 8th values; a segment median the 3rd of 5.
    # spend 10..50 | 100..500: cuts 20, 40, 100, 300; medians 30 (low) and 300 (= q80: high).
    # orders 5..9 | 1,1,1,2,2: cuts 1, 2, 5, 7; medians 7 (= q80: high) and 1 (= q20: low).
    # recency 1..5 | 50..90: cuts 2, 4, 50, 70; medians 3 (low) and 70 (= q80: high).
    assert profiles.loc[
        0, ["total_spend_word", "num_orders_word", "recency_days_word"]
    ].tolist() == [
        "low",
        "high",
        "low",
    ]
    assert profiles.loc[
        1, ["total_spend_word", "num_orders_word", "recency_days_word"]
    ].tolist() == [
        "high",
        "low",
        "high",
    ]
    # 0: repeat buyers, recent, orders >= moderate, spend >= low -> steady engaged.
    # 1: high spend with low orders -> high-value infrequent (that rule comes before lapsing,
    #    although a median 70 days is beyond two typical gaps of 20 days).
    assert profiles["archetype"].tolist() == ["steady engaged", "high-value infrequent"]
    assert profiles.loc[0, "total_spend_median"] == 30
    assert profiles.loc[1, "total_spend_mean"] == 300
    assert profiles.loc[1, "revenue_share"] == pytest.approx(1500 / 1650)
    assert profiles["share"].tolist() == [0.5, 0.5]
    assert profiles.loc[1, "purchase_text"] == "High spend, high recency"
    assert profiles.loc[1, "loyalty_text"] == "Low order count"
    assert profiles.loc[0, "description"].startswith(
        "5 customers (50.0% of customers, 9.1% of revenue): bought recently (median 3 days ago); "
        "high order count (median 7); low spend (median 30)"
    )
    assert "have not bought for a while (median 70 days ago)" in profiles.loc[1, "description"]
    assert profiles.loc[1, "action"] == ARCHETYPES["high-value infrequent"][1]


def test_describe_segments_columns(two_segments: pd.DataFrame) -> None:
    features = ["total_spend", "num_orders", "recency_days"]
    profiles = describe_segments(segment_statistics_pandas(two_segments, features))
    assert list(profiles.columns) == [
        "segment",
        "size",
        "share",
        "revenue_share",
        "archetype",
        "archetype_text",
        "description",
        "purchase_text",
        "loyalty_text",
        "action",
        "is_outlier",
        *[f"{f}_{s}" for f in features for s in ("median", "mean", "word")],
    ]


def test_zero_variance_feature_reads_similar_or_is_not_described(
    two_segments: pd.DataFrame,
) -> None:
    two_segments["loyalty_segment"] = 2
    stats = segment_statistics_pandas(two_segments, ["loyalty_segment", "total_spend"])
    assert stats.population.loc["loyalty_segment", ["q20", "q80", "std"]].tolist() == [2, 2, 0]
    profiles = describe_segments(stats)
    # The same median in both segments: no contrast between them.
    assert profiles["loyalty_segment_word"].tolist() == ["similar", "similar"]
    assert profiles["loyalty_text"].tolist() == ["Similar loyalty", "Similar loyalty"]
    # The stage describes only the clustered features: a dropped one gets no word anywhere.
    profiles = describe_segments(stats, described=["total_spend"])
    assert "loyalty_segment_word" not in profiles.columns
    assert profiles["loyalty_segment_median"].tolist() == [2, 2]
    assert not profiles["description"].str.contains("loyalty").any()
    assert (profiles["loyalty_text"] == "").all()


def test_noise_segment_is_named_and_labelled(two_segments: pd.DataFrame) -> None:
    two_segments.loc[[0, 9], "segment"] = -1
    profiles = describe_segments(segment_statistics_pandas(two_segments, ["total_spend"]))
    assert profiles["segment"].tolist() == [-1, 0, 1]
    assert profiles.loc[0, "archetype"] == "unassigned (noise)"
    assert profiles.loc[0, "description"].startswith("2 unassigned customers (20.0% of customers")
    assert "| noise | " in profile_markdown(profiles)
    assert "20.0% of customers (2) are unassigned noise." in business_insights(profiles)


def _words(**levels: str) -> dict[str, str]:
    names = {
        "units": "units_purchased",
        "spend": "total_spend",
        "tenure": "tenure_days",
        "recency": "recency_days",
        "loyalty": "loyalty_segment",
        "orders": "num_orders",
        "aov": "avg_order_value",
        "products": "product_diversity",
    }
    return {names[k]: v for k, v in levels.items()}


@pytest.mark.parametrize(
    ("words", "orders", "expected", "recency_median"),
    [
        (
            _words(units="very high", spend="very high", orders="very low"),
            1,
            "one-time bulk buyer",
            120.0,
        ),
        (
            _words(units="high", spend="very high", orders="very low"),
            1,
            "single very-high-value purchase",
            120.0,
        ),
        (
            _words(units="low", aov="very high", orders="very low"),
            1,
            "single very-high-value purchase",
            120.0,
        ),
        # Lapsing is checked before value: a very-high-recency VIP segment is at risk.
        (
            _words(spend="very high", loyalty="very high", recency="very high", orders="high"),
            6,
            "lapsed / at risk",
            120.0,
        ),
        (_words(recency="high", orders="low"), 2, "lapsed / at risk", 120.0),
        # ... but never a segment whose median customer bought within the last 90 days.
        (
            _words(recency="very high", spend="moderate", orders="moderate"),
            5,
            "mixed profile",
            30.0,
        ),
        (_words(tenure="very low", recency="low", orders="low"), 2, "new customers", 120.0),
        (_words(tenure="low", recency="very low", orders="very low"), 1, "new customers", 120.0),
        (
            _words(spend="high", tenure="high", recency="moderate", orders="moderate"),
            5,
            "high-value loyal",
            120.0,
        ),
        (
            _words(spend="very high", loyalty="low", tenure="low", orders="high"),
            9,
            "high-value loyal",
            120.0,
        ),
        (
            _words(spend="high", tenure="moderate", recency="low", orders="low"),
            2,
            "high-value infrequent",
            120.0,
        ),
        (
            _words(aov="high", spend="moderate", orders="very low"),
            1,
            "high-value infrequent",
            120.0,
        ),
        (
            _words(aov="low", spend="moderate", recency="low", orders="very high", products="high"),
            12,
            "bargain hunters",
            120.0,
        ),
        # Small baskets and many orders without wide product range read as steady, not bargain
        # hunting.
        (
            _words(
                aov="low", spend="moderate", recency="low", orders="very high", products="moderate"
            ),
            12,
            "steady engaged",
            120.0,
        ),
        (_words(spend="low", recency="moderate", orders="low"), 2, "occasional low-value", 120.0),
        (_words(spend="moderate", recency="low", orders="moderate"), 5, "steady engaged", 120.0),
        (_words(spend="moderate", recency="high", orders="moderate"), 5, "mixed profile", 120.0),
        (
            _words(spend="moderate", recency="moderate", orders="moderate"),
            1,
            "mixed profile",
            120.0,
        ),
        ({}, math.nan, "mixed profile", 120.0),
    ],
)
def test_archetype_rules(
    words: dict[str, str], orders: float, expected: str, recency_median: float
) -> None:
    assert archetype(0, words, {"num_orders": orders, "recency_days": recency_median}) == expected


def test_every_archetype_has_a_sentence_and_an_action() -> None:
    for name, (sentence, action) in ARCHETYPES.items():
        assert sentence and "|" not in sentence and "\n" not in sentence, name
        assert action.endswith("."), name


@pytest.mark.parametrize(
    ("size", "share", "expected"),
    [(1, 0.5, True), (2, 0.5, True), (3, 0.5, False), (500, 0.009, True), (500, 0.01, False)],
)
def test_is_outlier(size: int, share: float, expected: bool) -> None:
    assert is_outlier(size, share, outlier_share=0.01) is expected


def test_outlier_share_is_validated(two_segments: pd.DataFrame) -> None:
    stats = segment_statistics_pandas(two_segments, ["total_spend"])
    with pytest.raises(ValueError, match="outlier_share must be in"):
        describe_segments(stats, outlier_share=1.5)
    assert describe_segments(stats, outlier_share=0.6)["is_outlier"].tolist() == [True, True]


SEED_TABLE = """\
| Cluster | Units Purchased | Loyalty Segment | Num Orders | Count |
|---|---|---|---|---|
| 1 | Moderate units, moderate spend, moderate tenure, low recency | Average loyalty, moderate order count, moderate product/category diversity | Steady, engaged customers with consistent purchasing behaviour | 16 |
| 2 | Very low units, very high spend, very high tenure, high recency | High loyalty, moderate order count, very high product/category diversity | High-value repeat customers: high spend over several orders | 7 |
| 3 | Very high units, very low spend, very low tenure, very high recency | Very low loyalty, very low order count, very low product/category diversity | One-time bulk buyer: a single order of very many units | 1 |
| 4 | High units, very high spend, very low tenure, very high recency | High loyalty, very low order count, very low product/category diversity | A single purchase of very high value | 1 |
"""  # noqa: E501 (the expected table, exactly as the profile prints it)


def test_seed_scenario(seed_customers: pd.DataFrame) -> None:
    stats = segment_statistics_pandas(seed_customers, PROFILE_FEATURES)
    # Hand check of the steady row. 25 customers: cuts are the 5th/10th/15th/20th values.
    # spend sorted: 900 1000 1025 1050 [1075] 1100 1100 1125 1150 [1175] ... [1300] ... [2800]:
    # the steady median (8th of 1000..1375 by 25) is 1175 = q40 -> "moderate" (tie rule).
    assert stats.population.loc["total_spend", ["q20", "q40", "q60", "q80"]].tolist() == [
        1075,
        1175,
        1300,
        2800,
    ]
    # recency: steady 3..18 lie below all others but one (9): steady median 10 is the 9th
    # value, between q20 = 7 and q40 = 11 -> "low".
    # loyalty: 0, 1 x6, 2 x10, 3 x8 -> cuts 1, 2, 2, 3; steady median 2 -> "moderate" ("Average
    # loyalty"); loyalty 3 -> bins 3..4 -> "high"; loyalty 0 -> "very low".
    profiles = describe_segments(stats)
    assert profiles["archetype"].tolist() == [
        "steady engaged",
        "high-value loyal",
        "one-time bulk buyer",
        "single very-high-value purchase",
    ]
    assert profiles["is_outlier"].tolist() == [False, False, True, True]
    assert profiles["size"].tolist() == [16, 7, 1, 1]
    assert profiles["share"].tolist() == [0.64, 0.28, 0.04, 0.04]
    assert profile_markdown(profiles) == SEED_TABLE
    assert profiles.loc[0, "action"].startswith("Retain:")
    assert profiles.loc[1, "action"].startswith("VIP care:")
    assert profiles.loc[2, "action"].startswith("Investigate")
    assert business_insights(profiles) == [
        "Segment 4 (single very-high-value purchase) carries the most revenue: "
        "55.6% of revenue from 4.0% of customers.",
        "Segment 1 (steady engaged) is the largest segment: 64.0% of customers and 21.1% of "
        "revenue.",
        "No segment is lapsed or at risk.",
        "Investigate tiny segments 3 (one-time bulk buyer, 1 customer) and "
        "4 (single very-high-value purchase, 1 customer) before acting: "
        "they may be data errors or special accounts.",
    ]


def test_markdown_escapes_pipes_and_newlines() -> None:
    profiles = pd.DataFrame(
        {
            "segment": [0],
            "size": [3],
            "purchase_text": ["High | low"],
            "loyalty_text": ["line one\nline two"],
            "archetype_text": ["a\\b|c"],
        }
    )
    row = profile_markdown(profiles).splitlines()[2]
    assert row == "| 0 | High \\| low | line one line two | a\\\\b\\|c | 3 |"
    assert row.replace("\\|", "").count("|") == 6


def test_insights_at_risk_and_majority_noise() -> None:
    profiles = pd.DataFrame(
        {
            "segment": [-1, 0, 1],
            "size": [60, 30, 10],
            "share": [0.6, 0.3, 0.1],
            "revenue_share": [0.5, 0.2, 0.3],
            "archetype": ["unassigned (noise)", "steady engaged", "lapsed / at risk"],
            "is_outlier": [False, False, False],
        }
    )
    assert business_insights(profiles) == [
        "The 60 unassigned customers (60.0% of customers) carry 50.0% of revenue, more than any "
        "segment: no segment describes them, so review them one by one (key accounts, bulk or "
        "business buyers, data errors) before acting on the segments; the clustering explains "
        "fewer than half the customers.",
        "Segment 1 (lapsed / at risk) carries the most revenue: 30.0% of revenue from 10.0% of "
        "customers.",
        "Segment 0 (steady engaged) is the largest segment: 30.0% of customers and 20.0% of "
        "revenue.",
        "At risk: segment 1 (lapsed / at risk) with 10.0% of customers and 30.0% of revenue; "
        "plan a win-back campaign.",
    ]
    # Noise that carries less revenue than a segment is the last insight, not the first.
    profiles["revenue_share"] = [0.1, 0.5, 0.4]
    lines = business_insights(profiles)
    assert lines[0].startswith("Segment 0 (steady engaged) carries the most revenue")
    assert (
        lines[-1]
        == "60.0% of customers (60) are unassigned noise; the clustering explains fewer than half "
        "the customers."
    )


def test_lapsed_needs_a_silence_of_two_typical_gaps() -> None:
    from custseg.profile.rules import LAPSE_GAPS

    words = _words(recency="very high", spend="moderate", orders="moderate")
    gap = 20.0  # days between a typical customer's orders
    assert (
        archetype(0, words, {"num_orders": 5, "recency_days": LAPSE_GAPS * gap + 1}, gap)
        == "lapsed / at risk"
    )
    # Relatively the least recent, but silent for under two gaps: not lapsed.
    assert (
        archetype(0, words, {"num_orders": 5, "recency_days": LAPSE_GAPS * gap - 1}, gap)
        != "lapsed / at risk"
    )
    # Bought 34 minutes before the as-of time: never lapsed, whatever the scale word says.
    assert (
        archetype(0, words, {"num_orders": 5, "recency_days": 34 / 1440}, math.nan)
        != "lapsed / at risk"
    )


@pytest.mark.parametrize(
    ("word", "median", "gap", "expected"),
    [
        ("very low", 5.0, 30.0, "bought very recently"),
        # The scale says "very low", but 116 days is four typical gaps: only the scale word.
        ("very low", 116.0, 30.0, "very low recency"),
        ("very high", 200.0, 30.0, "have not bought for a long time"),
        ("very high", 40.0, 30.0, "have not bought for a while"),
        ("high", 20.0, 30.0, "high recency"),
        ("low", 5.0, math.nan, "low recency"),
    ],
)
def test_recency_phrase_agrees_with_the_typical_gap(
    word: str, median: float, gap: float, expected: str
) -> None:
    from custseg.profile.descriptions import _recency_phrase

    assert _recency_phrase(word, median, gap) == expected
