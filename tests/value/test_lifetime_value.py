"""Discounted CLV: against lifetimes' customer_lifetime_value on CDNOW for every customer, and
against sums worked from the BG/NBD and Gamma-Gamma predictions directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custseg.errors import ParameterError
from custseg.value.bgnbd import BGNBDParams, expected_purchases, fit_bgnbd
from custseg.value.gamma_gamma import GammaGammaParams, expected_average_value, fit_gamma_gamma
from custseg.value.lifetime_value import discounted_lifetime_value, discounted_purchases

BGNBD = BGNBDParams(0.243, 4.414, 0.793, 2.426, 0.0, 0.0, 0, True)
GAMMA_GAMMA = GammaGammaParams(6.25, 3.74, 15.44, 0.0, 0.0, 0.0, 0, True)
HISTORY = {
    "frequency": np.array([0, 1, 2, 7]),
    "recency": np.array([0.0, 3.0, 30.4, 36.0]),
    "T": np.array([38.9, 20.0, 38.9, 38.0]),
    "monetary_value": np.array([0.0, 11.8, 22.4, 40.0]),
}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    datasets = pytest.importorskip("lifetimes.datasets")
    return datasets.load_cdnow_summary_data_with_monetary_value()


# lifetimes' freq is the length of the model's period: a day, a month, or its 4.345 weeks a month.
@pytest.mark.parametrize(("freq", "period_days"), [("D", 1.0), ("W", 30 / 4.345), ("M", 30.0)])
def test_cdnow_matches_lifetimes(cdnow, freq, period_days):
    lifetimes = pytest.importorskip("lifetimes")
    x, tx, age, m = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    repeat = x > 0
    bgf = lifetimes.BetaGeoFitter().fit(x, tx, age)
    ggf = lifetimes.GammaGammaFitter().fit(x[repeat], m[repeat])
    theirs = ggf.customer_lifetime_value(
        bgf,
        cdnow["frequency"],
        cdnow["recency"],
        cdnow["T"],
        cdnow["monetary_value"],
        time=12,
        discount_rate=0.01,
        freq=freq,
    )
    ours = discounted_lifetime_value(
        fit_bgnbd(x, tx, age), fit_gamma_gamma(x, m), x, tx, age, m, 12, 0.01, period_days
    )
    np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=1e-6)


def test_no_discount_is_value_times_purchases_over_the_horizon():
    # Undiscounted, the monthly increments telescope to the 12-month forecast.
    clv = discounted_lifetime_value(BGNBD, GAMMA_GAMMA, **HISTORY, discount_rate_monthly=0.0)
    value = expected_average_value(GAMMA_GAMMA, HISTORY["frequency"], HISTORY["monetary_value"])
    purchases = expected_purchases(
        BGNBD, 12 * 30.0, HISTORY["frequency"], HISTORY["recency"], HISTORY["T"]
    )
    np.testing.assert_allclose(clv, value * purchases, rtol=1e-12)


def test_each_month_is_discounted_at_its_end():
    history = {k: v for k, v in HISTORY.items() if k != "monetary_value"}
    value = expected_average_value(GAMMA_GAMMA, HISTORY["frequency"], HISTORY["monetary_value"])
    by_hand = np.zeros(4)
    for month in (1, 2, 3):
        start, end = (expected_purchases(BGNBD, d * 30 / 7, **history) for d in (month - 1, month))
        by_hand += value * (end - start) / 1.02**month
    clv = discounted_lifetime_value(BGNBD, GAMMA_GAMMA, **HISTORY, **_terms(3, 0.02, 7.0))
    np.testing.assert_allclose(clv, by_hand, rtol=1e-12)


def test_a_horizon_of_days_ends_with_a_partial_month():
    # 365 days: twelve 30-day months, then 5 days discounted at (1 + rate)^(365 / 30).
    history = {k: v for k, v in HISTORY.items() if k != "monetary_value"}
    by_hand = np.zeros(4)
    ends = [*range(30, 361, 30), 365]
    for start, end in zip([0, *ends[:-1]], ends, strict=True):
        step = expected_purchases(BGNBD, end, **history) - expected_purchases(
            BGNBD, start, **history
        )
        by_hand += step / 1.01 ** (end / 30)
    ours = discounted_purchases(BGNBD, **history, horizon_days=365, discount_rate_monthly=0.01)
    np.testing.assert_allclose(ours, by_hand, rtol=1e-12)
    whole = discounted_purchases(BGNBD, **history, horizon_days=360, discount_rate_monthly=0.01)
    value = expected_average_value(GAMMA_GAMMA, HISTORY["frequency"], HISTORY["monetary_value"])
    clv = discounted_lifetime_value(BGNBD, GAMMA_GAMMA, **HISTORY)
    np.testing.assert_allclose(value * whole, clv, rtol=1e-12)


def _terms(months, rate, days):
    return {"horizon_months": months, "discount_rate_monthly": rate, "period_days": days}


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        (_terms(0, 0.01, 1.0), r"horizon_months must be an integer >= 1, got 0"),
        (_terms(1.5, 0.01, 1.0), r"horizon_months must be an integer >= 1, got 1.5"),
        (_terms(12, -0.1, 1.0), r"discount_rate_monthly must be >= 0, got -0.1"),
        (_terms(12, 0.01, 0.0), r"period_days must be > 0, got 0.0"),
    ],
)
def test_bad_terms_are_named(terms, message):
    with pytest.raises(ParameterError, match=message):
        discounted_lifetime_value(BGNBD, GAMMA_GAMMA, **HISTORY, **terms)
