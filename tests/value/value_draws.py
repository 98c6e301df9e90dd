"""Customers drawn from the BG/NBD and Gamma-Gamma generative processes, for tests/value.

Written from the papers' stories (not from any library's simulator), vectorised with numpy:
tests import it as ``from value_draws import draw_bgnbd`` (pytest puts this folder on the path).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def draw_bgnbd(
    rng: np.random.Generator,
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: np.ndarray | float,
) -> pd.DataFrame:
    """Summaries (frequency, recency, T) of ``n`` customers observed for T after their first order.

    lambda ~ Gamma(shape r, rate alpha) and p ~ Beta(a, b). While alive, repeat orders arrive as
    a Poisson process of rate lambda; after each repeat order the customer drops out with
    probability p, so the repeat orders they would ever make are K ~ Geometric(p) (K >= 1).
    Within (0, T] there are N ~ Poisson(lambda T) arrivals, the customer makes x = min(K, N) of
    them, and the x-th of N uniform arrival times on (0, T] is T * Beta(x, N - x + 1).
    """
    age = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    rate = rng.gamma(r, 1.0 / alpha, size=n)
    dropout = rng.beta(a, b, size=n)
    arrivals = rng.poisson(rate * age)
    lifetime_orders = rng.geometric(dropout)
    x = np.minimum(arrivals, lifetime_orders)
    made = x > 0
    recency = np.zeros(n)
    recency[made] = age[made] * rng.beta(x[made], arrivals[made] - x[made] + 1)
    return pd.DataFrame({"frequency": x, "recency": recency, "T": age})


def draw_new_customer_orders(
    rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float, t: float
) -> np.ndarray:
    """Repeat orders in (0, t] of ``n`` customers seen at their first order (for eq. 9)."""
    return draw_bgnbd(rng, n, r, alpha, a, b, t)["frequency"].to_numpy()


def draw_gamma_gamma(
    rng: np.random.Generator, frequency: np.ndarray, p: float, q: float, v: float
) -> np.ndarray:
    """Mean order value of customers with ``frequency`` orders each (0 where frequency is 0).

    nu ~ Gamma(shape q, rate v) per customer and each order ~ Gamma(shape p, rate nu); the mean
    of x orders is then Gamma(shape p x, rate nu x).
    """
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / v, size=x.size)
    made = x > 0
    mean = np.zeros(x.size)
    mean[made] = rng.gamma(p * x[made], 1.0 / (nu[made] * x[made]))
    return mean
