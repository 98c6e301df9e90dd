"""The Spark session factory.

custseg never creates a session on import: the CLI (or the caller) builds
one here and passes it to every stage.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession

import custseg
from custseg.config import SparkConfig
from custseg.errors import EnvironmentProblem

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MIN_JAVA = 17


def java_major_version() -> int:
    """The major version of the Java that Spark would start, or raise."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise EnvironmentProblem(
            f"Java {MIN_JAVA} or newer is required and was not found (JAVA_HOME={java_home!r}, no "
            "'java' on PATH); install it, e.g. apt-get install openjdk-17-jre-headless"
        )
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        ).stderr
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run {java}: {exc}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise EnvironmentProblem(f"cannot read the Java version from {java}: {out.strip()[:200]!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    return major


def check_java() -> None:
    major = java_major_version()
    if major < MIN_JAVA:
        raise EnvironmentProblem(
            f"Java {MIN_JAVA} or newer is required, found Java {major}; set JAVA_HOME to a Java "
            f"{MIN_JAVA}+"
        )


def package_zip(folder: str | Path | None = None) -> Path:
    """A zip of the installed custseg package (sources and package data), for executors.

    Built from the code the driver runs, so executors always get the same
    version, with no manual copying; ``folder`` defaults to a fresh temporary one.
    """

    source = Path(custseg.__file__).parent
    if folder is None:
        target_dir = Path(tempfile.mkdtemp(prefix="custseg-pyfiles-"))
        # Executors fetch the zip from the driver while the session lives: remove it at exit.
        atexit.register(shutil.rmtree, target_dir, ignore_errors=True)
    else:
        target_dir = Path(folder)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"custseg-{custseg.__version__}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, Path("custseg") / path.relative_to(source))
    return target


LOG4J2_CONFIG = Path(__file__).with_name("log4j2.properties")


def ships_package(config: SparkConfig) -> bool:
    """Whether the session gets the custseg zip: always for Spark Connect and cluster masters;
    never for ``local[...]``, where the driver's own process runs every task."""
    if config.ship_package is not None:
        return config.ship_package
    return bool(config.remote) or not config.master.startswith("local[")


def create_session(config: SparkConfig) -> SparkSession:
    """A session for the configured engine: local (default), a master URL, or Spark Connect."""

    # Python workers must run the driver's interpreter (and so see custseg).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

    if config.remote:
        builder = SparkSession.builder.remote(config.remote)
        session = builder.appName(config.app_name).getOrCreate()
        session.conf.set("spark.sql.session.timeZone", "UTC")
        session.conf.set("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
        if ships_package(config):
            # The server's Python workers import custseg (pandas UDFs) from this artifact.
            session.addArtifacts(str(package_zip()), pyfile=True)
        return session

    check_java()
    builder = (
        SparkSession.builder.master(config.master)
        .appName(config.app_name)
        .config("spark.driver.memory", config.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # Spark's JVM log without Java stack traces on the terminal (see log4j2.properties).
        .config(
            "spark.driver.extraJavaOptions",
            f"-Duser.timezone=UTC -Dlog4j2.configurationFile={LOG4J2_CONFIG.as_uri()}",
        )
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Set through conf, not SparkContext.setLogLevel: no SparkContext on any path.
        .config("spark.log.level", config.log_level)
        .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
        # Local disk is what ingest runs out of first: it keeps its checked rows on disk and
        # shuffles them. Compress the cached blocks too, and with zstd, which packs the JSON
        # strings of orders about twice as tight as the default lz4.
        .config("spark.rdd.compress", "true")
        .config("spark.io.compression.codec", "zstd")
    )
    conf = dict(config.conf)
    if ships_package(config):
        # PySpark adds spark.submit.pyFiles to every executor's Python path, also
        # when the driver is a plain Python process rather than spark-submit.
        zipped = str(package_zip())
        extra = conf.get("spark.submit.pyFiles")
        conf["spark.submit.pyFiles"] = f"{extra},{zipped}" if extra else zipped
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # Py4J / JVM start-up failures carry long traces
        raise EnvironmentProblem(
            f"Spark did not start with master {config.master!r}: {str(exc).splitlines()[0]}"
        ) from exc
    return session
