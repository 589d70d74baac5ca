"""Local Spark reaches the stack's S3: Parquet over s3a, Iceberg through S3FileIO with tags."""

from __future__ import annotations

import logging
import os
import sys
import uuid

import pytest

from local.paths import JARS
from local.services.stack import spark_platform_config
from operators.spark.local_runner import s3_endpoint_conf
from operators.spark.settings import merge_settings

pytestmark = [pytest.mark.stack, pytest.mark.spark]
# py4j logs from a finalizer at interpreter exit, after logging has shut down.
logging.getLogger("py4j").setLevel(logging.WARNING)

WRITE_TAG = ("pipeline", "foundation-test")


@pytest.fixture(scope="module")
def spark(stack):
    from pyspark.sql import SparkSession

    info = stack.info()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "PYSPARK_PYTHON": sys.executable,
    }.items():
        os.environ[key] = value  # the JVM inherits these at launch
    cfg = spark_platform_config(info)
    cfg["iceberg_catalog"][f"s3.write.tags.{WRITE_TAG[0]}"] = WRITE_TAG[1]
    settings = merge_settings(cfg, "local", None)
    conf = {
        **s3_endpoint_conf(info["moto"]["endpoint_url"], "us-east-1", settings.iceberg_catalog_name),
        **settings.iceberg_spark_conf(),
    }
    builder = (
        SparkSession.builder.master("local[1]")
        .appName("storage-test")
        .config("spark.jars", ",".join(str(j) for j in sorted(JARS.glob("*.jar"))))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()


def test_parquet_round_trip_over_s3a(spark, stack):
    bucket = stack.info()["seed"]["buckets"]["data"]
    path = f"s3://{bucket}/tests/{uuid.uuid4().hex}/numbers"
    spark.range(500).selectExpr("id", "id % 5 AS k").write.partitionBy("k").parquet(path)
    back = spark.read.parquet(path)
    assert back.count() == 500
    assert sorted(r.k for r in back.select("k").distinct().collect()) == [0, 1, 2, 3, 4]
    keys = stack.boto3_client("s3").list_objects_v2(Bucket=bucket, Prefix=path.split(f"{bucket}/")[1])["Contents"]
    assert any(k["Key"].endswith(".parquet") and "/k=3/" in k["Key"] for k in keys)


def test_iceberg_s3fileio_writes_tagged_objects(spark, stack):
    table = f"lake.tests.tagged_{uuid.uuid4().hex[:8]}"
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.tests")
    spark.sql(f"CREATE TABLE {table} (id BIGINT, name STRING) USING iceberg")
    spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "id bigint, name string").writeTo(table).append()
    assert spark.table(table).count() == 3

    files = [r.file_path for r in spark.sql(f"SELECT file_path FROM {table}.files").collect()]
    assert files, "the table should have data files"
    s3 = stack.boto3_client("s3")
    for file_path in files:
        bucket, key = file_path.split("://", 1)[1].split("/", 1)
        assert bucket == stack.info()["seed"]["buckets"]["lake"]
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
        assert tags.get(WRITE_TAG[0]) == WRITE_TAG[1], f"{file_path} lacks the write tag: {tags}"
