"""The lakehouse: tables at ``<root>/<layer>/<table>``, written atomically.

Parquet tables are versioned folders, ``v00000001``, ``v00000002``, ... with a
``_current`` pointer file that names the live one. A write goes to a new
folder, ``vNNNNNNNN.pending``; going live renames it to ``vNNNNNNNN`` and
moves the pointer, each an atomic rename, so a reader sees the previous
version or the new one, never a mixture, and a failed or killed run leaves
the previous version live. The newest ``keep_versions`` versions are kept for
rollback.

A stage publishes its tables together: inside ``with lake.publishing():`` the
new versions are written but stay pending (later reads in the same stage see
them); when the block ends they go live in one step, guarded by a journal
(``_publishing.json``) that the next run rolls forward if a SIGKILL lands
between two renames. A stage that fails or is interrupted publishes nothing,
so every table it touched keeps its previous version. Pending folders left by
an interrupted run are removed by the next run, under the lakehouse lock.

Delta tables (``storage.format: delta``) get the same guarantees from Delta's
transaction log.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from custseg.config import StorageConfig
from custseg.errors import CustsegError, InputDataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LAYERS = ("bronze", "silver", "gold")
POINTER = "_current"
LOCK_FILE = ".custseg.lock"
JOURNAL = "_publishing.json"
_VERSION = re.compile(r"^v(\d{8})$")
# A version is written as vNNNNNNNN.pending and renamed when it goes live. An interrupted
# write can go on in the JVM after Python gave up, so its folder is left for the next
# run, which removes it while holding the lakehouse lock.
PENDING = ".pending"
_ANY_VERSION = re.compile(r"^v(\d{8})(?:\.pending)?$")


def table_dir(root: str | Path, layer: str, table: str) -> Path:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    return Path(root) / layer / table


def list_versions(root: str | Path, layer: str, table: str) -> list[int]:
    """Complete versions of a table, oldest first (a version is complete once Spark wrote
    _SUCCESS)."""
    folder = table_dir(root, layer, table)
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _VERSION.match(child.name)
        if match and (child / "_SUCCESS").exists():
            found.append(int(match.group(1)))
    return sorted(found)


def current_version(root: str | Path, layer: str, table: str) -> int | None:
    pointer = table_dir(root, layer, table) / POINTER
    if not pointer.is_file():
        return None
    match = _VERSION.match(pointer.read_text(encoding="utf-8").strip())
    return int(match.group(1)) if match else None


def current_path(root: str | Path, layer: str, table: str) -> Path | None:
    """The folder holding the live version of a Parquet table, or None if it has none.

    Spark-free, so the dashboard can read tables with pyarrow or DuckDB.
    """
    version = current_version(root, layer, table)
    if version is None:
        return None
    return table_dir(root, layer, table) / f"v{version:08d}"


def _point_to(folder: Path, version: int) -> None:
    tmp = folder / f".{POINTER}.{uuid.uuid4().hex}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(f"v{version:08d}\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageFull(
            f"cannot record the new version of {folder}: {exc.strerror}; the previous version is "
            "kept"
        ) from None
    os.replace(tmp, folder / POINTER)  # atomic on POSIX


def set_current(root: str | Path, layer: str, table: str, version: int) -> None:
    """Make ``version`` live (used by rollback)."""
    if version not in list_versions(root, layer, table):
        raise InputDataError(f"table {layer}.{table} has no complete version {version}")
    _point_to(table_dir(root, layer, table), version)


def describe_tables(root: str | Path) -> list[tuple[str, int | None, list[int]]]:
    """(layer.table, live version, complete versions) for every Parquet table under ``root``."""
    rows = []
    for layer in LAYERS:
        folder = Path(root) / layer
        if not folder.is_dir():
            continue
        for child in sorted(folder.iterdir()):
            versions = list_versions(root, layer, child.name)
            if versions:
                rows.append(
                    (f"{layer}.{child.name}", current_version(root, layer, child.name), versions)
                )
    return rows


def rollback(root: str | Path, layer: str, table: str, version: int | None = None) -> int:
    """Make ``version`` (default: the newest one before the live one) live again; returns it."""
    if layer not in LAYERS or not table:
        raise InputDataError(
            f"name a table as LAYER.TABLE with LAYER one of {', '.join(LAYERS)}, got "
            f"{layer}.{table!r}"
        )
    versions = list_versions(root, layer, table)
    live = current_version(root, layer, table)
    if not versions:
        raise InputDataError(f"table {layer}.{table} has no versions under {root}")
    if version is None:
        older = [v for v in versions if live is None or v < live]
        if not older:
            raise InputDataError(
                f"table {layer}.{table} has no version older than the live one ({live}); kept: "
                f"{versions}"
            )
        version = older[-1]
    if version not in versions:
        raise InputDataError(
            f"table {layer}.{table} has no complete version {version}; kept: {versions}"
        )
    set_current(root, layer, table, version)
    return version


def _write_journal(root: Path, entries: list[tuple[str, str, int]]) -> None:
    tmp = root / f".{JOURNAL}.{uuid.uuid4().hex}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump([list(e) for e in entries], handle)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageFull(
            f"cannot record the tables to publish under {root}: {exc.strerror}; the previous "
            "versions are kept"
        ) from None
    os.replace(tmp, root / JOURNAL)


def _promote(folder: Path, version: int) -> None:
    """Rename a complete pending version to its final name (if not done yet) and point to it."""
    pending, final = folder / f"v{version:08d}{PENDING}", folder / f"v{version:08d}"
    if pending.is_dir() and not final.exists():
        os.replace(pending, final)  # atomic rename of the folder
    if (final / "_SUCCESS").exists():
        _point_to(folder, version)


def publish(root: str | Path, entries: list[tuple[str, str, int]]) -> None:
    """Make every (layer, table, version) live together.

    The journal is written first and removed last: if the process dies in between,
    ``recover`` (run when the next run takes the lakehouse) finishes the renames, so
    the tables never stay a mixture of two runs. SIGTERM and SIGINT wait until the
    renames are done (they take microseconds).
    """
    root = Path(root)
    if not entries:
        return
    _write_journal(root, entries)
    blocked = {signal.SIGTERM, signal.SIGINT}
    main = threading.current_thread() is threading.main_thread()
    if main:
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        for layer, table, version in entries:
            _promote(table_dir(root, layer, table), version)
        (root / JOURNAL).unlink(missing_ok=True)
    finally:
        if main:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)


def recover(root: str | Path) -> list[str]:
    """Finish a publish that a killed run left half done, and remove unpublished versions.

    Call it only while holding the lakehouse (``exclusive``): no write is in flight then.
    Returns the tables whose live version it moved.
    """
    root = Path(root)
    journal = root / JOURNAL
    moved = []
    if journal.is_file():
        try:
            entries = [
                (str(a), str(b), int(c))
                for a, b, c in json.loads(journal.read_text(encoding="utf-8"))
            ]
        except (ValueError, TypeError):
            entries = []  # a torn journal was never renamed into place: nothing was published
        for layer, table, version in entries:
            before = current_version(root, layer, table)
            _promote(table_dir(root, layer, table), version)
            if current_version(root, layer, table) != before:
                moved.append(f"{layer}.{table}")
        journal.unlink(missing_ok=True)
    for layer in LAYERS:
        for leftover in (root / layer).glob(f"*/v*{PENDING}"):
            shutil.rmtree(leftover, ignore_errors=True)
    return moved


class StorageFull(CustsegError):
    """The disk filled up during a table write."""


class LakehouseBusy(CustsegError):
    """Another custseg run holds the lakehouse."""


@contextmanager
def exclusive(root: str | Path) -> Iterator[None]:
    """Hold the lakehouse for one run: a second run on the same root is refused, not interleaved.

    An OS file lock (flock): released by the kernel when the holder exits, even on
    SIGKILL, so a crashed run never leaves the lakehouse locked.
    """
    import fcntl  # lazy: fcntl is POSIX-only; importing custseg.storage works without it

    if "://" in str(root):  # object stores: Delta's optimistic concurrency guards the tables there
        yield
        return
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise LakehouseBusy(
                f"lakehouse {folder.absolute()} is in use by another custseg run ({holder}); "
                "wait for it to finish, or use another --lakehouse"
            ) from None
        # Written straight to the descriptor: nothing left in a buffer that close() would flush.
        try:
            os.ftruncate(handle.fileno(), 0)
            os.pwrite(
                handle.fileno(),
                f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(),
                0,
            )
        except OSError as exc:  # the holder's pid is only a courtesy for the busy message
            if exc.errno != errno.ENOSPC:
                raise
            raise StorageFull(
                f"disk full: cannot write the lock file {path}; free some space under "
                f"{folder.absolute()}"
            ) from None
        recover(folder)
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock


@dataclass(frozen=True)
class Written:
    layer: str
    table: str
    version: int
    path: str


class Lakehouse:
    """Reads and writes the medallion tables of one lakehouse root."""

    def __init__(self, spark: SparkSession, config: StorageConfig) -> None:
        self.spark = spark
        self.config = config
        self.root = Path(config.root).absolute()
        # Versions written inside publishing(), not live yet: (layer, table) -> version.
        self._pending: dict[tuple[str, str], int] | None = None

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Tables written inside the block go live together when it ends, or not at all.

        Delta tables commit one by one (each write is its own Delta transaction).
        """
        if self._pending is not None:
            raise RuntimeError("publishing() blocks do not nest")
        self._pending = {}
        try:
            yield
        except BaseException as exc:
            pending, self._pending = self._pending, None
            if isinstance(exc, KeyboardInterrupt):
                # Ctrl-C / SIGTERM: a Spark job may still be writing or reading the pending
                # versions; ask Spark to stop it and leave the folders to the next run.
                if pending:
                    self._cancel_running_jobs()
            else:
                for (layer, table), version in pending.items():
                    shutil.rmtree(self._pending_dir(layer, table, version), ignore_errors=True)
            raise
        pending, self._pending = self._pending, None
        publish(self.root, [(layer, table, version) for (layer, table), version in pending.items()])
        for layer, table in pending:
            self._prune(layer, table)

    def _pending_dir(self, layer: str, table: str, version: int) -> Path:
        return self.location(layer, table) / f"v{version:08d}{PENDING}"

    # -- names -----------------------------------------------------------
    def location(self, layer: str, table: str) -> Path:
        return table_dir(self.root, layer, table)

    def table_name(self, layer: str, table: str) -> str | None:
        """The catalog table (``catalog.schema.<layer>_<table>``) for Delta + catalog, else None."""
        table_dir(self.root, layer, table)  # validates the layer
        return self.config.table_name(layer, table)

    def exists(self, layer: str, table: str) -> bool:
        name = self.table_name(layer, table)
        if name is not None:
            return bool(self.spark.catalog.tableExists(name))
        if self.config.format == "delta":
            return (self.location(layer, table) / "_delta_log").is_dir()
        return self._live_path(layer, table) is not None

    def _cancel_running_jobs(self) -> None:
        with suppress(Exception):  # best effort: the versions are removed either way
            self.spark.interruptAll()

    def _live_path(self, layer: str, table: str) -> Path | None:
        """The version a read sees: this stage's pending one, else the published one."""
        if self._pending and (layer, table) in self._pending:
            return self._pending_dir(layer, table, self._pending[layer, table])
        return current_path(self.root, layer, table)

    # -- read ------------------------------------------------------------
    def read(self, layer: str, table: str) -> DataFrame:
        if self.config.format == "delta":
            if not self.exists(layer, table):
                raise InputDataError(self._missing(layer, table))
            name = self.table_name(layer, table)
            if name is not None:
                return self.spark.table(name)
            return self.spark.read.format("delta").load(str(self.location(layer, table)))
        path = self._live_path(layer, table)
        if path is None:
            raise InputDataError(self._missing(layer, table))
        return self.spark.read.parquet(str(path))

    def _missing(self, layer: str, table: str) -> str:
        producer = {"bronze": "ingest", "silver": "ingest", "gold": "features"}[layer]
        if table in ("customer_segments", "segment_profiles", "method_comparison"):
            producer = "segment"
        name = self.table_name(layer, table)
        where = f"as {name}" if name else f"under {self.root}"
        return (
            f"table {layer}.{table} not found {where}; "
            f"run 'custseg {producer}' (or 'custseg run') first"
        )

    # -- write -----------------------------------------------------------
    def write(self, df: DataFrame, layer: str, table: str, files: int | None = None) -> Written:
        """Replace the table with ``df`` atomically; ``files`` caps the number of output files."""
        if files is not None:
            df = df.coalesce(files)
        folder = self.location(layer, table)
        if self.config.format == "delta":
            writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
            name = self.table_name(layer, table)
            if name is not None:
                writer.saveAsTable(
                    name
                )  # one Delta transaction: readers see the old or the new table
                return Written(layer, table, 0, name)
            writer.save(str(folder))
            return Written(layer, table, 0, str(folder))

        folder.mkdir(parents=True, exist_ok=True)
        existing = [int(m.group(1)) for c in folder.iterdir() if (m := _ANY_VERSION.match(c.name))]
        if self._pending and (layer, table) in self._pending:  # written twice in one stage
            shutil.rmtree(
                self._pending_dir(layer, table, self._pending[layer, table]), ignore_errors=True
            )
        version = max(existing, default=0) + 1
        target = self._pending_dir(layer, table, version)
        try:
            df.write.mode("error").parquet(
                str(target)
            )  # "errorifexists" is unknown to Spark Connect
        except KeyboardInterrupt:
            raise  # the JVM may still be writing there: the next run removes the folder
        except BaseException as exc:
            shutil.rmtree(target, ignore_errors=True)
            if "No space left on device" in str(exc):
                raise StorageFull(
                    f"disk full while writing {layer}.{table} to {target}; the previous version is "
                    "kept"
                ) from None
            raise
        if self._pending is not None:
            self._pending[layer, table] = version
            return Written(layer, table, version, str(target))
        publish(self.root, [(layer, table, version)])
        self._prune(layer, table)
        return Written(layer, table, version, str(folder / f"v{version:08d}"))

    def _prune(self, layer: str, table: str) -> None:
        """Drop versions beyond the newest keep_versions (never the live one)."""
        folder = self.location(layer, table)
        complete = list_versions(self.root, layer, table)
        keep = set(complete[-self.config.keep_versions :])
        live = current_version(self.root, layer, table)
        if live is not None:
            keep.add(live)
        for child in folder.iterdir():
            match = _VERSION.match(child.name)
            if match and int(match.group(1)) not in keep:
                shutil.rmtree(child, ignore_errors=True)
            elif child.name.startswith(f".{POINTER}."):
                child.unlink(missing_ok=True)
