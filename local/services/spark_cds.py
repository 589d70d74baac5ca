"""Dump the JVM class archive that local Spark sessions and spark-submit runs start from.

``make install`` runs this once after fetching the jars (its ``class-archive`` step). A short
Spark session touches what the local pipelines use (Spark SQL, Parquet, JSON, and
Iceberg's writes, row-level deletes, procedures and metadata tables on a local table) and
the JVM writes every class it loaded to the archive when it exits
(``-XX:ArchiveClassesAtExit``). Later JVMs map the archive instead of loading and verifying
those classes again: see :func:`operators.spark.local_runner.class_sharing_options`.

The archive's name is a digest of the Java binary, pyspark's jars and the fetched jars, so a
new jar or Java makes a new archive and the old one is removed. Nothing here is needed for
correctness: without the archive, Spark only starts slower.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from local.paths import JARS
from local.seeds.iceberg_tables import LAUNCH_CONF
from local.services.spark_session import local_session, stop_session
from operators.spark.local_runner import CDS_QUIET, class_archive_path

log = logging.getLogger("spark_cds")


def exercise(spark, warehouse: Path) -> None:
    """Load the classes the local pipelines need: an Iceberg table through its life, JSON, Parquet."""
    spark.sql("CREATE TABLE cds.db.t (id BIGINT, p INT, note STRING) USING iceberg PARTITIONED BY (p) "
              "TBLPROPERTIES ('format-version' = '2', 'write.delete.mode' = 'merge-on-read')")  # fmt: skip
    rows = spark.range(0, 20_000).selectExpr("id", "CAST(id % 4 AS INT) AS p", "concat('n', id) AS note")
    rows.repartition(8).writeTo("cds.db.t").append()
    spark.sql("DELETE FROM cds.db.t WHERE id % 7 = 0")
    spark.sql("SELECT p, count(*), sum(length(note)) FROM cds.db.t GROUP BY p").collect()
    for call in (
        "rewrite_data_files(table => 'db.t', options => map('partial-progress.enabled', 'true'))",
        "rewrite_position_delete_files(table => 'db.t')",
        "rewrite_manifests(table => 'db.t')",
        "expire_snapshots(table => 'db.t', retain_last => 1)",
    ):
        spark.sql(f"CALL cds.system.{call}").collect()
    for meta in ("files", "snapshots", "manifests", "delete_files", "partitions"):
        spark.sql(f"SELECT * FROM cds.db.t.{meta}").collect()
    json_dir = warehouse / "json"
    json_dir.mkdir()
    (json_dir / "part.json").write_text('{"a": 1, "b": [{"c": "x"}]}\n{"a": 2, "b": []}\n')
    frame = spark.read.json(str(json_dir)).selectExpr("a", "explode_outer(b) AS b")
    frame.write.parquet(str(warehouse / "parquet"))
    spark.read.parquet(str(warehouse / "parquet")).count()


def dump(jars: Path = JARS) -> Path:
    """Dump the archive for the current jars unless it is there already; return its path."""
    archive = class_archive_path(jars)
    if archive.is_file():
        log.info("class archive present: %s", archive)
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    for stale in archive.parent.glob("spark-*.jsa*"):
        stale.unlink()
    partial = archive.with_suffix(".jsa.partial")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spark-cds-") as tmp:
        spark = local_session(
            "class-archive",
            **{
                **LAUNCH_CONF,
                "spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={partial} {CDS_QUIET}",
                "spark.sql.catalog.cds": "org.apache.iceberg.spark.SparkCatalog",
                "spark.sql.catalog.cds.type": "hadoop",
                "spark.sql.catalog.cds.warehouse": str(Path(tmp) / "warehouse"),
            },
        )
        try:
            exercise(spark, Path(tmp))
        finally:
            stop_session(spark)  # the JVM writes the archive as it exits
    if not partial.is_file():
        raise RuntimeError(f"the JVM wrote no class archive at {partial}")
    partial.rename(archive)
    log.info("class archive %s (%.0f MB) in %.1f s", archive, archive.stat().st_size / 1e6, time.monotonic() - started)
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
