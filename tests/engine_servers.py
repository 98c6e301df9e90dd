"""Real Spark engines for the scale-out tests: a standalone master and worker, and a Spark
Connect server, all started from the installed pyspark package on 127.0.0.1 and stopped
afterwards (process groups killed in ``finally``, also when a test fails).

Executors and the Connect server run a Python interpreter that sees every dependency but
*not* custseg (``bare_python``), so the tests prove that custseg ships with the job.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SPARK_HOME = Path(__import__("pyspark").__file__).parent
START_TIMEOUT = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, proc: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(
                f"server exited with code {proc.returncode} before listening on {port}: {tail(log)}"
            )
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.skip(f"server did not listen on 127.0.0.1:{port} within {timeout:.0f} s: {tail(log)}")


def tail(log: Path, chars: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def stop(proc: subprocess.Popen) -> None:
    """TERM the process group, KILL it if it lingers (each server runs in its own session)."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    try:
        return subprocess.Popen(
            cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    finally:
        handle.close()  # the child holds its own descriptor


@pytest.fixture(scope="session")
def engines_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="session")
def bare_python(engines_dir: Path) -> str:
    """A venv interpreter that imports pyspark, numpy, pandas, scikit-learn ... but not custseg.

    The main venv's site-packages is added as a plain path, so its ``.pth`` files (among them
    custseg's editable-install hook) are not processed.
    """
    venv = engines_dir / "bare-venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    Path(site, "main-venv.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import pyspark, sklearn, pandas\ntry:\n import custseg\n"
            "except ImportError:\n print('bare')",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(engines_dir),
    )
    if probe.stdout.strip() != "bare":
        pytest.skip(
            f"cannot build an interpreter without custseg: {probe.stdout[-300:]} "
            f"{probe.stderr[-500:]}"
        )
    return str(python)


def base_env(work: Path, python: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SPARK_REMOTE", None)
    env.update(
        SPARK_HOME=str(SPARK_HOME),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_LOG_DIR=str(work / "logs"),
        SPARK_PID_DIR=str(work / "pids"),
        SPARK_IDENT_STRING=f"custseg-test-{os.getpid()}",
        SPARK_NO_DAEMONIZE="1",
        PYSPARK_PYTHON=python,
        TZ="UTC",
    )
    return env


@pytest.fixture(scope="session")
def standalone(engines_dir: Path, bare_python: str) -> Iterator[str]:
    """A standalone master and one worker (1 core, 1 GiB) on 127.0.0.1; yields spark://127.0.0.1:PORT."""
    work = engines_dir / "standalone"
    (work / "worker").mkdir(parents=True)
    env = base_env(work, bare_python)
    port, ui, worker_ui = free_port(), free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    master_env = {**env, "SPARK_DAEMON_MEMORY": "256m"}
    master = spawn(
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui),
        ],
        work / "master.log",
        master_env,
    )
    worker = None
    try:
        wait_for_port(port, master, work / "master.log")
        url = f"spark://127.0.0.1:{port}"
        worker = spawn(
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                url,
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                str(worker_ui),
                "--work-dir",
                str(work / "worker"),
            ],
            work / "worker.log",
            master_env,
        )
        wait_for_registration(work / "master.log", worker, work / "worker.log")
        yield url
    finally:
        if worker is not None:
            stop(worker)
        stop(master)


def wait_for_registration(master_log: Path, worker: subprocess.Popen, worker_log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.skip(
                f"the Spark worker exited with code {worker.returncode}: {tail(worker_log)}"
            )
        if "Registering worker" in tail(master_log, 100_000):
            return
        time.sleep(0.5)
    pytest.skip(f"the Spark worker did not register with the master: {tail(worker_log)}")


@pytest.fixture(scope="session")
def connect_server(engines_dir: Path, bare_python: str) -> Iterator[str]:
    """A Spark Connect server (local[2] inside) on 127.0.0.1; yields sc://127.0.0.1:PORT."""
    try:
        import grpc  # noqa: F401
        import pyspark.sql.connect  # noqa: F401
        import zstandard  # noqa: F401
        from google.rpc import status_pb2  # noqa: F401
    except ImportError as exc:
        pytest.skip(f'Spark Connect client needs pip install "pyspark[connect]": {exc}')
    work = engines_dir / "connect"
    (work / "logs").mkdir(parents=True)
    env = {**base_env(work, bare_python), "SPARK_DRIVER_MEMORY": "1g"}
    port = free_port()
    server = spawn(
        [
            str(SPARK_HOME / "sbin" / "start-connect-server.sh"),
            "--master",
            "local[2]",
            "--conf",
            f"spark.connect.grpc.binding.port={port}",
            "--conf",
            "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.sql.session.timeZone=UTC",
            "--conf",
            "spark.driver.extraJavaOptions=-Duser.timezone=UTC",
            "--conf",
            f"spark.pyspark.python={bare_python}",
        ],
        work / "server.log",
        env,
    )
    try:
        wait_for_port(port, server, work / "server.log")
        yield f"sc://127.0.0.1:{port}"
    finally:
        stop(server)
