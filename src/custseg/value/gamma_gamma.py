"""The Gamma-Gamma model of spend per order: how much a customer's orders are worth on average.

Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base analysis",
Journal of Marketing Research 42(4), with Fader & Hardie's note 025 ("The Gamma-Gamma model of
monetary value"). Each order of a customer is worth z ~ Gamma(p, nu) (nu a rate), and nu varies
across customers as Gamma(q, v); spend is independent of the purchase process. A customer is
summarised by x (frequency, the number of repeat orders) and m (monetary_value, the mean value
of those orders), and the likelihood of m given x is note 025's eq. 1a.

As in the lifetimes library's ``GammaGammaFitter`` (whose fits the tests check against), the
objective is the mean negative log-likelihood per customer plus ``penalizer`` times the sum of
the squared parameters, minimised with BFGS over log(p, q, v) from log-parameters 0.1.

Only customers with x > 0 and m > 0 inform the fit: customers with no repeat order have no
average to explain, and customers with x > 0 but m <= 0 (returns netted against orders) fall
outside the model's support. The latter are left out of the fit and counted in ``n_left_out``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from custseg.errors import InputDataError
from custseg.value.bgnbd import (
    DEFAULT_PENALIZER,
    INITIAL_LOG_PARAMETER,
    as_column,
    as_weights,
    check_penalizer,
    distinct_levels,
    minimize_log_params,
    raise_unless_converged,
)


@dataclass(frozen=True)
class GammaGammaParams:
    """A fitted Gamma-Gamma model, in the currency of ``monetary_value``.

    ``log_likelihood`` is the total over the customers in the fit (without the penalty);
    ``n_customers`` counts them and ``n_left_out`` counts the customers with repeat orders but a
    non-positive average value (both weighted).
    """

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: float
    n_left_out: float
    iterations: int
    converged: bool


def _check_spend(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Whole, non-negative frequencies and finite average values (any sign), of one length."""
    x = as_column("frequency", frequency)
    m = np.asarray(monetary_value, dtype=float).reshape(-1)
    if x.size != m.size:
        raise InputDataError(
            f"frequency and monetary_value must have one length, got {x.size} and {m.size}"
        )
    if x.size == 0:
        raise InputDataError("the customer summary is empty (no rows in frequency, monetary_value)")
    bad = x != np.round(x)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputDataError(
            f"frequency must be a whole number of repeat purchases: got {x[row]:g} at row {row} "
            f"({int(bad.sum())} such rows)"
        )
    bad = ~np.isfinite(m)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputDataError(
            f"monetary_value must be finite, got {float(m[row])!r} at row {row} "
            f"({int(bad.sum())} such rows)"
        )
    return x, m


def _log_likelihood_terms(params, x, m, levels=None):
    """Per-row log density of the mean order value m given x (note 025, eq. 1a) and its gradient."""
    p, q, v = params
    xs, inverse = distinct_levels(x) if levels is None else levels
    px = p * x
    log_pool = np.log(x * m + v)
    ll = (
        (gammaln(p * xs + q) - gammaln(p * xs))[inverse]
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_pool
    )
    psi_all = digamma(p * xs + q)[inverse]
    d_p = x * (psi_all - digamma(p * xs)[inverse] + np.log(m) + np.log(x) - log_pool)
    d_q = psi_all - digamma(q) + np.log(v) - log_pool
    d_v = q / v - (px + q) / (x * m + v)
    return ll, np.stack([d_p, d_q, d_v])


