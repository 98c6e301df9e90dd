"""The ``custseg`` command line's arguments: every subcommand, its flags and its --help.

Flags map onto config keys (``overrides``); defaults shown in --help are read from the
packaged defaults.yaml, so each is stated once, there.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from custseg import __version__
from custseg.config import DEFAULT_TRACKING_URI, default_values
from custseg.data.generate.spec import DEFAULT_CUSTOMERS, DEFAULT_SEED, DESIGN_ORDERS, PRESETS
from custseg.errors import CustsegError

# --help shows the packaged defaults (defaults.yaml), so they are stated once, there.
_DEFAULTS = default_values()


def _default(dotted: str) -> str:
    """The packaged default of a config key as --help shows it: ``segment.methods`` ->
    ``dbscan,...``."""
    value: Any = _DEFAULTS
    for part in dotted.split("."):
        value = value[part]
    return ",".join(value) if isinstance(value, list) else str(value)


_LAKEHOUSE_HELP = f"lakehouse root folder (default ./{_default('storage.root')})"
_TRACKING_URI_HELP = f"MLflow tracking URI (default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})"
_EXPERIMENT_HELP = f"MLflow experiment name (default {_default('tracking.experiment')})"


# -- arguments ---------------------------------------------------------------


def _engine_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine and storage")
    group.add_argument("--config", help="YAML file merged over the packaged defaults")
    group.add_argument(
        "--master",
        help=f"Spark master URL (default {_default('spark.master')}); e.g. spark://host:7077",
    )
    group.add_argument(
        "--remote", help="Spark Connect URL, e.g. sc://host:15002 (replaces --master)"
    )
    group.add_argument("--driver-memory", help="Spark driver memory, e.g. 4g")
    group.add_argument("--lakehouse", help=_LAKEHOUSE_HELP)


def _input_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", help=f"raw input folder (default {_default('input.path')})")
    parser.add_argument(
        "--layout",
        choices=["retail-org", "transactions"],
        help=f"input layout (default {_default('input.layout')})",
    )


def _feature_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of", help="as-of date YYYY-MM-DD for tenure and recency (default: latest order)"
    )
    parser.add_argument(
        "--include-no-orders",
        action="store_true",
        default=None,
        help="keep customers without orders in the feature table (default: count and leave out)",
    )


def _segment_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("segmentation and tracking")
    group.add_argument(
        "--methods", help=f"comma-separated methods (default {_default('segment.methods')})"
    )
    group.add_argument(
        "--max-driver-customers",
        type=int,
        help="largest table clustered on the driver; above it methods are compared on a sample "
        "this size and the recommended one is fitted on all customers (default "
        + _default("segment.max_driver_customers")
        + ")",
    )
    group.add_argument(
        "--engine",
        choices=["auto", "single", "spark"],
        help="what fits the recommended method on all customers: auto = exact single-node up to "
        "the driver limit, Spark above it; single = always exact on the driver; "
        "spark = always the Spark estimator (default " + _default("segment.engine") + ")",
    )
    group.add_argument(
        "--exact-max-rows",
        type=int,
        help=(
            "the driver limit of the exact single-node fit "
            "(default: estimated from rows x features x memory)"
        ),
    )
    group.add_argument(
        "--truth",
        help=(
            "CSV customer_id,archetype for the ARI column "
            "(default <input>/truth/customer_archetypes.csv)"
        ),
    )
    _tracking_flags(parser, group)


def _tracking_flags(
    parser: argparse.ArgumentParser,
    group: argparse._ArgumentGroup | None = None,
    segmenter_name: bool = True,
) -> None:
    group = group or parser.add_argument_group("tracking")
    group.add_argument("--tracking-uri", help=_TRACKING_URI_HELP)
    group.add_argument(
        "--registry-uri",
        help="MLflow model registry URI, e.g. databricks-uc (default: MLflow's default)",
    )
    group.add_argument("--experiment", help=_EXPERIMENT_HELP)
    if segmenter_name:
        group.add_argument(
            "--model-name",
            help=f"registered model name (default {_default('tracking.model_name')}; "
            "catalog.schema.model with databricks-uc)",
        )
    group.add_argument(
        "--value-model-name",
        help="registered name of the lifetime-value model (default custseg-value; with "
        "databricks-uc, custseg_value in the segmenter's catalog.schema)",
    )


def _value_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("customer value")
    group.add_argument(
        "--period",
        choices=["day", "week"],
        help=f"unit of frequency, recency and T (default {_default('value.period')})",
    )
    group.add_argument(
        "--horizon-days",
        type=int,
        help="expected purchases and lifetime value over this many days (default "
        + _default("value.horizon_days")
        + ")",
    )
    group.add_argument(
        "--calibration-end",
        help="YYYY-MM-DD: also fit on orders up to this day and compare its predictions with the "
        "holdout after it (default: no holdout check)",
    )
    group.add_argument(
        "--holdout-end", help="YYYY-MM-DD: the holdout's last day (default: the as-of date)"
    )


def _store_flags(parser: argparse.ArgumentParser) -> None:
    """Where the results live, for the commands that read them without Spark."""
    group = parser.add_argument_group("results")
    group.add_argument("--config", help="YAML file merged over the packaged defaults")
    group.add_argument("--lakehouse", help=_LAKEHOUSE_HELP)
    group.add_argument("--tracking-uri", help=_TRACKING_URI_HELP)
    group.add_argument("--experiment", help=_EXPERIMENT_HELP)
    group.add_argument(
        "--model-name", help=f"registered model name (default {_default('tracking.model_name')})"
    )


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    mapping = {
        "max_driver_customers": "segment.max_driver_customers",
        "engine": "segment.engine",
        "exact_max_rows": "segment.exact_max_rows",
        "truth": "segment.truth_path",
        "tracking_uri": "tracking.tracking_uri",
        "registry_uri": "tracking.registry_uri",
        "experiment": "tracking.experiment",
        "model_name": "tracking.model_name",
        "value_model_name": "tracking.value_model_name",
        "master": "spark.master",
        "remote": "spark.remote",
        "driver_memory": "spark.driver_memory",
        "lakehouse": "storage.root",
        "input": "input.path",
        "layout": "input.layout",
        "as_of": "features.as_of",
        "include_no_orders": "features.include_customers_without_orders",
        "period": "value.period",
        "horizon_days": "value.horizon_days",
        "calibration_end": "value.calibration_end",
        "holdout_end": "value.holdout_end",
    }
    values = {
        key: getattr(args, flag)
        for flag, key in mapping.items()
        if getattr(args, flag, None) is not None
    }
    if getattr(args, "methods", None):
        values["segment.methods"] = [m.strip() for m in args.methods.split(",") if m.strip()]
    return values


def parse_bad(values: Sequence[str] | None) -> dict[str, int]:
    bad: dict[str, int] = {}
    for item in values or []:
        kind, sep, count = item.partition("=")
        if not sep or not count.strip().lstrip("-").isdigit():
            raise CustsegError(f"--bad takes KIND=COUNT, got {item!r}")
        bad[kind.strip()] = int(count)
    return bad


# whole: the whole command line as one argparse table, read top to bottom like --help
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custseg",
        description=(
            "Customer segmentation on Apache Spark: "
            "raw retail data -> bronze -> silver -> gold features."
        ),
    )
    parser.add_argument("--version", action="version", version=f"custseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser(
        "generate", help="write a synthetic retail-org dataset (with planted truth)"
    )
    gen.add_argument("--out", required=True, help="folder to write the raw layout into")
    gen.add_argument(
        "--customers",
        type=int,
        default=DEFAULT_CUSTOMERS,
        help="number of customers (default %(default)s)",
    )
    gen.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)"
    )
    gen.add_argument(
        "--preset",
        choices=PRESETS,
        default=PRESETS[0],
        help="realistic archetypes, or the seed analysis's 25 customers (16/7/1/1)",
    )
    gen.add_argument(
        "--orders-per-customer",
        type=float,
        default=DESIGN_ORDERS,
        help="mean orders per customer (default %(default)g)",
    )
    gen.add_argument(
        "--bad",
        action="append",
        metavar="KIND=COUNT",
        help="inject COUNT bad records of KIND (repeatable), e.g. --bad malformed_json=10",
    )
    gen.add_argument(
        "--compress-orders",
        action="store_true",
        help=(
            "write the sales_orders files gzip-compressed (.json.gz, about a seventh of the bytes)"
        ),
    )
    _engine_flags(gen)

    ing = sub.add_parser("ingest", help="raw -> bronze -> silver, bad rows quarantined and counted")
    _input_flags(ing)
    _engine_flags(ing)

    feat = sub.add_parser("features", help="silver -> gold customer_features")
    _feature_flags(feat)
    _engine_flags(feat)

    seg = sub.add_parser(
        "segment",
        help="cluster gold customer_features, compare methods, describe segments, track in MLflow",
    )
    _segment_flags(seg)
    _engine_flags(seg)

    score = sub.add_parser(
        "score", help="assign segments to a features table with a registered model"
    )
    score.add_argument(
        "--model",
        help=f"model URI (default models:/{_default('tracking.model_name')}"
        f"@{_default('tracking.alias')}); "
        "models:/, runs:/ or a local path",
    )
    score.add_argument(
        "--table",
        default="customer_features",
        help="gold table to score (default %(default)s)",
    )
    score.add_argument(
        "--output", default="customer_scores", help="gold table to write (default %(default)s)"
    )
    score.add_argument(
        "--tracking-uri",
        help=_TRACKING_URI_HELP,
    )
    score.add_argument(
        "--registry-uri",
        help="MLflow model registry URI, e.g. databricks-uc (default: MLflow's default)",
    )
    _engine_flags(score)

    value = sub.add_parser(
        "value",
        help="customer value: RFM segments and lifetime value (BG/NBD + Gamma-Gamma), tracked in "
        "MLflow",
    )
    _value_flags(value)
    _tracking_flags(value, segmenter_name=False)
    _engine_flags(value)

    run = sub.add_parser("run", help="ingest, features and segment (then `custseg value`)")
    _input_flags(run)
    _feature_flags(run)
    _segment_flags(run)
    _engine_flags(run)

    dash = sub.add_parser(
        "dashboard", help="interactive dashboard over the gold tables and MLflow (no Spark)"
    )
    dash.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default %(default)s: this machine only)",
    )
    dash.add_argument("--port", type=int, default=8501, help="port (default %(default)s)")
    dash.add_argument("--open", action="store_true", help="open a browser tab")
    _store_flags(dash)

    rep = sub.add_parser(
        "report", help="one self-contained HTML report of the latest run (aggregates only)"
    )
    rep.add_argument("--out", default="report.html", help="file to write (default %(default)s)")
    rep.add_argument("--title", help="report title")
    _store_flags(rep)

    tables = sub.add_parser(
        "tables", help="list the lakehouse tables with their versions (no Spark)"
    )
    tables.add_argument("--config", help="YAML file merged over the packaged defaults")
    tables.add_argument("--lakehouse", help=_LAKEHOUSE_HELP)

    rollback = sub.add_parser(
        "rollback", help="make an earlier version of a table live again (no Spark)"
    )
    rollback.add_argument("table", help="LAYER.TABLE, e.g. gold.customer_segments")
    rollback.add_argument(
        "--version", type=int, help="version to make live (default: the one before the live one)"
    )
    rollback.add_argument("--config", help="YAML file merged over the packaged defaults")
    rollback.add_argument("--lakehouse", help=_LAKEHOUSE_HELP)

    demo = sub.add_parser(
        "demo",
        help=(
            "generate the seed scenario and a realistic data set, run everything, print the results"
        ),
    )
    demo.add_argument(
        "--customers",
        type=int,
        default=DEFAULT_CUSTOMERS,
        help="customers in the realistic set (default %(default)s)",
    )
    demo.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)"
    )
    _engine_flags(demo)
    return parser
