"""The local stack's Glue runs execute their script, under Glue's rules (local/engines/glue.py).

Jobs and runs are made through boto3 against the stack's endpoint, as the provider's hook
makes them; what the tests read back is what GetJobRun and CloudWatch Logs answer.
"""

from __future__ import annotations

import time
import uuid

import pytest
from botocore.exceptions import ClientError

pytestmark = [pytest.mark.stack, pytest.mark.slow]

TERMINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"}


@pytest.fixture
def glue(stack):
    return stack.boto3_client("glue")


@pytest.fixture
def artifacts(stack) -> str:
    return stack.info()["seed"]["buckets"]["artifacts"]


def put_script(stack, artifacts: str, body: str) -> str:
    key = f"tests/glue/{uuid.uuid4().hex[:8]}.py"
    stack.boto3_client("s3").put_object(Bucket=artifacts, Key=key, Body=body.encode())
    return f"s3://{artifacts}/{key}"


def new_job(stack, glue, script: str, **kwargs) -> str:
    name = f"engine-{uuid.uuid4().hex[:8]}"
    definition = {
        "Name": name, "Role": stack.info()["seed"]["glue_role_arn"], "GlueVersion": "5.0",
        "Command": {"Name": "glueetl", "ScriptLocation": script}, "WorkerType": "G.1X", "NumberOfWorkers": 2,
        "ExecutionProperty": {"MaxConcurrentRuns": 3},
    }  # fmt: skip
    glue.create_job(**{k: v for k, v in {**definition, **kwargs}.items() if v is not None})
    return name


