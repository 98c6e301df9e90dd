"""The BG/NBD model of repeat purchasing: how often customers buy, and whether they are alive.

Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2). While alive a customer buys as a Poisson process of
rate lambda ~ Gamma(r, alpha) (alpha a rate); after every purchase they drop out for good with
probability p ~ Beta(a, b). A customer's summary is (x = frequency, the number of repeat
purchases; t_x = recency, the time of the last one; T, the time since the first purchase), all in
one time unit (the period).

The fit maximises the log-likelihood of eq. 6 (in the log-space form of section 7 of the paper)
over the logarithms of (r, alpha, a, b), on rows that stand for ``weights`` customers each: the
Spark side groups customers with identical summaries. The objective is the same as the lifetimes
library's ``BetaGeoFitter`` so that its fits can be checked against it: time is rescaled so the
oldest customer has T = 1, the objective is the mean negative log-likelihood per customer plus
``penalizer`` times the sum of the squared (rescaled) parameters, started from log-parameters 0.1
and minimised with BFGS. Predictions: eq. 10 (conditional expected purchases), eq. 9
(unconditional), and P(alive) from Fader, Hardie & Lee's note 021.

Single-purchase customers (x = 0, t_x = 0) are part of the likelihood and of every prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import OptimizeResult, minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from custseg.errors import InputDataError, ModelFitError, ParameterError

DEFAULT_PENALIZER = 0.0
# lifetimes' defaults, kept so that both libraries stop at the same point of the same path.
TOLERANCE = 1e-7
INITIAL_LOG_PARAMETER = 0.1


@dataclass(frozen=True)
class BGNBDParams:
    """A fitted BG/NBD model; alpha is in the input's time unit (the period).

    ``log_likelihood`` is the total over all customers (each row counted ``weight`` times), in
    the input's time unit and without the penalty; ``n_customers`` is the sum of the weights.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: float
    iterations: int
    converged: bool


def as_column(name: str, values: ArrayLike) -> np.ndarray:
    """A finite, non-negative 1-d float array, or an InputDataError naming the first bad value."""
    array = np.asarray(values, dtype=float).reshape(-1)
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputDataError(
            f"{name} must be finite and >= 0, got {float(array[row])!r} at row {row} "
            f"({int(bad.sum())} such rows)"
        )
    return array


def as_weights(weights: ArrayLike | None, n_rows: int) -> np.ndarray:
    """Customers per row: ones when None; otherwise finite, >= 0, one per row, not all zero."""
    if weights is None:
        return np.ones(n_rows)
    array = as_column("weights", weights)
    if array.size != n_rows:
        raise InputDataError(f"weights has {array.size} rows, the summary has {n_rows}")
    if array.sum() <= 0:
        raise InputDataError(f"weights must count at least one customer, they sum to {array.sum()}")
    return array


