"""Java 17+ is the only system prerequisite: a missing or old Java fails in one clear line."""

import os
import stat

import pytest

from custseg.errors import EnvironmentProblem
from custseg.spark import check_java, java_major_version


def _fake_java(home, version_line):
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)


def test_missing_java(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(EnvironmentProblem, match="Java 17 or newer is required and was not found"):
        check_java()


@pytest.mark.parametrize(
    ("line", "major"),
    [('openjdk version "11.0.2" 2019-01-15', 11), ('java version "1.8.0_301"', 8)],
)
def test_old_java(tmp_path, monkeypatch, line, major):
    _fake_java(tmp_path, line)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert java_major_version() == major
    with pytest.raises(
        EnvironmentProblem, match=f"Java 17 or newer is required, found Java {major}"
    ):
        check_java()


def test_this_machines_java_is_fine():
    if not os.environ.get("JAVA_HOME") and not any(
        os.access(os.path.join(p, "java"), os.X_OK)
        for p in os.environ.get("PATH", "").split(os.pathsep)
    ):
        pytest.skip("no java here")
    check_java()


def test_make_fails_clearly_without_java(tmp_path):
    import subprocess

    env = {"PATH": "/usr/bin/nonexistent", "JAVA_HOME": str(tmp_path / "nowhere")}
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "require-java.sh")
    result = subprocess.run(["/bin/sh", script], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("custseg needs Java 17 or newer")
