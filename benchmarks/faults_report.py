"""Run every fault-injection scenario of issue #7 and print one table.

    .venv/bin/python benchmarks/faults_report.py            # all cases (about 5 minutes on 2 cores)
    .venv/bin/python benchmarks/faults_report.py disk sig   # only the cases whose function name
                                                            # contains a word

Columns: case | injected | what custseg did | figure | ok. The scenarios live in
``tests/faults/scenarios.py``, where ``tests/faults/test_faults.py`` asserts them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "faults"))

import scenarios  # noqa: E402


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def main(argv: list[str]) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    chosen = [
        s for s in scenarios.SCENARIOS if not argv or any(word in s.__name__ for word in argv)
    ]
    started = time.monotonic()
    spark = scenarios.start_spark()
    with tempfile.TemporaryDirectory(prefix="custseg-faults-") as tmp:
        shared = scenarios.Shared(spark, Path(tmp))
        results = []
        for scenario in chosen:
            print(f"running {scenario.__name__} ...", file=sys.stderr, flush=True)
            results.append(shared.result(scenario))
            print(f"  {results[-1].details.get('seconds')} s", file=sys.stderr, flush=True)
    spark.stop()

    print("| case | injected | what custseg did | figure | ok |")
    print("|---|---|---|---|---|")
    for r in results:
        ok = f"skipped: {r.skipped}" if r.skipped else ("yes" if r.ok else "NO")
        print(
            f"| {_cell(r.case)} | {_cell(r.injected)} | {_cell(r.outcome)} | "
            f"{_cell(r.figure)} | {ok} |"
        )
    failed = [r.case for r in results if not r.ok and not r.skipped]
    print(
        f"\n{len(results)} cases in {time.monotonic() - started:.0f} s; "
        f"not ok: {', '.join(failed) or 'none'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