def wait(glue, job: str, run_id: str, until=TERMINAL, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if not seen or seen[-1] != run["JobRunState"]:
            seen.append(run["JobRunState"])
        if run["JobRunState"] in until:
            run["seen"] = seen
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {seen[-1]} after {timeout}s (states seen: {seen})")


def log_text(stack, kind: str, run_id: str) -> str:
    logs = stack.boto3_client("logs")
    events = logs.get_log_events(logGroupName=f"/aws-glue/jobs/{kind}", logStreamName=run_id)["events"]
    return "\n".join(e["message"] for e in events)


ECHO = """
import json, sys
print("ARGV " + json.dumps(sys.argv[1:]), flush=True)
"""


def test_a_run_gets_merged_arguments_and_glues_own_and_logs_to_cloudwatch(stack, glue, artifacts):
    script = put_script(stack, artifacts, ECHO)
    job = new_job(
        stack, glue, script,
        DefaultArguments={"--input": "default-in", "--mode": "default"},
        NonOverridableArguments={"--fixed": "always"},
    )  # fmt: skip
    run_id = glue.start_job_run(JobName=job, Arguments={"--mode": "run", "--fixed": "tried"})["JobRunId"]
    run = wait(glue, job, run_id)
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert run["seen"][0] in {"STARTING", "RUNNING"} and "RUNNING" in run["seen"]
    out = log_text(stack, "output", run_id)
    line = next(x for x in out.splitlines() if x.startswith("ARGV "))
    import json

    argv = json.loads(line[5:])
    pairs = dict(zip(argv[::2], argv[1::2], strict=True))
    assert pairs["--JOB_RUN_ID"] == run_id and pairs["--JOB_NAME"] == job and pairs["--JOB_ID"].startswith("j_")
    assert pairs["--TempDir"].startswith("s3://aws-glue-assets-")
    assert argv[:8:2] == ["--JOB_ID", "--JOB_RUN_ID", "--JOB_NAME", "--TempDir"]
    assert (pairs["--input"], pairs["--mode"], pairs["--fixed"]) == ("default-in", "run", "always")
    # The record keeps the run's own arguments; the figures come from the run.
    assert run["Arguments"]["--mode"] == "run" and "--input" not in run["Arguments"]
    assert run["LogGroupName"] == "/aws-glue/jobs"
    assert run["ExecutionTime"] >= 1 and run["MaxCapacity"] == 2.0
    assert "DPUSeconds" not in run  # Glue reports it for FLEX or auto-scaling runs only
    assert run["CompletedOn"] >= run["StartedOn"]


SPARK_PROBE = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print("CONF " + spark.conf.get("spark.probe.value", "unset"), flush=True)
try:
    # Spark's own class loader holds the run's jars (as Spark loads a catalog class).
    spark._jvm.org.apache.spark.util.Utils.classForName("org.apache.iceberg.spark.SparkCatalog", True, False)
    print("ICEBERG yes", flush=True)
except Exception:
    print("ICEBERG no", flush=True)
spark.stop()
"""


@pytest.mark.spark
def test_conf_is_parsed_as_glue_does_and_iceberg_needs_datalake_formats(stack, glue, artifacts):
    script = put_script(stack, artifacts, SPARK_PROBE)
    conf = "spark.probe.value=from-conf --conf spark.sql.shuffle.partitions=3"
    with_iceberg = new_job(stack, glue, script, DefaultArguments={"--conf": conf, "--datalake-formats": "iceberg"})
    without = new_job(stack, glue, script, DefaultArguments={"--conf": conf})
    runs = {job: glue.start_job_run(JobName=job)["JobRunId"] for job in (with_iceberg, without)}
    outputs = {}
    for job, run_id in runs.items():
        run = wait(glue, job, run_id, timeout=300)
        assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
        outputs[job] = log_text(stack, "output", run_id)
    assert "CONF from-conf" in outputs[with_iceberg] and "ICEBERG yes" in outputs[with_iceberg]
    assert "ICEBERG no" in outputs[without]


def test_a_failing_script_fails_the_run_with_its_error(stack, glue, artifacts):
    script = put_script(stack, artifacts, "raise RuntimeError('no partitions for 2026-12-01')\n")
    job = new_job(stack, glue, script)
    run = wait(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED"
    assert "RuntimeError: no partitions for 2026-12-01" in run["ErrorMessage"]
    logged = log_text(stack, "output", run["Id"]) + log_text(stack, "error", run["Id"])
    assert "RuntimeError: no partitions for 2026-12-01" in logged


def test_missing_extra_py_files_and_modules_fail_the_run_naming_them(stack, glue, artifacts, hold_script):
    missing = f"s3://{artifacts}/tests/glue/nope-{uuid.uuid4().hex[:6]}.zip"
    job = new_job(stack, glue, hold_script, DefaultArguments={"--extra-py-files": missing})
    run = wait(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED" and missing in run["ErrorMessage"]
    job = new_job(stack, glue, hold_script, DefaultArguments={"--additional-python-modules": "surely_absent==1.0"})
    run = wait(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED" and "surely_absent==1.0" in run["ErrorMessage"]
    assert "no network" in run["ErrorMessage"]


def test_batch_stop_job_run_ends_the_process_and_the_limit_counts_live_runs(stack, glue, hold_script):
    job = new_job(stack, glue, hold_script, DefaultArguments={"--seconds": "600"},
                  ExecutionProperty={"MaxConcurrentRuns": 1})  # fmt: skip
    first = glue.start_job_run(JobName=job)["JobRunId"]
    with pytest.raises(ClientError, match="ConcurrentRunsExceededException"):
        glue.start_job_run(JobName=job)
    wait(glue, job, first, until={"RUNNING"})
    answer = glue.batch_stop_job_run(JobName=job, JobRunIds=[first])
    assert answer["SuccessfulSubmissions"] == [{"JobName": job, "JobRunId": first}]
    run = wait(glue, job, first, timeout=60)
    assert run["JobRunState"] == "STOPPED" and run["ExecutionTime"] < 60
    second = glue.start_job_run(JobName=job, Arguments={"--seconds": "0"})["JobRunId"]  # room again
    assert wait(glue, job, second)["JobRunState"] == "SUCCEEDED"


def test_a_python_shell_job_runs_without_spark(stack, glue, artifacts):
    script = put_script(stack, artifacts, "import sys\nprint('shell', 'pyspark' in sys.modules)\n")
    job = new_job(stack, glue, script, Command={"Name": "pythonshell", "ScriptLocation": script,
                                                "PythonVersion": "3.9"}, MaxCapacity=0.0625,
                  WorkerType=None, NumberOfWorkers=None)  # fmt: skip
    run = wait(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert "shell False" in log_text(stack, "output", run["Id"])


@pytest.mark.parametrize(
    "definition, message",
    [
        ({"GlueVersion": "6.1"}, "Glue version 6.1 is not supported"),
        ({"WorkerType": "G.3X"}, "Worker type G.3X is not supported"),
        ({"GlueVersion": "2.0", "WorkerType": "G.8X"}, "requires Glue version 3.0"),
        ({"WorkerType": "G.025X"}, "only supported for streaming jobs"),
    ],
)
def test_job_definitions_glue_refuses_are_refused(stack, glue, hold_script, definition, message):
    with pytest.raises(ClientError, match=message):
        new_job(stack, glue, hold_script, **definition)
    job = new_job(stack, glue, hold_script)
    current = glue.get_job(JobName=job)["Job"]
    update = {"Role": current["Role"], "Command": current["Command"], "GlueVersion": "5.0", "WorkerType": "G.1X",
              "NumberOfWorkers": 2, **definition}  # fmt: skip
    with pytest.raises(ClientError, match=message):
        glue.update_job(JobName=job, JobUpdate=update)


def test_executed_runs_sort_with_past_runs_of_the_history(stack, glue, hold_script):
    """GetJobRuns over executed runs and history runs (newest first) answers."""
    from local.aws.history import post_job_runs

    job = new_job(stack, glue, hold_script)
    post_job_runs(stack.info()["moto"]["endpoint_url"], glue=[{
        "JobName": job, "Id": f"jr_{uuid.uuid4().hex}", "JobRunState": "SUCCEEDED",
        "StartedOn": "2026-11-30T10:00:00+00:00", "CompletedOn": "2026-11-30T10:05:00+00:00", "ExecutionTime": 300,
    }])  # fmt: skip
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    runs = glue.get_job_runs(JobName=job)["JobRuns"]
    assert [r["Id"] for r in runs][0] == run_id and len(runs) == 2
    assert wait(glue, job, run_id)["JobRunState"] == "SUCCEEDED"


def test_with_job_run_queuing_runs_over_the_limit_wait_in_waiting(stack, glue, hold_script):
    """JobRunQueuingEnabled on the job: over MaxConcurrentRuns a run waits (WAITING) instead of
    being refused, and starts when the run ahead of it ends; the run's own setting wins."""
    job = new_job(stack, glue, hold_script, DefaultArguments={"--seconds": "300"},
                  ExecutionProperty={"MaxConcurrentRuns": 1}, JobRunQueuingEnabled=True)  # fmt: skip
    assert glue.get_job(JobName=job)["Job"]["JobRunQueuingEnabled"] is True
    first = glue.start_job_run(JobName=job)["JobRunId"]
    second = glue.start_job_run(JobName=job, Arguments={"--seconds": "0"})["JobRunId"]
    try:
        assert glue.get_job_run(JobName=job, RunId=second)["JobRun"]["JobRunState"] == "WAITING"
        with pytest.raises(ClientError, match="ConcurrentRunsExceededException"):
            glue.start_job_run(JobName=job, JobRunQueuingEnabled=False)
        wait(glue, job, first, until={"RUNNING"})
        time.sleep(3)
        assert glue.get_job_run(JobName=job, RunId=second)["JobRun"]["JobRunState"] == "WAITING"
    finally:
        glue.batch_stop_job_run(JobName=job, JobRunIds=[first])
    run = wait(glue, job, second)
    assert run["JobRunState"] == "SUCCEEDED" and run["seen"][0] == "WAITING", run["seen"]


# -- VPC connections: Glue's own checks at submission (local/engines/glue_network.py) ------------


def network_line(stack, run_id: str) -> str:
    return next((line for line in log_text(stack, "output", run_id).splitlines() if line.startswith("Network: ")), "")


def test_a_run_takes_the_first_listed_connection_that_passes_glues_checks(stack, glue, hold_script):
    """c1 has no S3 route, c2 no security group open to itself, zone a is impaired: b1 it is."""
    from local.aws.faults import post_zone_state

    job = new_job(
        stack, glue, hold_script, DefaultArguments={"--seconds": "0"},
        Connections={"Connections": ["glue-net-c1", "glue-net-c2", "glue-net-a1", "glue-net-b1", "glue-net-a2"]},
    )  # fmt: skip
    endpoint = stack.info()["moto"]["endpoint_url"]
    post_zone_state(endpoint, "us-east-1a", "impaired")
    try:
        run_id = glue.start_job_run(JobName=job)["JobRunId"]
    finally:
        post_zone_state(endpoint, "us-east-1a", "available")
    run = wait(glue, job, run_id)
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    b1 = stack.info()["seed"]["network"]["subnets"]["b1"]["subnet_id"]
    assert network_line(stack, run_id) == (
        f"Network: connection glue-net-b1, subnet {b1} in us-east-1b, 2 of 2 workers' IP addresses (full capacity)"
    )


@pytest.mark.parametrize(
    ("connections", "message"),
    [
        (["glue-net-c1", "glue-net-c2"], "Could not find S3 endpoint or NAT gateway for subnetId: {c1} in Vpc {vpc}"),
        (["glue-net-c2"], "Inbound rule in security group required (connection glue-net-c2)"),
        (["no-such-connection", "glue-net-c1"], "Connection no-such-connection not found"),
    ],
)
def test_a_run_no_connection_can_carry_fails_with_glues_message(stack, glue, hold_script, connections, message):
    network = stack.info()["seed"]["network"]
    job = new_job(stack, glue, hold_script, Connections={"Connections": connections})
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    run = wait(glue, job, run_id)
    assert run["JobRunState"] == "FAILED"
    assert message.format(c1=network["subnets"]["c1"]["subnet_id"], vpc=network["vpc_id"]) in run["ErrorMessage"]
    assert run["ErrorMessage"] in log_text(stack, "error", run_id)


def test_live_runs_hold_their_addresses_so_a_short_subnet_starts_under_capacity_then_not_at_all(
    stack, glue, hold_script
):
    """A subnet of 11 free addresses: 8 workers fit, the next run gets the 3 left, the third none."""
    ec2, network = stack.boto3_client("ec2"), stack.info()["seed"]["network"]
    subnet = ec2.create_subnet(VpcId=network["vpc_id"], CidrBlock="10.0.200.0/28", AvailabilityZone="us-east-1b")
    subnet_id = subnet["Subnet"]["SubnetId"]
    ec2.associate_route_table(RouteTableId=network["route_tables"]["s3-endpoint"], SubnetId=subnet_id)
    name = f"glue-net-small-{uuid.uuid4().hex[:6]}"
    glue.create_connection(ConnectionInput={
        "Name": name, "ConnectionType": "NETWORK", "ConnectionProperties": {},
        "PhysicalConnectionRequirements": {"SubnetId": subnet_id, "AvailabilityZone": "us-east-1b",
                                           "SecurityGroupIdList": [network["security_groups"]["self"]]},
    })  # fmt: skip
    job = new_job(stack, glue, hold_script, DefaultArguments={"--seconds": "600"}, NumberOfWorkers=8,
                  Connections={"Connections": [name]})  # fmt: skip
    ids = [glue.start_job_run(JobName=job)["JobRunId"] for _ in range(3)]
    try:
        assert network_line(stack, ids[0]).endswith("8 of 8 workers' IP addresses (full capacity)")
        assert network_line(stack, ids[1]).endswith("3 of 8 workers' IP addresses (under capacity)")
        third = wait(glue, job, ids[2])
        assert third["JobRunState"] == "FAILED"
        assert f"The specified subnet {subnet_id}" in third["ErrorMessage"]
        assert "InsufficientFreeAddressesInSubnet" in third["ErrorMessage"]
        glue.batch_stop_job_run(JobName=job, JobRunIds=ids[:1])
        assert wait(glue, job, ids[0])["JobRunState"] == "STOPPED"
        fourth = glue.start_job_run(JobName=job)["JobRunId"]  # the stopped run's 8 addresses are free again
        assert network_line(stack, fourth).endswith("8 of 8 workers' IP addresses (full capacity)")
        ids.append(fourth)
    finally:
        glue.batch_stop_job_run(JobName=job, JobRunIds=ids)
