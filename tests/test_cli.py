"""The command line: --help everywhere, user mistakes as one line and exit code 2."""

import subprocess
import sys

import pytest

from custseg.cli import build_parser, main

COMMANDS = [
    "generate",
    "ingest",
    "features",
    "segment",
    "score",
    "run",
    "demo",
    "dashboard",
    "report",
    "tables",
    "rollback",
]


def _run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "custseg.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: custseg " + command in capsys.readouterr().out


def test_help_lists_every_command():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["ingest", "--input", "/no/such/folder"], "input folder not found: /no/such/folder"),
        (["run", "--input", "/no/such/folder"], "input folder not found"),
        (["ingest", "--config", "/no/such.yml"], "config file not found: /no/such.yml"),
        (["ingest", "--driver-memory", "lots"], "'spark.driver_memory' has value 'lots'"),
        (["features", "--as-of", "2019-13-45"], "'features.as_of' has value '2019-13-45'"),
        (["generate", "--out", "x", "--bad", "oops"], "--bad takes KIND=COUNT, got 'oops'"),
    ],
)
def test_user_mistakes_are_one_line(tmp_path, args, fragment):
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("custseg: error: ")
    assert fragment in lines[0]
