"""SparkHDBSCAN's distributed path against fast_hdbscan and hdbscan (issue #6).

    .venv/bin/python benchmarks/bench_hdbscan.py --sizes 50000,100000,1000000
    .venv/bin/python benchmarks/bench_hdbscan.py --sizes 10000000 --skip-reference-above 1000000
    .venv/bin/python benchmarks/bench_hdbscan.py --data customers --sizes 50000,100000

Data: ``--data blobs`` is the issue's 8-D mixture of 5 Gaussian blobs with 2% uniform noise
(``_data.py``), written to Parquet block by block; ``--data customers`` generates that many
customers with ``custseg.data.generate``, runs ingest and features, and scales the nine
features as the segment stage does (log1p on the heavy-tailed ones, then standardised).

custseg: ``SparkHDBSCAN`` on local[2] with ``maxDriverRows`` below the size, so the
distributed path runs; the time covers the fit and labelling every customer
(``transform`` written to Parquet). References, in this same process tree: fast_hdbscan
and hdbscan (custseg's exact single-node ``HDBSCAN``) with the same parameters, skipped
above ``--skip-reference-above`` (said so in the table). Agreement: the adjusted Rand index
against exact hdbscan (against fast_hdbscan where hdbscan was skipped; said so) and the
difference in noise share; on the blobs also the ARI against the planted blobs (noise = -1)
for every method and size, custseg's computed in Spark from the label contingency table, so
it is there at sizes without a reference. Peak memory: sampled RSS of the whole process tree.
fast_hdbscan is timed after a warm-up fit on 2,000 points (numba compiles its kernels once).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).parent))

import _record  # noqa: E402
from _agreement import truth_ari_in_spark  # noqa: E402
from _data import blob_mixture, write_blob_mixture  # noqa: E402
from _measure import gib, measure  # noqa: E402

LOG_FEATURES = [
    "units_purchased",
    "total_spend",
    "num_orders",
    "avg_order_value",
    "product_diversity",
    "category_diversity",
]


def agreement(reference: np.ndarray | None, got: np.ndarray) -> tuple[str, str]:
    if reference is None:
        return "-", "-"
    ari = adjusted_rand_score(reference, got)
    gap = 100 * abs(float((reference < 0).mean()) - float((got < 0).mean()))
    return f"{ari:.4f}", f"{gap:.2f} pp"


def customer_features(spark, n: int, work: Path) -> tuple[Path, np.ndarray]:
    """Generated customers -> gold features -> scaled matrix; written as the blob Parquet layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from custseg.config import load_config
    from custseg.data.generate import generate
    from custseg.features import FEATURE_COLUMNS
    from custseg.segment.scaling import FeatureScaler
    from custseg.stages import chain
    from custseg.storage import Lakehouse

    config = load_config(
        overrides={"input.path": str(work / "raw"), "storage.root": str(work / "lake")}
    )
    generate(spark, work / "raw", customers=n, seed=7)
    chain.run(spark, config, ["ingest", "features"], progress=lambda _m: None)
    gold = Lakehouse(spark, config.storage).read("gold", "customer_features").toPandas()
    logs = [c for c in LOG_FEATURES if c in FEATURE_COLUMNS]
    scaler = FeatureScaler.fit_pandas(gold, list(FEATURE_COLUMNS), logs)
    X = scaler.transform_pandas(gold)
    path = work / f"customers-{n}"
    path.mkdir(parents=True, exist_ok=True)
    features = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1]).cast(
        pa.list_(pa.float64())
    )
    ids = pa.array(np.arange(len(X), dtype=np.int64))
    pq.write_table(pa.table({"id": ids, "features": features}), path / "part-00000.parquet")
    return path, X


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,100000,1000000,10000000")
    parser.add_argument("--data", choices=["blobs", "customers"], default="blobs")
    parser.add_argument(
        "--skip-reference-above",
        type=int,
        default=1_000_000,
        help="run fast_hdbscan / hdbscan only up to this many customers",
    )
    parser.add_argument(
        "--skip-hdbscan-above",
        type=int,
        default=1_000_000,
        help="run hdbscan (the slower reference) only up to this many customers",
    )
    parser.add_argument("--min-cluster-size", type=int, default=50)
    parser.add_argument("--min-samples", type=int, default=10)
    parser.add_argument("--max-bubbles", type=int, default=65_536)
    parser.add_argument("--driver-memory", default="3g")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--workdir", help="keep data here instead of a temporary folder")
    _record.add_argument(parser)
    args = parser.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("custseg.cluster.hdbscan._distributed").setLevel(logging.INFO)
    from custseg.cluster import HDBSCAN, SparkHDBSCAN
    from custseg.config import SparkConfig
    from custseg.spark import create_session

    params = {"min_cluster_size": args.min_cluster_size, "min_samples": args.min_samples}
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="custseg-bench-hdbscan-"))
    spark = create_session(
        SparkConfig(
            master="local[2]",
            driver_memory=args.driver_memory,
            shuffle_partitions=args.shuffle_partitions,
            log_level="ERROR",
        )
    )
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(
        f"HDBSCAN benchmark, data={args.data}, {params}, maxBubbles={args.max_bubbles}; "
        f"load at start: {load}"
    )
    rows = []
    try:
        for n in sizes:
            truth = None
            if args.data == "blobs":
                path = write_blob_mixture(work / f"blobs-{n}", n)
                X, truth = blob_mixture(n) if n <= args.skip_reference_above else (None, None)
            else:
                path, X = customer_features(spark, n, work)
                X = X if n <= args.skip_reference_above else None
            df = spark.read.parquet(str(path))
            out = work / f"labels-{n}"
            with measure() as m_fit:
                model = SparkHDBSCAN(
                    **params,
                    maxDriverRows=min(100_000, n // 2),
                    maxBubbles=args.max_bubbles,
                    predictionCol="segment",
                ).fit(df)
            with measure() as m_label:
                kept = ["id", "segment"] + (["truth"] if args.data == "blobs" else [])
                model.transform(df).select(*kept).write.mode("overwrite").parquet(str(out))
            got_frame = (
                spark.read.parquet(str(out)).toPandas().sort_values("id") if X is not None else None
            )
            got = got_frame["segment"].to_numpy(np.int64) if got_frame is not None else None
            c = model.clusterer
            detail = (
                f"{c.n_clusters_} clusters, {int((c.leaf_counts_ > 0).sum())} bubbles, "
                f"{c.n_inexact_core_} core distances not proven exact"
            )
            if args.data == "blobs":
                detail += f"; ARI vs planted truth {truth_ari_in_spark(spark, out):.4f}"
            custseg_row = {
                "n": n,
                "method": "custseg SparkHDBSCAN (distributed)",
                "seconds": m_fit.seconds + m_label.seconds,
                "peak": max(m_fit.peak_tree_bytes, m_label.peak_tree_bytes),
                "detail": f"fit {m_fit.seconds:.1f} s + label {m_label.seconds:.1f} s; {detail}",
            }
            rows.append(custseg_row)
            print_rows([custseg_row])  # as soon as measured; the full table follows per size
            fast_labels = exact = None
            if X is None:
                rows.append(
                    {
                        "n": n,
                        "method": "fast_hdbscan / hdbscan",
                        "seconds": None,
                        "peak": None,
                        "detail": (
                            f"skipped (above --skip-reference-above {args.skip_reference_above:,})"
                        ),
                    }
                )
            else:
                import fast_hdbscan

                # Compile fast_hdbscan's numba kernels first: its time is then the steady state.
                fast_hdbscan.HDBSCAN(**params).fit(blob_mixture(2000, seed=1)[0][:, : X.shape[1]])
                with measure() as m:
                    fast_labels = fast_hdbscan.HDBSCAN(**params).fit(X).labels_
                rows.append(
                    {
                        "n": n,
                        "method": "fast_hdbscan",
                        "seconds": m.seconds,
                        "peak": m.peak_tree_bytes,
                        "labels": fast_labels,
                    }
                )
                if truth is not None:
                    rows[-1]["truth_ari"] = adjusted_rand_score(truth, fast_labels)
                print_rows([rows[-1]])
                if n <= args.skip_hdbscan_above:
                    with measure() as m:
                        exact = HDBSCAN(**params).fit(X).labels_
                    rows.append(
                        {
                            "n": n,
                            "method": "hdbscan (exact reference)",
                            "seconds": m.seconds,
                            "peak": m.peak_tree_bytes,
                            "labels": exact,
                        }
                    )
                    if truth is not None:
                        rows[-1]["truth_ari"] = adjusted_rand_score(truth, exact)
                else:
                    rows.append(
                        {
                            "n": n,
                            "method": "hdbscan",
                            "seconds": None,
                            "peak": None,
                            "detail": (
                                f"skipped (above --skip-hdbscan-above {args.skip_hdbscan_above:,})"
                            ),
                        }
                    )
            reference, name = (
                (exact, "hdbscan") if exact is not None else (fast_labels, "fast_hdbscan")
            )
            if got is not None and reference is not None:
                ari, gap = agreement(reference, got)
                custseg_row["detail"] += f"; vs {name}: ARI {ari}, noise gap {gap}"
                custseg_row["detail"] += (
                    f" (noise {100 * (got < 0).mean():.2f}% vs {100 * (reference < 0).mean():.2f}%)"
                )
                for row in rows:
                    if row["n"] == n and "labels" in row and row["labels"] is not reference:
                        ari, gap = agreement(reference, row["labels"])
                        row["detail"] = f"vs {name}: ARI {ari}, noise gap {gap}"
                    if row["n"] == n and "truth_ari" in row:
                        row["detail"] = (
                            f"{row.get('detail', '')}; ARI vs planted truth {row['truth_ari']:.4f}"
                        ).lstrip("; ")
                    if row["n"] == n and row["method"] == "fast_hdbscan":
                        row["ratio"] = custseg_row["seconds"] / row["seconds"]
            print_rows([r for r in rows if r["n"] == n])
            shutil.rmtree(out, ignore_errors=True)
    finally:
        spark.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\nall sizes (load at end: {load})")
    print_rows(rows)


def print_rows(rows: list[dict]) -> None:
    print(
        f"\n{'n':>10} {'method':<36} {'seconds':>9} {'peak tree RSS':>14} "
        f"{'custseg/ref':>12}  detail"
    )
    for r in rows:
        seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else "-"
        peak = gib(r["peak"]) if r["peak"] is not None else "-"
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ""
        print(
            f"{r['n']:>10,} {r['method']:<36} {seconds:>9} {peak:>14} {ratio:>12}  "
            f"{r.get('detail', '')}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    _record.run(main)
