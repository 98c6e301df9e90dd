"""The value stage end to end on generated retail data: gold customer_value against lifetimes on
the same orders, customer_rfm against the feature table, segment_value against a pandas
group-by, the registered model against the gold table, and a failed fit that writes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custseg import tracking
from custseg.config import load_config
from custseg.data.generate import generate
from custseg.errors import ModelFitError
from custseg.stages import chain
from custseg.storage import Lakehouse, list_versions

lifetimes = pytest.importorskip("lifetimes")

HORIZON_DAYS = 360  # 12 months of 30 days: lifetimes' customer_lifetime_value(time=12, freq="D")
QUIET = {"progress": lambda _m: None}
PENALIZER = 0.01


@pytest.fixture(scope="module")
def valued(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("value")
    generate(spark, root / "raw", customers=600, seed=7)
    config = load_config(
        overrides={
            "input.path": str(root / "raw"),
            "storage.root": str(root / "lakehouse"),
            "tracking.tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "tracking.artifact_location": (root / "mlruns").as_uri(),
            "segment.methods": ["kmeans"],
            "segment.stability_bootstraps": 0,
            "value.horizon_days": HORIZON_DAYS,
        }
    )
    stages = ["ingest", "features", "segment", "value"]
    reports = {r.stage: r for r in chain.run(spark, config, stages, **QUIET)}
    lake = Lakehouse(spark, config.storage)
    return config, reports, lake


def _reference_summary(lake: Lakehouse) -> tuple[pd.DataFrame, pd.Timestamp]:
    """lifetimes' own summary of the silver orders that hold a purchase line."""
    orders = lake.read("silver", "orders").toPandas()
    purchases = orders[orders["purchase_lines"] > 0]
    as_of = lake.read("gold", "customer_features").toPandas()["as_of"].max()
    summary = lifetimes.utils.summary_data_from_transaction_data(
        purchases,
        "customer_id",
        "order_ts",
        monetary_value_col="order_value",
        observation_period_end=as_of,
        freq="D",
    )
    return summary, as_of


def test_parameters_and_predictions_match_lifetimes(valued):
    config, _reports, lake = valued
    reference, _as_of = _reference_summary(lake)
    ours = lake.read("gold", "customer_value").toPandas().set_index("customer_id")
    ours = ours.loc[reference.index]
    for column in ("frequency", "recency", "T"):
        np.testing.assert_allclose(ours[column], reference[column], err_msg=column)
    repeat = reference["frequency"] > 0
    np.testing.assert_allclose(
        ours.loc[repeat, "monetary_value"], reference.loc[repeat, "monetary_value"], rtol=1e-9
    )

    model = tracking.load_value_model(
        f"models:/{config.tracking.resolved_value_model_name()}@champion"
    )
    bgf = lifetimes.BetaGeoFitter().fit(
        reference["frequency"], reference["recency"], reference["T"]
    )
    for name in ("r", "alpha", "a", "b"):
        assert getattr(model.bgnbd, name) == pytest.approx(bgf.params_[name], rel=1e-3), name
    spenders = reference[repeat & (reference["monetary_value"] > 0)]
    ggf = lifetimes.GammaGammaFitter().fit(spenders["frequency"], spenders["monetary_value"])
    for name in ("p", "q", "v"):
        assert getattr(model.gamma_gamma, name) == pytest.approx(ggf.params_[name], rel=1e-3), name

    # The formulas, with lifetimes holding custseg's parameters: every customer agrees.
    bgf.params_ = pd.Series({n: getattr(model.bgnbd, n) for n in ("r", "alpha", "a", "b")})
    ggf.params_ = pd.Series({n: getattr(model.gamma_gamma, n) for n in ("p", "q", "v")})
    f, r, t = reference["frequency"], reference["recency"], reference["T"]
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS, f, r, t)
    np.testing.assert_allclose(ours["expected_purchases"], expected, rtol=1e-6)
    alive = bgf.conditional_probability_alive(f, r, t)
    np.testing.assert_allclose(ours["probability_alive"], alive, rtol=1e-6)
    s = spenders.index
    clv = ggf.customer_lifetime_value(
        bgf, f[s], r[s], t[s], spenders["monetary_value"], time=12, discount_rate=0.01, freq="D"
    )
    np.testing.assert_allclose(ours.loc[s, "lifetime_value"], clv, rtol=1e-6)
    one_timers = reference.index[reference["frequency"] == 0]
    mean_order = ggf.conditional_expected_average_profit(pd.Series([0]), pd.Series([0.0])).iloc[0]
    np.testing.assert_allclose(ours.loc[one_timers, "expected_order_value"], mean_order)


