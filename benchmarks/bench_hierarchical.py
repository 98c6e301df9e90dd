"""Ward at scale: custseg's SparkHierarchical against exact Ward (fastcluster, scikit-learn).

    .venv/bin/python benchmarks/bench_hierarchical.py --sizes 50000,100000,1000000
    .venv/bin/python benchmarks/bench_hierarchical.py --data customers --sizes 50000 [--k auto]
    .venv/bin/python benchmarks/bench_hierarchical.py --compare-summarisers --sizes 1000000

Data (``--data``): ``blobs`` is the 8-dimensional mixture of 5 Gaussian blobs with 2%
uniform noise of ``_data.py`` (truth = the planted blob, -1 noise); ``customers`` runs
custseg's own generate -> ingest -> features pipeline for n customers, scales the features
as the segment stage does, and takes the planted archetypes as truth (slow: use 50k / 100k).

For each size it prints, side by side:

- custseg: ``SparkHierarchical(n_clusters=k, maxDriverRows=10000)`` on local[2], so the
  distributed path always runs (with ``--k auto``, ``n_clusters=None``: custseg chooses k by
  silhouette as the segment stage does, that search is timed too, and the references are
  cut at its k); the time covers the fit *and* labelling every customer (``transform``
  written to Parquet). The Spark session is started, and warmed up on a small fit, before
  the clock starts; peak memory is the whole process tree (driver Python, Spark JVM,
  Python workers);
- exact Ward references, each in a child process (its own time and peak memory, data
  loading excluded): fastcluster ``linkage_vector(method="ward")`` and scikit-learn
  ``AgglomerativeClustering(linkage="ward")``, both cut at the same k. A reference is
  skipped, and the table says why, above ``--skip-reference-above`` customers (fastcluster
  is quadratic in time: about 1 minute at 100k, so more than an hour from ~800k) or where
  it would exceed memory (scikit-learn's Ward builds the n(n-1)/2 distance matrix);
- agreement: ARI of custseg against exact Ward at the same k, and ARI against the planted
  truth next to exact Ward's. For sizes without a reference only the truth ARI is shown
  (computed in Spark from the label contingency table: nothing per customer collected);
- exact Ward's own stability (``--exact-stability``, 3 by default): exact Ward refitted with
  1% of the customers dropped at random, against exact Ward on all of them. Where exact
  Ward's merges are nearly tied at k, this floor is below 1 and bounds any summary's ARI.

``--compare-summarisers`` times only the micro-cluster summaries (custseg's sample-seeded
single pass) against pyspark.ml KMeans and BisectingKMeans with the same k, to justify the
choice documented in ``custseg/cluster/hierarchical/_summaries.py``.

Working files go to ``--workdir`` (default a temporary folder, removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import _record  # noqa: E402
from _agreement import truth_ari_in_spark  # noqa: E402
from _data import write_blob_mixture  # noqa: E402
from _measure import gib, measure  # noqa: E402

BLOB_K = 5
MAX_DRIVER_ROWS = 10_000
# Targets of issue #6 (Hierarchical half).
TARGET_ARI_VS_EXACT = 0.9
TARGET_TRUTH_GAP = 0.02
TARGET_SPEEDUP_AT_100K = 10.0
TARGET_SECONDS_AT_1E7 = 15 * 60
# scikit-learn's Ward (no connectivity) holds n(n-1)/2 float64 distances, plus scipy's copy.
SKLEARN_MEMORY_LIMIT = 6 * 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,100000,1000000,10000000")
    parser.add_argument("--data", choices=["blobs", "customers"], default="blobs")
    parser.add_argument(
        "--skip-reference-above",
        type=int,
        default=100_000,
        help="run the exact references only up to this many customers (default 100000)",
    )
    parser.add_argument(
        "--micro-clusters", type=int, default=None, help="numMicroClusters (default: custseg's)"
    )
    parser.add_argument(
        "--exact-stability",
        type=int,
        default=3,
        help=(
            "exact Ward refits on 99%% subsamples, as the floor of 'ARI vs exact' "
            "(default 3; 0: none)"
        ),
    )
    parser.add_argument("--driver-memory", default="3g")
    parser.add_argument("--compare-summarisers", action="store_true")
    parser.add_argument("--workdir", help="keep the data here instead of a temporary folder")
    parser.add_argument("--reference", help=argparse.SUPPRESS)  # child side: fastcluster | sklearn
    parser.add_argument("--child-input", help=argparse.SUPPRESS)
    parser.add_argument("--child-k", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--k",
        type=k_argument,
        help="cut at this k (default: 5 for blobs, the planted archetypes for customers); 'auto': "
        "custseg chooses k by silhouette as the segment stage does, and exact Ward is cut there",
    )
    _record.add_argument(parser)
    args = parser.parse_args()
    if args.reference:
        run_reference_child(args.reference, Path(args.child_input), args.child_k)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="custseg-bench-hier-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load before: {load_average()}", flush=True)
    spark = start_spark(args.driver_memory)
    try:
        if args.compare_summarisers:
            compare_summarisers(spark, work, sizes, args)
        else:
            rows = [run_size(spark, work, n, args) for n in sizes]
            print_table(rows, args)
    finally:
        spark.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load after: {load_average()}")


def k_argument(value: str) -> str:
    """``--k``: a whole number of at least 2, or ``auto``."""
    if value != "auto" and not (value.isdigit() and int(value) >= 2):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 2 or 'auto', got {value!r}")
    return value


# -- data -------------------------------------------------------------------------------
def prepare_data(spark: Any, work: Path, n: int, data: str) -> tuple[Path, int, int]:
    """Parquet with id, features (array<double>), truth; returns (path, rows, k).

    For ``customers`` the rows are the generated customers who have orders (a few percent
    fewer than asked for), and k is the number of planted archetypes.
    """
    if data == "blobs":
        path = work / f"blobs-{n}"
        if not path.exists():
            write_blob_mixture(path, n, seed=0)
        return path, n, BLOB_K
    path = work / f"customers-{n}"
    if not path.exists():
        write_customer_features(spark, work, n, path)
    table = spark.read.parquet(str(path))
    return path, table.count(), table.select("truth").distinct().count()


def write_customer_features(spark: Any, work: Path, n: int, path: Path) -> None:
    """custseg's pipeline (generate -> ingest -> features), scaled as the segment stage scales."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from custseg.config import load_config
    from custseg.data.generate import generate
    from custseg.features import FEATURE_COLUMNS
    from custseg.segment.scaling import FeatureScaler
    from custseg.stages import chain
    from custseg.stages.segment import load_truth
    from custseg.storage import Lakehouse

    root = work / f"pipeline-{n}"
    config = load_config(
        overrides={"input.path": str(root / "raw"), "storage.root": str(root / "lakehouse")}
    )
    started = time.perf_counter()
    generate(spark, root / "raw", customers=n, seed=7)
    chain.run(spark, config, ["ingest", "features"], progress=lambda _m: None)
    features = Lakehouse(spark, config.storage).read("gold", "customer_features")
    scaler = FeatureScaler.fit(features, FEATURE_COLUMNS, config.segment.log_features)
    # Benchmark side, bounded by the sizes used here (50k / 100k): the references need X anyway.
    raw = features.select("customer_id", *FEATURE_COLUMNS).orderBy("customer_id").toPandas()
    X = scaler.transform_pandas(raw)
    truth = load_truth(config, raw["customer_id"])
    if truth is None:
        raise SystemExit("the generated data has no truth file")
    arrays = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1]).cast(
        pa.list_(pa.float64())
    )
    path.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "id": np.arange(len(X), dtype=np.int64),
                "features": arrays,
                "truth": truth.astype(np.int32),
            }
        ),
        path / "part-00000.parquet",
    )
    print(
        f"customer features for {len(X):,} customers ({X.shape[1]} features) built in "
        f"{time.perf_counter() - started:.0f} s (not timed below)",
        flush=True,
    )


