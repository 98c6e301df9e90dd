"""The value stage: silver orders -> gold customer_rfm, customer_value (and segment_value when
segments exist); the lifetime-value model tracked and registered in MLflow.

The as-of date is the feature table's, so the models' T counts to the same moment as the
features' recency and tenure, and RFM scores the feature table's own recency, orders and spend
(one computation of each number). With ``value.calibration_end`` the
stage first fits on the orders up to that day and compares its predictions with what the
customers bought in the holdout after it; the gold tables always come from the fit on every
order up to the as-of date. A fit that fails writes nothing and registers nothing.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from custseg import tracking
from custseg.config import Config
from custseg.errors import InputDataError
from custseg.features import EPOCH
from custseg.formatting import fmt_int, fmt_num, markdown_table
from custseg.profile import value_table
from custseg.stages.report import StageReport
from custseg.storage import Lakehouse
from custseg.value import holdout, rfm, summary
from custseg.value.by_segment import value_by_segment
from custseg.value.figures import holdout_figure
from custseg.value.model import (
    PURCHASE_KEYS,
    VALUE_INPUTS,
    ValueModel,
    fit_value_model,
    score_customers,
)

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession


def value(spark: SparkSession, config: Config, progress=print) -> StageReport:
    """silver orders -> gold customer_rfm, customer_value, segment_value; MLflow run + model."""
    started = time.perf_counter()
    settings = config.value
    lake = Lakehouse(spark, config.storage)
    features = lake.read("gold", "customer_features")
    as_of = _feature_as_of(features)
    transactions = summary.transactions_from_orders(lake.read("silver", "orders"))
    report = StageReport("value")
    report.notes.append(f"as-of date: {as_of:%Y-%m-%d %H:%M} UTC; period: {settings.period}")

    check = None
    if settings.calibration_end is not None:
        progress(f"  holdout check: fitting on orders up to {settings.calibration_end}")
        check = _holdout_check(transactions, config, as_of)
        report.extra["holdout"] = check.table

    progress("  transaction summary and RFM scores")
    # cut="exact": orders after the as-of instant are not known yet, as in the features.
    per_customer = summary.transaction_summary(
        transactions, as_of, period=settings.period, cut="exact"
    )
    per_customer = per_customer.persist()  # read by the statistics, the scores and the join
    scores = rfm.rfm_scores(_rfm_input(features), bins=settings.rfm_bins)
    progress("  fitting BG/NBD and Gamma-Gamma")
    stats = summary.sufficient_statistics(per_customer)
    spend = summary.spend_statistics(per_customer)
    model = fit_value_model(stats, spend, settings)
    valued = score_customers(spark, per_customer, model, stats, spend, as_of)

    tracking.setup(config.tracking)
    with tracking.run("value", tags={"custseg.stage": "value"}) as active:
        run_id = active.info.run_id
        _log_fit(model, settings, as_of, check)
        name = config.tracking.resolved_value_model_name()
        version = tracking.register_version(
            tracking.log_value_model(model), config.tracking, name=name
        )
        with lake.publishing():  # the value tables go live together
            rfm_table, by_segment = _write_tables(
                spark, lake, scores, valued, features, settings, run_id
            )
        tracking.move_alias(version, config.tracking, name=name)  # after the tables went live
    per_customer.unpersist()

    _fill_report(report, lake, model, rfm_table, by_segment, check, settings.rfm_bins)
    report.notes.append(f"registered {name} version {version} as @{config.tracking.alias}")
    report.seconds = time.perf_counter() - started
    return report


def _fill_report(report, lake, model, rfm_table, by_segment, check, rfm_bins) -> None:
    """The CLI summary: row counts, the fitted parameters, and the tables as Markdown."""
    report.tables["gold.customer_rfm"] = lake.read("gold", "customer_rfm").count()
    report.tables["gold.customer_value"] = lake.read("gold", "customer_value").count()
    if rfm_table is not None:
        report.tables["gold.rfm_segments"] = len(rfm_table)
    else:
        report.notes.append(f"RFM scores in {rfm_bins} bins: named segments need 5")
    if by_segment is not None:
        report.tables["gold.segment_value"] = len(by_segment)
        report.extra["segment_value"] = by_segment
    else:
        report.notes.append("no gold.customer_segments yet: run segment for value by segment")
    report.notes.extend(model.notes())
    report.extra["rfm_segments"] = rfm_table
    report.extra.update(_markdown(rfm_table, by_segment, check))
    report.extra["model"] = model


def _write_tables(spark, lake, scores, valued, features, settings, run_id):
    """Write the value tables (inside the stage's publishing block); returns the RFM segment
    summary and the value by segment (None when absent), both logged to the active run."""
    lake.write(scores.withColumn("run_id", _lit(run_id)), "gold", "customer_rfm")
    lake.write(valued.withColumn("run_id", _lit(run_id)), "gold", "customer_value")
    rfm_table = None
    if settings.rfm_bins == rfm.SEGMENT_BINS:  # the named segments need 5 bins
        rfm_table = rfm.rfm_segment_summary(lake.read("gold", "customer_rfm"))
        lake.write(spark.createDataFrame(rfm_table), "gold", "rfm_segments", files=1)
        tracking.log_table(rfm_table, "rfm_segments")
    by_segment = None
    if lake.exists("gold", "customer_segments"):
        segments = lake.read("gold", "customer_segments")
        by_segment = value_by_segment(
            segments,
            features,
            lake.read("gold", "customer_value"),
            lake.read("gold", "customer_rfm"),
        ).assign(
            run_id=run_id,
            segments_run_id=_segments_run(segments),
            horizon_days=settings.horizon_days,
        )
        lake.write(spark.createDataFrame(by_segment), "gold", "segment_value", files=1)
        tracking.log_table(by_segment, "segment_value")
    return rfm_table, by_segment


def _lit(value):
    # lazy: pyspark loads with the session, after the CLI has parsed its flags
    import pyspark.sql.functions as F

    return F.lit(value)


def _segments_run(segments: DataFrame) -> str | None:
    """The segment run that wrote gold.customer_segments: readers show segment_value only
    beside the profiles of that run."""
    row = segments.select("run_id").limit(1).collect()
    return row[0]["run_id"] if row else None


def _feature_as_of(features: DataFrame) -> datetime:
    # lazy: pyspark loads with the session, after the CLI has parsed its flags
    import pyspark.sql.functions as F

    # Epoch microseconds, not a collected timestamp: PySpark would turn that into this machine's
    # local time.
    micros = features.agg(F.max(F.unix_micros("as_of"))).collect()[0][0]
    if micros is None:
        raise InputDataError("gold.customer_features is empty: run features first")
    return EPOCH + timedelta(microseconds=micros)


def _rfm_input(features: DataFrame) -> DataFrame:
    """The feature table's recency (days since the last purchase), orders and net spend."""
    return features.select("customer_id", "recency_days", "num_orders", "total_spend")


class _Check:
    def __init__(self, table: pd.DataFrame, model: ValueModel, figure) -> None:
        self.table, self.model, self.figure = table, model, figure


def _holdout_check(transactions: DataFrame, config: Config, as_of: datetime) -> _Check:
    """Fit on the calibration period; predicted against actual purchases in the holdout, per
    group of customers with the same number of calibration repeat purchases."""
    # lazy: pyspark loads with the session, after the CLI has parsed its flags
    import pyspark.sql.functions as F

    settings = config.value
    end = settings.holdout_end or as_of
    frame = holdout.calibration_and_holdout(
        transactions, settings.calibration_end, end, period=settings.period
    ).persist()
    calibration = frame.select("customer_id", *[F.col(f"{c}_cal").alias(c) for c in VALUE_INPUTS])
    stats = summary.sufficient_statistics(calibration)
    model = fit_value_model(stats, summary.spend_statistics(calibration), settings)
    duration = float(frame.agg(F.max("duration_holdout")).collect()[0][0] or 0.0)
    predicted = stats.assign(predicted=model.expected_purchases_over(duration, stats)).rename(
        columns={c: f"{c}_cal" for c in PURCHASE_KEYS}
    )
    # one row per distinct (frequency, recency, T); Spark broadcasts it when it is small (no hint:
    # the package keeps off the broadcast API, see tests/test_no_rdd.py)
    joined = frame.join(
        frame.sparkSession.createDataFrame(predicted.drop(columns="n_customers")),
        [f"{c}_cal" for c in PURCHASE_KEYS],
    )
    table = holdout.holdout_by_frequency(joined, predicted_col="predicted")
    table["error"] = table["predicted"] - table["actual"]
    frame.unpersist()
    return _Check(table, model, holdout_figure(table))


def _holdout_errors(table: pd.DataFrame) -> dict[str, float]:
    """MLflow metrics of the holdout check: the error per group and the customer-weighted mean
    absolute error."""
    weights = table["customers"] / table["customers"].sum()
    metrics = {f"holdout.error.{r.label}": r.error for r in table.itertuples(index=False)}
    metrics["holdout.mean_absolute_error"] = float((weights * table["error"].abs()).sum())
    return metrics


def _log_fit(model: ValueModel, settings, as_of: datetime, check: _Check | None) -> None:
    tracking.log_params(
        {
            "period": settings.period,
            "horizon_days": settings.horizon_days,
            "discount_rate_monthly": settings.discount_rate_monthly,
            "penalizer": settings.penalizer,
            "as_of": f"{as_of:%Y-%m-%d}",
            "calibration_end": settings.calibration_end,
            "holdout_end": settings.holdout_end,
        }
    )
    tracking.log_metrics(model.metrics())
    if check is not None:
        tracking.log_metrics({f"holdout.{k}": v for k, v in check.model.metrics().items()})
        tracking.log_metrics(
            {k.replace("+", "plus"): v for k, v in _holdout_errors(check.table).items()}
        )
        tracking.log_table(check.table, "holdout_by_frequency")
        tracking.log_figure(check.figure, "holdout_by_frequency")


def _markdown(
    rfm_table: pd.DataFrame | None, by_segment: pd.DataFrame | None, check: _Check | None
) -> dict[str, str]:
    """The CLI's three tables: RFM segments, segments by expected value, the holdout check."""
    tables = {}
    if rfm_table is not None:
        tables["rfm_markdown"] = markdown_table(
            value_table.RFM_SEGMENT_HEADERS, value_table.rfm_segment_rows(rfm_table)
        )
    if by_segment is not None:
        tables["segment_value_markdown"] = markdown_table(
            value_table.SEGMENT_VALUE_HEADERS, value_table.segment_value_rows(by_segment, {})
        )
    if check is not None:
        tables["holdout_markdown"] = markdown_table(
            ["Calibration repeat purchases", "Customers", "Actual", "Predicted", "Error"],
            [
                [
                    r.label,
                    fmt_int(r.customers),
                    fmt_num(r.actual, 2),
                    fmt_num(r.predicted, 2),
                    fmt_num(r.error, 2),
                ]
                for r in check.table.itertuples(index=False)
            ],
        )
    return tables