def test_rfm_scores_the_feature_table(valued):
    _config, _reports, lake = valued
    rfm = lake.read("gold", "customer_rfm").toPandas().set_index("customer_id")
    features = lake.read("gold", "customer_features").toPandas().set_index("customer_id")
    assert set(rfm.index) == set(features.index)
    assert rfm[["r_score", "f_score", "m_score"]].isin(range(1, 6)).all().all()
    # More recent customers never score lower on R; more orders never lower on F.
    joined = rfm.drop(columns=["recency_days", "num_orders", "total_spend"]).join(features)
    by_recency = joined.sort_values("recency_days")
    assert by_recency["r_score"].is_monotonic_decreasing
    assert joined.sort_values("num_orders")["f_score"].is_monotonic_increasing
    summary = lake.read("gold", "rfm_segments").toPandas()
    assert summary["customers"].sum() == len(rfm)
    assert summary["revenue"].sum() == pytest.approx(features["total_spend"].sum())


def test_segment_value_is_the_group_by_of_its_customers(valued):
    _config, reports, lake = valued
    table = lake.read("gold", "segment_value").toPandas().set_index("segment")
    segments = lake.read("gold", "customer_segments").toPandas()
    values = lake.read("gold", "customer_value").toPandas()
    features = lake.read("gold", "customer_features").toPandas()
    joined = segments.merge(values, on="customer_id", how="left").merge(
        features[["customer_id", "total_spend"]], on="customer_id"
    )
    grouped = joined.groupby("segment")
    np.testing.assert_array_equal(table["customers"], grouped.size().loc[table.index])
    np.testing.assert_allclose(table["revenue"], grouped["total_spend"].sum().loc[table.index])
    np.testing.assert_allclose(
        table["lifetime_value"], grouped["lifetime_value"].sum().loc[table.index]
    )
    np.testing.assert_allclose(
        table["probability_alive_mean"], grouped["probability_alive"].mean().loc[table.index]
    )
    assert table["lifetime_value_share"].sum() == pytest.approx(1.0)
    ranked = table.sort_values("value_rank")
    assert ranked["lifetime_value"].is_monotonic_decreasing
    assert "segment_value_markdown" in reports["value"].extra


def test_registered_model_predicts_what_the_table_holds(valued):
    config, _reports, lake = valued
    import mlflow

    tracking.setup(config.tracking)
    pyfunc = mlflow.pyfunc.load_model(
        f"models:/{config.tracking.resolved_value_model_name()}@champion"
    )
    gold = lake.read("gold", "customer_value").toPandas().head(50)
    predicted = pyfunc.predict(gold[["frequency", "recency", "T", "monetary_value"]])
    for column in ("expected_purchases", "probability_alive", "lifetime_value"):
        np.testing.assert_allclose(predicted[column], gold[column], rtol=1e-12, err_msg=column)