def check_summary(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (frequency, recency, T) arrays of one length, each row a possible summary."""
    x, tx, age = as_column("frequency", frequency), as_column("recency", recency), as_column("T", T)
    if not x.size == tx.size == age.size:
        raise InputDataError(
            f"frequency, recency and T must have one length, got {x.size}, {tx.size}, {age.size}"
        )
    if x.size == 0:
        raise InputDataError("the customer summary is empty (no rows in frequency, recency, T)")
    checks = (
        (x != np.round(x), "frequency must be a whole number of repeat purchases", x),
        (tx > age, "recency must not exceed T", tx),
        ((x == 0) & (tx != 0), "recency must be 0 where frequency is 0", tx),
    )
    for bad, message, shown in checks:
        if bad.any():
            row = int(np.argmax(bad))
            raise InputDataError(
                f"{message}: got frequency {x[row]:g}, recency {shown[row]:g}, T {age[row]:g} "
                f"at row {row} ({int(bad.sum())} such rows)"
            )
    return x, tx, age


def check_penalizer(penalizer: float) -> float:
    if not np.isfinite(penalizer) or penalizer < 0:
        raise ParameterError(f"penalizer must be >= 0, got {penalizer!r}")
    return float(penalizer)


def minimize_log_params(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    initial: np.ndarray,
    maxiter: int | None,
) -> OptimizeResult:
    """BFGS on log-parameters with an analytic gradient, as lifetimes does (method None = BFGS)."""
    options = {} if maxiter is None else {"maxiter": maxiter}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return minimize(objective, initial, jac=True, method="BFGS", tol=TOLERANCE, options=options)


def raise_unless_converged(model: str, result: OptimizeResult, log_likelihood: float) -> None:
    """ModelFitError in one line when the optimiser stopped early or left non-finite values."""
    finite = bool(np.all(np.isfinite(result.x)) and np.isfinite(log_likelihood))
    if result.success and finite:
        return
    reason = " ".join(str(result.message).split()) if finite else "non-finite parameters"
    raise ModelFitError(
        f"{model} fit did not converge after {result.nit} iterations "
        f"(last log-likelihood {log_likelihood:.2f}): {reason}"
    )


def distinct_levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values and each row's index into them.

    The gamma-function terms depend on the data through x alone, and x takes few values (tens)
    even on millions of rows; T and t_x take a few hundred (days): computing those terms once
    per value is most of a fit's speed.
    """
    values, inverse = np.unique(values, return_inverse=True)
    return values, inverse.reshape(-1)


def _log_likelihood_terms(params, x, tx, age, levels=None):
    """Per-row log-likelihood (paper, section 7) and its gradient in (r, alpha, a, b)."""
    r, alpha, a, b = params
    xs, inverse = distinct_levels(x) if levels is None else levels
    repeat = x > 0
    # The paper's A1 and A2 (section 7), their gamma functions on x's distinct values.
    rate_part = gammaln(r + xs) - gammaln(r)
    dropout_part = gammaln(a + b) + gammaln(b + xs) - gammaln(b) - gammaln(a + b + xs)
    a12 = (rate_part + dropout_part)[inverse] + r * np.log(alpha)
    a3 = -(r + x) * np.log(alpha + age)
    # b + x - 1 >= b > 0 on the rows where this term counts (x >= 1); it is -inf elsewhere.
    b_shift = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(b_shift) - (r + x) * np.log(alpha + tx), -np.inf)
    top = np.maximum(a3, a4)
    mix = np.log(np.exp(a3 - top) + np.exp(a4 - top)) + top
    # Shares of the "alive at T" (a3) and "died after the last purchase" (a4) branches.
    w3 = np.exp(a3 - mix)
    w4 = 1.0 - w3
    d_r = (digamma(r + xs) - digamma(r))[inverse] + np.log(alpha) - w3 * np.log(alpha + age)
    d_r -= np.where(repeat, w4 * np.log(alpha + tx), 0.0)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + age) - w4 * (r + x) / (alpha + tx)
    d_ab = (digamma(a + b) - digamma(a + b + xs))[inverse]
    d_a = d_ab + w4 / a
    d_b = d_ab + (digamma(b + xs) - digamma(b))[inverse] - w4 / b_shift
    return a12 + mix, np.stack([d_r, d_alpha, d_a, d_b])


