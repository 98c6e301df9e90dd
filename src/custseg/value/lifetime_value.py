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
    x, tx, age = check_summary(frequency, recency, T)
    order_value = expected_average_value(gamma_gamma, x, monetary_value)
    months = np.arange(horizon_months + 1, dtype=float)
    periods = months * (DAYS_PER_MONTH / period_days)
    # Rows: month ends 0..H; the forecast is cumulative, so each month's orders are a difference.
    cumulative = expected_purchases(bgnbd, periods[:, None], x, tx, age)
    per_month = np.diff(cumulative, axis=0)
    discount = (1.0 + discount_rate_monthly) ** -months[1:]
    return order_value * (discount @ per_month)
