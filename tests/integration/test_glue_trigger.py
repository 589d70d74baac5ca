"""The waits for a Glue run against the stack's Glue: the provider's hook (a task waiting in its
worker) and our trigger (operators/glue_trigger.py, a task deferred to the triggerer).

The trigger's ``on_kill``, which Airflow calls when a user kills the deferred task, stops the
run; the provider's trigger it replaces leaves the run going. With ``verbose=True`` both waits
copy the driver's output and errors from CloudWatch Logs (``/aws-glue/jobs/output`` and
``/error``, which the local Glue writes) into the task log.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger

from operators.glue_trigger import GlueJobRunTrigger

pytestmark = [pytest.mark.stack]

WHERE = {"aws_conn_id": None, "region_name": "us-east-1"}


def shell_run(stack, script: str, arguments: dict[str, str] | None = None) -> tuple[str, str]:
    """A Python shell job's run (no Spark: it starts in a second or two)."""
    glue = stack.boto3_client("glue")
    name = f"trigger-{uuid.uuid4().hex[:8]}"
    glue.create_job(Name=name, Role=stack.info()["seed"]["glue_role_arn"], GlueVersion="5.0",
                    Command={"Name": "pythonshell", "ScriptLocation": script, "PythonVersion": "3.9"},
                    MaxCapacity=0.0625)  # fmt: skip
    return name, glue.start_job_run(JobName=name, Arguments=arguments or {})["JobRunId"]


def state_after(stack, name: str, run_id: str, seconds: float) -> str:
    glue = stack.boto3_client("glue")
    deadline = time.monotonic() + seconds
    while True:
        state = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]["JobRunState"]
        if state in ("STOPPED", "SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


@pytest.mark.parametrize(
    "trigger_class, after_kill", [(GlueJobRunTrigger, "STOPPED"), (GlueJobCompleteTrigger, "RUNNING")]
)
def test_killing_the_deferred_wait_stops_the_run_only_with_our_trigger(
    stack, aws_env, hold_script, trigger_class, after_kill
):
    name, run_id = shell_run(stack, hold_script, {"--seconds": "300"})
    asyncio.run(trigger_class(job_name=name, run_id=run_id, **WHERE).on_kill())
    assert state_after(stack, name, run_id, seconds=20) == after_kill
    stack.boto3_client("glue").batch_stop_job_run(JobName=name, JobRunIds=[run_id])


async def events_of(trigger) -> list:
    return [event async for event in trigger.run()]


@pytest.mark.parametrize("where", ["worker", "triggerer"])
def test_verbose_waits_copy_the_drivers_output_and_errors_into_the_task_log(stack, aws_env, capfd, where):
    marker = uuid.uuid4().hex[:8]
    bucket = stack.info()["seed"]["buckets"]["artifacts"]
    key = f"tests/glue/verbose-{marker}.py"
    body = (
        f"import sys\nprint('said {marker}', flush=True)\nprint('complained {marker}', file=sys.stderr, flush=True)\n"
    )
    stack.boto3_client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())
    name, run_id = shell_run(stack, f"s3://{bucket}/{key}")
    if where == "worker":
        GlueJobHook(job_poll_interval=1, **WHERE).job_completion(name, run_id, verbose=True)
    else:
        trigger = GlueJobRunTrigger(job_name=name, run_id=run_id, verbose=True, waiter_delay=1, **WHERE)
        events = asyncio.run(events_of(trigger))
        assert [e.payload["status"] for e in events] == ["success"], events
    text = capfd.readouterr().out  # Airflow's loggers (structlog) write to the task log's stream
    assert f"said {marker}" in text.split("/aws-glue/jobs/output Logs:", 1)[-1], text[-3000:]
    assert f"complained {marker}" in text.split("/aws-glue/jobs/error Logs:", 1)[-1], text[-3000:]
