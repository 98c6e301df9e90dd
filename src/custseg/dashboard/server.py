"""`custseg dashboard`: start Streamlit on the dashboard app, bound to 127.0.0.1 by default.

Streamlit runs as a child process (``python -m streamlit run app.py``) with
XSRF protection on and usage statistics off; the lakehouse root and the
MLflow store reach the app through environment variables (see
:class:`custseg.store.source.Source`). No Spark session is started.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from custseg.errors import ConfigError, EnvironmentProblem
from custseg.store.source import Source

if TYPE_CHECKING:
    from custseg.config import Config

APP = Path(__file__).with_name("app.py")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501


def _check(host: str, port: int) -> None:
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {port!r}")
    if not host or any(c.isspace() for c in host):
        raise ConfigError(f"--host must be an address or host name, got {host!r}")
    for package in ("streamlit", "plotly"):
        if importlib.util.find_spec(package) is None:
            raise EnvironmentProblem(
                f"the dashboard needs {package}: install the dashboard extra "
                "(pip install 'custseg[dashboard]')"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def command(
    config: Config, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, headless: bool = True
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run the dashboard (what :func:`serve` starts; tests reuse
    it)."""
    _check(host, port)
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        f"--server.headless={'true' if headless else 'false'}",
        "--server.enableXsrfProtection=true",
        "--server.enableCORS=true",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=minimal",
        "--client.showErrorDetails=type",  # no tracebacks (paths, data) in the browser
    ]
    env = {**os.environ, **Source.from_config(config).to_env()}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return argv, env


def serve(
    config: Config, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, headless: bool = True
) -> int:
    """Run the dashboard until it stops or Ctrl-C; returns Streamlit's exit code (0 after
    Ctrl-C)."""
    argv, env = command(config, host, port, headless)
    source = Source.from_config(config)
    print(
        f"custseg dashboard: http://{host}:{port}  "
        f"(tables {source.describe()}, MLflow {source.tracking_uri})",
        flush=True,
    )
    if not is_loopback(host):
        print(
            f"custseg dashboard: warning: listening on {host}, reachable from other machines; "
            "the dashboard has no login and shows customer data (masked by default)",
            file=sys.stderr,
            flush=True,
        )
    process = subprocess.Popen(argv, env=env)
    restore = _forward_signals(process)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        # The child got the same Ctrl-C from the terminal; give it a moment to shut down cleanly.
        _stop(process, signal.SIGINT)
        return 0
    finally:
        restore()
    return 128 - code if code < 0 else code  # killed by signal N -> 128 + N, as a shell reports it


def _stop(process: subprocess.Popen, signum: int) -> None:
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _forward_signals(process: subprocess.Popen):
    """Pass SIGTERM/SIGHUP on to Streamlit, so stopping `custseg dashboard` never leaves it
    running."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def forward(signum: int, _frame: object) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    return restore
