"""Iceberg tables that need maintenance, on the local stack, for the demo, tests and benchmark.

:func:`lake_session` is an in-process Spark session whose ``lake`` catalog is the stack's
(JDBC catalog on the local PostgreSQL, S3FileIO on moto) with a storage policy's tags, as
the maintenance job configures it. :func:`build_fragmented_table` makes the table shape
maintenance exists for: many small files in some partitions, healthy partitions next to
them, row-level deletes, and several snapshots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from local.services.spark_session import local_session
from local.services.stack import spark_platform_config
from operators.spark.local_runner import s3_endpoint_conf
from operators.spark.settings import ICEBERG_EXTENSIONS, merge_settings
from spark_jobs.iceberg.policy import StorageSettings

CATALOG = "lake"
# Settings a session only takes at launch; none of them depends on where the stack listens.
LAUNCH_CONF = {
    "spark.sql.extensions": ICEBERG_EXTENSIONS,
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}


def lake_conf(info: dict, storage: StorageSettings | None = None) -> dict[str, str]:
    """Spark properties for the stack's Iceberg catalog (and S3) with ``storage``'s FileIO settings."""
    cfg = spark_platform_config(info)
    if storage is not None:
        cfg["iceberg_catalog"].update(storage.catalog_properties())
    settings = merge_settings(cfg, "local", None)
    return {
        **s3_endpoint_conf(info["moto"]["endpoint_url"], "us-east-1", settings.iceberg_catalog_name),
        **settings.iceberg_spark_conf(),
        **LAUNCH_CONF,
    }


def _local_aws_environment() -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}.items():  # fmt: skip
        os.environ.setdefault(key, value)  # the JVM inherits these at launch


def lake_session(info: dict, app: str, storage: StorageSettings | None = None, cores: int = 2):
    _local_aws_environment()
    return local_session(app, cores, **lake_conf(info, storage))


def unattached_lake_session(app: str, cores: int = 2):
    """A session that can start while the stack is still starting; :func:`attach_lake` points it there.

    A JVM takes seconds to start and warm up, about as long as the stack: starting both at
    once saves that much of every run that needs both.
    """
    _local_aws_environment()
    return local_session(app, cores, **LAUNCH_CONF)


def attach_lake(spark, info: dict, storage: StorageSettings | None = None) -> None:
    """Give a running session the stack's catalog and S3 endpoint (what :func:`lake_conf` sets at launch).

    Catalogs are read from the session's settings on first use, and Hadoop's S3 settings are
    runtime settings too; a launch-only setting that differs fails here, loudly.
    """
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in lake_conf(info, storage).items():
        if key.startswith("spark.hadoop."):
            hadoop.set(key.removeprefix("spark.hadoop."), value)
        elif spark.conf.get(key, None) != value:
            spark.conf.set(key, value)


@dataclass(frozen=True)
class FragmentedTable:
    """Shape of a table built by :func:`build_fragmented_table`."""

    small_partitions: int = 4  # partitions written as many tiny files
    files_per_small_partition: int = 40
    rows_per_small_partition: int = 4_000
    healthy_partitions: int = 4  # partitions written as one large file each
    rows_per_healthy_partition: int = 200_000
    delete_every: int = 0  # merge-on-read delete of ids divisible by this in partition 0 (0: none)


def build_fragmented_table(spark, table: str, shape: FragmentedTable = FragmentedTable()) -> None:
    """Create ``table`` (replacing it) and fill it as ``shape`` says: tiny files, healthy files, deletes, one commit each.

    ``write.distribution-mode=none`` keeps each write task's files apart, which is how
    streaming and many small batch appends fragment real tables.
    """
    namespace = table.rsplit(".", 1)[0]
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
    spark.sql(f"DROP TABLE IF EXISTS {table}")
    spark.sql(
        f"CREATE TABLE {table} (id BIGINT, p INT, amount DOUBLE, note STRING) USING iceberg PARTITIONED BY (p) "
        "TBLPROPERTIES ('format-version' = '2', 'write.delete.mode' = 'merge-on-read', "
        "'write.update.mode' = 'merge-on-read', 'write.distribution-mode' = 'none')"
    )
    rows = shape.rows_per_small_partition * shape.small_partitions
    if rows:
        (
            spark.range(0, rows)
            .selectExpr(
                "id",
                f"CAST(id % {shape.small_partitions} AS INT) AS p",
                "id * 0.25 AS amount",
                "concat('small-', id) AS note",
            )  # fmt: skip
            .repartition(shape.files_per_small_partition)
            .writeTo(table)
            .append()
        )
    healthy = shape.healthy_partitions * shape.rows_per_healthy_partition
    if healthy:
        # One commit; one task (so one file) per partition, sorted so a task holding two writes each once.
        (
            spark.range(rows, rows + healthy)
            .selectExpr(
                "id",
                f"CAST({shape.small_partitions} + (id - {rows}) DIV {shape.rows_per_healthy_partition} AS INT) AS p",
                "id * 0.25 AS amount",
                "sha2(CAST(id AS STRING), 256) AS note",
            )  # fmt: skip
            .repartition(shape.healthy_partitions, "p")
            .sortWithinPartitions("p")
            .writeTo(table)
            .append()
        )
    if shape.delete_every:
        spark.sql(f"DELETE FROM {table} WHERE p = 0 AND id % {shape.delete_every} = 0")


def seed_demo_table(stack) -> str:
    """``make demo``'s input for ``iceberg_maintenance``: a fragmented table with deletes."""
    from local.services.spark_session import stop_session
    from local.services.stack import ICEBERG_DEMO_TABLE

    storage = StorageSettings(write_tags={"lifecycle": "live"}, delete_tags={"deleted": "true"})
    spark = lake_session(stack.info(), "iceberg-demo-table", storage)
    try:
        table = f"{CATALOG}.{ICEBERG_DEMO_TABLE}"
        build_fragmented_table(spark, table, FragmentedTable(rows_per_healthy_partition=50_000, delete_every=5))
        files = spark.sql(f"SELECT count(*) AS n FROM {table}.files").first().n
    finally:
        stop_session(spark)
    return f"{table} with {files} files"
