"""The quality battery (issue 20): every Spark estimator's distributed path against the exact
algorithm, on 12 shapes, in one table.

    .venv/bin/python benchmarks/bench_quality.py
    .venv/bin/python benchmarks/bench_quality.py --scale 5 --methods hdbscan,hierarchical
    .venv/bin/python benchmarks/bench_quality.py --data wine,moons,clusters_100

The shapes and the comparison live in ``tests/cluster/quality_battery.py`` (CI runs a
subset of them with floors in ``tests/cluster/test_quality_floors.py``): scikit-learn's
bundled real data (iris, wine, breast cancer, digits; standardised) and generated sets
(moons, circles, elongated and varied-density blobs, duplicated rows, a 64-d mixture, 50
and 100 clusters in 2-d; ``--scale`` multiplies their rows). Each Spark estimator runs
with ``maxDriverRows=0`` (its distributed path at any size) on local[2]; the reference is
custseg's exact single-node estimator with the same parameters (hdbscan, fastcluster's
Ward, custseg's DBSCAN, scikit-learn's k-means).

Columns: ARI of the distributed path against exact; the exact algorithm's own ARI when
5% of the rows are dropped (lowest of three draws: the ceiling of any approximation);
the noise share of each; the time of each and their ratio; the peak RSS of the process
tree during the distributed fit; and the agreement estimate the fitted model logs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(REPO / "tests" / "cluster"))

import _record  # noqa: E402
import quality_battery as battery  # noqa: E402
from _measure import gib, measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="comma-separated shapes (default: all)")
    parser.add_argument("--methods", default=",".join(battery.METHODS))
    parser.add_argument("--scale", type=int, default=1, help="multiplies the generated rows")
    parser.add_argument("--driver-memory", default="4g")
    _record.add_argument(parser)
    args = parser.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    logging.basicConfig(level=logging.WARNING)
    from custseg.config import SparkConfig
    from custseg.spark import create_session

    spark = create_session(
        SparkConfig(master="local[2]", driver_memory=args.driver_memory, shuffle_partitions=8)
    )
    names = tuple(args.data.split(",")) if args.data else None
    methods = args.methods.split(",")
    head = (
        f"{'data':<15}{'rows':>8}{'dims':>5}  {'estimator':<19}{'ARI':>7}{'exact/self':>11}"
        f"{'noise':>8}{'exact':>7}{'time s':>8}{'exact s':>8}{'ratio':>9}  {'peak':>10}"
        f"{'logged ARI':>11}"
    )
    print(head)
    print("-" * len(head))
    for shape in battery.shapes(args.scale, names):
        for method in methods:
            row = battery.compare(spark, shape, method, measure=measure)
            ratio = row["seconds"] / max(row["exact_seconds"], 1e-3)
            logged = "-" if row["agreement_ari"] is None else f"{row['agreement_ari']:.3f}"
            print(
                f"{row['data']:<15}{row['rows']:>8,}{row['dims']:>5}  "
                f"{battery.SPARK[method].__name__:<19}{row['ari']:>7.3f}"
                f"{row['exact_self_ari']:>11.3f}{row['noise']:>8.3f}{row['noise_exact']:>7.3f}"
                f"{row['seconds']:>8.1f}{row['exact_seconds']:>8.1f}{ratio:>8.1f}x  "
                f"{gib(row['peak_bytes']):>10}{logged:>11}",
                flush=True,
            )
    spark.stop()


if __name__ == "__main__":
    _record.run(main)
