"""Customer value (issue 24): custseg's Spark summary + grouped BG/NBD and Gamma-Gamma fit +
scoring against the lifetimes library doing the same work, side by side, as ratios.

    .venv/bin/python benchmarks/bench_value.py                      # 10^5 and 10^6, both
    .venv/bin/python benchmarks/bench_value.py --sizes 10000000 --engines custseg

Data: transactions drawn from the models' own generative process (BG/NBD purchases and
dropout, Gamma-Gamma order values) over two years, customers born in the first year, written
once per size as Parquet under --work. Each engine runs in its own process so that its peak
memory (the whole process tree: the Python driver, the Spark JVM and its workers) is its own.
Steps: summary (transactions -> frequency, recency, T, monetary value), fit (both models),
score (every customer's expected purchases, probability alive and lifetime value). Printed:
seconds per step, peak memory, the fitted parameters' largest relative difference, and the
ratio custseg / lifetimes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import _record  # noqa: E402
from _measure import gib, measure  # noqa: E402

TRUE = {"r": 0.8, "alpha": 40.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 3.5, "v": 15.0}
DAYS = 730
START = np.datetime64("2023-01-01T00:00:00", "us")
HORIZON_DAYS = 360
PARAMS = ("r", "alpha", "a", "b", "p", "q", "v")


def draw_transactions(n: int, seed: int) -> dict[str, np.ndarray]:
    """Purchases of n customers: Poisson(lambda) while alive, dropout with probability p after
    each repeat purchase, lambda ~ Gamma(r, alpha), p ~ Beta(a, b); values Gamma(p, nu)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1.0 / TRUE["alpha"], n)
    drop = rng.beta(TRUE["a"], TRUE["b"], n)
    nu = rng.gamma(TRUE["q"], 1.0 / TRUE["v"], n)
    birth = rng.uniform(0, DAYS / 2, n)
    ids, times = [np.arange(n)], [birth]
    clock = birth.copy()
    # BG/NBD: a customer may drop out after a repeat purchase only (P(x = 0) has no p in it).
    active = np.arange(n)
    while active.size:
        clock[active] += rng.exponential(1.0 / lam[active])
        active = active[clock[active] < DAYS]
        ids.append(active)
        times.append(clock[active].copy())
        active = active[rng.random(active.size) >= drop[active]]
    customer = np.concatenate(ids)
    days = np.concatenate(times)
    value = rng.gamma(TRUE["p"], 1.0 / nu[customer])
    stamp = START + (days * 86_400e6).astype("timedelta64[us]")
    return {"customer_id": customer.astype(np.int64), "order_ts": stamp, "order_value": value}


def write_data(path: Path, n: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if (path / "_SUCCESS").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    chunk = 1_000_000
    for part, start in enumerate(range(0, n, chunk)):
        columns = draw_transactions(min(chunk, n - start), seed=part)
        columns["customer_id"] += start
        pq.write_table(pa.table(columns), path / f"part-{part:05d}.parquet")
    (path / "_SUCCESS").touch()
    return path


def run_custseg(data: Path) -> dict:
    from custseg.config import SparkConfig, ValueConfig
    from custseg.spark import create_session
    from custseg.value import summary
    from custseg.value.model import fit_value_model, score_customers

    spark = create_session(SparkConfig(master="local[2]", driver_memory="4g", log_level="ERROR"))
    settings = ValueConfig(horizon_days=HORIZON_DAYS)
    end = START + np.timedelta64(DAYS, "D")
    as_of = end.astype("datetime64[us]").item()
    steps = {}
    started = time.perf_counter()
    transactions = spark.read.parquet(str(data))
    per_customer = summary.transaction_summary(transactions, as_of, cut="exact").persist()
    stats = summary.sufficient_statistics(per_customer)
    spend = summary.spend_statistics(per_customer)
    steps["summary"] = time.perf_counter() - started
    started = time.perf_counter()
    model = fit_value_model(stats, spend, settings)
    steps["fit"] = time.perf_counter() - started
    started = time.perf_counter()
    scored = score_customers(spark, per_customer, model, stats, spend, as_of)
    scored.write.mode("overwrite").parquet(str(data.parent / f"{data.name}-scored"))
    steps["score"] = time.perf_counter() - started
    params = {**{k: getattr(model.bgnbd, k) for k in PARAMS[:4]}}
    params.update({k: getattr(model.gamma_gamma, k) for k in PARAMS[4:]})
    spark.stop()
    return {
        "steps": steps,
        "params": params,
        "groups": len(stats),
        "spend_groups": len(spend.table),
    }


def run_lifetimes(data: Path) -> dict:
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    steps = {}
    started = time.perf_counter()
    transactions = pd.read_parquet(data)
    end = pd.Timestamp(START + np.timedelta64(DAYS, "D"))
    frame = summary_data_from_transaction_data(
        transactions, "customer_id", "order_ts", "order_value", observation_period_end=end
    )
    steps["summary"] = time.perf_counter() - started
    started = time.perf_counter()
    bgf = BetaGeoFitter().fit(frame["frequency"], frame["recency"], frame["T"])
    spenders = frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]
    ggf = GammaGammaFitter().fit(spenders["frequency"], spenders["monetary_value"])
    steps["fit"] = time.perf_counter() - started
    started = time.perf_counter()
    f, r, t = frame["frequency"], frame["recency"], frame["T"]
    bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS, f, r, t)
    bgf.conditional_probability_alive(f, r, t)
    ggf.customer_lifetime_value(
        bgf, f, r, t, frame["monetary_value"], time=12, discount_rate=0.01, freq="D"
    )
    steps["score"] = time.perf_counter() - started
    params = {**bgf.params_.to_dict(), **ggf.params_.to_dict()}
    return {"steps": steps, "params": params}


