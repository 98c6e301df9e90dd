"""The ``custseg`` command line.

Every subcommand builds a Config (defaults < --config file < flags), starts
one Spark session if it needs one, runs its stage and prints a short summary.
User mistakes end with one line on stderr and exit code 2, never a Java trace.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from custseg import __version__
from custseg.config import DEFAULT_TRACKING_URI, Config, default_values, load_config
from custseg.errors import CustsegError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
# Stages publish their tables together at their end (storage.Lakehouse.publishing).
_UNPUBLISHED = "the interrupted stage's tables keep their previous versions"
# Sessions this process started: stopped on Ctrl-C / SIGTERM before the last message. Kept
# here because after a signal cut a Py4J call, SparkSession.getActiveSession() is None.
_STARTED: list[Any] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so runs end KILLED and writes roll back like Ctrl-C."""


def _on_sigterm(_signum: int, _frame: Any) -> None:
    raise Terminated()


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


# --help shows the packaged defaults (defaults.yaml), so they are stated once, there.
_DEFAULTS = default_values()


def _default(dotted: str) -> str:
    """The packaged default of a config key as --help shows it: ``segment.methods`` -> ``dbscan,...``."""
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
        help="largest table clustered on the driver; above it methods are compared on a sample this size and the recommended one is fitted on all customers (default "
        + _default("segment.max_driver_customers")
        + ")",
    )
    group.add_argument(
        "--engine",
        choices=["auto", "single", "spark"],
        help="what fits the recommended method on all customers: auto = exact single-node up to the driver limit, Spark above it; single = always exact on the driver; spark = always the Spark estimator (default "
        + _default("segment.engine")
        + ")",
    )
    group.add_argument(
        "--exact-max-rows",
        type=int,
        help="the driver limit of the exact single-node fit (default: estimated from rows x features x memory)",
    )
    group.add_argument(
        "--truth",
        help="CSV customer_id,archetype for the ARI column (default <input>/truth/customer_archetypes.csv)",
    )
    group.add_argument(
        "--tracking-uri",
        help=_TRACKING_URI_HELP,
    )
    group.add_argument(
        "--registry-uri",
        help="MLflow model registry URI, e.g. databricks-uc (default: MLflow's default)",
    )
    group.add_argument("--experiment", help=_EXPERIMENT_HELP)
    group.add_argument(
        "--model-name",
        help=f"registered model name (default {_default('tracking.model_name')}; "
        "catalog.schema.model with databricks-uc)",
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


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    mapping = {
        "max_driver_customers": "segment.max_driver_customers",
        "engine": "segment.engine",
        "exact_max_rows": "segment.exact_max_rows",
        "truth": "segment.truth_path",
        "tracking_uri": "tracking.tracking_uri",
        "registry_uri": "tracking.registry_uri",
        "experiment": "tracking.experiment",
        "model_name": "tracking.model_name",
        "master": "spark.master",
        "remote": "spark.remote",
        "driver_memory": "spark.driver_memory",
        "lakehouse": "storage.root",
        "input": "input.path",
        "layout": "input.layout",
        "as_of": "features.as_of",
        "include_no_orders": "features.include_customers_without_orders",
    }
    values = {
        key: getattr(args, flag)
        for flag, key in mapping.items()
        if getattr(args, flag, None) is not None
    }
    if getattr(args, "methods", None):
        values["segment.methods"] = [m.strip() for m in args.methods.split(",") if m.strip()]
    return values


def _parse_bad(values: Sequence[str] | None) -> dict[str, int]:
    bad: dict[str, int] = {}
    for item in values or []:
        kind, sep, count = item.partition("=")
        if not sep or not count.strip().lstrip("-").isdigit():
            raise CustsegError(f"--bad takes KIND=COUNT, got {item!r}")
        bad[kind.strip()] = int(count)
    return bad


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custseg",
        description="Customer segmentation on Apache Spark: raw retail data -> bronze -> silver -> gold features.",
    )
    parser.add_argument("--version", action="version", version=f"custseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser(
        "generate", help="write a synthetic retail-org dataset (with planted truth)"
    )
    gen.add_argument("--out", required=True, help="folder to write the raw layout into")
    gen.add_argument(
        "--customers", type=int, default=10_000, help="number of customers (default %(default)s)"
    )
    gen.add_argument("--seed", type=int, default=42, help="random seed (default %(default)s)")
    gen.add_argument(
        "--preset", choices=["realistic", "seed"], default="realistic",
        help="realistic archetypes, or the seed analysis's 25 customers (16/7/1/1)",
    )  # fmt: skip
    gen.add_argument(
        "--orders-per-customer",
        type=float,
        default=5.0,
        help="mean orders per customer (default %(default)g)",
    )
    gen.add_argument(
        "--bad", action="append", metavar="KIND=COUNT",
        help="inject COUNT bad records of KIND (repeatable), e.g. --bad malformed_json=10",
    )  # fmt: skip
    gen.add_argument(
        "--compress-orders", action="store_true",
        help="write the sales_orders files gzip-compressed (.json.gz, about a seventh of the bytes)",
    )  # fmt: skip
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
        help=f"model URI (default models:/{_default('tracking.model_name')}@{_default('tracking.alias')}); "
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

    run = sub.add_parser("run", help="every stage: ingest, features, segment")
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
        help="generate the seed scenario and a realistic data set, run everything, print the results",
    )
    demo.add_argument(
        "--customers",
        type=int,
        default=10_000,
        help="customers in the realistic set (default %(default)s)",
    )
    demo.add_argument("--seed", type=int, default=42, help="random seed (default %(default)s)")
    _engine_flags(demo)
    return parser


