"""The ``custseg`` command line.

Every subcommand builds a Config (defaults < --config file < flags), starts
one Spark session if it needs one, runs its stage and prints a short summary.
User mistakes end with one line on stderr and exit code 2, never a Java trace.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from custseg.cli.arguments import build_parser, overrides, parse_bad
from custseg.config import Config, load_config
from custseg.dashboard.server import serve
from custseg.errors import CustsegError
from custseg.storage import describe_tables, rollback

__all__ = ["COMMANDS", "build_parser", "main"]

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


# -- commands ----------------------------------------------------------------


def _session(config: Config):
    # lazy: pyspark stays out of the CLI until a command needs a Spark session
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
        if report.stage == "value":
            _print_value(report)


def _print_segments(report) -> None:
    print("\nMethod comparison\n")
    print(report.extra["comparison_markdown"])
    print(f"\nSegments ({report.extra['recommended']})\n")
    print(report.extra["profile_markdown"])
    print("Business insights")
    for line in report.extra["insights"]:
        print(f"  - {line}")


def _print_value(report) -> None:
    for title, key in (
        ("RFM segments", "rfm_markdown"),
        ("Segments by expected value", "segment_value_markdown"),
        (
            "Holdout check (repeat purchases per customer, by calibration frequency)",
            "holdout_markdown",
        ),
    ):
        if report.extra.get(key):
            print(f"\n{title}\n")
            print(report.extra[key])


def cmd_generate(args: argparse.Namespace, config: Config) -> None:
    bad_records = parse_bad(args.bad)
    # lazy: the generator loads numpy and pyarrow; --help stays fast
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
        # lazy: the stages load pyspark; --help and Spark-free commands stay fast
        from custseg.stages import chain

        chain.preflight(config, names)
        spark = _session(config)
        reports = chain.run(spark, config, names, progress=_log)
        _print_reports(reports)

    return command


def cmd_score(args: argparse.Namespace, config: Config) -> None:
    # lazy: the score stage loads mlflow and pyspark; --help stays fast
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
    """The seed scenario, then a realistic data set, each generated, ingested, featured and
    segmented."""

    from custseg import tracking  # lazy: mlflow is slow to import; --help stays fast

    # lazy: the generator loads numpy and pyarrow; --help stays fast
    from custseg.data.generate import generate

    # lazy: the stages load pyspark; --help and Spark-free commands stay fast
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
        if "customers" in kwargs:  # 25 seed customers are too few to fit the value models
            reports += chain.run(spark, cfg, ["value"], progress=_log)
        _print_reports(reports)

    uri = tracking.tracking_uri(config.tracking)
    print("\nWhere to look")
    print(
        f"  lakehouse tables:  {Path(config.storage.root).absolute()}  "
        "(seed scenario: demo/seed/lakehouse)"
    )
    print(
        f"  MLflow UI:         mlflow ui --backend-store-uri {uri}   then open http://127.0.0.1:5000"
    )
    print(
        "  score customers:   custseg score "
        f"--model models:/{config.tracking.model_name}@{config.tracking.alias}"
    )
    print("  dashboard:         custseg dashboard   then open http://127.0.0.1:8501")
    print("  report:            custseg report --out report.html")


def cmd_tables(args: argparse.Namespace, config: Config) -> None:

    rows = describe_tables(config.storage.root)
    if not rows:
        print(f"no tables under {config.storage.root}; run 'custseg run' or 'custseg demo' first")
        return
    print(f"{'table':<34} {'live':>6}  versions")
    for name, live, versions in rows:
        print(f"{name:<34} {live if live is not None else '-':>6}  {', '.join(map(str, versions))}")


def cmd_rollback(args: argparse.Namespace, config: Config) -> None:

    layer, _, table = args.table.partition(".")
    version = rollback(config.storage.root, layer, table, args.version)
    print(f"{args.table} now serves version {version}")


def cmd_dashboard(args: argparse.Namespace, config: Config) -> None:

    code = serve(config, host=args.host, port=args.port, headless=not args.open)
    if code:
        raise SystemExit(code)


def cmd_report(args: argparse.Namespace, config: Config) -> None:

    # lazy: the report loads pandas, scipy and plotly; --help stays fast
    from custseg.report import build_report

    print(f"report written to {build_report(config, Path(args.out), title=args.title)}")


COMMANDS: dict[str, Callable[[argparse.Namespace, Config], None]] = {
    "generate": cmd_generate,
    "ingest": _run_stages(["ingest"]),
    "features": _run_stages(["features"]),
    "segment": _run_stages(["segment"]),
    "value": _run_stages(["value"]),
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

    parser = build_parser()
    args = parser.parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    _log_without_py4j()
    try:
        config = load_config(args.config, overrides(args))
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
