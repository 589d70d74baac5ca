"""The local stack's EMR Serverless runs execute their entry point, under EMR Serverless' rules.

Each test submits through boto3 to the stack's server, as the provider's operator does, and
reads back what GetJobRun and the monitoring logUri show (local/engines/emr_serverless.py).
"""

from __future__ import annotations

import gzip
import time
import uuid

import pytest
from botocore.exceptions import ClientError

pytestmark = [pytest.mark.stack, pytest.mark.slow]

TERMINAL = {"SUCCESS", "FAILED", "CANCELLED"}


@pytest.fixture
def emr(stack):
    return stack.boto3_client("emr-serverless")


@pytest.fixture
def world(stack):
    seeded = stack.info()["seed"]
    return {
        "app": seeded["emr_application_id"],
        "role": seeded["emr_execution_role_arn"],
        "bucket": seeded["buckets"]["artifacts"],
        "data": seeded["buckets"]["data"],
    }


def put_script(stack, world, body: str, prefix: str = "") -> str:
    key = f"tests/emr/{prefix}{uuid.uuid4().hex[:8]}.py"
    stack.boto3_client("s3").put_object(Bucket=world["bucket"], Key=key, Body=body.encode())
    return f"s3://{world['bucket']}/{key}"


def start(emr, world, entry_point: str, args=(), params: str = "", log_uri: str | None = None, **kwargs) -> str:
    overrides = {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}} if log_uri else {}
    driver = {"entryPoint": entry_point, "entryPointArguments": list(args)}
    if params:  # the API refuses an empty string
        driver["sparkSubmitParameters"] = params
    return emr.start_job_run(
        applicationId=kwargs.pop("app", world["app"]),
        executionRoleArn=world["role"],
        clientToken=uuid.uuid4().hex,
        jobDriver={"sparkSubmit": driver},
        configurationOverrides=overrides,
        **kwargs,
    )["jobRunId"]