def load_numpy(spark: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The features and truth of a data set small enough for the references, in id order."""
    import pyarrow.parquet as pq

    table = pq.read_table(str(path)).sort_by("id")
    column = table.column("features").combine_chunks()
    X = column.flatten().to_numpy().reshape(len(table), -1)
    return np.ascontiguousarray(X), table.column("truth").to_numpy()


# -- custseg ----------------------------------------------------------------------------
def start_spark(driver_memory: str) -> Any:
    from custseg.config import SparkConfig
    from custseg.spark import create_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return create_session(
        SparkConfig(
            master="local[2]", driver_memory=driver_memory, shuffle_partitions=4, log_level="ERROR"
        )
    )


def warm_up(spark: Any, work: Path) -> None:
    """Start the JVM's and Python workers' machinery on a small fit, outside the clock.

    The small fit reads and writes Parquet like the timed one, so the JVM's first use of
    the Parquet reader and writer (class loading, about a second here) is not timed either:
    the references' times exclude loading their data too.
    """
    from custseg.cluster import SparkHierarchical

    warm = work / "warm-up"
    if not warm.exists():
        write_blob_mixture(warm / "data", 5_000, seed=1)
    df = spark.read.parquet(str(warm / "data"))
    model = SparkHierarchical(n_clusters=BLOB_K, maxDriverRows=1_000, numMicroClusters=200).fit(df)
    model.transform(df).write.mode("overwrite").parquet(str(warm / "labels"))


def run_and_score_custseg(
    spark: Any, data: Path, n: int, k: int | None, out: Path, micro: int | None
) -> dict[str, Any]:
    """custseg on a warmed-up session, then its ARI against the planted truth (in Spark)."""
    warm_up(spark, out.parent)
    ours = run_custseg(spark, data, n, k, out, micro)
    ours["load"] = load_average()
    ours["ari_truth"] = truth_ari_in_spark(spark, out)
    return ours


def run_custseg(
    spark: Any, data: Path, n: int, k: int | None, out: Path, micro: int | None
) -> dict[str, Any]:
    """SparkHierarchical cut at k, or at the k it chooses by silhouette (k None)."""
    from custseg.cluster import SparkHierarchical

    params: dict[str, Any] = {
        "n_clusters": k,
        "maxDriverRows": MAX_DRIVER_ROWS,
        "predictionCol": "segment",
    }
    if micro:
        params["numMicroClusters"] = micro
    df = spark.read.parquet(str(data))
    with measure() as m:
        model = SparkHierarchical(**params).fit(df)
        model.transform(df).select("id", "truth", "segment").write.mode("overwrite").parquet(
            str(out)
        )
    clusterer = model.clusterer
    return {
        "seconds": m.seconds,
        "peak": m.peak_tree_bytes,
        "jvm": m.peak_jvm_bytes,
        "k": int(clusterer.n_clusters_),
        "micro": int(clusterer.micro_centers_.shape[0])
        if clusterer.micro_centers_ is not None
        else 0,
    }


# -- references (child processes) -----------------------------------------------------------
def run_reference_child(kind: str, data: Path, k: int) -> None:
    from scipy.cluster.hierarchy import fcluster

    X = np.load(data)
    with measure() as m:
        if kind == "fastcluster":
            import fastcluster

            labels = fcluster(fastcluster.linkage_vector(X, method="ward"), k, "maxclust")
        else:
            from sklearn.cluster import AgglomerativeClustering

            labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit(X).labels_
    np.save(data.with_name(f"labels-{kind}.npy"), labels)
    print(json.dumps({"seconds": m.seconds, "peak": m.peak_tree_bytes}))


def run_reference(kind: str, X: np.ndarray, k: int, work: Path) -> dict[str, Any]:
    data = work / "reference-input.npy"
    np.save(data, X)
    cmd = [
        sys.executable,
        __file__,
        "--reference",
        kind,
        "--child-input",
        str(data),
        "--child-k",
        str(k),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=3 * 3600)
    if result.returncode != 0:
        return {"skipped": f"failed: {result.stderr.strip().splitlines()[-1:]}"}
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["labels"] = np.load(data.with_name(f"labels-{kind}.npy"))
    return out


def exact_stability(X: np.ndarray, k: int, exact: np.ndarray, repeats: int) -> list[float]:
    """ARI of exact Ward refitted with 1% of the customers dropped against exact Ward on all
    (on the customers kept), one per seed: how far exact Ward itself moves under a change that
    small. Where its top merges are nearly tied at k, no summary can agree more than this."""
    import fastcluster
    from scipy.cluster.hierarchy import fcluster
    from sklearn.metrics import adjusted_rand_score

    out = []
    for seed in range(repeats):
        keep = np.random.default_rng(seed).random(len(X)) >= 0.01
        labels = fcluster(fastcluster.linkage_vector(X[keep], method="ward"), k, "maxclust")
        out.append(round(float(adjusted_rand_score(exact[keep], labels)), 4))
    return out


def reference_skip_reason(kind: str, n: int, skip_above: int) -> str | None:
    if kind == "sklearn":
        needed = n * (n - 1) / 2 * 8 * 2
        if needed > SKLEARN_MEMORY_LIMIT:
            return f"skipped: needs ~{gib(int(needed))} (n(n-1)/2 distances, x2)"
    if n > skip_above:
        # fastcluster's Ward is quadratic: ~1 minute at 100k on this machine.
        hours = (n / 100_000) ** 2 / 60
        return f"skipped: > --skip-reference-above (est. {hours:.1f} h)"
    return None


# -- one size ------------------------------------------------------------------------------------
def run_size(spark: Any, work: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.metrics import adjusted_rand_score

    data, n, planted_k = prepare_data(spark, work, n, args.data)
    auto_k = args.k == "auto"
    k = None if auto_k else int(args.k or planted_k)
    print(
        f"\n== n = {n:,} ({args.data}, k = {k or 'chosen by custseg'}); load {load_average()}",
        flush=True,
    )
    X = truth = None
    if n <= args.skip_reference_above:
        X, truth = load_numpy(spark, data)
    scored = work / f"scored-{n}"
    if auto_k:  # custseg first: its k is the one exact Ward is cut at
        ours = run_and_score_custseg(spark, data, n, None, scored, args.micro_clusters)
        k = ours["k"]
    row: dict[str, Any] = {"n": n, "k": k, "refs": {}}
    for kind in ("fastcluster", "sklearn"):
        reason = reference_skip_reason(kind, n, args.skip_reference_above)
        if reason or X is None:
            row["refs"][kind] = {"skipped": reason or "skipped"}
            print(f"  {kind}: {row['refs'][kind]['skipped']}", flush=True)
            continue
        ref = run_reference(kind, X, k, work)
        if "labels" in ref:
            ref["ari_truth"] = adjusted_rand_score(truth, ref["labels"])
        row["refs"][kind] = ref
        print(
            f"  {kind}: {ref.get('seconds', 0):.1f} s, peak {gib(ref.get('peak', 0))}, "
            f"ARI vs truth {ref.get('ari_truth', float('nan')):.4f}",
            flush=True,
        )
    exact_labels = row["refs"]["fastcluster"].get("labels")
    if exact_labels is not None and args.exact_stability:
        row["exact_stability"] = exact_stability(X, k, exact_labels, args.exact_stability)
        print(f"  exact Ward on 99% subsamples vs on all: ARI {row['exact_stability']}", flush=True)

    if not auto_k:
        ours = run_and_score_custseg(spark, data, n, k, scored, args.micro_clusters)
    exact = row["refs"].get("fastcluster", {}).get("labels")
    if exact is not None:
        import pyarrow.parquet as pq

        labels = pq.read_table(str(scored)).sort_by("id").column("segment").to_numpy()
        ours["ari_exact"] = adjusted_rand_score(exact, labels)
    row["ours"] = ours
    print(
        f"  custseg: {ours['seconds']:.1f} s, peak {gib(ours['peak'])} (JVM {gib(ours['jvm'])}), "
        f"k = {ours['k']}, {ours['micro']} micro-clusters, "
        f"ARI vs exact {ours.get('ari_exact', float('nan')):.4f}, "
        f"vs truth {ours['ari_truth']:.4f}; load {ours['load']}",
        flush=True,
    )
    shutil.rmtree(scored, ignore_errors=True)
    return row


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nWard, {args.data} data, custseg on local[2] "
        f"(maxDriverRows={MAX_DRIVER_ROWS}: distributed path)"
    )
    header = (
        f"{'n':>10} {'k':>3} {'custseg s':>10} {'peak':>10} {'fastcluster s':>14} {'peak':>10} "
        f"{'sklearn s':>10} {'peak':>10} "
        f"{'ratio fc/ours':>13} {'ratio sk/ours':>13} {'ARI exact':>9} {'ARI truth':>9} "
        f"{'exact truth':>11}"
    )
    print(header)
    notes = []
    for row in rows:
        ours, fc, sk = row["ours"], row["refs"]["fastcluster"], row["refs"]["sklearn"]
        fc_s = f"{fc['seconds']:.1f}" if "seconds" in fc else "skipped"
        fc_peak = gib(fc["peak"]) if "peak" in fc else "-"
        sk_s = f"{sk['seconds']:.1f}" if "seconds" in sk else "skipped"
        sk_peak = gib(sk["peak"]) if "peak" in sk else "-"
        ratio = f"{fc['seconds'] / ours['seconds']:.1f}x" if "seconds" in fc else "-"
        sk_ratio = f"{sk['seconds'] / ours['seconds']:.1f}x" if "seconds" in sk else "-"
        ari_exact = f"{ours['ari_exact']:.4f}" if "ari_exact" in ours else "-"
        exact_truth = f"{fc['ari_truth']:.4f}" if "ari_truth" in fc else "-"
        print(
            f"{row['n']:>10,} {row['k']:>3} {ours['seconds']:>10.1f} {gib(ours['peak']):>10} "
            f"{fc_s:>14} {fc_peak:>10} "
            f"{sk_s:>10} {sk_peak:>10} {ratio:>13} {sk_ratio:>13} {ari_exact:>9} "
            f"{ours['ari_truth']:>9.4f} {exact_truth:>11}"
        )
        for kind, ref in (("fastcluster", fc), ("scikit-learn", sk)):
            if "seconds" not in ref:
                notes.append(f"n={row['n']:,}: {kind} {ref['skipped']}")
    for note in notes:
        print("  " + note)
    print("\ntargets:")
    for row in rows:
        n, ours, fc = row["n"], row["ours"], row["refs"]["fastcluster"]
        if "ari_exact" in ours:
            gap = fc["ari_truth"] - ours["ari_truth"]
            floor = row.get("exact_stability")
            floor_note = (
                " (exact Ward itself with 1% of customers dropped: "
                f"{min(floor):.4f}-{max(floor):.4f})"
                if floor
                else ""
            )
            print(
                f"  n={n:,}: ARI vs exact {ours['ari_exact']:.4f} >= {TARGET_ARI_VS_EXACT}: "
                f"{met(ours['ari_exact'] >= TARGET_ARI_VS_EXACT)}{floor_note}; "
                f"truth ARI {gap:+.4f} "
                f"below exact's (<= {TARGET_TRUTH_GAP}): {met(gap <= TARGET_TRUTH_GAP)}"
            )
        if n == 100_000 and "seconds" in fc:
            speedup = fc["seconds"] / ours["seconds"]
            print(
                f"  n=100,000: {speedup:.1f}x faster than fastcluster "
                f"(target >= {TARGET_SPEEDUP_AT_100K:.0f}x): "
                f"{met(speedup >= TARGET_SPEEDUP_AT_100K)}"
            )
        if n == 10_000_000:
            print(
                f"  n=10,000,000: {ours['seconds']:.0f} s (target <= {TARGET_SECONDS_AT_1E7} s): "
                f"{met(ours['seconds'] <= TARGET_SECONDS_AT_1E7)}"
            )


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- summarisers ------------------------------------------------------------------------------
def compare_summarisers(spark: Any, work: Path, sizes: list[int], args: argparse.Namespace) -> None:
    """Time of the micro-cluster summaries alone: custseg's pass vs pyspark.ml's k-means."""
    from pyspark.ml.clustering import BisectingKMeans, KMeans
    from pyspark.ml.functions import array_to_vector

    from custseg.cluster._common.defaults import HIERARCHICAL_MICRO_CLUSTERS
    from custseg.cluster._common.spark_frames import features_as_array
    from custseg.cluster.hierarchical._summaries import micro_cluster_summaries

    m = args.micro_clusters or HIERARCHICAL_MICRO_CLUSTERS
    warm_up(spark, work)
    print(f"\nmicro-cluster summaries, k = {m}, blobs data")
    for n in sizes:
        data, _, _ = prepare_data(spark, work, n, "blobs")
        df = spark.read.parquet(str(data))
        with measure() as ours:
            micro = micro_cluster_summaries(
                df, features_as_array(df, "features"), m, n_rows=n, seed=0, col_name="features"
            )
        sse = float(micro.sse.sum())
        print(
            f"  n={n:,} custseg summaries: {ours.seconds:.1f} s, within-SS {sse:.4g}; "
            f"load {load_average()}",
            flush=True,
        )
        vectors = df.select(array_to_vector("features").alias("features"))
        for name, estimator in (
            ("pyspark.ml KMeans (maxIter=10)", KMeans(k=m, maxIter=10, seed=0)),
            ("pyspark.ml BisectingKMeans", BisectingKMeans(k=m, seed=0)),
        ):
            with measure() as theirs:
                model = estimator.fit(vectors)
            cost = model.summary.trainingCost
            print(
                f"  n={n:,} {name}: {theirs.seconds:.1f} s "
                f"({theirs.seconds / ours.seconds:.1f}x custseg's), "
                f"within-SS {cost:.4g}; load {load_average()}",
                flush=True,
            )


if __name__ == "__main__":
    _record.run(main)
