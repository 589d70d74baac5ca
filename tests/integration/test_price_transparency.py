"""The price-transparency pipeline against the local stack: the job on s3://, discovery,
validation, Glue registration, and the DAG end to end."""

from __future__ import annotations

import gzip
import json
import sqlite3
import uuid

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from bench.gen_mrf import write_file
from operators.price_transparency import tasks as pt
from spark_jobs import json_to_parquet as job
from spark_jobs.mrf.grain import COLUMN_NAMES
from tests.unit.test_mrf_flatten import EXAMPLES, as_multiset, expected_rows

pytestmark = pytest.mark.stack
BUCKET = "mwaa-pipelines-data"


@pytest.fixture
def s3_env(monkeypatch, aws_env):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_env)
    return aws_env


def s3_rows(endpoint: str, uri: str) -> list[dict]:
    fs = pafs.S3FileSystem(endpoint_override=endpoint.split("://")[1], scheme="http", region="us-east-1",
                           access_key="testing", secret_key="testing")  # fmt: skip
    files = [
        f.path
        for f in fs.get_file_info(pafs.FileSelector(uri.removeprefix("s3://"), recursive=True))
        if f.path.endswith(".parquet")
    ]
    return ds.dataset(files, filesystem=fs, format="parquet").to_table().select(list(COLUMN_NAMES)).to_pylist()


def upload(stack, path, key) -> str:
    stack.boto3_client("s3").upload_file(str(path), BUCKET, key)
    return f"s3://{BUCKET}/{key}"


def test_job_on_s3_publishes_exact_rows_and_keeps_previous_output_on_failure(stack, s3_env, tmp_path):
    run = uuid.uuid4().hex[:8]
    source = upload(stack, EXAMPLES[3], f"t-{run}/in/{EXAMPLES[3].name}")
    output = f"s3://{BUCKET}/t-{run}/out"
    args = job.parse_job_args(job.build_parser(), ["--input", source, "--output", output, "--buckets", "4"])
    manifest = job.run(args)
    doc = json.loads(EXAMPLES[3].read_text())
    rows = s3_rows(s3_env, output)
    assert as_multiset(rows) == as_multiset(expected_rows(doc, source)) and manifest["rows"] == len(rows)
    s3 = stack.boto3_client("s3")
    assert pt.read_manifest(s3, output)["rows"] == len(rows)

    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(gzip.compress(EXAMPLES[3].read_bytes())[:-30])
    bad = upload(stack, broken, f"t-{run}/in/broken.json.gz")
    with pytest.raises(Exception, match="truncated gzip"):
        job.run(job.parse_job_args(job.build_parser(), ["--input", bad, "--output", output]))
    assert as_multiset(s3_rows(s3_env, output)) == as_multiset(rows)  # previous output intact
    leftovers = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"t-{run}/out/_staging/").get("KeyCount", 0)
    assert leftovers == 0


def test_discover_validate_register(stack, s3_env, tmp_path):
    run = uuid.uuid4().hex[:8]
    s3, glue = stack.boto3_client("s3"), stack.boto3_client("glue")
    sources = [upload(stack, p, f"t-{run}/incoming/{p.name}") for p in EXAMPLES[:2]]
    table_root = f"s3://{BUCKET}/t-{run}/table"
    found = pt.discover(s3, f"s3://{BUCKET}/t-{run}/incoming/", table_root)
    assert [f["source"] for f in found] == sorted(sources)
    assert pt.discover(s3, sources[0], table_root)[0]["output"] == pt.output_for(table_root, sources[0])
    for f in found:
        job.run(job.parse_job_args(job.build_parser(), ["--input", f["source"], "--output", f["output"],
                                                        "--buckets", "4"]))  # fmt: skip
    assert pt.discover(s3, f"s3://{BUCKET}/t-{run}/incoming/", table_root) == []  # converted: skipped
    assert len(pt.discover(s3, f"s3://{BUCKET}/t-{run}/incoming/", table_root, reprocess=True)) == 2

    summaries = pt.validate(s3, [f["output"] for f in found])
    assert [s["rows"] for s in summaries] == [len(expected_rows(json.loads(p.read_text()), "x")) for p in EXAMPLES[:2]]
    database, table = f"pt_{run}", "rates"
    first = pt.register(glue, database, table, table_root, summaries)
    expected_partitions = sum(len(s["buckets"]) for s in summaries)
    assert first == {"created": expected_partitions, "removed": 0}
    assert pt.register(glue, database, table, table_root, summaries) == {"created": 0, "removed": 0}
    described = glue.get_table(DatabaseName=database, Name=table)["Table"]
    assert [c["Name"] for c in described["StorageDescriptor"]["Columns"]] == list(COLUMN_NAMES)
    assert [k["Name"] for k in described["PartitionKeys"]] == ["source_key", "billing_code_bucket"]
    parts = glue.get_partitions(DatabaseName=database, TableName=table)["Partitions"]
    assert all(p["StorageDescriptor"]["Location"].startswith(table_root) for p in parts)

    # a tampered output is caught
    key = (
        f"t-{run}/table/source_key={found[0]['source_key']}/"
        + pt.read_manifest(s3, found[0]["output"])["files"][0]["path"]
    )
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"not parquet")
    with pytest.raises(RuntimeError, match="manifest says"):
        pt.validate(s3, [found[0]["output"]])


def test_dag_converts_registers_and_updates_the_asset(stack, airflow_runner, tmp_path):
    run = uuid.uuid4().hex[:8]
    path = tmp_path / "plan-a.json.gz"
    write_file(path, 1_500_000, seed=9, gzip=True)
    source = upload(stack, path, f"t-{run}/incoming/plan-a.json.gz")
    table_root = f"s3://{BUCKET}/t-{run}/table"
    conf = {"source_uri": source, "table_root": table_root, "buckets": 4}
    result = airflow_runner.dags_test("price_transparency_to_parquet", conf)
    states = airflow_runner.task_states("price_transparency_to_parquet")
    assert set(states.values()) == {"success"}, (states, result.stdout[-4000:])
    s3, glue = stack.boto3_client("s3"), stack.boto3_client("glue")
    manifest = pt.read_manifest(s3, pt.output_for(table_root, source))
    doc = json.loads(gzip.decompress(path.read_bytes()))
    assert manifest["rows"] == len(expected_rows(doc, source))
    parts = glue.get_partitions(DatabaseName="price_transparency", TableName="in_network_rates")["Partitions"]
    assert {p["Values"][1] for p in parts if p["Values"][0] == pt.source_key(source)} == {"00", "01", "02", "03"}
    with sqlite3.connect(f"file:{airflow_runner.db}?mode=ro", uri=True) as conn:
        extras = [json.loads(e) for (e,) in conn.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.name = 'price_transparency_in_network_rates'")]  # fmt: skip
    assert any(e.get("rows") == manifest["rows"] and table_root in e.get("location", "") for e in extras), extras
