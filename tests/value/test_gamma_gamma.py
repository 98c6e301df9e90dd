"""Gamma-Gamma: against lifetimes on CDNOW, grouped == ungrouped, parameter recovery, left-out
non-positive averages, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from value_draws import draw_gamma_gamma

from custseg.errors import InputDataError, ModelFitError, ParameterError
from custseg.value import gamma_gamma
from custseg.value.gamma_gamma import GammaGammaParams, expected_average_value, fit_gamma_gamma

TRUE = {"p": 6.0, "q": 4.0, "v": 15.0}


def _as_array(params: GammaGammaParams) -> np.ndarray:
    return np.array([params.p, params.q, params.v])


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    datasets = pytest.importorskip("lifetimes.datasets")
    return datasets.load_cdnow_summary_data_with_monetary_value()


def _columns(df: pd.DataFrame):
    return df["frequency"].to_numpy(), df["monetary_value"].to_numpy()


@pytest.mark.parametrize("penalizer", [0.0, 0.001])
def test_cdnow_matches_lifetimes(cdnow, penalizer):
    lifetimes = pytest.importorskip("lifetimes")
    x, m = _columns(cdnow)
    ours = fit_gamma_gamma(x, m, penalizer=penalizer)
    # lifetimes refuses zero averages, so it is given the repeat buyers only.
    repeat = x > 0
    theirs = lifetimes.GammaGammaFitter(penalizer_coef=penalizer).fit(x[repeat], m[repeat])
    np.testing.assert_allclose(_as_array(ours), theirs.params_[["p", "q", "v"]], rtol=1e-3)
    np.testing.assert_allclose(
        expected_average_value(ours, x, m),
        theirs.conditional_expected_average_profit(cdnow["frequency"], cdnow["monetary_value"]),
        rtol=1e-6,
    )
    assert ours.n_customers == repeat.sum() and ours.n_left_out == 0


def test_cdnow_matches_note_025(cdnow):
    # Fader & Hardie's note 025 reports p = 6.25, q = 3.74, v = 15.44 on the same 946 customers.
    fitted = fit_gamma_gamma(*_columns(cdnow))
    np.testing.assert_allclose(_as_array(fitted), [6.25, 3.74, 15.44], atol=0.01)


def test_analytic_gradient_matches_finite_differences(cdnow):
    x, m = _columns(cdnow)
    repeat = x > 0
    weights = np.random.default_rng(4).integers(1, 5, repeat.sum()).astype(float)

    objective = gamma_gamma._SpendObjective(x[repeat], m[repeat], weights, 0.01)
    for point in ([0.1, 0.1, 0.1], [1.8, 1.3, 2.7]):
        error = check_grad(lambda p: objective(p)[0], lambda p: objective(p)[1], np.array(point))
        assert error < 1e-5


def test_regrouped_objective_is_the_sum_of_the_row_terms(cdnow):
    # The fit's objective sums the constant terms once; it must equal the per-row density summed.
    x, m = _columns(cdnow)
    repeat = x > 0
    weights = np.random.default_rng(5).integers(1, 5, repeat.sum()).astype(float)
    objective = gamma_gamma._SpendObjective(x[repeat], m[repeat], weights, 0.0)
    for point in ([0.1, 0.1, 0.1], [1.8, 1.3, 2.7]):
        params = np.exp(point)
        rows = gamma_gamma._log_likelihood_terms(params, x[repeat], m[repeat])[0]
        expected = -(weights @ rows) / weights.sum()
        assert objective(np.array(point))[0] == pytest.approx(expected, rel=1e-12)


def _drawn(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 8, n)
    return pd.DataFrame({"frequency": x, "monetary_value": draw_gamma_gamma(rng, x, **TRUE)})


def test_grouped_equals_ungrouped():
    drawn = _drawn(7, 4000)
    drawn["monetary_value"] = drawn["monetary_value"].round(0)
    grouped = drawn.groupby(["frequency", "monetary_value"], as_index=False).size()
    assert len(grouped) < len(drawn) / 3
    rows = fit_gamma_gamma(*_columns(drawn))
    groups = fit_gamma_gamma(*_columns(grouped), weights=grouped["size"])
    np.testing.assert_allclose(_as_array(groups), _as_array(rows), rtol=1e-5)
    assert groups.log_likelihood == pytest.approx(rows.log_likelihood, rel=1e-9)
    assert groups.n_customers == rows.n_customers == (drawn["frequency"] > 0).sum()


def test_recovers_the_parameters_it_was_drawn_from():
    fitted = fit_gamma_gamma(*_columns(_drawn(0, 20_000)))
    np.testing.assert_allclose(_as_array(fitted), list(TRUE.values()), rtol=0.10)


def test_non_positive_averages_are_left_out_and_counted():
    drawn = _drawn(8, 3000)
    kept = fit_gamma_gamma(*_columns(drawn))
    x, m = _columns(drawn)
    x = np.concatenate([x, [2, 3, 0]])
    m = np.concatenate([m, [-4.0, 0.0, -1.0]])
    weights = np.concatenate([np.ones(len(drawn)), [5.0, 2.0, 9.0]])
    with_bad = fit_gamma_gamma(x, m, weights=weights)
    # The two repeat buyers with m <= 0 stand for 7 customers; the frequency-0 row is no repeat
    # buyer at all, so it is neither fitted nor "left out".
    assert with_bad.n_left_out == 7.0
    assert with_bad.n_customers == kept.n_customers
    np.testing.assert_allclose(_as_array(with_bad), _as_array(kept), rtol=1e-12)


def test_nobody_left_to_fit_is_a_clear_error():
    with pytest.raises(InputDataError, match=r"none among 3 customers \(2 with repeat orders"):
        fit_gamma_gamma([0, 2, 1], [0.0, -3.0, 0.0])


def test_an_unfinished_fit_raises_model_fit_error(cdnow):
    with pytest.raises(ModelFitError, match=r"^Gamma-Gamma fit did not converge after 1 iter"):
        fit_gamma_gamma(*_columns(cdnow), maxiter=1)


def test_single_purchase_customers_get_the_population_mean():
    params = GammaGammaParams(6.0, 4.0, 15.0, 0.0, 1.0, 0.0, 0, True)
    values = expected_average_value(params, [0, 0, 5], [0.0, 99.0, 20.0])
    assert values[:2].tolist() == pytest.approx([30.0, 30.0])  # p v / (q - 1) = 90 / 3
    # 5 orders: weight 30 / 33 on the customer's own mean.
    assert values[2] == pytest.approx(30 / 33 * 20.0 + 3 / 33 * 30.0)


BAD_INPUTS = [
    (
        {"frequency": [1, -2]},
        InputDataError,
        r"frequency must be finite and >= 0, got -2.0 at row 1",
    ),
    (
        {"frequency": [1, 2.5]},
        InputDataError,
        r"frequency must be a whole number.*got 2.5 at row 1",
    ),
    ({"monetary_value": [3.0, np.inf]}, InputDataError, r"monetary_value must be finite, got inf"),
    ({"monetary_value": [3.0]}, InputDataError, r"one length, got 2 and 1"),
    ({"frequency": [], "monetary_value": []}, InputDataError, r"the customer summary is empty"),
    (
        {"weights": [1.0, -1.0]},
        InputDataError,
        r"weights must be finite and >= 0, got -1.0 at row 1",
    ),
    ({"penalizer": np.nan}, ParameterError, r"penalizer must be >= 0, got nan"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD_INPUTS)
def test_bad_input_is_named(change, error, message):
    good = {"frequency": [1, 2], "monetary_value": [3.0, 4.0]}
    with pytest.raises(error, match=message):
        fit_gamma_gamma(**{**good, **change})
