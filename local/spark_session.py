"""A local SparkSession with the jars ``make jars`` fetched, for tests and benchmarks.

DAG runs go through ``operators.local_spark`` (spark-submit); this is for code that needs a
session in-process (a test comparing results, a benchmark timing two approaches).
"""

from __future__ import annotations

import os
import sys

from local.paths import JARS


def local_session(app: str, jar_prefixes: tuple[str, ...] = ("postgresql",), cores: int = 2, **conf: str):
    """A new session (an active one is stopped first: jars only load when the JVM starts)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    jars = sorted(str(j) for j in JARS.glob("*.jar") if j.name.startswith(jar_prefixes))
    if len(jars) < len(jar_prefixes):
        raise RuntimeError(f"jars {jar_prefixes} not all in {JARS}: run `make jars`")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run the driver's Python
    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app)
        .config("spark.jars", ",".join(jars))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(cores * 2))
    )
    for key, value in conf.items():
        builder = builder.config(key.replace("__", "."), value)
    return builder.getOrCreate()
