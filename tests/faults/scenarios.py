"""Fault-injection scenarios (issue #7): each injects one known fault and measures what custseg did.

Every scenario is a plain function ``scenario(shared) -> FaultResult``. ``shared`` is a
:class:`Shared`: a Spark session for the in-process cases, a scratch root in which each
case gets a fresh working folder, and the few expensive things the cases share (one
generated seed data set, one 300-customer data set, one completed ``custseg run``),
each built once, on first use.

Cases about the process (kill, terminate, two runs at once, a full disk) run the real
CLI in a subprocess: ``python -m custseg.cli ... --master local[2]`` with
MLFLOW_TRACKING_URI removed, so the embedded default store (``./mlflow.db``) is used.
Cases about the input run the same ``custseg.cli.main`` in this process on the shared
Spark session, which saves a JVM start per case.

``tests/faults/test_faults.py`` asserts the figures; ``benchmarks/faults_report.py``
runs them all and prints one table.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANARY = "CANARY7f3a"  # every planted personal value contains it; searched case-insensitively
HOSTILE_NAME = "<script>alert(1)</script>"
TERMINATED_LINE = (
    "custseg: terminated (SIGTERM); the interrupted stage's tables keep their previous versions"
)
BUSY_LINE = re.compile(
    r"^custseg: error: lakehouse (?P<path>\S+) is in use by another custseg run "
    r"\(pid (?P<pid>\d+) since [^)]+\)"
)
JAVA_FRAME = re.compile(r"^\s+at [\w$.]+\(")
# Tables that hold personal data by design (besides the raw landing zone).
CUSTOMER_TABLES = {
    "bronze.customers",
    "bronze.sales_orders",
    "bronze.quarantine",
    "silver.customers",
}
SPARK_COMMANDS = {"generate", "ingest", "features", "segment", "score", "run", "demo"}
CLI_TIMEOUT = 420


@dataclass
class FaultResult:
    """One row of the fault table."""

    case: str
    injected: str
    outcome: str  # what custseg did
    figure: str  # the measured figure the case is about
    ok: bool
    details: dict[str, Any] = field(default_factory=dict)  # the raw figures, for the tests
    skipped: str | None = None  # why the case could not run here


# ----------------------------------------------------------------------------- processes


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: no MLFLOW_TRACKING_URI, so ./mlflow.db is used."""
    env = dict(os.environ)
    for key in list(env):
        if key.startswith(("MLFLOW_", "CUSTSEG_")):
            del env[key]
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli_args(*args: str) -> list[str]:
    argv = [sys.executable, "-m", "custseg.cli", *args]
    if args and args[0] in SPARK_COMMANDS:
        argv += ["--master", "local[2]"]
    return argv


class Proc:
    """A CLI subprocess in its own process group, its output collected line by line as it comes."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.args = args
        self.started = time.monotonic()
        self.seconds = 0.0
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._seen = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, sink: list[str]) -> None:
        for line in iter(stream.readline, ""):
            with self._seen:
                sink.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait_for(self, pattern: str, timeout: float = CLI_TIMEOUT) -> bool:
        """Block until a stdout line matches ``pattern``; False if the process ended first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = 0
        with self._seen:
            while True:
                while checked < len(self.out):
                    if regex.search(self.out[checked]):
                        return True
                    checked += 1
                if self.popen.poll() is not None and not any(
                    r.is_alive() for r in self._readers[:1]
                ):
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._seen.wait(min(left, 0.2))

    def running(self) -> bool:
        return self.popen.poll() is None

    def send(self, sig: int, group: bool = False) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.popen.pid, sig)
            else:
                os.kill(self.popen.pid, sig)

    def finish(self, timeout: float = CLI_TIMEOUT) -> int:
        """Wait for the exit code; whatever is left of the group (a JVM) is killed afterwards."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL, group=True)
            code = self.popen.wait(30)
        self.seconds = time.monotonic() - self.started
        for reader in self._readers:  # the JVM shares the pipes; it exits once its driver is gone
            reader.join(5)
        self.send(signal.SIGKILL, group=True)  # a JVM that outlived its driver, if any
        for reader in self._readers:
            reader.join(30)
        self.seconds = time.monotonic() - self.started
        return code


@dataclass
class Ran:
    """A finished CLI process."""

    args: list[str]
    code: int
    out: str
    err: str
    seconds: float
    pid: int | None = None

    @property
    def log(self) -> str:
        return self.out + self.err


def run_cli(cwd: Path, *args: str, timeout: float = CLI_TIMEOUT) -> Ran:
    proc = Proc(cli_args(*args), cwd)
    code = proc.finish(timeout)
    return _ran(proc, code)


def _ran(proc: Proc, code: int) -> Ran:
    return Ran(proc.args, code, proc.stdout, proc.stderr, proc.seconds, proc.pid)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("custseg:")]


def java_trace_lines(stderr: str) -> int:
    return sum(1 for line in stderr.splitlines() if JAVA_FRAME.match(line))


def clean_exit(code: int, stderr: str) -> bool:
    """What the CLI promises: success, or exit 2 with one ``custseg: error:`` line and no Python
    trace."""
    if code == 0:
        return "Traceback" not in stderr
    return (
        code == 2
        and "Traceback" not in stderr
        and len(error_lines(stderr)) == 1
        and error_lines(stderr)[0].startswith("custseg: error: ")
    )


# ----------------------------------------------------------------------------- in-process CLI


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _mlflow_uri_kept() -> Iterator[None]:
    """The segment stage sets MLflow's global tracking URI; put the previous one back."""
    try:
        import mlflow
        from mlflow.tracking._tracking_service import utils as mlflow_utils
    except ImportError:  # pragma: no cover
        yield
        return
    previous = mlflow_utils._tracking_uri
    try:
        yield
    finally:
        if previous:
            mlflow.set_tracking_uri(previous)
        else:
            mlflow_utils._tracking_uri = None


SESSION_CONFIG = "spark:\n  shuffle_partitions: 2\n  driver_memory: 2g\n  log_level: ERROR\n"


