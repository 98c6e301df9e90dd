"""Spark's JVM log on the terminal carries one line per message, never a Java stack trace.

A failed task logs its trace twice: as the exception of Executor's ERROR (dropped by the
layout) and inside the text of TaskSetManager's "Lost task" WARN (cut to its first line).
"""

import re
import subprocess
import sys

FAILING_JOB = """
from custseg.config import SparkConfig
from custseg.spark import create_session

spark = create_session(SparkConfig(master="local[1]", driver_memory="1g", log_level="WARN"))
try:
    spark.range(3).selectExpr("raise_error('planted failure') AS x").collect()
except Exception as exc:
    print("raised", type(exc).__name__)
finally:
    spark.stop()
"""


def test_a_failed_task_logs_no_java_stack_trace():
    ran = subprocess.run(
        [sys.executable, "-c", FAILING_JOB], capture_output=True, text=True, timeout=300
    )
    assert "raised SparkRuntimeException" in ran.stdout, ran.stderr[-2000:]
    lost = [line for line in ran.stderr.splitlines() if "Lost task" in line]
    assert lost and "planted failure" in lost[0]  # the first line, with the cause, is kept
    frames = [line for line in ran.stderr.splitlines() if re.match(r"^\s+at [\w$.]+\(", line)]
    assert frames == []
