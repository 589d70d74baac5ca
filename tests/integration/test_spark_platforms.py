"""SparkScriptOperator on glue, emr_serverless and local, run by Airflow's own runner.

On glue / emr_serverless the provider's operators start real API calls against the
local stack, which executes the runs with local Spark (local/engines). On local the script
runs under spark-submit on the worker. On every platform the script's output is checked.
"""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from deploy.layout import ROOT
from tests.conftest import AirflowRunner

pytestmark = [pytest.mark.stack, pytest.mark.slow]
DAG_ID = "test_spark_platform_matrix"


@pytest.fixture(scope="module")
def matrix(stack, airflow_runner) -> AirflowRunner:
    folder = stack.home / "test-dags"
    folder.mkdir(exist_ok=True)
    (folder / "operators").unlink(missing_ok=True)
    (folder / "operators").symlink_to(ROOT / "operators", target_is_directory=True)
    shutil.copy(ROOT / "tests" / "dags" / "spark_platform_matrix.py", folder)
    return AirflowRunner(stack, folder)


def _output(stack) -> str:
    return f"s3://{stack.info()['seed']['buckets']['data']}/tests/matrix-{uuid.uuid4().hex[:8]}"


def _report(stack, output: str) -> dict:
    """The report platform_check.py wrote under ``output`` (so the script really ran)."""
    s3 = stack.boto3_client("s3")
    bucket, prefix = output[5:].split("/", 1)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/report/").get("Contents", [])]
    part = next((k for k in keys if "/part-" in k), None)
    assert part, f"no report under {output}/report/: the job did not run"
    return json.loads(s3.get_object(Bucket=bucket, Key=part)["Body"].read().decode().splitlines()[0])


def _ok(matrix: AirflowRunner, result) -> None:
    states = matrix.task_states(DAG_ID)
    assert states == {"run_script": "success"}, result.stdout[-4000:] + result.stderr[-4000:]


def test_glue(stack, matrix):
    output = _output(stack)
    result = matrix.dags_test(DAG_ID, {"platform": "glue", "output": output})
    _ok(matrix, result)
    glue = stack.boto3_client("glue")
    job = glue.get_job(JobName="mwaa-pipelines-platform_check")["Job"]
    assert job["Command"]["ScriptLocation"] == "s3://mwaa-pipelines-artifacts/spark_jobs/platform_check.py"
    assert "spark.mwaa_pipelines.platform=glue" in job["DefaultArguments"]["--conf"]
    runs = glue.get_job_runs(JobName="mwaa-pipelines-platform_check")["JobRuns"]
    (run,) = [r for r in runs if r["Arguments"].get("--output") == output]
    # The local stack ran it as Glue would: the script, spark_jobs.zip from --extra-py-files,
    # the properties of --conf, the Iceberg jars of --datalake-formats.
    assert run["JobRunState"] == "SUCCEEDED" and run["ExecutionTime"] > 0
    report = _report(stack, output)
    assert report["platform"] == "glue"
    assert report["storage"] == {"ok": True, "path": f"{output}/parquet", "rows_read": 1000, "rows_written": 1000}
    assert report["iceberg"]["available"] is True
    # The wait went through a trigger (deferrable) and came back to our operator.
    xcoms = matrix.xcoms(DAG_ID, "run_script")
    assert {"spark_platform_delegate", "glue_job_run_id"} <= set(xcoms)
    # The UI's extra link, stored by the worker when the task ended.
    assert xcoms["_link_GlueJobRunDetailsLink"] == (
        "https://console.aws.amazon.com/gluestudio/home?region=us-east-1"
        f"#/job/mwaa-pipelines-platform_check/run/{xcoms['glue_job_run_id']}"
    )


@pytest.fixture
def with_glue_connections(stack):
    """The spark_platform_config Variable with ``glue_connections`` set, for one test."""
    saved = stack.variable("spark_platform_config")

    def apply(names: list[str]) -> None:
        stack.set_variable("spark_platform_config", json.dumps({**json.loads(saved), "glue_connections": names}))

    yield apply
    stack.set_variable("spark_platform_config", saved)