def test_report_and_readers_show_value_by_segment(valued, tmp_path):
    from custseg.report.builder import render_report, report_context
    from custseg.store import gold
    from custseg.store.source import Source

    config, _reports, lake = valued
    source = Source.from_config(config)
    table = gold.segment_value(source)
    written = lake.read("gold", "segment_value").toPandas().sort_values("segment")
    assert table["segment"].tolist() == written["segment"].tolist()
    context = report_context(source)
    by_value, rfm_table = context["value"]["tables"]
    shown = [[cell["text"] for cell in row] for row in by_value["rows"]]
    assert [row[0] for row in shown] == [str(i) for i in range(1, len(written) + 1)]
    # Every figure is the gold table's, formatted: read back by hand from the text.
    ranked = written.sort_values("value_rank")
    assert [row[2] for row in shown] == [f"{n:,}" for n in ranked["customers"]]
    assert [row[4] for row in shown] == [f"{100 * s:.1f}%" for s in ranked["lifetime_value_share"]]
    assert [row[7] for row in shown] == [
        f"{100 * s:.1f}%" for s in ranked["probability_alive_mean"]
    ]
    assert any(line.startswith("By expected value") for line in context["insights"])
    rfm_written = lake.read("gold", "rfm_segments").toPandas()
    assert [row[0]["text"] for row in rfm_table["rows"]] == rfm_written["rfm_segment"].tolist()
    html = render_report(source, tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="value"' in html and "Most common RFM segment" in html
    assert f'<td class="num">{shown[0][5]}</td>' in html  # expected value per customer


def test_dashboard_value_table_is_the_reports(valued, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    import custseg.dashboard
    from custseg.report.builder import report_context
    from custseg.store.source import Source

    config, _reports, _lake = valued
    source = Source.from_config(config)
    for key, value in source.to_env().items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(
        str(Path(custseg.dashboard.__file__).with_name("app.py")), default_timeout=90
    ).run()
    at.switch_page("views/segments.py").run()
    assert not at.exception, [e.value for e in at.exception]
    report_rows = report_context(source)["value"]["tables"][0]
    headers = [h["text"] for h in report_rows["headers"]]
    [table] = [d.value for d in at.dataframe if list(d.value.columns) == headers]
    assert table.values.tolist() == [[c["text"] for c in row] for row in report_rows["rows"]]


def test_a_fit_that_fails_writes_and_registers_nothing(valued, spark, monkeypatch):
    config, _reports, lake = valued
    before = {t: list_versions(config.storage.root, "gold", t) for t in ("customer_value",)}
    registered_before = _value_model_versions(config)

    def fail(*_args, **_kwargs):
        raise ModelFitError(
            "BG/NBD fit did not converge after 3 iterations (last log-likelihood -1.0)"
        )

    monkeypatch.setattr("custseg.value.model.fit_bgnbd", fail)
    with pytest.raises(ModelFitError, match="BG/NBD fit did not converge"):
        chain.run(spark, config, ["value"], **QUIET)
    after = {t: list_versions(config.storage.root, "gold", t) for t in before}
    assert after == before
    assert _value_model_versions(config) == registered_before == ["1"]


def _value_model_versions(config) -> list[str]:
    from mlflow import MlflowClient

    tracking.setup(config.tracking)
    name = config.tracking.resolved_value_model_name()
    return sorted(str(v.version) for v in MlflowClient().search_model_versions(f"name='{name}'"))


def test_holdout_check_matches_lifetimes_split_and_forecast(valued, spark):
    config, _reports, lake = valued
    _reference, as_of = _reference_summary(lake)
    calibration_end = (as_of - pd.Timedelta(days=180)).date()
    checked = config.model_copy(deep=True)
    checked.value.calibration_end = calibration_end
    # Six months of calibration leave a and b unidentified (lifetimes' fit does not converge
    # either): both fits get the same small penalty.
    checked.value.penalizer = PENALIZER
    [report] = chain.run(spark, checked, ["value"], **QUIET)
    table = report.extra["holdout"].set_index("bucket")

    orders = lake.read("silver", "orders").toPandas()
    purchases = orders[orders["purchase_lines"] > 0]
    split = lifetimes.utils.calibration_and_holdout_data(
        purchases,
        "customer_id",
        "order_ts",
        calibration_period_end=pd.Timestamp(calibration_end),
        observation_period_end=as_of,
        freq="D",
    )
    f, r, t = split["frequency_cal"], split["recency_cal"], split["T_cal"]
    bgf = lifetimes.BetaGeoFitter(penalizer_coef=PENALIZER).fit(f, r, t)
    split["predicted"] = bgf.conditional_expected_number_of_purchases_up_to_time(
        split["duration_holdout"], f, r, t
    )
    groups = split.groupby(split["frequency_cal"].clip(upper=7).astype(int))
    np.testing.assert_array_equal(table["customers"], groups.size().loc[table.index])
    np.testing.assert_allclose(table["actual"], groups["frequency_holdout"].mean().loc[table.index])
    np.testing.assert_allclose(
        table["predicted"], groups["predicted"].mean().loc[table.index], rtol=1e-3
    )
    np.testing.assert_allclose(table["error"], table["predicted"] - table["actual"])
    assert "holdout_markdown" in report.extra
