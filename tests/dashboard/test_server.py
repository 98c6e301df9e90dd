"""`custseg dashboard`: the Streamlit command line, its environment, and a real start on a free
port."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from custseg.config import load_config
from custseg.dashboard import server
from custseg.errors import ConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_binds_locally_with_xsrf_on(tmp_path):
    config = load_config(
        overrides={
            "storage.root": str(tmp_path / "lh"),
            "tracking.tracking_uri": f"sqlite:///{tmp_path / 'm.db'}",
        }
    )
    argv, env = server.command(config)
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("app.py")
    joined = " ".join(argv)
    assert "--server.address 127.0.0.1" in joined and "--server.port 8501" in joined
    assert "--server.enableXsrfProtection=true" in argv
    assert "--browser.gatherUsageStats=false" in argv
    assert "--server.headless=true" in argv
    assert env["CUSTSEG_LAKEHOUSE"] == str(tmp_path / "lh")
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'm.db'}"


def test_command_takes_host_port_and_headless(tmp_path):
    argv, _ = server.command(load_config(), host="0.0.0.0", port=9000, headless=False)
    joined = " ".join(argv)
    assert "--server.address 0.0.0.0" in joined and "--server.port 9000" in joined
    assert "--server.headless=false" in argv


@pytest.mark.parametrize(
    ("host", "port", "match"),
    [
        ("127.0.0.1", 0, "--port must be between 1 and 65535, got 0"),
        ("127.0.0.1", 70000, "got 70000"),
        ("bad host", 8501, "--host must be an address"),
    ],
)
def test_bad_host_or_port(host, port, match):
    with pytest.raises(ConfigError, match=match):
        server.command(load_config(), host=host, port=port)


def test_serve_returns_streamlits_exit_code(monkeypatch, capsys):
    started = {}

    class FakeProcess:
        def __init__(self, argv, env):
            started.update(argv=argv, env=env)

        def wait(self, timeout=None):
            return 3

        def poll(self):
            return 3

    monkeypatch.setattr(subprocess, "Popen", FakeProcess)
    assert server.serve(load_config(), host="0.0.0.0", port=8600) == 3
    assert "--server.port" in started["argv"]
    err = capsys.readouterr().err
    assert "reachable from other machines" in err  # a non-local bind is called out


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host, loopback):
    assert server.is_loopback(host) is loopback


@pytest.mark.slow
def test_the_dashboard_starts_and_answers_on_localhost(empty_env):
    """A real Streamlit process on a free port: healthy within seconds, no Spark, bound to
    127.0.0.1."""
    port = free_port()
    config = load_config(
        overrides={
            "storage.root": str(empty_env / "lakehouse"),
            "tracking.tracking_uri": f"sqlite:///{empty_env / 'mlflow.db'}",
        }
    )
    argv, env = server.command(config, port=port)
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as reply:
                    assert reply.read().decode() == "ok"
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        process.stdout.read() if process.poll() is not None else "no answer in 60 s"
                    ) from None
                time.sleep(0.3)
        sockets = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        listening = [s[1] for s in sockets if s[1].endswith(f":{port:04X}") and s[3] == "0A"]
        assert listening == [f"0100007F:{port:04X}"]  # 127.0.0.1 only (no IPv4 wildcard)
    finally:
        process.terminate()
        process.wait(timeout=20)
