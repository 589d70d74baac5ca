"""A local SparkSession with the jars ``make jars`` fetched, for tests and benchmarks.

DAG runs go through ``operators.spark.local_runner`` (spark-submit); this is for code that needs a
session in-process (a test comparing results, a benchmark timing two approaches).

Each session gets a JVM of its own: jars and environment variables (AWS keys, say) only
reach a JVM when it starts, so a session left over from other code would carry that
code's classpath and environment. :func:`stop_session` ends both.
"""

from __future__ import annotations

import os
import subprocess
import sys

from local.paths import JARS
from operators.spark.local_runner import local_java_options


def local_session(app: str, cores: int = 2, **conf: str):
    """A new session, in a new JVM, with every fetched jar."""
    from pyspark.sql import SparkSession

    stop_session()
    jars = sorted(str(j) for j in JARS.glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no jars in {JARS}: run `make jars`")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run the driver's Python
    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app)
        .config("spark.jars", ",".join(jars))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(cores * 2))
    )
    java_options = f"{conf.get('spark.driver.extraJavaOptions', '')} {local_java_options(JARS)}".strip()
    conf = {**conf, "spark.driver.extraJavaOptions": java_options}
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def stop_session(session=None) -> None:
    """Stop ``session`` (or whichever is active) and the JVM behind it."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    session = session or SparkSession.getActiveSession()
    if session is not None:
        session.stop()
    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    process = getattr(gateway, "proc", None)
    if process is not None:
        if process.stdin:
            process.stdin.close()  # the JVM leaves when its parent closes stdin
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    SparkContext._gateway = None
    SparkContext._jvm = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None