def log_likelihood(
    params: BGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Each row's BG/NBD log-likelihood under ``params`` (time in the input's unit)."""
    x, tx, age = check_summary(frequency, recency, T)
    values = np.array([params.r, params.alpha, params.a, params.b])
    with np.errstate(invalid="ignore", divide="ignore"):
        return _log_likelihood_terms(values, x, tx, age)[0]


class _PurchaseObjective:
    """Mean negative log-likelihood per customer plus the L2 penalty, and its log-gradient.

    The same sum as ``weights @ _log_likelihood_terms(...)``, regrouped for speed on millions of
    groups: the gamma functions are taken on x's distinct values, the logarithms of alpha + T and
    alpha + t_x on the distinct T and t_x (a few hundred days), and per row only the two branches
    are mixed.
    """

    def __init__(self, x, tx, age, weights, penalizer):
        self.xs, self.x_index = distinct_levels(x)
        self.ages, self.age_index = distinct_levels(age)
        self.recencies, self.tx_index = distinct_levels(tx)
        self.x, self.w, self.penalizer = x, weights, penalizer
        self.repeat = x > 0
        self.total = weights.sum()
        self.level_weights = np.bincount(self.x_index, weights=weights, minlength=self.xs.size)

    def __call__(self, log_params):
        params = np.exp(log_params)
        r, alpha, a, b = params
        xs, lw, w, total = self.xs, self.level_weights, self.w, self.total
        log_age = np.log(alpha + self.ages)[self.age_index]
        log_tx = np.log(alpha + self.recencies)[self.tx_index]
        rx = r + self.x
        a3 = -rx * log_age
        # b + x - 1 >= b > 0 where x >= 1; the "died" branch a4 is -inf where x = 0.
        log_b_shift = np.log(np.where(xs > 0, b + xs - 1, 1.0))
        a4_levels = np.where(xs > 0, np.log(a) - log_b_shift, -np.inf)
        a4 = a4_levels[self.x_index] - rx * log_tx
        mix = np.logaddexp(a3, a4)
        # Shares of the "alive at T" (a3) and "died after the last purchase" (a4) branches.
        w4 = np.exp(a4 - mix)
        w3 = 1.0 - w4
        ww3, ww4 = w * w3, w * w4
        ww4_levels = np.bincount(self.x_index, weights=ww4, minlength=xs.size)
        ll = (
            lw @ (gammaln(r + xs) - gammaln(r) + gammaln(b + xs) - gammaln(b + xs + a))
            + total * (gammaln(a + b) - gammaln(b) + r * np.log(alpha))
            + w @ mix
        )
        psi_ab = digamma(a + b) - digamma(a + b + xs)
        d_r = lw @ (digamma(r + xs) - digamma(r)) + total * np.log(alpha)
        d_r -= ww3 @ log_age + ww4 @ log_tx
        d_alpha = (
            total * r / alpha
            - (ww3 * rx) @ (1.0 / (alpha + self.ages))[self.age_index]
            - (ww4 * rx) @ (1.0 / (alpha + self.recencies))[self.tx_index]
        )
        d_a = lw @ psi_ab + ww4.sum() / a
        shift = np.where(xs > 0, b + xs - 1, 1.0)
        d_b = lw @ (psi_ab + digamma(b + xs) - digamma(b)) - ww4_levels @ (1.0 / shift)
        grad = np.array([d_r, d_alpha, d_a, d_b])
        value = -ll / total + self.penalizer * np.sum(params**2)
        # Chain rule through params = exp(log_params): d/d log(theta) = theta * d/d theta.
        gradient = -grad / total * params + 2.0 * self.penalizer * params**2
        return value, gradient


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer: float = DEFAULT_PENALIZER,
    initial: ArrayLike | None = None,
    maxiter: int | None = None,
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD parameters for customers grouped by identical summaries.

    ``initial`` is (r, alpha, a, b) in the input's time unit (default: lifetimes' start);
    ``maxiter`` caps the BFGS iterations (default: scipy's). Raises InputDataError when no
    customer made a repeat purchase and ModelFitError when the optimiser does not converge.
    """
    x, tx, age = check_summary(frequency, recency, T)
    w = as_weights(weights, x.size)
    penalizer = check_penalizer(penalizer)
    counted = w > 0
    if not np.any(x[counted] > 0):
        # With no repeat purchase the likelihood is r*log(alpha/(alpha+T)), which climbs towards
        # 0 as r -> 0 or alpha -> infinity and does not involve a or b at all: there is no
        # maximum to find, so any "fitted" numbers would be wherever the optimiser gave up.
        raise InputDataError(
            f"BG/NBD needs repeat purchases to fit: all {w.sum():g} customers have frequency 0"
        )
    # Time rescaled so the oldest customer has T = 1 (lifetimes does the same, and its penalty
    # acts on the rescaled alpha, so the rescaling is part of the objective, not a detail).
    scale = 1.0 / age[counted].max()
    if initial is None:
        start = np.full(4, INITIAL_LOG_PARAMETER)
    else:
        start = np.log(np.asarray(initial, dtype=float) * np.array([1.0, scale, 1.0, 1.0]))
    levels = distinct_levels(x)
    objective = _PurchaseObjective(x, tx * scale, age * scale, w, penalizer)
    result = minimize_log_params(objective, start, maxiter)
    r, alpha, a, b = np.exp(result.x)
    alpha /= scale
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ll = _log_likelihood_terms(np.array([r, alpha, a, b]), x, tx, age, levels)[0]
        total = float(w @ np.where(counted, ll, 0.0))
    raise_unless_converged("BG/NBD", result, total)
    return BGNBDParams(
        float(r), float(alpha), float(a), float(b), total, float(w.sum()), int(result.nit), True
    )


