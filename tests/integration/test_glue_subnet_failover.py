"""The healthiest-subnet Glue operator against the local stack: dry run, concurrency, retries."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from local.aws.extensions import CONNECTIONS_AT_START_ARG
from local.seeds.aws_world import SUBNETS, connection_name
from operators.subnet.glue_operator import TASK_ARG, GlueJobOnHealthiestSubnetOperator
from operators.vpc.health import CONNECTION_ARG
from operators.vpc.ranking import NoHealthyConnection
from tests.conftest import AIRFLOW

pytestmark = pytest.mark.stack
HEALTHY = ["glue-net-a1", "glue-net-b1", "glue-net-a2"]  # c1 lacks an S3 route, c2 the SG rule
ALL = [connection_name(s.key) for s in SUBNETS]


HOLD_S = 8  # how long the runs of tests using ``slow_runs`` last


@pytest.fixture
def job(stack, hold_script, request) -> str:
    """A fresh Glue job per test (runs of other tests do not count against its subnets). Its
    runs execute the stack's hold script: at once, or for HOLD_S seconds with ``slow_runs``."""
    glue = stack.boto3_client("glue")
    name = f"failover-{uuid.uuid4().hex[:8]}"
    seconds = HOLD_S if "slow_runs" in request.fixturenames else 0
    glue.create_job(
        Name=name,
        Role=stack.info()["seed"]["glue_role_arn"],
        Command={"Name": "glueetl", "ScriptLocation": hold_script},
        DefaultArguments={"--seconds": str(seconds)},
        GlueVersion="5.0",
        WorkerType="G.1X",
        NumberOfWorkers=10,
        Connections={"Connections": ["glue-net-c1", "warehouse-jdbc"]},
        ExecutionProperty={"MaxConcurrentRuns": 50},
    )
    return name


@pytest.fixture
def slow_runs() -> int:
    """Runs of ``job`` (and of jobs the test makes with it) last HOLD_S seconds."""
    return HOLD_S


def wait_for_state(stack, job: str, run_id: str, states=("STOPPED", "SUCCEEDED", "FAILED"), timeout=60) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while True:
        run = stack.boto3_client("glue").get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] in states or time.monotonic() > deadline:
            return run
        time.sleep(0.5)


def our_runs(stack, job: str) -> list[dict]:
    runs = stack.boto3_client("glue").get_job_runs(JobName=job)["JobRuns"]
    return [r for r in runs if CONNECTION_ARG in (r.get("Arguments") or {})]


def test_dry_run_with_avoided_zone_starts_nothing(stack, airflow_runner, job):
    conf = {"job_name": job, "candidate_connections": ALL, "avoid_zones": ["us-east-1a"], "dry_run": True}
    result = airflow_runner.dags_test("glue_subnet_failover", conf)
    assert airflow_runner.task_states("glue_subnet_failover") == {"start_on_healthiest_subnet": "success"}
    log = result.stdout + result.stderr
    assert "Dry run: would start" in log and "on glue-net-b1" in log
    assert "zone us-east-1a is on the avoid list" in log  # the ranking table, with reasons
    assert our_runs(stack, job) == []
    connections = stack.boto3_client("glue").get_job(JobName=job)["Job"]["Connections"]["Connections"]
    assert connections == ["glue-net-c1", "warehouse-jdbc"], "a dry run changes nothing"
    links = airflow_runner.xcoms("glue_subnet_failover", "start_on_healthiest_subnet")
    assert links["_link_ChosenSubnetLink"].endswith(f"#SubnetDetails:subnetId={subnet_of(stack, 'glue-net-b1')}")
    assert links["_link_GlueJobRunDetailsLink"] == "", "no run, no run link"


def test_run_writes_ranked_connections_and_keeps_unmanaged(stack, airflow_runner, job):
    result = airflow_runner.dags_test("glue_subnet_failover", {"job_name": job, "candidate_connections": ALL})
    assert airflow_runner.task_states("glue_subnet_failover") == {"start_on_healthiest_subnet": "success"}, (
        result.stdout[-3000:]
    )
    connections = stack.boto3_client("glue").get_job(JobName=job)["Job"]["Connections"]["Connections"]
    assert connections == [*HEALTHY, "warehouse-jdbc"]
    (run,) = our_runs(stack, job)
    assert run["Arguments"][CONNECTION_ARG] == "glue-net-a1"
    xcoms = airflow_runner.xcoms("glue_subnet_failover", "start_on_healthiest_subnet")
    assert {"subnet_ranking", "chosen_connection", "glue_job_run_id"} <= set(xcoms)
    # The UI's extra links, stored by the worker when the task ended.
    subnet = subnet_of(stack, "glue-net-a1")
    assert xcoms["_link_ChosenSubnetLink"] == (
        f"https://console.aws.amazon.com/vpcconsole/home?region=us-east-1#SubnetDetails:subnetId={subnet}"
    )
    assert xcoms["_link_GlueJobRunDetailsLink"] == (
        f"https://console.aws.amazon.com/gluestudio/home?region=us-east-1#/job/{job}/run/{run['Id']}"
    )


