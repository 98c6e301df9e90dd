"""``--record``: a benchmark's printed output written into docs/benchmarks.md.

The page holds one section per command. A recorded run replaces the section of the same
command (the date and the machine come with it) and a new command gets a section of its
own under "Recorded runs", so the figures on the page are the scripts' own output, never
copied by hand. A run that fails writes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import psutil

PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
FLAG = "--record"
HEADING = "## Recorded runs"


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        FLAG,
        action="store_true",
        help="also write what this run prints into docs/benchmarks.md, in the section of this "
        "command, with the date and the machine (a failed run writes nothing)",
    )


def run(main: Callable[[], object], argv: list[str] | None = None, page: Path = PAGE) -> None:
    """Run a benchmark's ``main``; with ``--record`` in ``argv`` its output is also recorded."""
    argv = sys.argv if argv is None else argv
    if FLAG not in argv[1:]:
        main()
        return
    printed = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, printed)):
        main()
    record(page, command_line(argv), printed.getvalue())


def command_line(argv: list[str]) -> str:
    """How to run it again from the repository root, without ``--record``."""
    args = [a for a in argv[1:] if a != FLAG]
    return shlex.join([".venv/bin/python", f"benchmarks/{Path(argv[0]).name}", *args])


def machine() -> str:
    """The facts a reader needs to compare figures: cores, memory, system, versions."""
    memory = psutil.virtual_memory().total / 2**30
    try:
        spark = f", PySpark {metadata.version('pyspark')}"
    except metadata.PackageNotFoundError:
        spark = ""
    return (
        f"{os.cpu_count()} cores, {memory:.1f} GiB, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}{spark}"
    )


def section(command: str, output: str, when: str, on: str) -> str:
    # A fence longer than any run of backticks in the output keeps the output verbatim.
    longest = max((len(m) for m in re.findall(r"`+", output)), default=0)
    fence = "`" * max(3, longest + 1)
    return (
        f"{_begin(command)}\n"
        f"### `{command}`\n\n"
        f"Recorded on {when} on {on}.\n\n"
        f"{fence}text\n{output.rstrip()}\n{fence}\n"
        f"{_end(command)}\n"
    )


def record(
    page: Path, command: str, output: str, when: str | None = None, on: str | None = None
) -> None:
    """Put ``output`` into ``page`` as the section of ``command``; the rest stays as it was."""
    text = page.read_text(encoding="utf-8") if page.exists() else ""
    new = section(command, output, when or time.strftime("%Y-%m-%d"), on or machine())
    begin, end = _begin(command), _end(command)
    start = text.find(begin)
    if start >= 0:
        stop = text.find(end, start)
        if stop < 0:
            raise ValueError(f"{page}: the section of {command!r} has no end marker {end!r}")
        stop = text.index("\n", stop) + 1 if "\n" in text[stop:] else len(text)
        text = text[:start] + new + text[stop:]
    else:
        if HEADING not in text:
            text = text.rstrip("\n") + f"\n\n{HEADING}\n\nWritten by the scripts' `{FLAG}`.\n"
        text = text.rstrip("\n") + "\n\n" + new
    _write_atomically(page, text)


def _begin(command: str) -> str:
    return f"<!-- recorded: {command} -->"


def _end(command: str) -> str:
    return f"<!-- end recorded: {command} -->"


def _write_atomically(page: Path, text: str) -> None:
    """The page is whole before and after: a new file moved into place."""
    page.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=page.parent, prefix=f".{page.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, page)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class _Tee(io.TextIOBase):
    """Writes go to the terminal as they come, and to the recording."""

    def __init__(self, *streams: io.TextIOBase) -> None:
        self._streams = streams

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()
