"""Iceberg maintenance against the local stack: real S3 tag calls on moto, JDBC catalog on PostgreSQL.

Each test checks the job's outcome independently of the job's own report: rows read back
and compared, objects listed and their tags read with boto3.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid

import pytest

from local.aws.faults import post_s3_deny
from local.seeds.iceberg_tables import FragmentedTable, build_fragmented_table, lake_session
from spark_jobs import iceberg_maintenance as job
from spark_jobs.iceberg.policy import storage_from

pytestmark = [pytest.mark.stack, pytest.mark.spark]
logging.getLogger("py4j").setLevel(logging.WARNING)

STORAGE = storage_from({"write_tags": {"lifecycle": "live", "team": "data"}, "delete_tags": {"deleted": "true"}})
POLICY = {"target_file_size_bytes": 1024 * 1024, "min_input_files": 5, "snapshot_max_age_days": 0, "retain_last": 1}
SHAPE = FragmentedTable(small_partitions=3, files_per_small_partition=24, rows_per_small_partition=1_500,
                        healthy_partitions=2, rows_per_healthy_partition=60_000, delete_every=7)  # fmt: skip
LATER = (dt.datetime.now(dt.UTC) + dt.timedelta(days=4)).isoformat()  # every file is past the orphan age


@pytest.fixture(scope="module")
def spark(stack):
    from local.services.spark_session import stop_session

    session = lake_session(stack.info(), "test-iceberg-maintenance", STORAGE)
    yield session
    stop_session(session)


@pytest.fixture(scope="module")
def s3(stack):
    return stack.boto3_client("s3")


def new_table(spark, shape: FragmentedTable = SHAPE) -> str:
    table = f"lake.maint.t_{uuid.uuid4().hex[:8]}"
    build_fragmented_table(spark, table, shape)
    return table


def run_job(spark, table: str, *extra: str, policy: dict | None = None) -> dict:
    argv = ["--table", table, "--policy", json.dumps(policy or POLICY), "--storage",
            json.dumps({"write_tags": STORAGE.write_tags, "delete_tags": STORAGE.delete_tags}), "--now", LATER, *extra]  # fmt: skip
    return job.run(job.parse_job_args(job.build_parser(), argv), spark)


def rows(spark, table: str, snapshot: int | None = None) -> list[tuple]:
    version = f" VERSION AS OF {snapshot}" if snapshot else ""
    return sorted(tuple(r) for r in spark.sql(f"SELECT id, p, amount, note FROM {table}{version}").collect())


def files_by_partition(spark, table: str) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for r in spark.sql(f"SELECT partition.p AS p, file_path FROM {table}.data_files").collect():
        out.setdefault(r.p, set()).add(r.file_path)
    return out


def objects(s3, spark, table: str) -> set[str]:
    location = spark.sql(f"DESCRIBE TABLE EXTENDED {table}").where("col_name = 'Location'").first().data_type
    bucket, prefix = location.split("://", 1)[1].split("/", 1)
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys.update(f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []))
    return keys


def tags(s3, uri: str) -> dict[str, str]:
    bucket, key = uri.split("://", 1)[1].split("/", 1)
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def referenced(spark, table: str) -> set[str]:
    q = (f"SELECT file_path AS f FROM {table}.all_files UNION SELECT path FROM {table}.all_manifests "
         f"UNION SELECT manifest_list FROM {table}.snapshots")  # fmt: skip
    return {r.f for r in spark.sql(q).collect()}


def test_compacts_only_unhealthy_partitions_tags_everything_and_deletes_nothing(spark, s3):
    table = new_table(spark)
    before_rows = rows(spark, table)
    before_files = files_by_partition(spark, table)
    before_objects = objects(s3, spark, table)
    assert all(len(before_files[p]) > 5 for p in range(3)) and all(len(before_files[p]) == 1 for p in (3, 4))

    report = run_job(spark, table)
    assert report["ok"], report.get("error")
    t = report["tables"][0]
    # Partition 0's delete wrote one position delete file per data file: those pile up too.
    assert [a["kind"] for a in t["plan"]["actions"]] == ["rewrite_data_files", "rewrite_position_delete_files",
                                                         "expire_snapshots", "remove_orphan_files"]  # fmt: skip
    assert t["plan"]["actions"][0]["partitions"] == 3

    # Content: the same rows, and the healthy partitions' files were not touched.
    assert rows(spark, table) == before_rows
    after_files = files_by_partition(spark, table)
    assert after_files[3] == before_files[3] and after_files[4] == before_files[4]
    assert all(len(after_files[p]) == 1 and not (after_files[p] & before_files[p]) for p in range(3))
    assert t["before"]["small_files"] > t["after"]["small_files"] and t["bytes_rewritten"] > 0
    assert t["content_checks"] and all(c["equal"] for c in t["content_checks"])
    # The check read the compacted partitions' rows, and only those.
    compacted_rows = sum(1 for r in before_rows if r[1] in (0, 1, 2))
    assert [c["rows"] for c in t["content_checks"]] == [compacted_rows] * len(t["content_checks"])
    assert all(f"`p` = {p}" in c["scope"] for p in range(3) for c in t["content_checks"])

    # S3: nothing disappeared; everything still referenced carries the write tags (the files
    # written before the run too: the session's catalog had the same policy); everything
    # no longer referenced carries the delete tag.
    after_objects = objects(s3, spark, table)
    assert before_objects <= after_objects
    live = referenced(spark, table)
    for uri in {f for fs in after_files.values() for f in fs}:
        assert {"lifecycle": "live", "team": "data"}.items() <= tags(s3, uri).items(), uri
    removed = {u for u in after_objects - live if not u.endswith(".metadata.json")}
    assert len(removed) >= sum(len(before_files[p]) for p in range(3))
    for uri in removed:
        # Iceberg adds the delete tag to the tags the file was written with.
        assert {"lifecycle": "live", "team": "data", "deleted": "true"}.items() <= tags(s3, uri).items(), uri
    assert t["delete_tags"]["coverage"] == 1.0 and t["delete_tags"]["hard_deleted"] == 0
    assert t["write_tags"]["coverage"] == 1.0 and t["write_tags"]["checked"] >= 3

    props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}
    assert props["s3.delete-enabled"] == "false" and props["s3.write.tags.team"] == "data"
    assert props["s3.delete.tags.deleted"] == "true"

    # A second run finds a healthy table: nothing to compact, properties unchanged.
    again = run_job(spark, table)["tables"][0]
    assert again["properties_changed"] == {}
    assert "rewrite_data_files" not in [a["kind"] for a in again["plan"]["actions"]]


def test_dry_run_plans_and_changes_nothing(spark, s3):
    table = new_table(spark, FragmentedTable(small_partitions=2, files_per_small_partition=10, rows_per_small_partition=200,
                                             healthy_partitions=1, rows_per_healthy_partition=1000))  # fmt: skip
    snapshots = [r.snapshot_id for r in spark.sql(f"SELECT snapshot_id FROM {table}.snapshots").collect()]
    props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}
    before_objects = objects(s3, spark, table)
    report = run_job(spark, table, "--dry-run")
    t = report["tables"][0]
    assert t["dry_run"] and t["plan"]["actions"][0]["kind"] == "rewrite_data_files"
    assert t["properties_to_change"]["s3.delete-enabled"] == "false"
    assert [r.snapshot_id for r in spark.sql(f"SELECT snapshot_id FROM {table}.snapshots").collect()] == snapshots
    assert {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()} == props
    assert objects(s3, spark, table) == before_objects
    assert all("lifecycle" not in tags(s3, u) or tags(s3, u)["lifecycle"] == "live" for u in before_objects)


def test_a_missing_tagging_permission_fails_the_run_loudly(spark, stack, caplog):
    """Iceberg only warns when it cannot tag a file it removes; the job's own check must fail."""
    table = new_table(spark, FragmentedTable(small_partitions=1, files_per_small_partition=8, rows_per_small_partition=400,
                                             healthy_partitions=0))  # fmt: skip
    endpoint = stack.info()["moto"]["endpoint_url"]
    bucket = stack.info()["seed"]["buckets"]["lake"]
    post_s3_deny(endpoint, bucket, "PutObjectTagging", deny=True)
    try:
        report = run_job(spark, table)
    finally:
        post_s3_deny(endpoint, bucket, "PutObjectTagging", deny=False)
    assert report["ok"] is False
    t = report["tables"][0]
    assert t["delete_tags"]["missing_tags"] > 0 and t["delete_tags"]["hard_deleted"] == 0
    assert "lack tags {'deleted': 'true'}" in report["error"] and table in report["error"]
    # The data itself is intact: compaction committed, nothing was deleted.
    assert spark.table(table).count() == 400


