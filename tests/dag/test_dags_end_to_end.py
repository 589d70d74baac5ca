"""Every DAG in dags/ runs end to end with `airflow dags test` against the local stack, on each
Spark platform: ``local`` (spark-submit on the worker), ``glue`` and ``emr_serverless`` (the
provider's operators, and the local stack's Glue or EMR Serverless runs the job).

Each run is checked the same way on every platform: every task succeeded, the Spark work really
went through the platform asked for (its Glue or EMR Serverless runs, all successful; none on
``local``), and the DAG's outputs (rows, files, reports, alerts) hold and are equal on every
platform that ran it in the session.

The whole matrix (each DAG on each platform) is ``make test-all``. ``make test`` runs a part
of it that still covers each DAG and each platform (``IN_MAKE_TEST``); the rest is marked
``full``.
"""

from __future__ import annotations

import json

import pytest

from local.launchers.demo import DEMO_CONF, DEMO_SETUP, dag_ids
from local.services.platform_runs import made_since, snapshot

pytestmark = [pytest.mark.stack, pytest.mark.slow]

PLATFORMS = ("local", "glue", "emr_serverless")
# DAGs whose Spark work does not follow the platform Variable: run once.
PLATFORM_FREE = {"glue_subnet_failover": "glue"}
# The part of the matrix make test runs: every DAG once, every platform at least twice.
IN_MAKE_TEST = {
    "cost_alerts": "glue",
    "cost_weekly_report": "emr_serverless",
    "glue_subnet_failover": "glue",
    "iceberg_maintenance": "local",
    "price_transparency_to_parquet": "emr_serverless",
    "redshift_quarterly_sales": "glue",
    "spark_platform_check": "local",
}
_seen: dict[str, tuple[str, dict]] = {}  # dag_id -> (platform, outputs) of its first run here


def matrix() -> list:
    cases = []
    for dag_id in dag_ids():
        for platform in (PLATFORM_FREE[dag_id],) if dag_id in PLATFORM_FREE else PLATFORMS:
            marks = [] if IN_MAKE_TEST.get(dag_id) == platform else [pytest.mark.full]
            cases.append(pytest.param(dag_id, platform, marks=marks, id=f"{dag_id}-{platform}"))
    return cases


def test_make_test_covers_each_dag_and_each_platform():
    assert set(IN_MAKE_TEST) == set(dag_ids())
    assert set(IN_MAKE_TEST.values()) == set(PLATFORMS)
    assert all(IN_MAKE_TEST[d] == p for d, p in PLATFORM_FREE.items())


@pytest.mark.parametrize(("dag_id", "platform"), matrix())
def test_dag_runs_end_to_end(airflow_runner, dag_id, platform):
    stack = airflow_runner.stack
    if dag_id in DEMO_SETUP:
        put = DEMO_SETUP[dag_id](stack)
        if dag_id == "price_transparency_to_parquet":
            as_new_file(stack, put, platform)
    before = snapshot(stack)
    with stack.variable_set("spark_platform", platform):
        result = airflow_runner.dags_test(dag_id, DEMO_CONF.get(dag_id), timeout=1500)
    states = airflow_runner.task_states(dag_id)
    assert states and set(states.values()) == {"success"}, (states, result.stdout[-5000:], result.stderr[-3000:])

    new = made_since(before, snapshot(stack))
    if dag_id not in PLATFORM_FREE:
        spark_kind = {"glue": "glue", "emr_serverless": "emr_serverless"}.get(platform)
        for kind, runs in new.items():
            if kind == spark_kind:
                assert runs, f"{dag_id} on {platform} made no {kind} run"
                assert set(runs.values()) == {"SUCCEEDED" if kind == "glue" else "SUCCESS"}, runs
            else:
                assert not runs, f"{dag_id} on {platform} made {kind} runs: {runs}"

    outputs = OUTPUTS[dag_id](airflow_runner, platform)
    if outputs is None:  # checked above, but not comparable from run to run
        return
    first = _seen.setdefault(dag_id, (platform, outputs))
    assert outputs == first[1], f"{dag_id}: outputs on {platform} differ from those on {first[0]}"


def as_new_file(stack, uri: str, platform: str) -> None:
    """The sample file under a name of this run's own: the DAG converts each source file once,
    so each platform's run gets one file it has not seen."""
    s3 = stack.boto3_client("s3")
    bucket, _, key = uri[5:].partition("/")
    folder, _, name = key.rpartition("/")
    s3.copy_object(Bucket=bucket, Key=f"{folder}/{platform}-{name}", CopySource={"Bucket": bucket, "Key": key})
    s3.delete_object(Bucket=bucket, Key=key)


# -- what each DAG made, as plain data (equal on every platform) ---------------------------------


def _platform_check(runner, platform: str) -> dict:
    report = runner.xcoms("spark_platform_check", "report")["return_value"]
    assert report["platform"] == platform, report
    assert report["storage"]["ok"], report
    return {"storage_ok": report["storage"]["ok"]}


def _price_transparency(runner, platform: str) -> dict:
    registered = runner.xcoms("price_transparency_to_parquet", "register")["return_value"]
    assert registered["rows"] > 0 and registered["sources"], registered
    glue = runner.stack.boto3_client("glue")
    database, table = registered["table"].split(".", 1)
    assert glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"]["Location"]
    return {"rows": registered["rows"], "files": len(registered["sources"])}


def _iceberg(runner, platform: str) -> dict:
    from operators.iceberg.settings import report_location

    cfg = runner.xcoms("iceberg_maintenance", "settings")["return_value"]
    s3 = runner.stack.boto3_client("s3")
    tables = {}
    for table in cfg["tables"]:
        bucket, _, key = report_location(cfg["report_uri"], cfg["run_key"], table)[5:].partition("/")
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        for entry in report["tables"]:
            before, after = entry["before"], entry["after"]
            assert after["data_files"] < before["data_files"], entry
            assert not entry.get("problems"), entry
            tables[entry["table"]] = {k: after[k] for k in ("data_files", "delete_files", "partitions")}
    return tables


def _redshift(runner, platform: str) -> dict:
    import re

    verdict = runner.xcoms("redshift_quarterly_sales", "verify_pushdown")["return_value"]
    assert verdict.startswith("pushdown verified"), verdict
    rows = re.search(r"(\d+) row\(s\) returned", verdict)
    return {"verdict": "pushdown verified", "rows": int(rows.group(1)) if rows else None}


def _cost_alerts(runner, platform: str) -> None:
    """Not compared: the ledger also holds the runs other tests made in this stack."""
    summary = runner.xcoms("cost_alerts", "alert")["return_value"]
    assert summary["violations"] > 0 and summary["sent"] + summary["already_sent"] == summary["violations"], summary


def _cost_report(runner, platform: str) -> None:
    """Not compared, for the same reason; the report is on S3 and was e-mailed."""
    summary = runner.xcoms("cost_weekly_report", "report")["return_value"]
    assert summary["ses_message_id"], summary
    bucket, _, key = summary["location"][5:].partition("/")
    assert b"<table" in runner.stack.boto3_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def _subnet(runner, platform: str) -> dict:
    chosen = runner.xcoms("glue_subnet_failover", "start_on_healthiest_subnet")
    return {"chosen": chosen.get("chosen_connection")}


OUTPUTS = {
    "spark_platform_check": _platform_check,
    "price_transparency_to_parquet": _price_transparency,
    "iceberg_maintenance": _iceberg,
    "redshift_quarterly_sales": _redshift,
    "cost_alerts": _cost_alerts,
    "cost_weekly_report": _cost_report,
    "glue_subnet_failover": _subnet,
}
