"""benchmarks/_record.py: a benchmark's output written into its section of docs/benchmarks.md."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE_TOP = "# Benchmarks\n\nHand-written text stays.\n"


def _load_record():
    spec = importlib.util.spec_from_file_location("_record", REPO / "benchmarks" / "_record.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


record = _load_record()


def _page(tmp_path: Path) -> Path:
    page = tmp_path / "benchmarks.md"
    page.write_text(PAGE_TOP, encoding="utf-8")
    return page


def test_a_new_command_gets_its_section_and_the_rest_stays(tmp_path):
    page = _page(tmp_path)
    record.record(
        page, "python benchmarks/b.py --n 1", "n  time\n1  2.0\n", "2026-12-08", "2 cores"
    )
    text = page.read_text(encoding="utf-8")
    assert text.startswith(PAGE_TOP)
    assert record.HEADING in text
    assert "### `python benchmarks/b.py --n 1`" in text
    assert "Recorded on 2026-12-08 on 2 cores." in text
    assert "```text\nn  time\n1  2.0\n```" in text


def test_the_same_command_replaces_its_section_and_keeps_the_others(tmp_path):
    page = _page(tmp_path)
    record.record(page, "cmd a", "old a", "2026-12-01", "m")
    record.record(page, "cmd b", "only b", "2026-12-01", "m")
    record.record(page, "cmd a", "new a", "2026-12-08", "m")
    text = page.read_text(encoding="utf-8")
    assert "old a" not in text and "new a" in text and "only b" in text
    assert text.count("<!-- recorded: cmd a -->") == 1
    assert text.count(record.HEADING) == 1
    assert text.index("new a") < text.index("only b")  # replaced in place, not moved


def test_backticks_in_the_output_stay_verbatim(tmp_path):
    page = _page(tmp_path)
    record.record(page, "cmd", "a ``` b", "2026-12-08", "m")
    assert "````text\na ``` b\n````" in page.read_text(encoding="utf-8")


def test_a_section_without_its_end_marker_is_refused_and_the_page_kept(tmp_path):
    page = _page(tmp_path)
    broken = PAGE_TOP + "<!-- recorded: cmd -->\nhalf a section\n"
    page.write_text(broken, encoding="utf-8")
    with pytest.raises(ValueError, match="has no end marker"):
        record.record(page, "cmd", "x", "2026-12-08", "m")
    assert page.read_text(encoding="utf-8") == broken


def test_run_records_what_main_printed_only_with_the_flag(tmp_path, capsys):
    page = _page(tmp_path)
    record.run(lambda: print("figures"), ["bench_x.py", "--n", "3"], page)
    assert page.read_text(encoding="utf-8") == PAGE_TOP
    record.run(lambda: print("figures"), ["bench_x.py", "--n", "3", "--record"], page)
    assert capsys.readouterr().out == "figures\nfigures\n"  # still printed as it runs
    text = page.read_text(encoding="utf-8")
    assert "### `.venv/bin/python benchmarks/bench_x.py --n 3`" in text
    assert "```text\nfigures\n```" in text


def test_a_run_that_fails_records_nothing(tmp_path):
    page = _page(tmp_path)

    def fails():
        print("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        record.run(fails, ["bench_x.py", "--record"], page)
    assert page.read_text(encoding="utf-8") == PAGE_TOP


@pytest.mark.parametrize("script", sorted((REPO / "benchmarks").glob("bench_*.py")))
def test_every_benchmark_offers_the_flag(script):
    shown = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True
    )
    assert record.FLAG in shown.stdout