def committed_with_retries(spark, statement: str, attempts: int = 6) -> int:
    """Run a write the way a production writer does: re-run it when Iceberg refuses its commit.

    Returns how many attempts lost a commit race (compaction replaced the files it read)."""
    from py4j.protocol import Py4JJavaError

    for attempt in range(attempts):
        try:
            spark.sql(statement)
            return attempt
        except Py4JJavaError as exc:
            text = str(exc.java_exception)
            if "ValidationException" not in text and "CommitFailedException" not in text:
                raise
    raise AssertionError(f"{statement} lost {attempts} commit races in a row")


def test_concurrent_append_and_delete_during_compaction_lose_nothing(spark):
    table = new_table(spark, FragmentedTable(small_partitions=4, files_per_small_partition=30, rows_per_small_partition=2_000,
                                             healthy_partitions=1, rows_per_healthy_partition=5_000))  # fmt: skip
    before = rows(spark, table)
    started = threading.Event()

    class Started(logging.Handler):
        def emit(self, record):
            if "rewrite_data_files(" in record.getMessage():
                started.set()

    handler = Started(level=logging.INFO)
    source = logging.getLogger("spark_jobs.iceberg.table")
    source.addHandler(handler)
    source.setLevel(logging.INFO)
    result: dict = {}
    policy = {**POLICY, "max_concurrent_file_group_rewrites": 1, "partial_progress_max_commits": 4}
    worker = threading.Thread(target=lambda: result.update(run_job(spark, table, policy=policy)))
    try:
        worker.start()
        assert started.wait(120), "compaction never started"
        # A row-level (merge-on-read) delete and an append, committed while compaction runs.
        lost = committed_with_retries(spark, f"DELETE FROM {table} WHERE p IN (0, 1, 2, 3) AND id % 13 = 0")
        lost += committed_with_retries(spark, f"INSERT INTO {table} VALUES (-1, 0, 1.5, 'late'), (-2, 3, 2.5, 'late'), "
                                              "(-3, 9, 3.5, 'new partition')")  # fmt: skip
        worker.join(600)
    finally:
        source.removeHandler(handler)
    assert not worker.is_alive()
    expected = sorted([r for r in before if not (r[1] in (0, 1, 2, 3) and r[0] % 13 == 0)]
                      + [(-1, 0, 1.5, "late"), (-2, 3, 2.5, "late"), (-3, 9, 3.5, "new partition")])  # fmt: skip
    assert rows(spark, table) == expected
    assert result["ok"], result.get("error")
    t = result["tables"][0]
    assert t["commits"] >= 1 and all(c["equal"] for c in t["content_checks"])
    first = t["results"]["rewrite_data_files"]
    failed_groups = first.get("failed_data_files_count", 0)
    # The race was real: the writer lost a commit to compaction, or compaction lost file
    # groups to the writer's deletes (and compacted them on its retry).
    assert lost + failed_groups >= 1, (lost, first)
    if failed_groups:
        assert "rewrite_data_files_retry" in t["results"]
    # Every compacted partition ends healthy in spite of the race.
    assert t["after"]["small_files"] < t["before"]["small_files"]