class _SpendObjective:
    """Mean negative log-likelihood per customer plus the L2 penalty, and its log-gradient.

    The same sum as ``weights @ _log_likelihood_terms(...)``, regrouped so that everything that
    does not depend on (p, q, v) is summed once here: per evaluation only log(x m + v) and
    1 / (x m + v) are computed per row (the gamma functions on x's few distinct values). On
    millions of spend groups this is most of the fit's time.
    """

    def __init__(self, x, m, weights, penalizer):
        self.xs, inverse = distinct_levels(x)
        self.x, self.w, self.penalizer = x, weights, penalizer
        self.xm = x * m
        self.wx = weights * x
        self.total = weights.sum()
        self.level_weights = np.bincount(inverse, weights=weights, minlength=self.xs.size)
        log_m = np.log(m)
        self.sum_wx_log_mx = self.wx @ (log_m + np.log(x))
        self.sum_w_log_m = weights @ log_m

    def __call__(self, log_params):
        params = np.exp(log_params)
        p, q, v = params
        pxs = p * self.xs
        log_pool = np.log(self.xm + v)
        sum_wx_pool, sum_w_pool = self.wx @ log_pool, self.w @ log_pool
        lw, total = self.level_weights, self.total
        ll = (
            lw @ (gammaln(pxs + q) - gammaln(pxs))
            + total * (q * np.log(v) - gammaln(q))
            + p * self.sum_wx_log_mx
            - self.sum_w_log_m
            - p * sum_wx_pool
            - q * sum_w_pool
        )
        psi_all = digamma(pxs + q)
        d_p = (lw * self.xs) @ (psi_all - digamma(pxs)) + self.sum_wx_log_mx - sum_wx_pool
        d_q = lw @ psi_all + total * (np.log(v) - digamma(q)) - sum_w_pool
        d_v = total * q / v - (p * self.wx + q * self.w) @ (1.0 / (self.xm + v))
        grad = np.array([d_p, d_q, d_v])
        value = -ll / total + self.penalizer * np.sum(params**2)
        # Chain rule through params = exp(log_params): d/d log(theta) = theta * d/d theta.
        gradient = -grad / total * params + 2.0 * self.penalizer * params**2
        return value, gradient


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer: float = DEFAULT_PENALIZER,
    maxiter: int | None = None,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from customers with repeat orders.

    Rows with frequency 0 are ignored (nothing to average); rows with frequency > 0 and
    monetary_value <= 0 are left out and counted. ``maxiter`` caps the BFGS iterations.
    Raises InputDataError when no customer is left to fit and ModelFitError when the optimiser
    does not converge.
    """
    x, m = _check_spend(frequency, monetary_value)
    w = as_weights(weights, x.size)
    penalizer = check_penalizer(penalizer)
    repeat = (x > 0) & (w > 0)
    kept = repeat & (m > 0)
    left_out = float(w[repeat & ~kept].sum())
    if not kept.any():
        raise InputDataError(
            "Gamma-Gamma needs customers with repeat orders of positive value: none among "
            f"{w.sum():g} customers ({left_out:g} with repeat orders but monetary_value <= 0)"
        )
    x, m, w = x[kept], m[kept], w[kept]
    levels = distinct_levels(x)
    result = minimize_log_params(
        _SpendObjective(x, m, w, penalizer), np.full(3, INITIAL_LOG_PARAMETER), maxiter
    )
    p, q, v = np.exp(result.x)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        total = float(w @ _log_likelihood_terms(np.array([p, q, v]), x, m, levels)[0])
    raise_unless_converged("Gamma-Gamma", result, total)
    return GammaGammaParams(
        float(p), float(q), float(v), total, float(w.sum()), left_out, int(result.nit), True
    )


def expected_average_value(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> np.ndarray:
    """E[order value | x, m]: the posterior mean, note 025's eq. 5.

    A weighted average of the customer's own mean m and the population mean p v / (q - 1),
    the customer's weight p x / (p x + q - 1) growing with their number of orders; for x = 0 it
    is the population mean. The population mean is finite and positive only when q > 1.
    """
    x, m = _check_spend(frequency, monetary_value)
    p, q, v = params.p, params.q, params.v
    own_weight = p * x / (p * x + q - 1)
    return (1 - own_weight) * (p * v / (q - 1)) + own_weight * m