def test_glue_in_a_vpc_runs_on_connections_ranked_as_the_subnet_operator_ranks_them(
    stack, matrix, with_glue_connections
):
    """The job's Connections are the healthy candidates in the order the healthiest-subnet
    operator gives them for the same candidates (test_glue_subnet_failover.HEALTHY), the
    unhealthy left out, and the run records the chosen one."""
    from operators.vpc.health import CONNECTION_ARG
    from tests.integration.test_glue_subnet_failover import ALL, HEALTHY

    with_glue_connections(ALL)
    output = _output(stack)
    result = matrix.dags_test(DAG_ID, {"platform": "glue", "output": output})
    _ok(matrix, result)
    glue = stack.boto3_client("glue")
    job = glue.get_job(JobName="mwaa-pipelines-platform_check")["Job"]
    assert job["Connections"]["Connections"] == HEALTHY
    (run,) = [r for r in glue.get_job_runs(JobName=job["Name"])["JobRuns"] if r["Arguments"].get("--output") == output]
    assert run["Arguments"][CONNECTION_ARG] == HEALTHY[0]
    ranking = matrix.xcoms(DAG_ID, "run_script")["glue_connection_ranking"]
    assert ranking["chosen"] == HEALTHY[0]
    assert "route table has no S3 gateway endpoint or NAT route" in result.stdout + result.stderr


def test_glue_in_a_vpc_with_no_healthy_connection_starts_nothing(stack, matrix, with_glue_connections):
    with_glue_connections(["glue-net-c1", "glue-net-c2"])
    output = _output(stack)
    result = matrix.dags_test(DAG_ID, {"platform": "glue", "output": output})
    assert matrix.task_states(DAG_ID) == {"run_script": "failed"}
    log = result.stdout + result.stderr
    assert "no healthy Glue connection for 2 workers among 2 candidates" in log, log[-3000:]
    runs = stack.boto3_client("glue").get_job_runs(JobName="mwaa-pipelines-platform_check")["JobRuns"]
    assert not [r for r in runs if r["Arguments"].get("--output") == output]


def test_emr_serverless(stack, matrix):
    output = _output(stack)
    result = matrix.dags_test(DAG_ID, {"platform": "emr_serverless", "output": output})
    _ok(matrix, result)
    emr = stack.boto3_client("emr-serverless")
    app = stack.info()["seed"]["emr_application_id"]
    runs = [
        emr.get_job_run(applicationId=app, jobRunId=r["id"])["jobRun"]
        for r in emr.list_job_runs(applicationId=app)["jobRuns"]
    ]
    mine = [r for r in runs if output in r.get("jobDriver", {}).get("sparkSubmit", {}).get("entryPointArguments", [])]
    assert len(mine) == 1
    # The local stack ran it as EMR Serverless would: the script, the jobs archive from
    # --py-files, the Iceberg runtime named by its path in the EMR image.
    assert mine[0]["state"] == "SUCCESS" and mine[0]["totalExecutionDurationSeconds"] > 0
    report = _report(stack, output)
    assert report["platform"] == "emr_serverless"
    assert report["storage"] == {"ok": True, "path": f"{output}/parquet", "rows_read": 1000, "rows_written": 1000}
    assert report["iceberg"]["available"] is True
    assert mine[0]["jobDriver"]["sparkSubmit"]["entryPoint"].endswith("/spark_jobs/platform_check.py")
    assert (
        "spark.mwaa_pipelines.platform=emr_serverless" in mine[0]["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]
    )
    xcoms = matrix.xcoms(DAG_ID, "run_script")
    assert "spark_platform_delegate" in xcoms
    # The UI's extra link: the run's dashboard URL, asked of EMR Serverless when the task ended.
    dashboard = emr.get_dashboard_for_job_run(applicationId=app, jobRunId=mine[0]["jobRunId"])["url"]
    assert xcoms["_link_EmrServerlessDashboardLink"] == dashboard


@pytest.mark.spark
def test_local_really_runs_the_script(stack, matrix):
    output = _output(stack)
    result = matrix.dags_test(DAG_ID, {"platform": "local", "output": output})
    _ok(matrix, result)
    report = _report(stack, output)
    assert report["platform"] == "local"
    assert report["spark_version"].startswith("3.5")
    assert report["storage"] == {"ok": True, "path": f"{output}/parquet", "rows_read": 1000, "rows_written": 1000}
    assert report["iceberg"]["available"] is True


def test_bad_platform_fails_with_a_clear_message(stack, matrix):
    result = matrix.dags_test(DAG_ID, {"platform": "databricks", "output": _output(stack)})
    assert matrix.task_states(DAG_ID) == {"run_script": "failed"}
    assert "unknown Spark platform 'databricks'" in result.stdout + result.stderr