# -- commands ----------------------------------------------------------------


def _session(config: Config):
    from custseg.spark import create_session

    _log(f"starting Spark ({config.spark.remote or config.spark.master})")
    session = create_session(config.spark)
    _STARTED.append(session)
    return session


def _print_reports(reports) -> None:
    print("\nSummary")
    for report in reports:
        print(f"  {report.stage}: {report.seconds:.1f} s")
        for table, rows in report.tables.items():
            print(f"    {table:<32} {rows:>12,} rows")
        for table, counts in report.extra.get("rows", {}).items():
            print(
                f"    {table:<32} in {counts['rows_in']:,} = kept {counts['rows_kept']:,}"
                f" + quarantined {counts['rows_quarantined']:,}"
            )
        for (table, reason), count in sorted(report.quarantined.items()):
            print(f"    quarantined {table}/{reason:<22} {count:>8,}")
        for note in report.notes:
            print(f"    note: {note}")
    for report in reports:
        if report.stage == "segment":
            _print_segments(report)


def _print_segments(report) -> None:
    print("\nMethod comparison\n")
    print(report.extra["comparison_markdown"])
    print(f"\nSegments ({report.extra['recommended']})\n")
    print(report.extra["profile_markdown"])
    print("Business insights")
    for line in report.extra["insights"]:
        print(f"  - {line}")


def cmd_generate(args: argparse.Namespace, config: Config) -> None:
    bad_records = _parse_bad(args.bad)
    from custseg.data.generate import generate

    spark = _session(config)
    _log(f"generating {args.preset} data into {args.out}")
    summary = generate(
        spark,
        args.out,
        customers=args.customers,
        seed=args.seed,
        preset=args.preset,
        bad_records=bad_records,
        orders_per_customer=args.orders_per_customer,
        compress_orders=args.compress_orders,
    )
    print(summary)


def _run_stages(names: list[str]) -> Callable[[argparse.Namespace, Config], None]:
    def command(args: argparse.Namespace, config: Config) -> None:
        from custseg.stages import chain

        chain.preflight(config, names)
        spark = _session(config)
        reports = chain.run(spark, config, names, progress=_log)
        _print_reports(reports)

    return command


def cmd_score(args: argparse.Namespace, config: Config) -> None:
    from custseg.stages.score import score

    spark = _session(config)
    _log("[score]")
    report = score(spark, config, args.model, table=args.table, output=args.output, progress=_log)
    _print_reports([report])
    print(
        "  segment sizes: "
        + ", ".join(f"{k}: {v:,}" for k, v in sorted(report.extra["segment_counts"].items()))
    )


