"""Timing and peak memory of this process tree (the Python driver, the Spark JVM, Python workers),
and optionally the peak of Spark's local scratch space (shuffle files, blocks cached on disk)."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_tree_bytes: int = 0  # sum of RSS over this process and all its children, sampled
    peak_jvm_bytes: int = 0  # the largest single java child (the Spark driver JVM in local mode)
    peak_worker_bytes: int = 0  # the largest single Python child (a Spark Python worker: one task)
    peak_scratch_bytes: int = (
        0  # the Spark application's blockmgr-* folders at their fullest during the block
    )


def spark_scratch_dirs(local_dir: Path, before: set[Path]) -> list[Path]:
    """The block-manager folders of the Spark application started since ``before`` was listed."""
    return sorted(p for p in local_dir.glob("blockmgr-*") if p.is_dir() and p not in before)


def _scratch_bytes(dirs: list[Path]) -> int:
    """Bytes under ``dirs`` (files come and go while we walk)."""
    total = 0
    stack = list(dirs)
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def _tree_rss() -> tuple[int, int, int]:
    """(sum of RSS over the process tree, largest java child, largest Python child)."""
    me = psutil.Process(os.getpid())
    total, jvm, worker = 0, 0, 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            rss = proc.memory_info().rss
            total += rss
            name = proc.name()
            if "java" in name:
                jvm = max(jvm, rss)
            elif "python" in name and proc.pid != me.pid:
                worker = max(worker, rss)
        except psutil.Error:
            continue
    return total, jvm, worker


@contextmanager
def measure(
    interval: float = 0.2, scratch_dirs: list[Path] | None = None, scratch_interval: float = 3.0
):
    """``with measure() as m: ...`` fills ``m`` with wall time and sampled peak RSS.

    With ``scratch_dirs`` (from :func:`spark_scratch_dirs`) it also samples, every
    ``scratch_interval`` seconds, how much Spark's scratch files hold. That includes
    files an earlier block left until Spark cleans them up: the disk needs room for both.
    """
    result = Measurement()
    stop = threading.Event()

    def sample() -> None:
        next_scratch = 0.0
        while not stop.is_set():
            total, jvm, worker = _tree_rss()
            result.peak_tree_bytes = max(result.peak_tree_bytes, total)
            result.peak_jvm_bytes = max(result.peak_jvm_bytes, jvm)
            result.peak_worker_bytes = max(result.peak_worker_bytes, worker)
            if scratch_dirs and time.monotonic() >= next_scratch:
                result.peak_scratch_bytes = max(
                    result.peak_scratch_bytes, _scratch_bytes(scratch_dirs)
                )
                next_scratch = time.monotonic() + scratch_interval
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result.seconds = time.perf_counter() - started


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"
