"""Timing and peak memory of this process tree (the Python driver, the Spark JVM, Python workers)."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import psutil


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_tree_bytes: int = 0  # sum of RSS over this process and all its children, sampled
    peak_jvm_bytes: int = 0  # the largest single java child (the Spark driver JVM in local mode)


def _tree_rss() -> tuple[int, int]:
    me = psutil.Process(os.getpid())
    total, jvm = 0, 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            rss = proc.memory_info().rss
            total += rss
            if "java" in proc.name():
                jvm = max(jvm, rss)
        except psutil.Error:
            continue
    return total, jvm


@contextmanager
def measure(interval: float = 0.2):
    """``with measure() as m: ...`` fills ``m`` with wall time and sampled peak RSS."""
    result = Measurement()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total, jvm = _tree_rss()
            result.peak_tree_bytes = max(result.peak_tree_bytes, total)
            result.peak_jvm_bytes = max(result.peak_jvm_bytes, jvm)
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