def cmd_demo(args: argparse.Namespace, config: Config) -> None:
    """The seed scenario, then a realistic data set, each generated, ingested, featured and segmented."""

    from custseg import tracking
    from custseg.data.generate import generate
    from custseg.stages import chain

    spark = _session(config)
    seed_config = config.model_copy(deep=True)
    seed_config.input.path = "demo/seed/raw"
    seed_config.storage.root = "demo/seed/lakehouse"
    seed_config.tracking.experiment = f"{config.tracking.experiment}-seed"
    seed_config.tracking.model_name = f"{config.tracking.model_name}-seed"
    real_config = config.model_copy(deep=True)
    real_config.input.path = "data/raw"

    for title, cfg, kwargs in (
        ("seed scenario (25 customers with orders: 16/7/1/1)", seed_config, {"preset": "seed"}),
        (
            f"realistic data ({args.customers:,} customers)",
            real_config,
            {"customers": args.customers},
        ),
    ):
        print(f"\n=== {title} ===")
        _log(f"generating into {cfg.input.path}")
        generate(spark, cfg.input.path, seed=args.seed, **kwargs)
        reports = chain.run(spark, cfg, progress=_log)
        _print_reports(reports)

    uri = tracking.tracking_uri(config.tracking)
    print("\nWhere to look")
    print(
        f"  lakehouse tables:  {Path(config.storage.root).absolute()}  (seed scenario: demo/seed/lakehouse)"
    )
    print(
        f"  MLflow UI:         mlflow ui --backend-store-uri {uri}   then open http://127.0.0.1:5000"
    )
    print(
        f"  score customers:   custseg score --model models:/{config.tracking.model_name}@{config.tracking.alias}"
    )
    print("  dashboard:         custseg dashboard   then open http://127.0.0.1:8501")
    print("  report:            custseg report --out report.html")


def cmd_tables(args: argparse.Namespace, config: Config) -> None:
    from custseg.storage import describe_tables

    rows = describe_tables(config.storage.root)
    if not rows:
        print(f"no tables under {config.storage.root}; run 'custseg run' or 'custseg demo' first")
        return
    print(f"{'table':<34} {'live':>6}  versions")
    for name, live, versions in rows:
        print(f"{name:<34} {live if live is not None else '-':>6}  {', '.join(map(str, versions))}")


def cmd_rollback(args: argparse.Namespace, config: Config) -> None:
    from custseg.storage import rollback

    layer, _, table = args.table.partition(".")
    version = rollback(config.storage.root, layer, table, args.version)
    print(f"{args.table} now serves version {version}")


def cmd_dashboard(args: argparse.Namespace, config: Config) -> None:
    from custseg.dashboard.server import serve

    code = serve(config, host=args.host, port=args.port, headless=not args.open)
    if code:
        raise SystemExit(code)


def cmd_report(args: argparse.Namespace, config: Config) -> None:

    from custseg.report import build_report

    print(f"report written to {build_report(config, Path(args.out), title=args.title)}")


COMMANDS: dict[str, Callable[[argparse.Namespace, Config], None]] = {
    "generate": cmd_generate,
    "ingest": _run_stages(["ingest"]),
    "features": _run_stages(["features"]),
    "segment": _run_stages(["segment"]),
    "run": _run_stages(["ingest", "features", "segment"]),
    "score": cmd_score,
    "demo": cmd_demo,
    "dashboard": cmd_dashboard,
    "tables": cmd_tables,
    "rollback": cmd_rollback,
    "report": cmd_report,
}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _NotFromPy4J(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "py4j" not in Path(record.pathname).parts


def _log_without_py4j() -> None:
    """Python logging to stderr as usual, minus Py4J's records: Py4J logs a traceback on the root
    logger when Ctrl-C or SIGTERM cuts a JVM call short, and the CLI reports that in one line."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        handler.addFilter(_NotFromPy4J())
        root.addHandler(handler)


def _interruption(exc: BaseException) -> BaseException | None:
    """The Ctrl-C / SIGTERM behind ``exc``, if one is in its chain of causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _interrupted(exc: BaseException) -> int:
    """Stop Spark first (its jobs' last log lines come before ours), then say what happened."""
    for session in _STARTED:
        with contextlib.suppress(Exception):
            session.stop()
    if isinstance(exc, Terminated):
        print(f"custseg: terminated (SIGTERM); {_UNPUBLISHED}", file=sys.stderr)
        return EXIT_TERMINATED
    print(f"custseg: interrupted; {_UNPUBLISHED}", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading

    parser = build_parser()
    args = parser.parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    _log_without_py4j()
    try:
        config = load_config(args.config, _overrides(args))
        COMMANDS[args.command](args, config)
    except CustsegError as exc:
        print(f"custseg: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        return _interrupted(exc)
    except Exception as exc:
        interruption = _interruption(exc)  # Py4J wraps a signal that cut a JVM call short
        if interruption is not None:
            return _interrupted(interruption)
        # Spark analysis errors (a path that is not a table, a bad column) are user-facing
        # too: show their first line, not a JVM stack trace.
        if type(exc).__module__.startswith(("pyspark", "py4j")):
            print(f"custseg: error: Spark: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
