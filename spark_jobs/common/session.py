"""Getting a SparkSession the same way on every platform.

Platform specifics (catalogs, S3 endpoints, jars) arrive as Spark properties from the
operator (``--conf`` on Glue, ``sparkSubmitParameters`` on EMR Serverless, spark-submit
locally), so jobs never branch on where they run.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

PLATFORM_CONF = "spark.mwaa_pipelines.platform"


def get_spark(app_name: str) -> SparkSession:
    return SparkSession.builder.appName(app_name).getOrCreate()


def platform_of(spark: SparkSession) -> str:
    """The platform the operator said it started us on (``unknown`` when run by hand)."""
    return spark.conf.get(PLATFORM_CONF, "unknown")


def iceberg_catalog(spark: SparkSession, preferred: str = "lake") -> str | None:
    """Name of the configured Iceberg catalog, or None when the session has none."""
    impl = spark.conf.get(f"spark.sql.catalog.{preferred}", None)
    if impl and "iceberg" in impl.lower():
        return preferred
    return None
