"""Discounted customer lifetime value: BG/NBD purchases times Gamma-Gamma value per order.

Fader, Hardie & Lee (2005), "RFM and CLV" (JMR 42(4)), value a customer as the expected number
of future orders times the expected value of an order, the two being independent. Here the
horizon is cut into months of ``DAYS_PER_MONTH`` days; month k's expected orders (the increase of
the BG/NBD eq. 10 forecast over that month) are valued at the Gamma-Gamma conditional mean and
discounted by (1 + rate)^k, i.e. every order of a month is discounted as if made at its end.
This is the convention of the lifetimes library's ``customer_lifetime_value``, whose figures the
tests check against; its ``freq`` corresponds to ``period_days`` ("D" is 1, "H" is 1/24,
"M" is 30).
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

from custseg.errors import ParameterError
from custseg.value.bgnbd import BGNBDParams, check_summary, expected_purchases
from custseg.value.gamma_gamma import GammaGammaParams, expected_average_value

DAYS_PER_MONTH = 30.0
DEFAULT_HORIZON_MONTHS = 12
DEFAULT_DISCOUNT_RATE_MONTHLY = 0.01


def _check_terms(horizon_months: int, discount_rate_monthly: float, period_days: float) -> None:
    if (
        not isinstance(horizon_months, numbers.Integral)
        or isinstance(horizon_months, bool)
        or horizon_months < 1
    ):
        raise ParameterError(f"horizon_months must be an integer >= 1, got {horizon_months!r}")
    if not np.isfinite(discount_rate_monthly) or discount_rate_monthly < 0:
        raise ParameterError(f"discount_rate_monthly must be >= 0, got {discount_rate_monthly!r}")
    if not np.isfinite(period_days) or period_days <= 0:
        raise ParameterError(f"period_days must be > 0, got {period_days!r}")


def discounted_lifetime_value(
    bgnbd: BGNBDParams,
    gamma_gamma: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    discount_rate_monthly: float = DEFAULT_DISCOUNT_RATE_MONTHLY,
    period_days: float = 1.0,
) -> np.ndarray:
    """Each customer's discounted value over the next ``horizon_months`` months.

    frequency, recency and T are in periods of ``period_days`` days (the unit the BG/NBD model
    was fitted in); monetary_value is the mean value of the repeat orders. For summaries kept in
    weeks, pass ``period_days=7``: a month is then 30 / 7 periods.
    """
    _check_terms(horizon_months, discount_rate_monthly, period_days)
    x, _tx, _age = check_summary(frequency, recency, T)
    order_value = expected_average_value(gamma_gamma, x, monetary_value)
    horizon_days = horizon_months * DAYS_PER_MONTH
    return order_value * discounted_purchases(
        bgnbd, frequency, recency, T, horizon_days, discount_rate_monthly, period_days
    )


def discounted_purchases(
    bgnbd: BGNBDParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    horizon_days: float,
    discount_rate_monthly: float = DEFAULT_DISCOUNT_RATE_MONTHLY,
    period_days: float = 1.0,
) -> np.ndarray:
    """The expected purchases of the next ``horizon_days`` days, each month's discounted.

    Months end every ``DAYS_PER_MONTH`` days; a horizon that is not a whole number of months
    ends with a shorter step, discounted by (1 + rate)^(its end in months). Times the expected
    order value, this is the lifetime value, so a customer's value can be split into how often
    (this) and how much (Gamma-Gamma).
    """
    _check_terms(1, discount_rate_monthly, period_days)
    if not np.isfinite(horizon_days) or horizon_days <= 0:
        raise ParameterError(f"horizon_days must be > 0, got {horizon_days!r}")
    x, tx, age = check_summary(frequency, recency, T)
    ends = np.arange(DAYS_PER_MONTH, horizon_days, DAYS_PER_MONTH)
    ends = np.append(ends, float(horizon_days))
    days = np.concatenate([[0.0], ends])
    # Rows: step ends; the forecast is cumulative, so each step's orders are a difference.
    cumulative = expected_purchases(bgnbd, (days / period_days)[:, None], x, tx, age)
    per_step = np.diff(cumulative, axis=0)
    discount = (1.0 + discount_rate_monthly) ** -(ends / DAYS_PER_MONTH)
    return discount @ per_step