def subnet_of(stack, connection: str) -> str:
    glue = stack.boto3_client("glue")
    return glue.get_connection(Name=connection)["Connection"]["PhysicalConnectionRequirements"]["SubnetId"]


@pytest.mark.slow
def test_concurrent_task_instances_never_race_nor_overcommit(stack, airflow_runner, job, slow_runs, tmp_path):
    """Six task instances, each its own Airflow process, start the same job at once."""
    workers, count = 60, 6
    procs = []
    for i in range(count):
        home = tmp_path / f"airflow-{i}"
        home.mkdir()
        shutil.copy(airflow_runner.db, home / "airflow.db")
        env = {
            **airflow_runner.env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
        conf = {"job_name": job, "candidate_connections": ALL, "num_workers": workers}
        procs.append(
            subprocess.Popen(
                [AIRFLOW, "dags", "test", "glue_subnet_failover", "--conf", json.dumps(conf)],
                env=env,
                stdout=open(home / "out.log", "w"),
                stderr=subprocess.STDOUT,
            )
        )
    for p in procs:
        assert p.wait(timeout=600) == 0
    runs = our_runs(stack, job)
    assert len(runs) == count
    free = {connection_name(k): v["free_ips"] for k, v in stack.info()["seed"]["network"]["subnets"].items()}
    # No race: when each run started, the job listed exactly the connection its task chose first.
    for run in runs:
        assert json.loads(run["Arguments"][CONNECTIONS_AT_START_ARG])[0] == run["Arguments"][CONNECTION_ARG]
    # No overcommit: decisions saw each other's runs (pending IPs), so full-capacity runs fit.
    placed = Counter(r["Arguments"][CONNECTION_ARG] for r in runs)
    assert placed == {"glue-net-a1": 4, "glue-net-b1": 1, "glue-net-a2": 1}, placed
    for connection in ("glue-net-a1", "glue-net-b1"):
        assert placed[connection] * (workers + 1) <= free[connection]
    assert len({r["Arguments"][TASK_ARG] for r in runs}) == count


def _operator(job: str, **kwargs) -> GlueJobOnHealthiestSubnetOperator:
    return GlueJobOnHealthiestSubnetOperator(
        task_id="t", job_name=job, candidate_connections=ALL, aws_conn_id=None, region_name="us-east-1",
        deferrable=False, job_poll_interval=1, lock_uri="s3://mwaa-pipelines-data/_locks", **kwargs,
    )  # fmt: skip


class FakeTI:
    dag_id, task_id, run_id, map_index = "d", "t", "manual__1", -1

    def __init__(self):
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


@pytest.fixture
def in_process_aws(monkeypatch, aws_env):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_retry_does_not_start_a_duplicate_while_the_run_is_going(stack, job, slow_runs, in_process_aws):
    ti = FakeTI()
    _operator(job, wait_for_completion=False).execute({"ti": ti})  # try 1 starts, then the worker dies
    first = ti.xcom["glue_job_run_id"]
    _operator(job).execute({"ti": ti})  # try 2: same task instance
    assert ti.xcom["glue_job_run_id"] == first
    assert len(our_runs(stack, job)) == 1


def test_retry_decides_again_after_a_fault(stack, job, slow_runs, in_process_aws):
    ti = FakeTI()
    _operator(job, wait_for_completion=False).execute({"ti": ti})
    assert ti.xcom["chosen_connection"] == "glue-net-a1"
    glue, ec2 = stack.boto3_client("glue"), stack.boto3_client("ec2")
    # Fault: a1's addresses are taken by other ENIs, and try 1's run is stopped.
    a1 = stack.info()["seed"]["network"]["subnets"]["a1"]["subnet_id"]
    free = ec2.describe_subnets(SubnetIds=[a1])["Subnets"][0]["AvailableIpAddressCount"]
    with ThreadPoolExecutor(8) as pool:
        enis = list(
            pool.map(
                lambda _: ec2.create_network_interface(SubnetId=a1)["NetworkInterface"]["NetworkInterfaceId"],
                range(free),
            )
        )
    try:
        glue.batch_stop_job_run(JobName=job, JobRunIds=[ti.xcom["glue_job_run_id"]])
        _operator(job, wait_for_completion=False).execute({"ti": ti})
        assert ti.xcom["chosen_connection"] == "glue-net-b1"
        reasons = {c["connection"]: c["reasons"] for c in ti.xcom["subnet_ranking"]["candidates"]}
        assert any("Glue needs 2 to start" in r for r in reasons["glue-net-a1"])
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda eni: ec2.delete_network_interface(NetworkInterfaceId=eni), enis))