def cli_inprocess(shared: Shared, cwd: Path, *args: str) -> Ran:
    """``custseg.cli.main`` in this process on the shared session, output captured.

    An exception escaping ``main`` is what the real process would print as a traceback
    with exit code 1, so that is what is recorded.
    """
    from custseg import cli

    config = cwd / "session.yaml"
    config.write_text(SESSION_CONFIG, encoding="utf-8")
    argv = [*args, "--config", str(config)]
    if args[0] in SPARK_COMMANDS:
        argv += ["--master", "local[2]"]
    out, err = io.StringIO(), io.StringIO()
    handler = signal.getsignal(signal.SIGTERM)
    partitions = shared.spark.conf.get("spark.sql.shuffle.partitions")
    started = time.monotonic()
    code: int
    with (
        chdir(cwd),
        _mlflow_uri_kept(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:
            err.write(traceback.format_exc())
            code = 1
        finally:
            signal.signal(signal.SIGTERM, handler)
            shared.spark.conf.set("spark.sql.shuffle.partitions", partitions)
    return Ran(["custseg", *argv], code, out.getvalue(), err.getvalue(), time.monotonic() - started)


# ----------------------------------------------------------------------------- tables


def read_live(root: Path, layer: str, table: str):
    """The live version of a table as a pyarrow Table (None when it has none)."""
    import pyarrow.parquet as pq

    from custseg.storage import current_path

    path = current_path(root, layer, table)
    return None if path is None else pq.read_table(str(path))


def canonical(table) -> list[str]:
    """Rows as sorted reprs: equal lists mean equal content, whatever the file layout."""
    return sorted(repr(sorted(row.items())) for row in table.to_pylist())


def live_counts(root: Path, layers: tuple[str, ...] = ("bronze", "silver")) -> dict[str, int]:
    from custseg.storage import describe_tables

    counts = {}
    for name, _live, _versions in describe_tables(root):
        layer, _, table = name.partition(".")
        if layer in layers:
            counts[name] = read_live(root, layer, table).num_rows
    return counts


def table_state(root: Path, layer: str, table: str) -> dict[str, Any]:
    """Live version, its completeness and content, and every version folder on disk."""
    from custseg.storage import current_path, current_version, table_dir

    folder = table_dir(root, layer, table)
    live = current_version(root, layer, table)
    path = current_path(root, layer, table)
    state: dict[str, Any] = {
        "live": live,
        "folders": sorted(p.name for p in folder.iterdir() if p.name.startswith("v"))
        if folder.is_dir()
        else [],
        "complete": bool(path and (path / "_SUCCESS").exists()),
        "readable": False,
        "rows": None,
        "content": None,
    }
    try:
        data = read_live(root, layer, table)
    except Exception as exc:  # noqa: BLE001 - unreadable is the figure
        state["error"] = f"{type(exc).__name__}: {exc}"
        return state
    if data is not None:
        state.update(readable=True, rows=data.num_rows, content=canonical(data))
    return state


def mlflow_runs(db: Path) -> list[dict[str, Any]]:
    """Every run in the SQLite store at ``db``: id, name, status, parent id (empty list if no
    store)."""
    if not db.exists():
        return []
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = []
    for run in client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=5000):
        runs.append(
            {
                "run_id": run.info.run_id,
                "name": run.info.run_name,
                "status": run.info.status,
                "parent": run.data.tags.get("mlflow.parentRunId"),
            }
        )
    return runs


def champion_version(
    db: Path, model: str = "custseg-segmenter", alias: str = "champion"
) -> str | None:
    """The registered model version the alias points to, or None."""
    if not db.exists():
        return None
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(
            MlflowClient(tracking_uri=f"sqlite:///{db}")
            .get_model_version_by_alias(model, alias)
            .version
        )
    except MlflowException:
        return None


# ----------------------------------------------------------------------------- raw files


def read_customers(raw: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(raw / "customers" / "customers.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_customers(
    raw: Path, header: list[str], rows: list[dict[str, str]], prefix: str = ""
) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (raw / "customers" / "customers.csv").write_text(prefix + buffer.getvalue(), encoding="utf-8")


def order_files(raw: Path) -> list[Path]:
    return sorted(p for p in (raw / "sales_orders").iterdir() if p.is_file())


def rewrite_orders(raw: Path, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> int:
    """Apply ``change`` to every order (None drops it); returns the number of orders kept."""
    kept = 0
    for path in order_files(raw):
        lines = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            order = change(json.loads(line))
            if order is not None:
                lines.append(json.dumps(order, separators=(",", ":"), ensure_ascii=False))
                kept += 1
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return kept


def customers_with_orders(raw: Path) -> list[str]:
    ids = {
        str(json.loads(line)["customer_id"])
        for path in order_files(raw)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    return sorted(ids)


def bytes_contain(data: bytes, needle: str) -> bool:
    return needle.lower().encode() in data.lower()


# ----------------------------------------------------------------------------- shared state


def start_spark():
    """The session the in-process cases use (tests pass the suite's session instead)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from custseg.config import SparkConfig
    from custseg.spark import create_session

    return create_session(
        SparkConfig(master="local[2]", shuffle_partitions=2, driver_memory="2g", log_level="ERROR")
    )


@dataclass
class BaseRun:
    """A working folder after two concurrent ``custseg run`` and one ``custseg report``."""

    folder: Path
    runs: list[Ran]
    report: Ran
    canaries: dict[str, str]  # customer_id -> its canary token
    hostile_id: str
    expected_customers: int  # customers with orders in the input

    @property
    def lakehouse(self) -> Path:
        return self.folder / "lakehouse"

    @property
    def logs(self) -> str:
        return "".join(r.log for r in [*self.runs, self.report])


class Shared:
    """What the cases share, each built once on first use."""

    def __init__(self, spark: Any, root: Path) -> None:
        self.spark = spark
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per key; a failure is remembered too, so an expensive build is not
        retried."""
        if key not in self._memo:
            try:
                self._memo[key] = build()
            except Exception as exc:
                self._memo[key] = exc
                raise
        value = self._memo[key]
        if isinstance(value, Exception):
            raise value
        return value

    def folder(self, name: str) -> Path:
        """A fresh, empty working folder for one case."""
        path = self.root / name
        n = 1
        while path.exists():
            n += 1
            path = self.root / f"{name}-{n}"
        path.mkdir(parents=True)
        return path

    def result(self, scenario: Callable[[Shared], FaultResult]) -> FaultResult:
        """The scenario's result, run once; an error inside the harness becomes a failed row."""

        def build() -> FaultResult:
            started = time.monotonic()
            try:
                result = scenario(self)
            except Exception as exc:  # noqa: BLE001 - reported in the table, raised by the tests
                result = FaultResult(
                    scenario.__name__,
                    "-",
                    f"harness error: {type(exc).__name__}: {exc}",
                    "-",
                    False,
                    {"error": traceback.format_exc()},
                )
            result.details.setdefault("seconds", round(time.monotonic() - started, 1))
            return result

        return self.memo(f"result:{scenario.__name__}", build)

    # -- data -------------------------------------------------------------------
    def seed_raw(self):
        """The seed preset (35 customers, 25 with orders), generated once: (folder, summary)."""

        def build():
            from custseg.data.generate import generate

            out = self.root / "_data" / "seed"
            return out, generate(self.spark, out, preset="seed")

        return self.memo("seed", build)

    def raw300(self):
        """300 customers without bad records: (folder, summary); the base of the bad-record
        rates."""

        def build():
            from custseg.data.generate import generate

            out = self.root / "_data" / "c300"
            return out, generate(self.spark, out, customers=300)

        return self.memo("raw300", build)

    def copy_seed(self, folder: Path) -> Path:
        raw, _summary = self.seed_raw()
        target = folder / "raw"
        shutil.copytree(raw, target)
        return target

    def base(self) -> BaseRun:
        return self.memo("base", lambda: _build_base(self))


def plant_people(raw: Path) -> tuple[dict[str, str], str]:
    """Canary personal data for three customers with orders and a script-tag name for a fourth.

    customers.csv: customer_name, street, ship_to_address and tax_id of every history row;
    sales_orders: customer_name of every order of those customers.
    """
    ids = customers_with_orders(raw)
    canaries = {cid: f"{CANARY}{i}" for i, cid in enumerate(ids[:3])}
    hostile = ids[3]
    header, rows = read_customers(raw)
    for row in rows:
        token = canaries.get(row["customer_id"])
        if token:
            row["customer_name"] = f"{token} NAME"
            row["street"] = f"{token} STREET"
            row["ship_to_address"] = f"{token} SHIP"
            row["tax_id"] = f"{token}TAX"
        elif row["customer_id"] == hostile:
            row["customer_name"] = HOSTILE_NAME
    write_customers(raw, header, rows)

    def change(order: dict[str, Any]) -> dict[str, Any]:
        cid = str(order["customer_id"])
        if cid in canaries:
            order["customer_name"] = f"{canaries[cid]} NAME"
        elif cid == hostile:
            order["customer_name"] = HOSTILE_NAME
        return order

    rewrite_orders(raw, change)
    return canaries, hostile


def _build_base(shared: Shared) -> BaseRun:
    """Seed data with planted personal data, two ``custseg run`` started together, then a report."""
    folder = shared.folder("base-run")
    raw = shared.copy_seed(folder)
    canaries, hostile = plant_people(raw)
    _raw, summary = shared.seed_raw()
    procs = [Proc(cli_args("run", "--input", "raw"), folder) for _ in range(2)]
    runs = [_ran(p, p.finish()) for p in procs]
    report = run_cli(folder, "report", "--out", "report.html")
    return BaseRun(folder, runs, report, canaries, hostile, summary.customers_with_orders)


# ============================================================================= scenarios
# -- bad records ---------------------------------------------------------------


def _bad_records(shared: Shared, percent: float) -> FaultResult:
    """Every bad-record kind at ``percent`` of the order rows (csv_field_count: of the customer
    rows)."""
    from custseg import cli
    from custseg.config import load_config
    from custseg.data.generate import BAD_RECORD_KINDS, generate
    from custseg.stages import chain

    _clean, base = shared.raw300()
    bad = {
        kind: max(
            1,
            round(
                (base.customer_rows if kind == "csv_field_count" else base.orders) * percent / 100
            ),
        )
        for kind in BAD_RECORD_KINDS
    }
    folder = shared.folder(f"bad-records-{percent:g}pct")
    raw = folder / "raw"
    summary = generate(shared.spark, raw, customers=300, bad_records=bad)
    # Every row counted, however many are bad: the stop at max_quarantine_share has its own test.
    config = load_config(
        overrides={
            "storage.root": str(folder / "lakehouse"),
            "input.path": str(raw),
            "input.max_quarantine_share": 1.0,
        }
    )
    [report] = chain.run(shared.spark, config, ["ingest"], progress=lambda _m: None)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli._print_reports([report])
    text = printed.getvalue()

    # What the CLI prints, what the tables hold, and what was injected: all three must agree.
    printed_q = {
        (t, r): int(c.replace(",", ""))
        for t, r, c in re.findall(r"quarantined (\w+)/(\w+)\s+([\d,]+)", text)
    }
    printed_rows = {
        t: tuple(int(x.replace(",", "")) for x in xs)
        for t, *xs in re.findall(
            r"^\s+(\w+)\s+in ([\d,]+) = kept ([\d,]+) \+ quarantined ([\d,]+)$", text, re.M
        )
    }
    quarantine = read_live(folder / "lakehouse", "bronze", "quarantine").to_pylist()
    table_q = Counter((q["table"], q["reason"]) for q in quarantine)
    summary_rows = {
        r["table"]: r
        for r in read_live(folder / "lakehouse", "bronze", "ingest_summary").to_pylist()
    }

    where = {
        kind: ("customers" if kind == "csv_field_count" else "sales_orders")
        for kind in BAD_RECORD_KINDS
    }
    per_kind = {}
    for kind, count in bad.items():
        key = (where[kind], kind)
        per_kind[kind] = {
            "injected": count,
            "table": table_q.get(key, 0),
            "printed": printed_q.get(key, 0),
        }
    exact = [k for k, v in per_kind.items() if v["injected"] == v["table"] == v["printed"]]
    extra = {f"{t}/{r}": c for (t, r), c in table_q.items() if r not in bad}
    conserved = {
        t: r["rows_in"] == r["rows_kept"] + r["rows_quarantined"]
        and printed_rows.get(t) == (r["rows_in"], r["rows_kept"], r["rows_quarantined"])
        for t, r in summary_rows.items()
    }
    expected_in = {"customers": summary.customer_rows, "sales_orders": summary.order_records}
    expected_kept = {
        "customers": summary.customer_rows - bad["csv_field_count"],
        "sales_orders": summary.orders,
    }
    counts_right = all(
        summary_rows[t]["rows_in"] == expected_in[t]
        and summary_rows[t]["rows_kept"] == expected_kept[t]
        for t in expected_in
    )
    ok = len(exact) == len(bad) and not extra and all(conserved.values()) and counts_right
    so, cu = summary_rows["sales_orders"], summary_rows["customers"]
    return FaultResult(
        f"bad records at {percent:g}%",
        ", ".join(f"{k}={v}" for k, v in bad.items())
        + f" (of {base.orders} orders / {base.customer_rows} customer rows)",
        f"ingest quarantined them by reason; sales_orders in {so['rows_in']} = "
        f"kept {so['rows_kept']} + "
        f"quarantined {so['rows_quarantined']}; customers in {cu['rows_in']} = "
        f"kept {cu['rows_kept']} + "
        f"quarantined {cu['rows_quarantined']}",
        f"quarantine == injected for {len(exact)}/{len(bad)} kinds; in = kept + quarantined for "
        f"{sum(conserved.values())}/{len(conserved)} tables"
        + (f"; unexpected reasons {extra}" if extra else ""),
        ok,
        {
            "per_kind": per_kind,
            "conserved": conserved,
            "summary": summary_rows,
            "extra": extra,
            "expected_in": expected_in,
            "expected_kept": expected_kept,
            "printed": text,
            "lakehouse": str(folder / "lakehouse"),
            "raw": str(raw),
        },
    )


def bad_records_low(shared: Shared) -> FaultResult:
    return _bad_records(shared, 0.1)


def bad_records_high(shared: Shared) -> FaultResult:
    return _bad_records(shared, 10.0)


def ingest_twice(shared: Shared) -> FaultResult:
    """Re-running ingest on the same input: every bronze/silver table replaced, nothing doubled."""
    from custseg.config import load_config
    from custseg.stages import chain
    from custseg.storage import describe_tables

    first = shared.result(bad_records_low)
    root = Path(first.details["lakehouse"])
    before = live_counts(root)
    config = load_config(overrides={"storage.root": str(root), "input.path": first.details["raw"]})
    chain.run(shared.spark, config, ["ingest"], progress=lambda _m: None)
    after = live_counts(root)
    versions = {name: live for name, live, _v in describe_tables(root) if name in after}
    same = [t for t in before if before[t] == after.get(t)]
    ok = before == after and all(v == 2 for v in versions.values())
    return FaultResult(
        "ingest twice (idempotent)",
        "the 0.1% bad-record input ingested a second time into the same lakehouse",
        f"every table rewritten as version 2; quarantine {before.get('bronze.quarantine')} -> "
        f"{after.get('bronze.quarantine')} rows",
        f"row counts unchanged in {len(same)}/{len(before)} bronze+silver tables",
        ok,
        {"before": before, "after": after, "versions": versions},
    )


# -- concurrency, personal data, script-tag name (one shared run) ---------------------


def concurrent_runs(shared: Shared) -> FaultResult:
    """Two ``custseg run`` started together on one lakehouse and one ./mlflow.db."""
    from custseg.storage import describe_tables

    base = shared.base()
    codes = sorted(r.code for r in base.runs)
    refused = [r for r in base.runs if r.code == 2]
    finished = [r for r in base.runs if r.code == 0]
    busy = [
        BUSY_LINE.match(error_lines(r.err)[-1]) if error_lines(r.err) else None for r in refused
    ]
    locked = [r for r in base.runs if "database is locked" in r.log]
    tables = describe_tables(base.lakehouse)
    unreadable = []
    for name, _live, _versions in tables:
        layer, _, table = name.partition(".")
        if not table_state(base.lakehouse, layer, table)["readable"]:
            unreadable.append(name)
    features = read_live(base.lakehouse, "gold", "customer_features")
    segments = read_live(base.lakehouse, "gold", "customer_segments")
    n_features = features.num_rows if features is not None else None
    n_segments = segments.num_rows if segments is not None else None
    runs = mlflow_runs(base.folder / "mlflow.db")
    parents = [r for r in runs if r["parent"] is None]
    one_refused = codes == [0, 2] and all(busy) and len(busy) == 1
    both_ran = codes == [0, 0]
    holder_pid = int(busy[0]["pid"]) if one_refused else None
    tracebacks = sum("Traceback" in r.err for r in base.runs)
    winner_pid = finished[0].pid if len(finished) == 1 else None
    expected_versions = 1 if one_refused else 2
    ok = (
        (one_refused or both_ran)
        and not locked
        and not tracebacks
        and not unreadable
        and n_features == base.expected_customers
        and n_segments == n_features
        and all(live == expected_versions for _n, live, _v in tables)
        and len(parents) == len(finished)
        and all(r["status"] == "FINISHED" for r in runs)
    )
    outcome = (
        f"second run refused: exit 2, {error_lines(refused[0].err)[-1][:90]}..."
        if one_refused
        else f"exit codes {codes}"
    )
    return FaultResult(
        "two concurrent runs",
        "2 x `custseg run` started at the same moment, same ./lakehouse and ./mlflow.db",
        outcome,
        f"exit codes {codes}; 'database is locked': {len(locked)}; "
        f"unreadable tables: {len(unreadable)}/{len(tables)}; "
        f"customer_features {n_features} rows (single run: {base.expected_customers}); "
        f"MLflow parent runs {len(parents)}",
        ok,
        {
            "codes": codes,
            "busy_line": error_lines(refused[0].err) if refused else None,
            "holder_pid": holder_pid,
            "winner_pid": winner_pid,
            "locked": len(locked),
            "tracebacks": tracebacks,
            "unreadable": unreadable,
            "features_rows": n_features,
            "segments_rows": n_segments,
            "expected_rows": base.expected_customers,
            "live_versions": {name: live for name, live, _ in tables},
            "runs": runs,
            "stderr": [r.err[-2000:] for r in base.runs],
        },
    )


def _scan_parquet(path: Path, needle: str) -> bool:
    import pyarrow.parquet as pq

    try:
        return needle.lower() in str(pq.read_table(str(path)).to_pylist()).lower()
    except Exception:  # noqa: BLE001 - not a readable Parquet file: the byte scan covers it
        return False


def personal_data_canaries(shared: Shared) -> FaultResult:
    """Planted personal values must stay in the raw files and the customer tables."""
    import pandas as pd

    from custseg.config import load_config
    from custseg.dashboard.masking import audience_export
    from custseg.storage import LAYERS
    from custseg.store import gold
    from custseg.store.source import Source

    base = shared.base()
    folder = base.folder
    found: dict[str, list[str]] = {}
    checked = 0

    def hit(place: str, path: Path | None = None) -> None:
        found.setdefault(place, []).append(str(path.relative_to(folder)) if path else place)

    # The lakehouse: every file of every version of every table except the customer tables.
    positive: dict[str, bool] = {}
    for layer in LAYERS:
        for table_folder in sorted((base.lakehouse / layer).glob("*")):
            name = f"{layer}.{table_folder.name}"
            leaked = False
            for path in sorted(p for p in table_folder.rglob("*") if p.is_file()):
                checked += 1
                leaked = (
                    leaked
                    or bytes_contain(path.read_bytes(), CANARY)
                    or (path.suffix == ".parquet" and _scan_parquet(path, CANARY))
                )
            if name in CUSTOMER_TABLES:
                positive[name] = leaked
            elif leaked:
                hit(f"table {name}")
    # Everything else in the working folder but the raw landing zone: mlflow.db (+ WAL), mlruns/,
    # report.html, ...
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if rel.parts[0] in ("raw", "lakehouse"):
            continue
        checked += 1
        if bytes_contain(path.read_bytes(), CANARY):
            hit(rel.parts[0], path)
    checked += 1
    if bytes_contain(base.logs.encode(), CANARY):
        hit("stdout/stderr of the runs and the report")
    raw_has = bytes_contain((folder / "raw" / "customers" / "customers.csv").read_bytes(), CANARY)

    # The audience export of every segment, masked (the default) and, as a control, unmasked.
    config = load_config(
        overrides={
            "storage.root": str(base.lakehouse),
            "tracking.tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
        }
    )
    source = Source.from_config(config)
    table = gold.customer_table(source, personal=True)
    profiles = gold.profiles(source)
    masked_leaks, unmasked_hits = 0, 0
    for segment in sorted(set(table["segment"])):
        masked = audience_export(table, profiles, segment, masked=True)
        unmasked = audience_export(table, profiles, segment, masked=False)
        masked_leaks += bytes_contain(masked.to_csv(index=False).encode(), CANARY)
        unmasked_hits += bytes_contain(pd.DataFrame(unmasked).to_csv(index=False).encode(), CANARY)
    if masked_leaks:
        hit("masked audience export")
    leaks = sum(len(v) for v in found.values())
    controls = {
        **positive,
        "raw customers.csv": raw_has,
        "unmasked audience export": unmasked_hits > 0,
    }
    # The check must be able to see a canary: it is in the raw files, bronze and silver customers.
    ok = (
        leaks == 0
        and controls["raw customers.csv"]
        and controls.get("silver.customers", False)
        and controls["unmasked audience export"]
    )
    return FaultResult(
        "personal data canaries",
        f"{len(base.canaries)} customers' name/street/ship_to_address/tax_id (csv) and "
        f"customer_name (json) set to {CANARY}N ...",
        "canaries only in raw/ and the customer tables; the masked audience export holds initials"
        if leaks == 0
        else "canaries found in "
        + ", ".join(f"{k} ({', '.join(v[:3])})" for k, v in found.items()),
        f"canaries found outside customer tables = {leaks} ({checked} files/logs scanned); "
        "found where expected: " + ", ".join(k for k, v in controls.items() if v),
        ok,
        {
            "found": found,
            "controls": controls,
            "checked": checked,
            "segments": int(len(set(table["segment"]))),
        },
    )


def script_tag_name(shared: Shared) -> FaultResult:
    """A customer named <script>alert(1)</script>: never markup in the report, plain text on the
    Customers page."""
    from streamlit.testing.v1 import AppTest

    import custseg.dashboard
    from custseg.config import load_config
    from custseg.store import gold, runs
    from custseg.store.source import Source

    base = shared.base()
    report = (
        (base.folder / "report.html").read_text(encoding="utf-8")
        if (base.folder / "report.html").exists()
        else ""
    )
    raw_in_report = HOSTILE_NAME in report
    escaped_in_report = "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    config = load_config(
        overrides={
            "storage.root": str(base.lakehouse),
            "tracking.tracking_uri": f"sqlite:///{base.folder / 'mlflow.db'}",
        }
    )
    env = Source.from_config(config).to_env()
    app = Path(custseg.dashboard.__file__).parent / "app.py"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    gold.clear_caches()
    runs.clear_caches()
    try:
        at = AppTest.from_file(str(app), default_timeout=90).run()
        at.switch_page("views/customers.py").run()
        at.toggle(key="customers_mask").set_value(False).run()
        at.text_input(key="customers_search").input(base.hostile_id).run()
        exceptions = [e.value for e in at.exception]
        listed = list(at.dataframe[0].value["customer_name"]) if at.dataframe else []
        detail = at.table[0].value.set_index("field")["value"].to_dict() if at.table else {}
        as_markup = [m.value for m in at.markdown if HOSTILE_NAME in m.value and m.proto.allow_html]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        gold.clear_caches()
        runs.clear_caches()
    shown = detail.get("customer_name") == HOSTILE_NAME and listed == [HOSTILE_NAME]
    ok = bool(report) and not raw_in_report and not exceptions and shown and not as_markup
    return FaultResult(
        "customer named <script>",
        f"customer {base.hostile_id}'s name (csv and json) set to {HOSTILE_NAME}",
        (
            "report.html holds no such markup"
            if not raw_in_report
            else "report.html contains the raw tag"
        )
        + "; Customers page (masking off) "
        + (
            "lists and details it as plain text"
            if shown
            else f"shows {detail.get('customer_name')!r}"
        ),
        f"'<script>alert(1)</script>' in report.html: {int(raw_in_report)} "
        f"(escaped: {int(escaped_in_report)}); "
        f"shown as text on the Customers page: {'yes' if shown else 'no'}; "
        f"rendered as HTML: {len(as_markup)}",
        ok,
        {
            "raw_in_report": raw_in_report,
            "exceptions": exceptions,
            "listed": listed,
            "detail_name": detail.get("customer_name"),
            "as_markup": as_markup,
        },
    )


# -- kills --------------------------------------------------------------------------


FEATURE_KILL_DELAYS = (0.0, 1.0, 3.0)  # seconds after `gold.customer_features` appears on stdout
SEGMENT_KILL_DELAY = 0.3  # seconds after `writing gold tables`
SEGMENT_TABLES = ("customer_segments", "segment_profiles", "method_comparison")


def _kill_during(
    folder: Path, command: str, line: str, delay: float, tables: tuple[str, ...]
) -> dict[str, Any]:
    """SIGKILL the whole process group (driver and JVM) ``delay`` s after ``line``; the tables'
    state after."""
    before = {t: table_state(folder / "lakehouse", "gold", t) for t in tables}
    proc = Proc(cli_args(command), folder)
    seen = proc.wait_for(line)
    time.sleep(delay)
    alive = proc.running()
    proc.send(signal.SIGKILL, group=True)
    code = proc.finish()
    after = {t: table_state(folder / "lakehouse", "gold", t) for t in tables}
    states = {}
    for t in tables:
        b, a = before[t], after[t]
        moved = a["live"] != b["live"]
        intact = (
            a["complete"]
            and a["readable"]
            and ((not moved and a["content"] == b["content"]) or (moved and a["rows"] == b["rows"]))
        )
        states[t] = {
            "before": b["live"],
            "after": a["live"],
            "moved": moved,
            "intact": intact,
            "folders": a["folders"],
            "rows": a["rows"],
            "equal_previous": a["content"] == b["content"],
        }
    return {
        "delay": delay,
        "line_seen": seen,
        "killed_running": alive,
        "code": code,
        "tables": states,
    }


def sigkill_gold_write(shared: Shared) -> FaultResult:
    """SIGKILL `custseg features` (and once `custseg segment`) while they write gold tables."""
    base = shared.base()
    folder = shared.folder("sigkill")
    shutil.copytree(base.lakehouse, folder / "lakehouse")
    attempts = [
        _kill_during(folder, "features", r"gold\.customer_features", d, ("customer_features",))
        for d in FEATURE_KILL_DELAYS
    ]
    segment_kill = _kill_during(
        folder, "segment", r"writing gold tables", SEGMENT_KILL_DELAY, SEGMENT_TABLES
    )
    attempts.append(segment_kill)
    runs = mlflow_runs(folder / "mlflow.db")
    running = sum(r["status"] == "RUNNING" for r in runs)
    kills = len(attempts)
    readable = sum(all(s["intact"] for s in a["tables"].values()) for a in attempts)
    mid_write = sum(
        a["killed_running"] and not any(s["moved"] for s in a["tables"].values()) for a in attempts
    )
    features_equal = all(a["tables"]["customer_features"]["equal_previous"] for a in attempts[:-1])
    # Each run after the first writes over what the kill before it left behind.
    leftovers = {
        t: [f for f in state["folders"] if f != f"v{state['after']:08d}"]
        for t, state in {**attempts[-2]["tables"], **segment_kill["tables"]}.items()
    }
    ok = readable == kills and features_equal and all(a["line_seen"] for a in attempts)
    return FaultResult(
        "SIGKILL during a gold write",
        f"kill -9 of the process group {len(FEATURE_KILL_DELAYS)}x during `custseg features` "
        f"(+{', +'.join(f'{d:g}' for d in FEATURE_KILL_DELAYS)} s after gold.customer_features) "
        "and 1x during "
        f"`custseg segment` (+{SEGMENT_KILL_DELAY:g} s after 'writing gold tables')",
        f"the live version stayed the previous, complete one ({mid_write} of {kills} kills "
        "landed before "
        "the pointer moved; otherwise the new, complete one); "
        "each later run wrote over the leftovers",
        f"versions readable after the kill / kills: {readable}/{kills}; "
        "features equal to the previous run: "
        f"{'yes' if features_equal else 'no'}; MLflow runs left RUNNING after SIGKILL: {running} "
        "(not asserted)",
        ok,
        {
            "attempts": attempts,
            "running_after_kill": running,
            "runs": runs,
            "leftover_folders": leftovers,
        },
    )


GOLD_TABLES = (
    "customer_features",
    "feature_report",
    "customer_segments",
    "segment_profiles",
    "method_comparison",
    "dbscan_k_distance",
    "hierarchy_linkage",
)


def _terminate_at(folder: Path, line: str) -> dict[str, Any]:
    """SIGTERM to the `custseg segment` process (its pid only, as `kill` would) when ``line``
    appears."""
    before = {t: table_state(folder / "lakehouse", "gold", t) for t in GOLD_TABLES}
    runs_before = {r["run_id"] for r in mlflow_runs(folder / "mlflow.db")}
    proc = Proc(cli_args("segment"), folder)
    seen = proc.wait_for(line)
    proc.send(signal.SIGTERM)
    code = proc.finish()
    after = {t: table_state(folder / "lakehouse", "gold", t) for t in GOLD_TABLES}
    runs = [r for r in mlflow_runs(folder / "mlflow.db") if r["run_id"] not in runs_before]
    parent = [r for r in runs if r["parent"] is None]
    changed = [
        t
        for t in GOLD_TABLES
        if after[t]["live"] != before[t]["live"] or after[t]["content"] != before[t]["content"]
    ]
    intact = [t for t in GOLD_TABLES if after[t]["complete"] and after[t]["readable"]]
    strays = {
        t: [f for f in after[t]["folders"] if f not in before[t]["folders"]] for t in GOLD_TABLES
    }
    return {
        "line": line,
        "line_seen": seen,
        "code": code,
        "stderr_last": (proc.stderr.strip().splitlines() or [""])[-1],
        "traceback": "Traceback" in proc.stderr,
        "running": sum(r["status"] == "RUNNING" for r in runs),
        "parent": parent[0]["status"] if parent else None,
        "runs": Counter(r["status"] for r in runs),
        "changed": changed,
        "intact": intact,
        "new_folders": {t: f for t, f in strays.items() if f},
        "champion": champion_version(folder / "mlflow.db"),
        "stderr": proc.stderr[-3000:],
        "stdout": proc.stdout[-3000:],
    }


def sigterm_clustering(shared: Shared) -> FaultResult:
    """SIGTERM while `custseg segment` tunes, and once more while it writes the gold tables."""
    base = shared.base()
    folder = shared.folder("sigterm")
    shutil.copytree(base.lakehouse, folder / "lakehouse")
    tuning = _terminate_at(folder, r"^\S+ +tuning ")
    writing = _terminate_at(folder, r"writing gold tables")

    def good(t: dict[str, Any], parent_expected: bool) -> bool:
        parent_ok = t["parent"] == "KILLED" if parent_expected else t["parent"] in (None, "KILLED")
        return (
            t["line_seen"]
            and t["code"] == 143
            and t["stderr_last"] == TERMINATED_LINE
            and t["running"] == 0
            and parent_ok
            and not t["changed"]
            and len(t["intact"]) == len(GOLD_TABLES)
        )

    # While clustering no Spark call is in flight: stderr must be clean. While writing, a SIGTERM
    # that lands inside a Py4J call makes Py4J log "KeyboardInterrupt while sending command." with a
    # Python traceback (custseg's Terminated is a KeyboardInterrupt); that depends on timing, so it
    # is reported, not asserted.
    tuning_ok = good(tuning, parent_expected=False) and not tuning["traceback"]
    writing_ok = good(writing, parent_expected=True)

    def say(t: dict[str, Any]) -> str:
        return (
            f"exit {t['code']}, RUNNING {t['running']}, "
            f"parent run {t['parent'] or 'not started yet'}, "
            f"gold tables changed {len(t['changed'])}/{len(GOLD_TABLES)}"
        )

    return FaultResult(
        "SIGTERM during clustering",
        "SIGTERM to `custseg segment` at its 'tuning' line; again at 'writing gold tables'",
        f"'{tuning['stderr_last']}'; at tuning: {say(tuning)}; at writing: {say(writing)}"
        + (
            f", yet registry @champion -> version {writing['champion']}, "
            "whose segments were never written"
            if writing["champion"]
            else ""
        ),
        f"exit code {tuning['code']} / {writing['code']}; "
        f"MLflow runs RUNNING: {tuning['running']} / {writing['running']}; "
        f"parent run: {tuning['parent'] or 'none yet'} / {writing['parent']}; "
        "gold tables at previous version: "
        f"{len(GOLD_TABLES) - len(tuning['changed'])}/{len(GOLD_TABLES)} / "
        f"{len(GOLD_TABLES) - len(writing['changed'])}/{len(GOLD_TABLES)}; "
        f"Python traceback on stderr: {'yes' if tuning['traceback'] else 'no'} / "
        f"{'yes (Py4J)' if writing['traceback'] else 'no'}",
        tuning_ok and writing_ok,
        {"tuning": tuning, "writing": writing, "tuning_ok": tuning_ok, "writing_ok": writing_ok},
    )


def sigterm_ingest(shared: Shared) -> FaultResult:
    """SIGTERM to `custseg ingest` once its bronze tables are written (at its 'silver.customers'
    line)."""
    from custseg.storage import describe_tables

    base = shared.base()
    folder = shared.folder("sigterm-ingest")
    shutil.copytree(base.lakehouse, folder / "lakehouse")
    before = {name: live for name, live, _v in describe_tables(folder / "lakehouse")}
    proc = Proc(cli_args("ingest", "--input", str(base.folder / "raw")), folder)
    seen = proc.wait_for(r"silver\.customers")
    proc.send(signal.SIGTERM)
    code = proc.finish()
    after = {name: live for name, live, _v in describe_tables(folder / "lakehouse")}
    changed = [name for name in before if after.get(name) != before[name]]
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    unreadable = [
        name
        for name in after
        if not table_state(folder / "lakehouse", *name.split(".", 1))["readable"]
    ]
    ok = seen and code == 143 and last == TERMINATED_LINE and not changed and not unreadable
    return FaultResult(
        "SIGTERM during ingest",
        "SIGTERM to `custseg ingest` (same input again) at its 'silver.customers' line",
        f"exit {code}: '{last}'",
        f"tables at a new version after the SIGTERM: {len(changed)}/{len(before)}"
        + (
            f" ({', '.join(changed)}; silver, quarantine and ingest_summary kept the old run's)"
            if changed
            else ""
        )
        + f"; unreadable: {len(unreadable)}",
        ok,
        {
            "line_seen": seen,
            "code": code,
            "last": last,
            "changed": changed,
            "unreadable": unreadable,
            "before": before,
            "after": after,
        },
    )


# -- disk full ------------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(where: Path, size: str = "3m") -> Iterator[Path | str]:
    """A fresh tmpfs of ``size`` mounted at ``where``; yields the reason instead when it cannot be
    mounted."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield "mounting a tmpfs needs root"
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        yield f"mount -t tmpfs not permitted: {done.stderr.strip() or done.returncode}"
        return
    try:
        yield where
    finally:
        # lazy: a JVM may still hold a file of the failed write open
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path, leave: int = 0) -> int:
    """Fill ``disk`` with one file, leaving about ``leave`` bytes free; returns the bytes free
    after."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(disk / f"filler-{time.monotonic_ns()}", "wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            handle.write(b"\0" * max(0, free - leave))
        with contextlib.suppress(OSError):
            while leave == 0:
                handle.write(b"\0" * 4096)
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


def disk_full(shared: Shared) -> FaultResult:
    """A table write onto a tiny full filesystem: in-process, then with the CLI."""
    from custseg.config import StorageConfig
    from custseg.storage import Lakehouse, StorageFull, current_version

    folder = shared.folder("disk-full")
    raw = shared.copy_seed(folder)
    spark = shared.spark
    with tiny_disk(folder / "disk") as disk:
        if isinstance(disk, str):
            return FaultResult("disk full", "tmpfs of 3 MB", "-", "-", True, skipped=disk)
        root = disk / "lakehouse"
        lake = Lakehouse(spark, StorageConfig(root=str(root)))
        small = spark.range(50).selectExpr("id", "concat('row-', id) AS text")
        lake.write(small, "gold", "probe", files=1)
        free = fill(disk)
        big = spark.range(200_000).selectExpr("id", "uuid() AS text", "uuid() AS more")
        raised: BaseException | None = None
        try:
            lake.write(big, "gold", "probe")
        except BaseException as exc:  # noqa: BLE001 - the kind of exception is the figure
            raised = exc
        kept = current_version(root, "gold", "probe")
        rows = read_live(root, "gold", "probe").num_rows
        leftovers = sorted(
            p.name for p in (root / "gold" / "probe").iterdir() if p.name.startswith("v")
        )
        in_process_ok = (
            isinstance(raised, StorageFull)
            and re.fullmatch(
                r"disk full while writing gold\.probe to \S+; the previous version is kept",
                str(raised),
            )
            is not None
            and kept == 1
            and rows == 50
            and leftovers == ["v00000001"]
        )
        # The CLI: room for a few small bronze tables, not for the sales orders.
        for path in disk.iterdir():
            if path.name.startswith("filler"):
                path.unlink()
        shutil.rmtree(root)
        cli_root = disk / "cli-lakehouse"
        cli_root.mkdir()
        fill(disk, leave=64 * 1024)
        ran = run_cli(folder, "ingest", "--input", str(raw), "--lakehouse", str(cli_root))
        errors = error_lines(ran.err)
        live = {}
        for layer_dir in sorted(p for p in cli_root.iterdir() if p.is_dir()):
            for table in sorted(p for p in layer_dir.iterdir() if p.is_dir()):
                live[f"{layer_dir.name}.{table.name}"] = table_state(
                    cli_root, layer_dir.name, table.name
                )
        written = {n: s["rows"] for n, s in live.items() if s["live"] is not None}
        failed = [n for n, s in live.items() if s["live"] is None]
        cli_ok = (
            ran.code == 2
            and len(errors) == 1
            and errors[0].startswith("custseg: error: disk full while writing ")
            and errors[0].endswith("; the previous version is kept")
            and "Traceback" not in ran.err
            and not written  # the stage publishes all its tables or none
        )
    java = java_trace_lines(ran.err)
    return FaultResult(
        "disk full",
        f"tmpfs 3 MB: write 50 rows, fill to {free} B free, write 200,000 rows; "
        "CLI ingest with 64 KB free",
        f"{type(raised).__name__}: {raised}; "
        f"CLI exit {ran.code}: {errors[-1] if errors else ran.err.strip()[-160:]}",
        f"previous version live and readable: {'yes' if kept == 1 and rows == 50 else 'no'} "
        f"({rows} rows); "
        f"CLI: exit {ran.code}, custseg error lines {len(errors)}, "
        "tables of the failed stage published "
        f"{len(written)}/{len(live)} (all or none), Java stack-trace lines on stderr {java}",
        in_process_ok and cli_ok and java == 0,
        {
            "in_process_ok": in_process_ok,
            "cli_ok": cli_ok,
            "raised": repr(raised),
            "kept": kept,
            "rows": rows,
            "leftovers": leftovers,
            "cli_code": ran.code,
            "cli_errors": errors,
            "java_trace_lines": java,
            "stderr_lines": len(ran.err.splitlines()),
            # the lines that are not stack frames, to show what logged the trace
            "stderr_messages": [ln for ln in ran.err.splitlines() if not JAVA_FRAME.match(ln)][
                -12:
            ],
            "written": written,
            "failed": failed,
        },
    )


def disk_already_full(shared: Shared) -> FaultResult:
    """`custseg ingest` onto a lakehouse whose disk has no byte left (the lock file cannot be
    written)."""
    folder = shared.folder("disk-already-full")
    raw = shared.copy_seed(folder)
    with tiny_disk(folder / "disk", "1m") as disk:
        if isinstance(disk, str):
            return FaultResult("disk already full", "tmpfs of 1 MB", "-", "-", True, skipped=disk)
        root = disk / "lakehouse"
        root.mkdir()
        free = fill(disk)
        ran = run_cli(folder, "ingest", "--input", str(raw), "--lakehouse", str(root))
    errors = error_lines(ran.err)
    last = ran.err.strip().splitlines()[-1] if ran.err.strip() else ""
    ok = clean_exit(ran.code, ran.err) and ran.code == 2
    return FaultResult(
        "disk already full",
        f"`custseg ingest --lakehouse` on a 1 MB tmpfs with {free} bytes free",
        f"exit {ran.code}: {errors[-1] if errors else last}",
        f"exit code {ran.code}; Python traceback: {'yes' if 'Traceback' in ran.err else 'no'}",
        ok,
        {
            "code": ran.code,
            "last": last,
            "traceback": "Traceback" in ran.err,
            "stderr": ran.err[-3000:],
        },
    )


# -- input edge cases (in-process CLI on the shared session) -------------------------------


def _edge(
    shared: Shared, name: str, change: Callable[[Path], Any], command: str = "ingest"
) -> tuple[Path, Ran, Any]:
    """A copy of the seed data changed by ``change(raw)``, then `custseg <command> --input raw`."""
    folder = shared.folder(f"edge-{name}")
    raw = shared.copy_seed(folder)
    planted = change(raw)
    # Absolute: Spark resolves a relative path against the JVM's start-up folder, not this process's
    # cwd.
    args = [command, "--input", str(raw)]
    if command == "run":
        args += ["--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    return folder, cli_inprocess(shared, folder, *args), planted


def _said(ran: Ran) -> str:
    errors = error_lines(ran.err)
    if errors:
        return f"exit {ran.code}: {errors[-1][:150]}"
    if "Traceback" in ran.err:
        return f"exit {ran.code}: crash, {ran.err.strip().splitlines()[-1][:150]}"
    return f"exit {ran.code}"


def _summary(folder: Path) -> dict[str, dict[str, int]]:
    table = read_live(folder / "lakehouse", "bronze", "ingest_summary")
    return {} if table is None else {r["table"]: r for r in table.to_pylist()}


def _quarantine(folder: Path) -> Counter:
    table = read_live(folder / "lakehouse", "bronze", "quarantine")
    return (
        Counter()
        if table is None
        else Counter((r["table"], r["reason"]) for r in table.to_pylist())
    )


def edge_blank_orders_file(shared: Shared) -> FaultResult:
    def change(raw: Path) -> None:
        for path in order_files(raw):
            path.unlink()
        (raw / "sales_orders" / "part-00000.json").write_text("\n\n   \n\n", encoding="utf-8")

    folder, ran, _ = _edge(shared, "blank-orders", change, "run")
    orders = _summary(folder).get("sales_orders", {})
    # Ingest itself stops: a table that keeps no rows is an error there, not a later "orders table
    # empty".
    ok = (
        clean_exit(ran.code, ran.err)
        and ran.code == 2
        and "sales_orders kept 0 of 0 rows" in ran.err
    )
    return FaultResult(
        "edge: sales_orders file of blank lines",
        "the only sales_orders file holds 4 blank lines (empty or spaces); `custseg run`",
        _said(ran),
        f"sales_orders in {orders.get('rows_in')} = kept {orders.get('rows_kept')} + "
        f"quarantined {orders.get('rows_quarantined')}; "
        f"clear one-line error: {'yes' if ok else 'no'}",
        ok,
        {"code": ran.code, "err": ran.err, "orders": orders},
    )


def edge_one_customer(shared: Shared) -> FaultResult:
    def change(raw: Path) -> str:
        keep = customers_with_orders(raw)[0]
        header, rows = read_customers(raw)
        write_customers(raw, header, [r for r in rows if r["customer_id"] == keep])
        rewrite_orders(raw, lambda o: o if str(o["customer_id"]) == keep else None)
        return keep

    folder, ran, keep = _edge(shared, "one-customer", change, "run")
    features = read_live(folder / "lakehouse", "gold", "customer_features")
    ok = clean_exit(ran.code, ran.err) and ran.code == 2 and "needs at least 2" in ran.err
    return FaultResult(
        "edge: one customer",
        f"customers.csv and sales_orders reduced to customer {keep}; `custseg run`",
        _said(ran),
        f"gold.customer_features rows: {features.num_rows if features is not None else '-'}; "
        f"clear one-line error: {'yes' if ok else 'no'}",
        ok,
        {"code": ran.code, "err": ran.err},
    )


def edge_identical_customers(shared: Shared) -> FaultResult:
    def change(raw: Path) -> int:
        header, rows = read_customers(raw)
        template = next(r for r in rows if r["valid_to"] == "")
        products = (raw / "products" / "products.csv").read_text(encoding="utf-8").splitlines()
        product = products[1].split(";")[0]
        people, orders = [], []
        for i in range(6):
            cid = str(30_000_000 + i)
            people.append(
                {
                    **template,
                    "customer_id": cid,
                    "customer_name": f"TWIN{i},  ALEX",
                    "valid_from": "1500000000",
                    "valid_to": "",
                    "units_purchased": "4",
                    "loyalty_segment": "1",
                }
            )
            orders.append(
                {
                    "clicked_items": [],
                    "customer_id": cid,
                    "customer_name": f"TWIN{i},  ALEX",
                    "number_of_line_items": "1",
                    "order_datetime": "1546300800",
                    "order_number": 900 + i,
                    "ordered_products": [
                        {
                            "curr": "USD",
                            "id": product,
                            "name": "same thing",
                            "price": 100,
                            "promotion_info": None,
                            "qty": 2,
                            "unit": "pcs",
                        }
                    ],
                    "promo_info": None,
                }
            )
        write_customers(raw, header, people)
        for path in order_files(raw):
            path.unlink()
        (raw / "sales_orders" / "part-00000.json").write_text(
            "".join(json.dumps(o, separators=(",", ":")) + "\n" for o in orders), encoding="utf-8"
        )
        (raw / "truth" / "customer_archetypes.csv").unlink()
        return len(people)

    folder, ran, n = _edge(shared, "identical", change, "run")
    features = read_live(folder / "lakehouse", "gold", "customer_features")
    ok = clean_exit(ran.code, ran.err) and ran.code == 2 and "zero variance" in ran.err
    return FaultResult(
        "edge: all customers identical",
        f"{n} customers with the same history and one identical order each; `custseg run`",
        _said(ran),
        f"gold.customer_features rows: {features.num_rows if features is not None else '-'}; "
        f"one-line error naming zero variance: {'yes' if ok else 'no'}",
        ok,
        {"code": ran.code, "err": ran.err},
    )


NON_ASCII = [
    "MÜLLER,  JOSÉ",
    "ŁUKASZ ŻÓŁĆ-ŚWIĘTOCHOWSKI",
    "李 小龙",
    "ΑΘΗΝΑ Ωμέγα 🚀",
    "O’BRIEN,  SEÁN",
]
LONG_NAME = "A" * 4990 + ",  " + "B" * 5007  # 10,000 characters with a comma: quoted in the CSV
NON_FINITE = ["NaN", "Infinity", "-Infinity"]
WHITESPACE_LINES = ["\t", " \t ", "\t\t"]


@dataclass
class EdgeMix:
    """One input holding several independent edge cases, ingested once (each case reads its
    part)."""

    folder: Path
    ran: Ran
    names: dict[str, str]  # customer_id -> planted name (non-ASCII ones and the long one)
    prices: dict[str, str]  # order_number -> planted price
    bom_order: str  # order_number of the line that follows the BOM
    whitespace_file: str


def _plant_mix(raw: Path) -> tuple[dict[str, str], dict[str, str], str]:
    ids = customers_with_orders(raw)
    names = dict(zip(ids, [*NON_ASCII, LONG_NAME], strict=False))
    header, rows = read_customers(raw)
    for row in rows:
        if row["customer_id"] in names:
            row["customer_name"] = names[row["customer_id"]]
    write_customers(raw, header, rows, prefix="\ufeff")
    prices: dict[str, str] = {}
    values: list[Any] = [*NON_FINITE, float("nan")]
    first: list[str] = []

    def order(o: dict[str, Any]) -> dict[str, Any]:
        cid, number = str(o["customer_id"]), str(o["order_number"])
        first.append(number)
        if cid in names:
            o["customer_name"] = names[cid]
        elif values and len(first) > 1:  # not the BOM line: that one must be kept
            value = values.pop(0)
            o["ordered_products"][0]["price"] = value
            prices[number] = value if isinstance(value, str) else "bare NaN"
        return o

    rewrite_orders(raw, order)
    orders = order_files(raw)[0]
    orders.write_text("\ufeff" + orders.read_text(encoding="utf-8"), encoding="utf-8")
    (raw / "sales_orders" / "whitespace.json").write_text(
        "".join(f"{w}\n" for w in WHITESPACE_LINES), encoding="utf-8"
    )
    return names, prices, first[0]


def edge_mix(shared: Shared) -> EdgeMix:
    """BOMs, non-ASCII and 10,000-character names, non-finite prices and whitespace-only lines, one
    ingest."""

    def build() -> EdgeMix:
        folder, ran, planted = _edge(shared, "mix", _plant_mix)
        names, prices, bom_order = planted
        return EdgeMix(folder, ran, names, prices, bom_order, "whitespace.json")

    return shared.memo("edge-mix", build)


def _quarantined_rows(folder: Path) -> list[dict[str, Any]]:
    table = read_live(folder / "lakehouse", "bronze", "quarantine")
    return [] if table is None else table.to_pylist()


def edge_bom(shared: Shared) -> FaultResult:
    _raw, summary = shared.seed_raw()
    mix = edge_mix(shared)
    rows = _summary(mix.folder)
    customers = read_live(mix.folder / "lakehouse", "silver", "customers")
    orders = read_live(mix.folder / "lakehouse", "silver", "orders")
    ids = set(customers.column("customer_id").to_pylist()) if customers is not None else set()
    numbers = set(orders.column("order_number").to_pylist()) if orders is not None else set()
    bom_ids = [i for i in ids if "\ufeff" in (i or "")]
    cust = rows.get("customers", {})
    quarantined_customers = [q for q in _quarantined_rows(mix.folder) if q["table"] == "customers"]
    ok = (
        mix.ran.code == 0
        and clean_exit(mix.ran.code, mix.ran.err)
        and cust.get("rows_in") == cust.get("rows_kept") == summary.customer_rows
        and not quarantined_customers
        and len(ids) == summary.customers
        and not bom_ids
        and mix.bom_order in numbers
    )
    return FaultResult(
        "edge: UTF-8 BOM",
        "a BOM before the header of customers.csv and before the first line of a sales_orders file",
        _said(mix.ran),
        f"customers kept {cust.get('rows_kept')}/{summary.customer_rows}, "
        f"quarantined {len(quarantined_customers)}, "
        f"ids with a BOM {len(bom_ids)}; "
        f"the order on the BOM line kept: {'yes' if mix.bom_order in numbers else 'no'}",
        ok,
        {"code": mix.ran.code, "err": mix.ran.err, "rows": rows, "bom_ids": bom_ids},
    )


def _names_case(shared: Shared, title: str, wanted: Callable[[str], bool]) -> FaultResult:
    mix = edge_mix(shared)
    chosen = {c: n for c, n in mix.names.items() if wanted(n)}
    silver = read_live(mix.folder / "lakehouse", "silver", "customers")
    bronze = read_live(mix.folder / "lakehouse", "bronze", "sales_orders")
    in_silver = (
        {r["customer_id"]: r["customer_name"] for r in silver.to_pylist()}
        if silver is not None
        else {}
    )
    in_orders = (
        {str(r["customer_id"]).strip(): r["customer_name"] for r in bronze.to_pylist()}
        if bronze is not None
        else {}
    )
    exact = [c for c, n in chosen.items() if in_silver.get(c) == n and in_orders.get(c) == n]
    quarantined = [
        q
        for q in _quarantined_rows(mix.folder)
        if any(n in (q["record"] or "") for n in chosen.values())
    ]
    ok = (
        mix.ran.code == 0
        and clean_exit(mix.ran.code, mix.ran.err)
        and len(exact) == len(chosen)
        and not quarantined
    )
    return FaultResult(
        title,
        f"customer_name of {len(chosen)} customer(s) in customers.csv and sales_orders: "
        + ", ".join(
            n if len(n) < 40 else f"<{len(n):,} chars with a comma>" for n in chosen.values()
        ),
        _said(mix.ran),
        "names kept exactly in silver.customers and bronze.sales_orders: "
        f"{len(exact)}/{len(chosen)}; their rows quarantined {len(quarantined)}",
        ok,
        {
            "code": mix.ran.code,
            "err": mix.ran.err,
            "exact": len(exact),
            "planted": len(chosen),
            "quarantined": len(quarantined),
        },
    )


def edge_non_ascii_names(shared: Shared) -> FaultResult:
    return _names_case(shared, "edge: non-ASCII names", lambda n: n in NON_ASCII)


def edge_long_name(shared: Shared) -> FaultResult:
    return _names_case(shared, "edge: 10,000-character name", lambda n: n == LONG_NAME)


def edge_nan_prices(shared: Shared) -> FaultResult:
    """Prices "NaN", "Infinity", "-Infinity" (JSON strings), and one bare NaN token."""
    mix = edge_mix(shared)
    reasons: dict[str, str] = {}
    for row in _quarantined_rows(mix.folder):
        for number, value in mix.prices.items():
            if re.search(rf'"order_number":\s*"?{number}\b', row["record"] or ""):
                reasons[value] = row["reason"]
    strings_ok = all(reasons.get(v) == "wrong_type" for v in NON_FINITE)
    ok = (
        mix.ran.code == 0
        and clean_exit(mix.ran.code, mix.ran.err)
        and strings_ok
        and "bare NaN" in reasons
    )
    return FaultResult(
        "edge: NaN/Infinity prices",
        'price "NaN", "Infinity", "-Infinity" (JSON strings) and a bare NaN token, one order each',
        _said(mix.ran)
        + "; "
        + ", ".join(f"{v} -> {reasons.get(v, 'kept')}" for v in [*NON_FINITE, "bare NaN"]),
        "non-finite price strings quarantined as wrong_type: "
        f"{sum(reasons.get(v) == 'wrong_type' for v in NON_FINITE)}/{len(NON_FINITE)}; "
        f"bare NaN quarantined as {reasons.get('bare NaN', 'kept')}",
        ok,
        {"code": mix.ran.code, "err": mix.ran.err, "reasons": reasons},
    )


def edge_whitespace_lines(shared: Shared) -> FaultResult:
    """A sales_orders file of whitespace-only lines (tabs): "blank lines are not rows"
    (ingest.py)."""
    _raw, summary = shared.seed_raw()
    mix = edge_mix(shared)
    orders = _summary(mix.folder).get("sales_orders", {})
    from_file = [
        q
        for q in _quarantined_rows(mix.folder)
        if (q["source_file"] or "").endswith(mix.whitespace_file)
    ]
    rows_in = orders.get("rows_in")
    ok = mix.ran.code == 0 and rows_in == summary.order_records and not from_file
    return FaultResult(
        "edge: whitespace-only lines",
        f"an extra sales_orders file of {len(WHITESPACE_LINES)} lines holding only tabs and spaces",
        _said(mix.ran)
        + (
            f"; its lines quarantined as {', '.join(sorted({q['reason'] for q in from_file}))}"
            if from_file
            else "; lines skipped"
        ),
        f"sales_orders rows in {rows_in} (valid lines {summary.order_records}); "
        f"whitespace lines quarantined {len(from_file)}",
        ok,
        {"rows_in": rows_in, "quarantined": from_file},
    )


def edge_customers_csv_is_json(shared: Shared) -> FaultResult:
    def change(raw: Path) -> None:
        lines = order_files(raw)[0].read_text(encoding="utf-8").splitlines()[:5]
        (raw / "customers" / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    folder, ran, _ = _edge(shared, "csv-is-json", change)
    ok = (
        clean_exit(ran.code, ran.err)
        and ran.code == 2
        and "customers header does not match the retail-org layout" in ran.err
    )
    return FaultResult(
        "edge: customers.csv is JSON",
        "customers/customers.csv replaced by 5 sales_orders JSON lines",
        _said(ran),
        f"clear one-line error naming the header: {'yes' if ok else 'no'}; tables written: "
        f"{len(live_counts(folder / 'lakehouse')) if (folder / 'lakehouse').exists() else 0}",
        ok,
        {"code": ran.code, "err": ran.err},
    )


SCENARIOS: list[Callable[[Shared], FaultResult]] = [
    bad_records_low,
    bad_records_high,
    ingest_twice,
    edge_blank_orders_file,
    edge_one_customer,
    edge_identical_customers,
    edge_customers_csv_is_json,
    edge_bom,
    edge_non_ascii_names,
    edge_long_name,
    edge_nan_prices,
    edge_whitespace_lines,
    disk_full,
    disk_already_full,
    concurrent_runs,
    personal_data_canaries,
    script_tag_name,
    sigkill_gold_write,
    sigterm_clustering,
    sigterm_ingest,
]
