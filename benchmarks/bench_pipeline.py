"""Raw to gold at scale: generate, ingest and build features for N customers (~5 orders each).

    .venv/bin/python benchmarks/bench_pipeline.py --customers 1000000
        [--stages ingest,features,segment] [--compress-orders] [--methods hierarchical,kmeans]

Prints time, peak memory and peak Spark scratch space (this application's files in
its local directory: shuffle files and blocks cached on disk, including those an earlier
stage left until Spark cleans them up) per stage next to the targets of issue #2
(raw -> gold within 5 minutes on 2 cores, driver memory under 4 GiB); with
``segment`` in ``--stages`` also the segment stage (tuning and comparing every
method, the refit on all customers above ``segment.max_driver_customers``, MLflow
tracking into a SQLite store in the working folder), reported on its own row.
Working files go to a temporary folder that is removed afterwards. ``--compress-orders``
writes the raw sales orders gzip-compressed (10^7 customers make about 33 GB of plain JSON
lines, 7.3 GiB of raw files with the orders compressed); ingest then also pays for the
decompression.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _record  # noqa: E402
from _measure import gib, measure, spark_scratch_dirs  # noqa: E402

from custseg.config import load_config  # noqa: E402
from custseg.data.generate import generate  # noqa: E402
from custseg.spark import create_session  # noqa: E402
from custseg.stages import chain  # noqa: E402

TARGET_SECONDS = 300
TARGET_DRIVER_BYTES = 4 * 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=5.0)
    parser.add_argument("--driver-memory", default="3g", help="Spark driver heap (default 3g)")
    parser.add_argument("--workdir", help="keep the data here instead of a temporary folder")
    parser.add_argument(
        "--compress-orders", action="store_true", help="gzip the raw sales_orders files"
    )
    parser.add_argument(
        "--stages",
        default="ingest,features",
        help=(
            "stages after generate, in order (default ingest,features; add segment to time it too)"
        ),
    )
    parser.add_argument(
        "--methods",
        help=(
            "segment.methods for the segment stage, comma-separated "
            "(default: the config's, all four)"
        ),
    )
    _record.add_argument(parser)
    args = parser.parse_args()
    stages = args.stages.split(",")
    unknown = [s for s in stages if s not in chain.STAGES]
    if unknown:
        parser.error(f"unknown stage {unknown[0]!r}; stages are {', '.join(chain.STAGES)}")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="custseg-bench-"))
    methods = {"segment.methods": args.methods.split(",")} if args.methods else {}
    config = load_config(
        overrides={
            **methods,
            "input.path": str(work / "raw"),
            "storage.root": str(work / "lakehouse"),
            "spark.driver_memory": args.driver_memory,
            "spark.shuffle_partitions": 16,
            "spark.log_level": "ERROR",
            "tracking.tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
            "tracking.artifact_location": str(work / "mlruns"),
        }
    )
    # Spark's scratch space: this application's folders in spark.local.dir (default: the temp
    # folder).
    local_dir = Path(config.spark.conf.get("spark.local.dir") or tempfile.gettempdir())
    before = set(local_dir.glob("blockmgr-*"))
    spark = create_session(config.spark)
    scratch = spark_scratch_dirs(local_dir, before)
    rows = []
    try:
        with measure(scratch_dirs=scratch) as m:
            summary = generate(
                spark,
                work / "raw",
                customers=args.customers,
                seed=7,
                orders_per_customer=args.orders_per_customer,
                compress_orders=args.compress_orders,
            )
        raw_bytes = sum(f.stat().st_size for f in (work / "raw").rglob("*") if f.is_file())
        rows.append(("generate", m, f"{summary.orders:,} orders, raw files {gib(raw_bytes)}"))
        for stage in stages:
            with measure(scratch_dirs=scratch) as m:
                report = chain.run(spark, config, [stage], progress=lambda _m: None)[0]
            detail = ", ".join(
                f"{k} {v:,}"
                for k, v in report.tables.items()
                if k in ("silver.orders", "gold.customer_features", "gold.customer_segments")
            )
            if stage == "segment":
                detail += "; " + report.notes[0]  # the recommended method and its choice
            rows.append((stage, m, detail))
    finally:
        spark.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"\ncustseg raw -> gold, {args.customers:,} customers, driver memory {args.driver_memory}"
    )
    print(
        f"{'stage':<10} {'seconds':>9} {'peak tree RSS':>15} {'peak JVM RSS':>14} "
        f"{'peak scratch':>14}  detail"
    )
    for name, m, detail in rows:
        print(
            f"{name:<10} {m.seconds:>9.1f} {gib(m.peak_tree_bytes):>15} "
            f"{gib(m.peak_jvm_bytes):>14} "
            f"{gib(m.peak_scratch_bytes):>14}  {detail}"
        )
    raw_to_gold = sum(m.seconds for name, m, _ in rows if name in ("ingest", "features"))
    peak_jvm = max(
        (m.peak_jvm_bytes for name, m, _ in rows if name in ("ingest", "features")), default=0
    )
    print(
        f"\nraw -> gold features (ingest + features): {raw_to_gold:.1f} s "
        f"(target <= {TARGET_SECONDS} s: "
        f"{'met' if raw_to_gold <= TARGET_SECONDS else 'NOT met'}; "
        f"ratio {raw_to_gold / TARGET_SECONDS:.2f} of the target)"
    )
    print(
        f"driver (JVM) peak: {gib(peak_jvm)} (target < {gib(TARGET_DRIVER_BYTES)}: "
        f"{'met' if peak_jvm < TARGET_DRIVER_BYTES else 'NOT met'})"
    )


if __name__ == "__main__":
    _record.run(main)
