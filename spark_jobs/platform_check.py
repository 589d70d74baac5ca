"""Check a Spark platform end to end: storage, Iceberg, versions.

Writes a small DataFrame as Parquet under ``--output``, reads it back, creates (or
appends to) an Iceberg table when a catalog is configured, and writes a one-line JSON
report to ``<output>/report/``. Users run it (DAG ``spark_platform_check``) after setting
up an environment.

    spark-submit platform_check.py --output s3://bucket/platform_check/run1 --run-id run1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common.cli import parse_job_args
from spark_jobs.common.session import get_spark, iceberg_catalog, platform_of

PROBE_ROWS = 1000


def probe_frame(spark: SparkSession, run_id: str) -> DataFrame:
    return spark.range(PROBE_ROWS).select(F.col("id"), (F.col("id") % 7).alias("bucket"), F.lit(run_id).alias("run_id"))


def check_storage(spark: SparkSession, output: str, run_id: str) -> dict[str, Any]:
    path = f"{output.rstrip('/')}/parquet"
    probe_frame(spark, run_id).write.mode("overwrite").parquet(path)
    back = spark.read.parquet(path)
    rows, buckets = back.count(), back.select("bucket").distinct().count()
    return {"path": path, "rows_written": PROBE_ROWS, "rows_read": rows, "ok": rows == PROBE_ROWS and buckets == 7}


def check_iceberg(spark: SparkSession, run_id: str, namespace: str) -> dict[str, Any]:
    catalog = iceberg_catalog(spark)
    if catalog is None:
        return {"available": False, "reason": "no Iceberg catalog configured (spark.sql.catalog.lake)"}
    table = f"{catalog}.{namespace}.probe"
    try:
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {catalog}.{namespace}")
        spark.sql(f"CREATE TABLE IF NOT EXISTS {table} (id BIGINT, bucket BIGINT, run_id STRING) USING iceberg")
        probe_frame(spark, run_id).writeTo(table).append()
        rows = spark.table(table).where(F.col("run_id") == run_id).count()
        snapshots = spark.sql(f"SELECT count(*) AS n FROM {table}.snapshots").first()["n"]
    except Exception as err:  # the report says what failed; the job still fails below
        return {"available": False, "table": table, "error": f"{type(err).__name__}: {err}"[:2000]}
    return {"available": rows == PROBE_ROWS, "table": table, "rows": rows, "snapshots": snapshots}


def iceberg_version(spark: SparkSession) -> str | None:
    try:
        return spark._jvm.org.apache.iceberg.IcebergBuild.version()
    except Exception:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platform_check", description=__doc__)
    parser.add_argument("--output", required=True, help="s3:// or local folder for probe data and report")
    parser.add_argument("--run-id", default=time.strftime("%Y%m%dT%H%M%S"))
    parser.add_argument("--namespace", default="platform_check", help="Iceberg namespace for the probe table")
    parser.add_argument("--require-iceberg", default="false", choices=["true", "false"])
    args = parse_job_args(parser, argv)

    spark = get_spark("platform_check")
    report = {
        "run_id": args.run_id,
        "platform": platform_of(spark),
        "spark_version": spark.version,
        "python_version": sys.version.split()[0],
        "iceberg_version": iceberg_version(spark),
        "storage": check_storage(spark, args.output, args.run_id),
        "iceberg": check_iceberg(spark, args.run_id, args.namespace),
    }
    line = json.dumps(report, sort_keys=True)
    print(f"PLATFORM_CHECK_REPORT {line}", flush=True)
    spark.createDataFrame([(line,)], "value string").coalesce(1).write.mode("overwrite").text(
        f"{args.output.rstrip('/')}/report"
    )
    failed = not report["storage"]["ok"] or (args.require_iceberg == "true" and not report["iceberg"]["available"])
    spark.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
