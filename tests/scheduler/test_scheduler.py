"""DAGs run by Airflow's scheduler, triggerer and LocalExecutor (parallelism 4, as on an MWAA
worker), not by ``airflow dags test``: triggered through the REST API, on platform ``glue``.

The services are those of ``make ui`` (``local.launchers.ui.Airflow``) on a stack of the
module's own, with dags/ and the test DAGs of ``tests/dags/spark_run_kill_and_retry.py``.
What is shown: mapped tasks fan out at once (two source files converted, two Iceberg tables
maintained, their Glue runs overlapping in time), and each wait is deferred to the triggerer
(the task instance is seen ``deferred``) and resumed from it (it then succeeds); a deferred
task marked failed through the API (the UI's "Mark as failed") stops its Glue run and cancels
its EMR Serverless run; a task whose process dies while its Glue run goes is retried, and the
retry attaches to that run instead of starting another.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from deploy.layout import ROOT, stage_dags_bundle
from local.launchers.ui import Airflow
from local.paths import TMP
from local.seeds.aws_world import HOLD_SCRIPT
from local.services.stack import free_port, running_stack, scripts_uri

# Seven minutes of the real services: in make test-all (make test keeps under 30 minutes).
pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.full]
RUN_TIMEOUT_S = 1200
TEST_DAGS = ROOT / "tests" / "dags" / "spark_run_kill_and_retry.py"


@pytest.fixture(scope="module")
def airflow():
    with running_stack(
        TMP / f"scheduler-{uuid.uuid4().hex[:6]}", discard=os.environ.get("KEEP_STACK") is None
    ) as stack:
        services = Airflow(stack, free_port())
        services.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder(stack.home / "scheduler-dags"))
        stack.set_variable("spark_platform", "glue")
        services.env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
        services.start()
        try:
            assert services.wait_ready(), "Airflow's services did not become healthy"
            yield services
        finally:
            services.stop()


def dags_folder(folder: Path) -> Path:
    """The stack's MWAA-shaped dags/ bundle plus the kill-and-retry test DAGs."""
    stage_dags_bundle(folder)
    link = folder / TEST_DAGS.name
    if not link.exists():
        link.symlink_to(TEST_DAGS)
    return folder


class Api:
    """Airflow's REST API, signed in as the admin user."""

    def __init__(self, airflow: Airflow):
        self.url = airflow.url
        token = self._call("POST", "/auth/token", {"username": airflow.user, "password": airflow.password}, None)
        self.token = token["access_token"]

    def _call(self, method: str, path: str, body: dict | None, token: str | None) -> dict:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def __call__(self, method: str, path: str, body: dict | None = None) -> dict:
        return self._call(method, path, body, self.token)