def wait(emr, app: str, run_id: str, until=TERMINAL, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        run = emr.get_job_run(applicationId=app, jobRunId=run_id)["jobRun"]
        if not seen or seen[-1] != run["state"]:
            seen.append(run["state"])
        if run["state"] in until:
            run["seen"] = seen
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {seen[-1]} after {timeout}s (states seen: {seen})")


def driver_log(stack, log_uri: str, app: str, run_id: str, stream: str) -> str:
    bucket, prefix = log_uri[5:].split("/", 1)
    key = f"{prefix}applications/{app}/jobs/{run_id}/SPARK_DRIVER/{stream}.gz"
    body = stack.boto3_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return gzip.decompress(body).decode()


def test_a_run_executes_its_entry_point_with_its_arguments_and_py_files(stack, emr, world):
    helper = put_script(stack, world, "GREETING = 'hello from py-files'\n", prefix="helper_")
    module = helper.rsplit("/", 1)[1][:-3]
    script = put_script(
        stack, world,
        f"import sys\nimport {module}\nprint({module}.GREETING, sys.argv[1:])\n",
    )  # fmt: skip
    log_uri = f"s3://{world['bucket']}/tests/emr-logs/"
    run_id = start(emr, world, script, ["--day", "2026-12-01"], f"--py-files {helper}", log_uri)
    run = wait(emr, world["app"], run_id)
    assert run["state"] == "SUCCESS", run.get("stateDetails")
    assert run["seen"][0] in {"SUBMITTED", "PENDING", "SCHEDULED", "RUNNING"} and "RUNNING" in run["seen"]
    out = driver_log(stack, log_uri, world["app"], run_id, "stdout")
    assert "hello from py-files ['--day', '2026-12-01']" in out
    assert run["totalExecutionDurationSeconds"] >= 1


def test_a_failing_script_fails_the_run_with_its_error_in_state_details_and_logs(stack, emr, world):
    script = put_script(stack, world, "raise ValueError('the input folder is empty')\n")
    log_uri = f"s3://{world['bucket']}/tests/emr-logs/"
    run_id = start(emr, world, script, log_uri=log_uri)
    run = wait(emr, world["app"], run_id)
    assert run["state"] == "FAILED"
    assert "ValueError: the input folder is empty" in run["stateDetails"]
    # A PySpark driver's Python output, traceback included, goes to the driver's stdout.
    assert "ValueError: the input folder is empty" in driver_log(stack, log_uri, world["app"], run_id, "stdout")


def test_a_missing_entry_point_fails_the_run_naming_it(stack, emr, world):
    missing = f"s3://{world['bucket']}/tests/emr/nope-{uuid.uuid4().hex[:6]}.py"
    run = wait(emr, world["app"], start(emr, world, missing))
    assert run["state"] == "FAILED" and missing in run["stateDetails"]


def test_runs_past_their_timeout_end_on_emr_serverless_and_glue(stack, emr, world, hold_script):
    """EMR Serverless: executionTimeoutMinutes=1 cancels the run (AWS accepts 0 and up; moto
    alone refused under 5). Glue: the run's Timeout=1 ends it in TIMEOUT. Both in one minute."""
    from tests.integration.test_local_glue import new_job
    from tests.integration.test_local_glue import wait as wait_glue

    glue = stack.boto3_client("glue")
    job = new_job(stack, glue, hold_script, DefaultArguments={"--seconds": "600"})
    glue_run = glue.start_job_run(JobName=job, Timeout=1)["JobRunId"]
    script = put_script(stack, world, "import time\nprint('working', flush=True)\ntime.sleep(600)\n")
    run_id = start(emr, world, script, executionTimeoutMinutes=1)
    running = wait(emr, world["app"], run_id, until={"RUNNING"} | TERMINAL)
    assert running["state"] == "RUNNING" and running["executionTimeoutMinutes"] == 1
    run = wait(emr, world["app"], run_id, timeout=150)
    assert run["state"] == "CANCELLED"
    assert "execution timeout of 1 minutes" in run["stateDetails"]
    assert 60 <= run["totalExecutionDurationSeconds"] < 90
    timed_out = wait_glue(glue, job, glue_run, timeout=150)
    assert timed_out["JobRunState"] == "TIMEOUT" and timed_out["Timeout"] == 1
    assert 60 <= timed_out["ExecutionTime"] < 90
    assert "timed out" in timed_out["ErrorMessage"]


def test_cancel_job_run_ends_the_process(stack, emr, world):
    marker = f"tests/emr/cancelled-{uuid.uuid4().hex[:6]}"
    script = put_script(
        stack, world,
        "import time, boto3\ntime.sleep(15)\n"
        f"boto3.client('s3').put_object(Bucket='{world['data']}', Key='{marker}', Body=b'too late')\n",
    )  # fmt: skip
    run_id = start(emr, world, script)
    wait(emr, world["app"], run_id, until={"RUNNING"})
    emr.cancel_job_run(applicationId=world["app"], jobRunId=run_id)
    run = wait(emr, world["app"], run_id, timeout=60)
    assert run["state"] == "CANCELLED" and "CancelJobRun" in run["stateDetails"]
    time.sleep(20)  # past the moment the script would have written, had it lived
    with pytest.raises(ClientError):
        stack.boto3_client("s3").head_object(Bucket=world["data"], Key=marker)
    emr.cancel_job_run(applicationId=world["app"], jobRunId=run_id)  # a finished run stays as it is
    assert emr.get_job_run(applicationId=world["app"], jobRunId=run_id)["jobRun"]["state"] == "CANCELLED"


def test_resource_figures_follow_emr_serverless_billing(stack, emr, world):
    """Driver + 3 executors of 4 vCPU / 16 GB (14 GB plus overhead) by default; billed with a
    one-minute minimum per worker and storage over 20 GB per worker only."""
    script = put_script(stack, world, "print('short')\n")
    params = "--conf spark.emr-serverless.driver.disk=50g --conf spark.executor.cores=2"
    run = wait(emr, world["app"], start(emr, world, script, params=params))
    assert run["state"] == "SUCCESS", run.get("stateDetails")
    seconds = run["totalExecutionDurationSeconds"]
    assert seconds < 60  # a short run: the minimum applies to what is billed
    vcpu = 4 + 3 * 2
    total, billed = run["totalResourceUtilization"], run["billedResourceUtilization"]
    assert total["vCPUHour"] == pytest.approx(vcpu * seconds / 3600, abs=1e-5)
    assert total["memoryGBHour"] == pytest.approx(4 * 16 * seconds / 3600, abs=1e-5)
    assert billed["vCPUHour"] == pytest.approx(vcpu * 60 / 3600, abs=1e-5)
    assert billed["memoryGBHour"] == pytest.approx(4 * 16 * 60 / 3600, abs=1e-5)
    assert billed["storageGBHour"] == pytest.approx(30 * 60 / 3600, abs=1e-5)


def test_a_stopped_application_starts_for_a_run_unless_auto_start_is_off(stack, emr, world):
    on = emr.create_application(name=f"auto-{uuid.uuid4().hex[:6]}", releaseLabel="emr-7.12.0", type="SPARK")
    off = emr.create_application(
        name=f"manual-{uuid.uuid4().hex[:6]}", releaseLabel="emr-7.12.0", type="SPARK",
        autoStartConfiguration={"enabled": False},
    )  # fmt: skip
    script = put_script(stack, world, "print('ok')\n")
    run_id = start(emr, world, script, app=on["applicationId"])
    assert emr.get_application(applicationId=on["applicationId"])["application"]["state"] == "STARTED"
    assert wait(emr, on["applicationId"], run_id)["state"] == "SUCCESS"
    with pytest.raises(ClientError, match="auto-start is off"):
        start(emr, world, script, app=off["applicationId"])


def test_executed_runs_list_and_sort_with_past_runs_of_the_history(stack, emr, world):
    """Runs the engine executes keep their times as moto and the run history do (naive UTC),
    so ListJobRuns over both answers (it failed with a 500 when the two kinds were mixed)."""
    from local.aws.history import post_job_runs

    past = f"{uuid.uuid4().hex[:16]}"
    post_job_runs(stack.info()["moto"]["endpoint_url"], emr_serverless=[{
        "applicationId": world["app"], "jobRunId": past, "name": "past", "state": "SUCCESS",
        "jobDriver": {"sparkSubmit": {"entryPoint": f"s3://{world['bucket']}/past.py"}},
        "createdAt": "2026-11-30T10:00:00+00:00", "updatedAt": "2026-11-30T10:05:00+00:00",
    }])  # fmt: skip
    run_id = start(emr, world, put_script(stack, world, "print('now')\n"))
    listed = {r["id"] for r in emr.list_job_runs(applicationId=world["app"])["jobRuns"]}
    assert {past, run_id} <= listed
    assert wait(emr, world["app"], run_id)["state"] == "SUCCESS"


def test_glue_and_emr_serverless_runs_share_the_stacks_room(stack, emr, world, hold_script):
    """Two runs execute at once on the stack, whatever their platform; the next waits SCHEDULED."""
    glue = stack.boto3_client("glue")
    job = f"room-{uuid.uuid4().hex[:8]}"
    glue.create_job(Name=job, Role=stack.info()["seed"]["glue_role_arn"], GlueVersion="5.0",
                    Command={"Name": "glueetl", "ScriptLocation": hold_script}, WorkerType="G.1X",
                    NumberOfWorkers=2, DefaultArguments={"--seconds": "300"},
                    ExecutionProperty={"MaxConcurrentRuns": 2})  # fmt: skip
    holding = [glue.start_job_run(JobName=job)["JobRunId"] for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = {glue.get_job_run(JobName=job, RunId=r)["JobRun"]["JobRunState"] for r in holding}
            if states == {"RUNNING"}:
                break
            time.sleep(0.5)
        assert states == {"RUNNING"}
        run_id = start(emr, world, put_script(stack, world, "print('my turn')\n"))
        time.sleep(5)
        assert emr.get_job_run(applicationId=world["app"], jobRunId=run_id)["jobRun"]["state"] == "SCHEDULED"
    finally:
        glue.batch_stop_job_run(JobName=job, JobRunIds=holding)
    run = wait(emr, world["app"], run_id)
    assert run["state"] == "SUCCESS" and run["seen"][:2] != ["RUNNING"]


def test_runs_the_stack_executed_are_priced_from_their_own_figures(stack, emr, world, hold_script):
    """What ``make demo`` shows per DAG: the new runs, priced from what the engines recorded
    (Glue: 2 G.1X workers, billed for Glue's 1-minute minimum; EMR Serverless: its billed
    utilization at the x86_64 rates)."""
    from decimal import Decimal

    from local.services.platform_runs import price_new_runs, snapshot
    from spark_jobs.cost.model import DEFAULT_RATES

    glue = stack.boto3_client("glue")
    job = f"priced-{uuid.uuid4().hex[:8]}"
    glue.create_job(
        Name=job, Role=stack.info()["seed"]["glue_role_arn"], GlueVersion="5.0", WorkerType="G.1X",
        NumberOfWorkers=2, Command={"Name": "glueetl", "ScriptLocation": hold_script},
    )  # fmt: skip
    before = snapshot(stack)
    glue_run = glue.start_job_run(JobName=job)["JobRunId"]
    emr_run = start(emr, world, hold_script)
    assert wait(emr, world["app"], emr_run)["state"] == "SUCCESS"
    deadline = time.monotonic() + 120
    while glue.get_job_run(JobName=job, RunId=glue_run)["JobRun"]["JobRunState"] != "SUCCEEDED":
        assert time.monotonic() < deadline, "the Glue run did not succeed"
        time.sleep(0.5)

    priced = price_new_runs(stack, before)
    assert (priced.glue_runs, priced.emr_runs, priced.unpriced) == (1, 1, [])
    billed = emr.get_job_run(applicationId=world["app"], jobRunId=emr_run)["jobRun"]["billedResourceUtilization"]
    emr_usd = (
        Decimal(str(billed["vCPUHour"])) * DEFAULT_RATES["emr_x86_64_vcpu_hour"]
        + Decimal(str(billed["memoryGBHour"])) * DEFAULT_RATES["emr_x86_64_memory_gb_hour"]
        + Decimal(str(billed["storageGBHour"])) * DEFAULT_RATES["emr_storage_gb_hour"]
    )
    glue_usd = Decimal(2 * 60) / 3600 * DEFAULT_RATES["glue_dpu_hour"]
    assert emr_usd > 0
    assert abs(priced.usd - (glue_usd + emr_usd)) < Decimal("1e-9"), (priced.usd, glue_usd, emr_usd)


def test_listing_the_runs_of_an_application_without_any_is_empty(emr):
    """AWS answers ListJobRuns with an empty list (moto said ResourceNotFound); an unknown
    application is still ResourceNotFound."""
    app = emr.create_application(name=f"empty-{uuid.uuid4().hex[:6]}", releaseLabel="emr-7.5.0", type="SPARK")
    assert emr.list_job_runs(applicationId=app["applicationId"])["jobRuns"] == []
    with pytest.raises(emr.exceptions.ResourceNotFoundException):
        emr.list_job_runs(applicationId="00nosuchapplication")
    emr.delete_application(applicationId=app["applicationId"])
