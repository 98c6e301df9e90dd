"""BG/NBD: against lifetimes and the paper on CDNOW, grouped == ungrouped, parameter recovery from
simulated customers, a Monte Carlo of eq. 9, and the edge cases (no repeat buyers, bad input)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from scipy.special import hyp2f1
from value_draws import draw_bgnbd, draw_new_customer_orders

from custseg.errors import InputDataError, ModelFitError, ParameterError
from custseg.value import bgnbd
from custseg.value.bgnbd import (
    BGNBDParams,
    expected_purchases,
    expected_purchases_new,
    fit_bgnbd,
    probability_alive,
)

TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


def _params(**values: float) -> BGNBDParams:
    return BGNBDParams(**values, log_likelihood=0.0, n_customers=0.0, iterations=0, converged=True)


def _as_array(params: BGNBDParams) -> np.ndarray:
    return np.array([params.r, params.alpha, params.a, params.b])


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    datasets = pytest.importorskip("lifetimes.datasets")
    return datasets.load_cdnow_summary(index_col=[0])


def _columns(df: pd.DataFrame):
    return df["frequency"].to_numpy(), df["recency"].to_numpy(), df["T"].to_numpy()


@pytest.mark.parametrize("penalizer", [0.0, 0.1])
def test_cdnow_matches_lifetimes(cdnow, penalizer):
    lifetimes = pytest.importorskip("lifetimes")
    x, tx, age = _columns(cdnow)
    ours = fit_bgnbd(x, tx, age, penalizer=penalizer)
    theirs = lifetimes.BetaGeoFitter(penalizer_coef=penalizer).fit(x, tx, age)
    reference = theirs.params_[["r", "alpha", "a", "b"]].to_numpy()
    np.testing.assert_allclose(_as_array(ours), reference, rtol=1e-3)
    for t in (39, 10):
        np.testing.assert_allclose(
            expected_purchases(ours, t, x, tx, age),
            theirs.conditional_expected_number_of_purchases_up_to_time(t, x, tx, age),
            rtol=1e-6,
        )
    np.testing.assert_allclose(
        probability_alive(ours, x, tx, age),
        theirs.conditional_probability_alive(x, tx, age),
        rtol=1e-6,
    )
    horizons = np.array([1.0, 10.0, 39.0, 78.0])
    np.testing.assert_allclose(
        expected_purchases_new(ours, horizons),
        theirs.expected_number_of_purchases_up_to_time(horizons),
        rtol=1e-6,
    )
    assert ours.converged and ours.n_customers == len(cdnow)


def test_cdnow_matches_the_paper(cdnow):
    # Fader, Hardie & Lee (2005), section 5: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426,
    # LL = -9582.4 (time in weeks; lifetimes' own likelihood is in rescaled time, not comparable).
    fitted = fit_bgnbd(*_columns(cdnow))
    np.testing.assert_allclose(_as_array(fitted), [0.243, 4.414, 0.793, 2.426], atol=5e-4)
    assert fitted.log_likelihood == pytest.approx(-9582.4, abs=0.05)


def test_log_likelihood_total_is_the_weighted_sum_of_the_rows(cdnow):
    x, tx, age = _columns(cdnow)
    fitted = fit_bgnbd(x, tx, age)
    assert fitted.log_likelihood == pytest.approx(bgnbd.log_likelihood(fitted, x, tx, age).sum())


def test_analytic_gradient_matches_finite_differences(cdnow):
    x, tx, age = _columns(cdnow)
    weights = np.random.default_rng(3).integers(1, 5, x.size).astype(float)
    scale = 1.0 / age.max()

    objective = bgnbd._PurchaseObjective(x, tx * scale, age * scale, weights, 0.05)
    for point in ([0.1, 0.1, 0.1, 0.1], [-1.4, 1.5, -0.2, 0.9]):
        error = check_grad(lambda p: objective(p)[0], lambda p: objective(p)[1], np.array(point))
        assert error < 1e-5


def test_regrouped_objective_is_the_sum_of_the_row_terms(cdnow):
    # The fit's objective sums over distinct values; it must equal the per-row terms summed.
    x, tx, age = _columns(cdnow)
    weights = np.random.default_rng(6).integers(1, 5, x.size).astype(float)
    objective = bgnbd._PurchaseObjective(x, tx, age, weights, 0.0)
    for point in ([0.1, 0.1, 0.1, 0.1], [-1.4, 1.5, -0.2, 0.9]):
        rows, row_grad = bgnbd._log_likelihood_terms(np.exp(point), x, tx, age)
        value, gradient = objective(np.array(point))
        assert value == pytest.approx(-(weights @ rows) / weights.sum(), rel=1e-12)
        want = -(row_grad @ weights) / weights.sum() * np.exp(point)
        np.testing.assert_allclose(gradient, want, rtol=1e-9)


def _grouped(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby(["frequency", "recency", "T"], as_index=False).size()


def test_grouped_equals_ungrouped_on_cdnow(cdnow):
    grouped = _grouped(cdnow)
    assert len(grouped) < len(cdnow)
    rows = fit_bgnbd(*_columns(cdnow))
    groups = fit_bgnbd(*_columns(grouped), weights=grouped["size"])
    np.testing.assert_allclose(_as_array(groups), _as_array(rows), rtol=1e-5)
    assert groups.log_likelihood == pytest.approx(rows.log_likelihood, rel=1e-9)
    assert groups.n_customers == rows.n_customers


@pytest.mark.parametrize("penalizer", [0.0, 0.05])
def test_grouped_equals_ungrouped_on_whole_days(penalizer):
    rng = np.random.default_rng(11)
    drawn = draw_bgnbd(rng, 5000, T=rng.integers(20, 40, 5000).astype(float), **TRUE)
    drawn["recency"] = np.floor(drawn["recency"])
    grouped = _grouped(drawn)
    assert len(grouped) < len(drawn) / 3
    rows = fit_bgnbd(*_columns(drawn), penalizer=penalizer)
    groups = fit_bgnbd(*_columns(grouped), weights=grouped["size"], penalizer=penalizer)
    np.testing.assert_allclose(_as_array(groups), _as_array(rows), rtol=1e-5)
    assert groups.log_likelihood == pytest.approx(rows.log_likelihood, rel=1e-9)


def test_recovers_the_parameters_it_was_drawn_from():
    rng = np.random.default_rng(0)
    drawn = draw_bgnbd(rng, 20_000, T=rng.uniform(20, 60, 20_000), **TRUE)
    fitted = fit_bgnbd(*_columns(drawn))
    np.testing.assert_allclose(_as_array(fitted), list(TRUE.values()), rtol=0.15)


@pytest.mark.parametrize("t", [10.0, 39.0])
def test_expected_purchases_new_matches_a_monte_carlo(t):
    orders = draw_new_customer_orders(np.random.default_rng(1), 400_000, t=t, **TRUE)
    standard_error = orders.std() / np.sqrt(orders.size)
    assert expected_purchases_new(_params(**TRUE), t) == pytest.approx(
        orders.mean(), abs=4 * standard_error
    )


def test_forecast_after_no_repeat_order_is_a_new_customer_with_older_rates():
    # With x = 0 the customer is alive at T (dropout follows purchases only), p keeps its prior
    # Beta(a, b) and lambda's posterior is Gamma(r, alpha + T): eq. 10 must reduce to eq. 9
    # with alpha + T in place of alpha, an identity neither formula's code path shares.
    forecast = expected_purchases(_params(**TRUE), 10.0, 0, 0, 5.0)[()]
    shifted = _params(r=TRUE["r"], alpha=TRUE["alpha"] + 5.0, a=TRUE["a"], b=TRUE["b"])
    assert forecast == pytest.approx(expected_purchases_new(shifted, 10.0)[()], rel=1e-10)


def test_probability_alive_is_one_for_single_purchase_customers():
    params = _params(**TRUE)
    assert probability_alive(params, [0, 0], [0, 0], [1.0, 50.0]).tolist() == [1.0, 1.0]
    assert 0 < probability_alive(params, [3], [2.0], [50.0])[0] < 1


def test_extreme_histories_stay_finite():
    params = _params(**TRUE)
    x, tx, age = np.array([400.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), np.array([5000.0] * 3)
    assert np.all(np.isfinite(expected_purchases(params, 1000.0, x, tx, age)))
    assert np.all(np.isfinite(probability_alive(params, x, tx, age)))


def test_no_repeat_buyers_is_a_clear_error():
    # The likelihood has no maximum (see fit_bgnbd); refusing beats returning arbitrary numbers.
    with pytest.raises(InputDataError, match="all 3 customers have frequency 0"):
        fit_bgnbd([0, 0, 0], [0, 0, 0], [5.0, 8.0, 9.0])


def test_identical_rows_give_the_same_fit_as_one_weighted_row():
    rng = np.random.default_rng(2)
    drawn = draw_bgnbd(rng, 3000, T=30.0, **TRUE)
    doubled = pd.concat([drawn, drawn])
    once = fit_bgnbd(*_columns(drawn), weights=np.full(len(drawn), 2.0))
    twice = fit_bgnbd(*_columns(doubled))
    np.testing.assert_allclose(_as_array(once), _as_array(twice), rtol=1e-6)


def test_one_summary_for_everybody_does_not_pass_as_a_fit():
    # Identical customers carry no information about heterogeneity: the optimiser runs off
    # towards a degenerate point, which must surface as ModelFitError, not as parameters.
    with pytest.raises(ModelFitError, match=r"^BG/NBD fit did not converge after \d+ iterations"):
        fit_bgnbd([2] * 50, [5.0] * 50, [10.0] * 50)


def test_an_unfinished_fit_raises_model_fit_error(cdnow):
    with pytest.raises(ModelFitError) as caught:
        fit_bgnbd(*_columns(cdnow), maxiter=1)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("BG/NBD fit did not converge after 1 iterations (last log-likelihood")


GOOD = {"frequency": [1, 0, 3], "recency": [2.0, 0.0, 4.0], "T": [5.0, 6.0, 7.0]}
BAD_INPUTS = [
    (
        {"frequency": [1, -1, 3]},
        InputDataError,
        r"frequency must be finite and >= 0, got -1.0 at row 1",
    ),
    ({"recency": [2.0, 0.0, 8.0]}, InputDataError, r"recency must not exceed T: .*8, T 7 at row 2"),
    ({"frequency": [1.5, 0, 3]}, InputDataError, r"frequency must be a whole number.*: got freq"),
    (
        {"recency": [2.0, 1.0, 4.0]},
        InputDataError,
        r"recency must be 0 where frequency is 0: .*row 1",
    ),
    ({"T": [5.0, 6.0]}, InputDataError, r"one length, got 3, 3, 2"),
    ({"T": [5.0, np.nan, 7.0]}, InputDataError, r"T must be finite and >= 0, got nan at row 1"),
    ({"frequency": [], "recency": [], "T": []}, InputDataError, r"the customer summary is empty"),
    ({"weights": [1.0, 2.0]}, InputDataError, r"weights has 2 rows, the summary has 3"),
    ({"weights": [0.0, 0.0, 0.0]}, InputDataError, r"weights must count at least one customer"),
    ({"penalizer": -0.1}, ParameterError, r"penalizer must be >= 0, got -0.1"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD_INPUTS)
def test_bad_input_is_named(change, error, message):
    with pytest.raises(error, match=message):
        fit_bgnbd(**{**GOOD, **change})


def test_negative_horizon_is_refused():
    with pytest.raises(ParameterError, match=r"t must be finite and >= 0, got -1"):
        expected_purchases(_params(**TRUE), -1, [1], [1.0], [2.0])


def test_forecasts_where_the_series_overflows_stay_finite_and_grow():
    # x = 2000 and t >> T: 2F1(r + x, b + x; a + b + x - 1; z) overflows as z -> 1, so the Euler
    # form takes over; the forecast must stay finite, grow with t and join the direct form.
    params = _params(**TRUE)
    horizons = np.array([1e3, 1e4, 1e5, 1e6])
    forecast = expected_purchases(params, horizons, 2000, 9.9, 10.0)
    with np.errstate(over="ignore"):
        z = 1e6 / (TRUE["alpha"] + 10.0 + 1e6)
        assert not np.isfinite(hyp2f1(TRUE["r"] + 2000, TRUE["b"] + 2000, 2002.3, z))
    assert np.all(np.isfinite(forecast)) and np.all(np.diff(forecast) > 0)