def test_archive_registers_an_expired_snapshot_as_a_queryable_table(spark):
    table = new_table(spark, FragmentedTable(small_partitions=2, files_per_small_partition=6, rows_per_small_partition=300,
                                             healthy_partitions=1, rows_per_healthy_partition=500))  # fmt: skip
    first = spark.sql(f"SELECT snapshot_id FROM {table}.snapshots ORDER BY committed_at LIMIT 1").first().snapshot_id
    first_rows = rows(spark, table, first)
    report = run_job(spark, table)
    assert report["ok"], report.get("error")
    live = {r.snapshot_id for r in spark.sql(f"SELECT snapshot_id FROM {table}.snapshots").collect()}
    assert first not in live  # expired

    archive = f"lake.maint.archive_{uuid.uuid4().hex[:6]}"
    report = run_job(spark, table, "--archive-snapshot", str(first), "--archive-table", archive, "--dry-run")
    assert report["archive"]["rows"] == len(first_rows)
    assert rows(spark, archive) == first_rows
    props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {archive}").collect()}
    assert props["read-only"] == "true" and props["archive.snapshot-id"] == str(first)
    with pytest.raises(ValueError, match="not the current snapshot of any metadata file"):
        run_job(spark, table, "--archive-snapshot", "12345", "--archive-table", archive + "_x", "--dry-run")


def test_every_iceberg_table_of_a_glue_database_is_found(stack):
    from operators.iceberg.settings import iceberg_tables_of

    glue = stack.boto3_client("glue")
    database = f"maint_{uuid.uuid4().hex[:6]}"
    glue.create_database(DatabaseInput={"Name": database})
    for i in range(120):  # more than one GetTables page
        kind = "ICEBERG" if i % 3 else "hive"
        glue.create_table(DatabaseName=database, TableInput={"Name": f"t{i:03d}", "Parameters": {"table_type": kind}})
    found = iceberg_tables_of(glue, database)
    assert found == [f"{database}.t{i:03d}" for i in range(120) if i % 3]


def test_tiering_rule_on_the_delete_tag_keeps_the_buckets_other_rules(s3):
    from operators.s3_lifecycle import current_rules, ensure_rule, expiry_rule, tiering_rule

    bucket = f"tiering-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    other = expiry_rule("tmp/", 2, rule_id="someone-elses")
    assert ensure_rule(s3, bucket, other) == "created"
    rule = tiering_rule(STORAGE.delete_tags, 30, 180, prefix="warehouse/")
    assert ensure_rule(s3, bucket, rule) == "created"
    assert ensure_rule(s3, bucket, rule) == "unchanged"
    changed = tiering_rule(STORAGE.delete_tags, 7, 90, prefix="warehouse/")
    assert changed["ID"] == rule["ID"] and ensure_rule(s3, bucket, changed) == "updated"
    rules = {r["ID"]: r for r in current_rules(s3, bucket)}
    assert set(rules) == {"someone-elses", rule["ID"]}
    tiered = rules[rule["ID"]]
    assert tiered["Transitions"] == [{"Days": 7, "StorageClass": "GLACIER_IR"}] and tiered["Expiration"] == {"Days": 90}
    assert tiered["Filter"]["And"]["Tags"] == [{"Key": "deleted", "Value": "true"}]
    with pytest.raises(ValueError, match="later than"):
        tiering_rule(STORAGE.delete_tags, 30, 30)