def _one_minus_tail(big_a, big_b, big_c, z):
    """1 - (1 - z)^A 2F1(A, B; C; z), the bracket of eqs. 9 and 10.

    When the series overflows (z near 1 with a large A), Euler's transformation gives the same
    product as (1 - z)^(C - B) 2F1(C - A, C - B; C; z), which stays finite.
    """
    big_a, big_b, big_c, z = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (big_a, big_b, big_c, z))
    )
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log_direct = np.log(hyp2f1(big_a, big_b, big_c, z)) + big_a * np.log1p(-z)
        # expm1 keeps the precision of small horizons, where the product is close to 1.
        result = np.array(-np.expm1(log_direct))
        # hyp2f1 is the costly part of a forecast: the second form only where the first failed.
        bad = ~np.isfinite(log_direct)
        if bad.any():
            a_, b_, c_, z_ = big_a[bad], big_b[bad], big_c[bad], z[bad]
            result[bad] = 1.0 - hyp2f1(c_ - a_, c_ - b_, c_, z_) * np.exp((c_ - b_) * np.log1p(-z_))
    return result


def _check_horizon(t: ArrayLike) -> np.ndarray:
    horizon = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
        raise ParameterError(f"t must be finite and >= 0, got {t!r}")
    return horizon


def probability_alive(
    params: BGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """P(still alive at T | x, t_x, T); 1 for x = 0, since dropout only follows a purchase."""
    x, tx, age = check_summary(frequency, recency, T)
    return _probability_alive(params, x, tx, age)


def _probability_alive(params: BGNBDParams, x, tx, age) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    # log of a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x); expit keeps 1/(1+e^L) finite for large L.
    log_odds_dead = (
        np.log(a)
        - np.log(np.where(repeat, b + x - 1, 1.0))
        + (r + x) * (np.log(alpha + age) - np.log(alpha + tx))
    )
    return np.where(repeat, expit(-log_odds_dead), 1.0)


def expected_purchases(
    params: BGNBDParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Expected purchases in (T, T + t] for a customer with summary (x, t_x, T), eq. 10."""
    horizon = _check_horizon(t)
    x, tx, age = check_summary(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = horizon / (alpha + age + horizon)
    bracket = _one_minus_tail(r + x, b + x, a + b + x - 1, z)
    # Eq. 10's denominator 1 + a/(b+x-1) (...)^(r+x) is 1 / P(alive).
    return (a + b + x - 1) / (a - 1) * bracket * _probability_alive(params, x, tx, age)


def expected_purchases_new(params: BGNBDParams, t: ArrayLike) -> np.ndarray:
    """Expected purchases in (0, t] of a random customer seen at their first purchase, eq. 9."""
    horizon = _check_horizon(t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    bracket = _one_minus_tail(r, b, a + b - 1, horizon / (alpha + horizon))
    return (a + b - 1) / (a - 1) * bracket