def test_no_healthy_candidate_fails_at_once(stack, job, in_process_aws):
    op = _operator(job)
    op.candidate_connections = ["glue-net-c1", "glue-net-c2", "nope"]
    with pytest.raises(NoHealthyConnection) as err:
        op.execute({"ti": FakeTI()})
    lines = str(err.value).splitlines()
    assert len(lines) == 4 and "S3" in lines[1] and "self-referencing" in lines[2] and "not found" in lines[3]
    assert our_runs(stack, job) == []


def _burst(stack, job: str, lock_uri: str | None, count: int = 4, workers: int = 60) -> list[dict]:
    """Start ``count`` task instances in threads at the same instant; a pause between
    UpdateJob and StartJobRun widens the window a race needs."""
    import threading
    import time

    barrier = threading.Barrier(count)

    class SlowStart(GlueJobOnHealthiestSubnetOperator):
        def _start(self, *args, **kwargs):
            time.sleep(0.5)
            return super()._start(*args, **kwargs)

    def one(i: int) -> None:
        ti = FakeTI()
        ti.run_id = f"manual__{i}"
        op = SlowStart(
            task_id="t", job_name=job, candidate_connections=ALL, aws_conn_id=None, region_name="us-east-1",
            deferrable=False, wait_for_completion=False, num_workers=workers, lock_uri=lock_uri,
        )  # fmt: skip
        barrier.wait(timeout=60)
        op.execute({"ti": ti})

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(one, range(count)))
    return our_runs(stack, job)


def _raced(runs: list[dict]) -> list[str]:
    return [
        r["Arguments"][CONNECTION_ARG]
        for r in runs
        if json.loads(r["Arguments"][CONNECTIONS_AT_START_ARG])[0] != r["Arguments"][CONNECTION_ARG]
    ]


def test_the_lease_is_what_prevents_the_race(stack, slow_runs, in_process_aws, request):
    """Same burst twice: without the lease the harness sees the race; with it, none."""
    without = request.getfixturevalue("job")
    runs = _burst(stack, without, lock_uri=None)
    assert _raced(runs) or len({r["Arguments"][CONNECTION_ARG] for r in runs}) < len(runs) - 1, (
        "without the lease, simultaneous decisions should collide"
    )
    glue = stack.boto3_client("glue")
    with_lease = f"{without}-leased"
    glue.create_job(
        Name=with_lease, Role=stack.info()["seed"]["glue_role_arn"],
        Command={"Name": "glueetl", "ScriptLocation": stack.info()["seed"]["hold_script"]},
        DefaultArguments={"--seconds": str(slow_runs)},
        WorkerType="G.1X", NumberOfWorkers=10, ExecutionProperty={"MaxConcurrentRuns": 50},
    )  # fmt: skip
    leased = _burst(stack, with_lease, lock_uri="s3://mwaa-pipelines-data/_locks")
    try:
        assert len(leased) == 4 and _raced(leased) == []
        free = {connection_name(k): v["free_ips"] for k, v in stack.info()["seed"]["network"]["subnets"].items()}
        for connection, n in Counter(r["Arguments"][CONNECTION_ARG] for r in leased).items():
            assert n * 61 <= free[connection], (connection, n)
    finally:  # the runs hold their subnets' addresses: free them for the next tests
        for name, started in ((without, runs), (with_lease, leased)):
            ids = [r["Id"] for r in started]
            glue.batch_stop_job_run(JobName=name, JobRunIds=ids)
            for run_id in ids:
                wait_for_state(stack, name, run_id)


def test_kill_stops_the_run_and_a_failed_event_fails(stack, job, slow_runs, in_process_aws):
    op = _operator(job, wait_for_completion=False)
    ti = FakeTI()
    op.execute({"ti": ti})
    op.on_kill()
    run = wait_for_state(stack, job, ti.xcom["glue_job_run_id"])  # STOPPING, then STOPPED
    assert run["JobRunState"] == "STOPPED", run.get("ErrorMessage")
    with pytest.raises(Exception, match="did not succeed"):
        op.execute_complete({"ti": ti}, {"status": "error", "message": "Job run failed"})
    assert op.execute_complete({"ti": ti}, {"status": "success", "run_id": "jr_1"}) == "jr_1"