def child(engine: str, data: Path) -> dict:
    """One engine in a fresh process, measured as a whole process tree."""
    with measure() as m:
        out = subprocess.run(
            [sys.executable, __file__, "--child", engine, "--data", str(data)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYSPARK_PYTHON": sys.executable},
        )
    if out.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result, "seconds": m.seconds, "peak": m.peak_tree_bytes}


def report(n: int, results: dict[str, dict]) -> None:
    print(f"\n{n:,} customers")
    engines = list(results)
    print(
        f"{'step':<10}" + "".join(f"{e:>14}" for e in engines) + ("   ratio" * (len(engines) > 1))
    )
    for step in ("summary", "fit", "score"):
        row = [results[e]["steps"][step] for e in engines]
        ratio = f"{row[0] / row[1]:8.2f}" if len(row) > 1 else ""
        print(f"{step:<10}" + "".join(f"{x:13.1f}s" for x in row) + ratio)
    total = [results[e]["seconds"] for e in engines]
    ratio = f"{total[0] / total[1]:8.2f}" if len(total) > 1 else ""
    print(f"{'process':<10}" + "".join(f"{x:13.1f}s" for x in total) + ratio)
    peaks = [results[e]["peak"] for e in engines]
    ratio = f"{peaks[0] / peaks[1]:8.2f}" if len(peaks) > 1 else ""
    print(f"{'peak mem':<10}" + "".join(f"{gib(x):>14}" for x in peaks) + ratio)
    if "custseg" in results:
        c = results["custseg"]
        print(f"custseg fitted {c['groups']:,} BG/NBD groups, {c['spend_groups']:,} spend groups")
    if len(engines) > 1:
        a, b = (results[e]["params"] for e in engines)
        worst = max(abs(a[k] - b[k]) / abs(b[k]) for k in PARAMS)
        print("params   " + "  ".join(f"{k}={a[k]:.4g}/{b[k]:.4g}" for k in PARAMS))
        print(f"largest relative parameter difference: {worst:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--engines", default="custseg,lifetimes")
    parser.add_argument("--work", default="/tmp/custseg-bench-value")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    _record.add_argument(parser)
    args = parser.parse_args()
    if args.child:
        run = run_custseg if args.child == "custseg" else run_lifetimes
        print(json.dumps(run(Path(args.data))))
        return
    print(f"bench_value {time.strftime('%Y-%m-%d')}: true parameters {TRUE}")
    for n in (int(s) for s in args.sizes.split(",")):
        data = write_data(Path(args.work) / f"tx-{n}", n)
        results = {e: child(e, data) for e in args.engines.split(",")}
        report(n, results)


if __name__ == "__main__":
    _record.run(main)
