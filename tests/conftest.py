"""Shared fixtures: a private local stack per test session, and helpers to run Airflow.

Airflow reads its configuration at import, and the stack's endpoint is only known once
it runs, so tests drive Airflow through its own CLI (``airflow dags test``) in a
subprocess with the stack's environment, as ``make demo`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from deploy.layout import ROOT
from local.paths import TMP
from local.services.stack import Stack, running_stack

# In-process imports of Airflow (unit tests of operators) get a throw-away home.
os.environ.setdefault("AIRFLOW_HOME", str(TMP / "airflow-home-tests"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

AIRFLOW = str(Path(sys.executable).parent / "airflow")


@pytest.fixture(scope="session")
def stack():
    with running_stack(TMP / f"stack-{uuid.uuid4().hex[:8]}", discard=True) as s:
        yield s


@pytest.fixture(scope="session")
def endpoint_url(stack) -> str:
    return stack.info()["moto"]["endpoint_url"]


@pytest.fixture
def aws_env(monkeypatch, endpoint_url):
    """boto3 (and the provider with aws_conn_id=None) pointed at the stack."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return endpoint_url


class AirflowRunner:
    """Run Airflow CLI commands against the stack with a given dags folder."""

    def __init__(self, stack: Stack, dags_folder: Path):
        self.stack = stack
        self.env = {**os.environ, **stack.airflow_env(), "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder)}
        self.db = Path(self.env["AIRFLOW_HOME"]) / "airflow.db"

    def run(self, *args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [AIRFLOW, *args], env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )

    def dags_test(
        self, dag_id: str, conf: dict | None = None, timeout: float = 600, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        args = ["dags", "test", dag_id]
        if conf:
            args += ["--conf", json.dumps(conf)]
        return self.run(*args, timeout=timeout, env=env)

    def xcoms(self, dag_id: str, task_id: str) -> dict:
        """The XComs of ``task_id`` in the DAG's latest run, key -> value (JSON-decoded)."""
        import sqlite3

        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            run_id = conn.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()[0]
            rows = conn.execute(
                "SELECT key, value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ?",
                (dag_id, run_id, task_id),
            ).fetchall()
        return {key: json.loads(value) if isinstance(value, str | bytes) else value for key, value in rows}

    def task_states(self, dag_id: str) -> dict[str, str]:
        from local.launchers.demo import latest_run

        _, tasks = latest_run(self.db, dag_id)
        return {task_id: state for task_id, state, _ in tasks}


@pytest.fixture(scope="session")
def airflow_runner(stack) -> AirflowRunner:
    runner = AirflowRunner(stack, stack.dags_folder)
    result = runner.run("db", "migrate")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return runner


@pytest.fixture(scope="session")
def hold_script(stack) -> str:
    """``s3://`` URI of the stack's hold script (local/seeds/scripts/hold.py): a job script that
    holds its run for ``--seconds`` (default 0) without starting Spark."""
    return stack.info()["seed"]["hold_script"]
