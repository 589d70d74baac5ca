"""Collecting runs into the ledger against the local stack: complete, priced, tagged, idempotent."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pyarrow.parquet as pq
import pytest

from local.aws.history import post_job_runs
from local.seeds.aws_world import DATA_BUCKET
from local.seeds.cost_history import seed_cost_history
from operators.cost import collect as cost_collect
from operators.cost import ledger as cost_ledger

pytestmark = pytest.mark.stack

NOW = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def history(stack):
    return seed_cost_history(stack, end=NOW, weeks=5)


@pytest.fixture
def ledger_uri():
    return f"s3://{DATA_BUCKET}/tests/cost-{uuid.uuid4().hex[:8]}/ledger"


def clients(stack):
    return stack.boto3_client("glue"), stack.boto3_client("emr-serverless"), stack.boto3_client("s3")


def collect(stack, ledger_uri, now=NOW):
    glue, emr, s3 = clients(stack)
    return cost_collect.collect(glue, emr, s3, ledger_uri, ACCOUNT, now=now, lookback=dt.timedelta(weeks=6))


def ledger_rows(s3, ledger_uri) -> list[dict]:
    bucket, prefix = cost_ledger.split_uri(ledger_uri)
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/day="):
        for obj in page.get("Contents", []):
            day = obj["Key"].split("day=")[1].split("/")[0]
            for row in pq.read_table(
                io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            ).to_pylist():
                assert row["started_at"].date().isoformat() == day
                rows.append(row)
    return rows


def test_collect_prices_and_tags_every_finished_run_once(stack, history, ledger_uri):
    summary = collect(stack, ledger_uri)
    everything = ledger_rows(stack.boto3_client("s3"), ledger_uri)
    keys = [(r["platform"], r["run_id"]) for r in everything]
    assert len(keys) == len(set(keys))
    # The session's stack is shared: other tests' runs are in the ledger too; these are this module's.
    rows = [r for r in everything if (r["platform"], r["run_id"]) in history["run_ids"]]
    assert len(rows) == len(history["run_ids"]) == history["glue_runs"] + history["emr_runs"]
    assert summary["problems"] == []

    by_job = {}
    for row in rows:
        by_job.setdefault(row["job_name"], []).append(row)
    assert {r["team"] for r in by_job["sales-nightly"]} == {"analytics"}
    assert {r["remediate"] for r in by_job["sandbox-explore"]} == {"false"}
    assert {r["cost_basis"] for r in by_job["ml-features"]} == {"dpu_seconds"}  # Flex: billed DPU-seconds
    assert {r["cost_basis"] for r in by_job["sessionize"]} == {"billed_utilization"}
    assert {r["architecture"] for r in by_job["sessionize"]} == {"ARM64"}
    legacy = by_job["legacy-report"][0]  # Glue 1.0, 10 x Standard, runs of 4-8 minutes: the 10-minute minimum
    assert float(legacy["cost_usd"]) == pytest.approx(10 * 600 / 3600 * 0.44, abs=1e-9)
    states = {r["state"] for r in rows}
    assert {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "SUCCESS"} <= states
    retries = [r for r in rows if r["attempt"] == 1]
    assert retries and all(r["previous_run_id"] for r in retries)
    assert all(r["cost_usd"] is not None and not r["cost_estimated"] for r in rows)


def test_rerun_and_overlapping_window_add_nothing(stack, history, ledger_uri):
    first = collect(stack, ledger_uri)
    assert first["added"] > 0
    s3 = stack.boto3_client("s3")
    count = len(ledger_rows(s3, ledger_uri))
    again = collect(stack, ledger_uri)
    assert again["added"] == 0 and len(ledger_rows(s3, ledger_uri)) == count
    cost_ledger.write_watermark(s3, ledger_uri, {"glue": NOW - dt.timedelta(days=10),
                                                 "emr_serverless": NOW - dt.timedelta(days=10)})  # fmt: skip
    overlapping = collect(stack, ledger_uri)
    assert sum(overlapping["runs"].values()) > 0  # the window did re-read ten days of runs
    assert overlapping["added"] == 0 and len(ledger_rows(s3, ledger_uri)) == count


def test_a_run_still_going_is_collected_once_it_ends(stack, history, ledger_uri):
    collect(stack, ledger_uri)
    started = NOW + dt.timedelta(minutes=10)
    run = {"JobName": "sales-nightly", "Id": f"jr_live{uuid.uuid4().hex}", "Attempt": 0, "JobRunState": "RUNNING",
           "StartedOn": started, "GlueVersion": "4.0", "WorkerType": "G.1X", "NumberOfWorkers": 10}  # fmt: skip
    post_job_runs(stack.info()["moto"]["endpoint_url"], glue=[run])
    later = NOW + dt.timedelta(minutes=30)
    summary = collect(stack, ledger_uri, now=later)
    s3 = stack.boto3_client("s3")
    assert run["Id"] not in {r["run_id"] for r in ledger_rows(s3, ledger_uri)}
    assert dt.datetime.fromisoformat(summary["watermark"]["glue"]) <= started

    done = {**run, "JobRunState": "SUCCEEDED", "ExecutionTime": 3600, "CompletedOn": started + dt.timedelta(hours=1)}
    post_job_runs(stack.info()["moto"]["endpoint_url"], glue=[done])
    summary = collect(stack, ledger_uri, now=later + dt.timedelta(hours=2))
    collected = [r for r in ledger_rows(s3, ledger_uri) if r["run_id"] == run["Id"]]
    assert len(collected) == 1 and collected[0]["state"] == "SUCCEEDED"
    assert float(collected[0]["cost_usd"]) == pytest.approx(4.40)
