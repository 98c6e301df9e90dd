"""The features stage: silver -> gold customer_features and feature_report.

The features themselves are computed in ``custseg.features``; this stage
reads silver, writes the two gold tables together and reports on them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from custseg.config import Config
from custseg.features import build_features, feature_notes, feature_report
from custseg.stages.report import StageReport
from custseg.storage import Lakehouse

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession


def features(spark: SparkSession, config: Config, progress=print) -> StageReport:
    """silver -> gold customer_features (+ feature_report)."""
    started = time.perf_counter()
    lake = Lakehouse(spark, config.storage)
    report = StageReport("features")
    result = build_features(
        lake.read("silver", "customers"),
        lake.read("silver", "orders"),
        lake.read("silver", "order_lines"),
        as_of=config.features.as_of,
        include_customers_without_orders=config.features.include_customers_without_orders,
    )
    with lake.publishing():  # both gold tables go live together
        progress("  gold.customer_features")
        lake.write(result.features, "gold", "customer_features")
        written = lake.read("gold", "customer_features")
        report.tables["gold.customer_features"] = written.count()
        summary: pd.DataFrame = feature_report(written)
        lake.write(spark.createDataFrame(summary), "gold", "feature_report", files=1)
    report.notes.append(f"as-of date: {result.as_of:%Y-%m-%d %H:%M} UTC")
    verb = "included" if result.included_without_orders else "left out of clustering"
    report.notes.append(
        f"customers: {result.customers_total}, of whom {result.customers_without_orders} have no "
        f"orders ({verb})"
    )
    report.notes.extend(feature_notes(summary))
    report.extra["feature_report"] = summary
    report.seconds = time.perf_counter() - started
    return report
