"""The class archive ``make`` dumps is one the JVM really maps (a stale one would be ignored in silence)."""

import pytest

from local.paths import JARS
from local.services.spark_session import local_session, stop_session
from operators.spark.local_runner import class_archive_path


@pytest.mark.spark
def test_local_spark_loads_most_classes_from_the_archive(tmp_path):
    assert class_archive_path(JARS).is_file(), "no class archive: `make class-archive` failed"
    log = tmp_path / "classes.txt"
    spark = local_session(
        "class-archive-check", 1, **{"spark.driver.extraJavaOptions": f"-Xlog:class+load=info:file={log}"}
    )
    try:
        assert spark.range(100).selectExpr("sum(id) AS s").first().s == 4950
    finally:
        stop_session(spark)
    sources = [line.rsplit("source: ", 1)[-1].strip() for line in log.read_text().splitlines() if "source: " in line]
    from_archive = sum(s.startswith("shared objects file (top)") for s in sources)
    # Without the archive every Spark class comes from a jar; with it most do not.
    assert from_archive > len(sources) / 2, f"{from_archive} of {len(sources)} classes from the archive"