def test_python_shell_jobs_count_one_ip_and_refuse_a_worker_count(stack, airflow_runner):
    """A Python shell job (MaxCapacity 0.0625) takes one ENI; a worker count makes no sense for
    it (Glue refuses WorkerType and NumberOfWorkers there), so the form's num_workers is refused."""
    glue = stack.boto3_client("glue")
    name = f"shell-{uuid.uuid4().hex[:8]}"
    glue.create_job(
        Name=name,
        Role=stack.info()["seed"]["glue_role_arn"],
        Command={"Name": "pythonshell", "PythonVersion": "3.9", "ScriptLocation": stack.info()["seed"]["hold_script"]},
        MaxCapacity=0.0625,
        Connections={"Connections": ["glue-net-c1"]},
    )
    result = airflow_runner.dags_test("glue_subnet_failover", {"job_name": name, "candidate_connections": ALL})
    assert airflow_runner.task_states("glue_subnet_failover") == {"start_on_healthiest_subnet": "success"}, (
        result.stdout[-3000:]
    )
    ranking = airflow_runner.xcoms("glue_subnet_failover", "start_on_healthiest_subnet")["subnet_ranking"]
    assert ranking["workers"] == 1
    (run,) = our_runs(stack, name)
    assert "WorkerType" not in run and "NumberOfWorkers" not in run
    refused = airflow_runner.dags_test(
        "glue_subnet_failover", {"job_name": name, "candidate_connections": ALL, "num_workers": 4}
    )
    assert airflow_runner.task_states("glue_subnet_failover") == {"start_on_healthiest_subnet": "failed"}
    assert "is a Python shell job: it has no workers to set" in refused.stdout + refused.stderr
    assert len(our_runs(stack, name)) == 1


def test_the_strategy_comes_from_the_form_then_the_variable(stack, airflow_runner, job):
    variable = json.loads(stack.variable("glue_subnet_failover"))
    conf = {"job_name": job, "candidate_connections": ALL, "dry_run": True}
    with stack.variable_set("glue_subnet_failover", json.dumps({**variable, "strategy": "az-spread"})):
        for form, expected in ((None, "az-spread"), ("weighted", "weighted")):
            airflow_runner.dags_test("glue_subnet_failover", {**conf, **({"strategy": form} if form else {})})
            ranking = airflow_runner.xcoms("glue_subnet_failover", "start_on_healthiest_subnet")["subnet_ranking"]
            assert ranking["strategy"] == expected


def _take_addresses(ec2, subnet_id: str) -> list[str]:
    """Another tenant's ENIs take every free address of the subnet."""
    free = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["AvailableIpAddressCount"]
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(
            lambda _: ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"],
            range(free),
        ))  # fmt: skip


def test_a_start_refused_for_lack_of_ips_fails_and_the_retry_chooses_another_connection(stack, job, in_process_aws):
    """Between the decision and the start both candidates' addresses go: Glue's own checks at
    submission (the local stack's) fail the run; the retry sees b1, the first choice, full and
    recently failed, and picks a2, whose tenant has left."""
    ec2, subnets = stack.boto3_client("ec2"), stack.info()["seed"]["network"]["subnets"]
    taken: dict[str, list[str]] = {}

    class AddressesGoBeforeTheStart(GlueJobOnHealthiestSubnetOperator):
        def _start(self, *args, **kwargs):
            for key in ("a2", "b1"):
                taken[key] = _take_addresses(ec2, subnets[key]["subnet_id"])
            return super()._start(*args, **kwargs)

    def operator(cls):
        return cls(
            task_id="t", job_name=job, candidate_connections=["glue-net-a2", "glue-net-b1"], aws_conn_id=None,
            region_name="us-east-1", deferrable=False, job_poll_interval=1,
        )  # fmt: skip

    ti = FakeTI()
    try:
        with pytest.raises(Exception, match="InsufficientFreeAddressesInSubnet"):
            operator(AddressesGoBeforeTheStart).execute({"ti": ti})
        first = stack.boto3_client("glue").get_job_run(JobName=job, RunId=ti.xcom["glue_job_run_id"])["JobRun"]
        assert ti.xcom["chosen_connection"] == "glue-net-b1"
        assert first["JobRunState"] == "FAILED" and subnets["b1"]["subnet_id"] in first["ErrorMessage"]
        with ThreadPoolExecutor(8) as pool:  # a2's tenant leaves; b1 stays full
            list(pool.map(lambda eni: ec2.delete_network_interface(NetworkInterfaceId=eni), taken.pop("a2")))
        operator(GlueJobOnHealthiestSubnetOperator).execute({"ti": ti})  # the retry
        assert ti.xcom["chosen_connection"] == "glue-net-a2"
        assert ti.xcom["glue_job_run_id"] != first["Id"]
        rejected = {c["connection"]: c["reasons"] for c in ti.xcom["subnet_ranking"]["candidates"] if not c["healthy"]}
        assert any("recent IP/ENI/AZ failures" in r for r in rejected["glue-net-b1"])
        second = wait_for_state(stack, job, ti.xcom["glue_job_run_id"])
        assert second["JobRunState"] == "SUCCEEDED"
    finally:
        with ThreadPoolExecutor(8) as pool:
            for enis in taken.values():
                list(pool.map(lambda eni: ec2.delete_network_interface(NetworkInterfaceId=eni), enis))