def wait_for_dag(api: Api, dag_id: str, timeout: float = 300) -> None:
    """Until the DAG processor has parsed the DAG (the API knows it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api("GET", f"/api/v2/dags/{dag_id}")
            return
        except urllib.error.HTTPError:
            time.sleep(3)
    raise AssertionError(f"{dag_id} was not parsed within {timeout}s")


def wait_for_run(api: Api, dag_id: str, run_id: str, seen: dict) -> str:
    """Until the DAG run ends; ``seen`` collects every state each task instance was seen in."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"
    while time.monotonic() < deadline:
        for ti in api("GET", f"{path}/taskInstances?limit=100")["task_instances"]:
            seen.setdefault((ti["task_id"], ti["map_index"]), set()).add(ti["state"])
        state = api("GET", path)["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    return "timed out"


def failed_logs(airflow: Airflow, dag_id: str) -> str:
    """The tails of the DAG's task logs that mention an error, for the failure message."""
    root = Path(airflow.env["AIRFLOW_HOME"]) / "logs" / f"dag_id={dag_id}"
    tails = []
    for log in sorted(root.rglob("*.log")) if root.exists() else []:
        text = log.read_text(errors="replace")
        if "error" in text.lower():
            tails.append(f"--- {log.relative_to(root)}\n{text[-3000:]}")
    return "\n".join(tails)[-12000:]


def overlap(spans: list[tuple[datetime, datetime]]) -> bool:
    """Were all of them running at one moment?"""
    return max(start for start, _ in spans) < min(end for _, end in spans)


def seed_inputs(stack) -> list[str]:
    """Two source files for the converter, two fragmented Iceberg tables; returns the tables."""
    from local.seeds.iceberg_tables import CATALOG, FragmentedTable, build_fragmented_table, lake_session
    from local.seeds.samples import upload_sample_mrf
    from local.services.spark_session import stop_session
    from local.services.stack import ICEBERG_DEMO_TABLE

    uri = upload_sample_mrf(stack)
    bucket, _, key = uri[5:].partition("/")
    folder, _, name = key.rpartition("/")
    stack.boto3_client("s3").copy_object(
        Bucket=bucket, Key=f"{folder}/second-{name}", CopySource={"Bucket": bucket, "Key": key}
    )
    tables = [ICEBERG_DEMO_TABLE, f"{ICEBERG_DEMO_TABLE}_second"]
    spark = lake_session(stack.info(), "scheduler-test-tables")
    try:
        shape = FragmentedTable(small_partitions=2, files_per_small_partition=20, healthy_partitions=1,
                                rows_per_healthy_partition=20_000)  # fmt: skip
        for table in tables:
            build_fragmented_table(spark, f"{CATALOG}.{table}", shape)
    finally:
        stop_session(spark)
    return tables


def test_mapped_tasks_fan_out_on_glue_and_their_waits_go_through_the_triggerer(airflow):
    stack = airflow.stack
    tables = seed_inputs(stack)
    api = Api(airflow)
    runs = {}
    for dag_id, conf in (("price_transparency_to_parquet", {}), ("iceberg_maintenance", {"tables": tables})):
        wait_for_dag(api, dag_id)
        runs[dag_id] = api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})["dag_run_id"]

    seen: dict[str, dict] = {}
    for dag_id, run_id in runs.items():
        seen[dag_id] = {}
        state = wait_for_run(api, dag_id, run_id, seen[dag_id])
        assert state == "success", (dag_id, state, seen[dag_id], failed_logs(airflow, dag_id))

    glue = stack.boto3_client("glue")
    glue_runs_by_id = {
        run["Id"]: run for job in glue.get_jobs()["Jobs"] for run in glue.get_job_runs(JobName=job["Name"])["JobRuns"]
    }
    for dag_id, task_id in (("price_transparency_to_parquet", "convert"), ("iceberg_maintenance", "maintain")):
        tis = api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{runs[dag_id]}/taskInstances?task_id={task_id}")
        mapped = [ti for ti in tis["task_instances"] if ti["task_id"] == task_id]
        assert len(mapped) == 2, mapped
        spans = [(datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"])) for ti in mapped]
        assert overlap(spans), f"{dag_id}.{task_id}: the mapped task instances ran one after the other: {spans}"
        for ti in mapped:  # each waited in the triggerer, not in a worker slot
            assert "deferred" in seen[dag_id][(task_id, ti["map_index"])], seen[dag_id]
        glue_runs = []
        for ti in mapped:
            xcom = api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{runs[dag_id]}/taskInstances/{task_id}"
                              f"/xcomEntries/glue_job_run_id?map_index={ti['map_index']}")  # fmt: skip
            run = glue_runs_by_id[str(xcom["value"]).strip('"')]
            assert run["JobRunState"] == "SUCCEEDED"
            glue_runs.append((run["StartedOn"], run["CompletedOn"]))
        assert overlap(glue_runs), f"{dag_id}: its Glue runs did not overlap: {glue_runs}"


def put_hold_script(stack) -> None:
    """The stack's hold script where the test DAGs' ``tests/hold.py`` is looked for."""
    bucket, _, prefix = scripts_uri(stack.info())[5:].partition("/")
    stack.boto3_client("s3").put_object(Bucket=bucket, Key=f"{prefix}/tests/hold.py", Body=HOLD_SCRIPT.read_bytes())


def platform_runs(stack, platform: str, name: str) -> list[dict]:
    """The Glue job's runs, or the EMR Serverless runs of that name: ``{"id", "state"}``, newest first."""
    if platform == "glue":
        glue = stack.boto3_client("glue")
        try:
            runs = glue.get_job_runs(JobName=name)["JobRuns"]
        except glue.exceptions.EntityNotFoundException:
            return []
        return [{"id": r["Id"], "state": r["JobRunState"]} for r in runs]
    emr = stack.boto3_client("emr-serverless")
    app = stack.info()["seed"]["emr_application_id"]
    return [
        {"id": r["id"], "state": r["state"]}
        for r in emr.list_job_runs(applicationId=app)["jobRuns"]
        if r["name"] == name
    ]


def wait_until(what: str, check, timeout: float = 300):
    """``check()``'s first truthy value within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(1)
    raise AssertionError(f"not seen within {timeout}s: {what}")


def trigger_started(airflow: Airflow, dag_id: str, run_id: str) -> bool:
    """Has the triggerer started the task's trigger (its log says so)? Airflow calls a trigger's
    on_kill only once it runs: a task marked failed before the triggerer picks its trigger up
    leaves the run going (see the README)."""
    logs = task_log_folder(airflow, dag_id, run_id).glob("*.trigger.*.log")
    return any(" starting" in log.read_text(errors="replace") for log in logs)


def task_log_folder(airflow: Airflow, dag_id: str, run_id: str, task_id: str = "hold") -> Path:
    return Path(airflow.env["AIRFLOW_HOME"]) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"


@pytest.mark.parametrize("platform, ended", [("glue", "STOPPED"), ("emr_serverless", "CANCELLED")])
def test_a_deferred_task_marked_failed_stops_its_run(airflow, platform, ended):
    """The UI's "Mark as failed" on a task waiting in the triggerer ends the run it waits for
    (before operators/glue_trigger.py, a Glue run went on for its whole length)."""
    stack, api, dag_id = airflow.stack, Api(airflow), "test_spark_run_kill"
    put_hold_script(stack)
    wait_for_dag(api, dag_id)
    name = dag_id.replace("_", "-")
    run_id = api("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                 {"logical_date": None, "conf": {"platform": platform, "seconds": 900}})["dag_run_id"]  # fmt: skip
    ti_path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/hold"

    def deferred_on_a_running_run():
        if api("GET", ti_path)["state"] != "deferred" or not trigger_started(airflow, dag_id, run_id):
            return None
        running = [r for r in platform_runs(stack, platform, name) if r["state"] == "RUNNING"]
        return running[0] if running else None

    run = wait_until(f"{dag_id} deferred with its {platform} run RUNNING", deferred_on_a_running_run)
    api("PATCH", ti_path, {"new_state": "failed"})

    def ended_run():
        now = next(r for r in platform_runs(stack, platform, name) if r["id"] == run["id"])
        return (
            now
            if now["state"]
            not in ("PENDING", "SCHEDULED", "SUBMITTED", "STARTING", "RUNNING", "STOPPING", "CANCELLING")
            else None
        )

    after = wait_until(f"{platform} run {run['id']} ended after the task was marked failed", ended_run, timeout=120)
    assert after["state"] == ended, after
    assert api("GET", ti_path)["state"] == "failed"


def test_a_retry_attaches_to_the_glue_run_its_killed_try_left_going(airflow):
    """The task's process dies (a worker lost) while its Glue run goes: the scheduler retries the
    task, and the retry waits for that run (resume_glue_job_on_retry) instead of starting another."""
    stack, api, dag_id = airflow.stack, Api(airflow), "test_spark_run_retry"
    put_hold_script(stack)
    wait_for_dag(api, dag_id)
    name = dag_id.replace("_", "-")
    run_id = api("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                 {"logical_date": None, "conf": {"platform": "glue", "seconds": 120}})["dag_run_id"]  # fmt: skip
    ti_path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/hold"

    def running_with_its_run():
        ti = api("GET", ti_path)
        running = [r for r in platform_runs(stack, "glue", name) if r["state"] == "RUNNING"]
        return (ti, running[0]) if ti["state"] == "running" and ti.get("pid") and running else None

    ti, run = wait_until(f"{dag_id} running in its worker with its Glue run RUNNING", running_with_its_run)
    assert ti["try_number"] == 1, ti
    os.kill(ti["pid"], signal.SIGKILL)

    seen: dict = {}
    state = wait_for_run(api, dag_id, run_id, seen)
    assert state == "success", (state, seen, failed_logs(airflow, dag_id))
    assert api("GET", ti_path)["try_number"] == 2, "the task was not retried"
    retry_log = task_log_folder(airflow, dag_id, run_id) / "attempt=2.log"
    assert f"Found Glue job_run_id by task UUID: {run['id']}, state: RUNNING" in retry_log.read_text()
    runs = platform_runs(stack, "glue", name)
    assert [r["id"] for r in runs] == [run["id"]], f"the retry started another run: {runs}"
    assert runs[0]["state"] == "SUCCEEDED", runs
