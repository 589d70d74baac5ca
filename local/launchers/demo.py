"""``make demo``: the local stack up, every DAG in dags/ run end to end, a summary, stack down.

Each DAG runs with ``airflow dags test`` (Airflow's own runner, in-process, deferrable
tasks included) against moto, PostgreSQL and local Spark. Full logs go to
``.state/stack/logs/demo-<dag_id>.log``; the summary is read from Airflow's metadata DB.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.layout import DAGS_DIR
from local.seeds.cost_history import seed_demo_history
from local.seeds.iceberg_tables import seed_demo_table
from local.seeds.samples import upload_sample_mrf
from local.services.platform_runs import RunsCost, price_new_runs, snapshot
from local.services.stack import Stack, running_stack

# Per-DAG trigger-form values for the demo run (empty: the DAG's defaults).
DEMO_CONF: dict[str, dict] = {}
DAG_TIMEOUT_S = 1800
# Inputs put on the stack before a DAG runs (returns what it put, for the log).
DEMO_SETUP = {
    "price_transparency_to_parquet": upload_sample_mrf,
    "iceberg_maintenance": seed_demo_table,
    "cost_alerts": seed_demo_history,
    "cost_weekly_report": seed_demo_history,  # the same runs again (same day, same ids): replaced, not doubled
}


COST_DAGS = ("cost_alerts", "cost_weekly_report")


@dataclass
class DagResult:
    dag_id: str
    state: str
    seconds: float
    log: Path
    tasks: list[tuple[str, str, float | None]] = field(default_factory=list)
    cost: RunsCost | None = None


def dag_ids(dags_dir: Path = DAGS_DIR) -> list[str]:
    """DAG ids from the DAG files' source, without importing them."""
    ids = []
    for path in sorted(dags_dir.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "dag_id" and isinstance(node.value, ast.Constant):
                ids.append(node.value.value)
    return ids


def demo_order(ids: list[str]) -> list[str]:
    """The cost DAGs last, so they collect and price the runs the other DAGs just made."""
    return sorted(ids, key=lambda dag_id: dag_id in COST_DAGS)


def airflow(env: dict[str, str], *args: str, log: Path | None = None, timeout: float = DAG_TIMEOUT_S) -> int:
    out = open(log, "w") if log else subprocess.DEVNULL
    try:
        return subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        ).returncode
    finally:
        if log:
            out.close()


def latest_run(db: Path, dag_id: str) -> tuple[str, list[tuple[str, str, float | None]]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
        if not row:
            return "not run", []
        tasks = conn.execute(
            "SELECT task_id, COALESCE(state, 'none'), duration FROM task_instance "
            "WHERE dag_id = ? AND run_id = ? ORDER BY start_date",
            (dag_id, row[0]),
        ).fetchall()
    return row[1], tasks


def run_dag(stack: Stack, env: dict[str, str], dag_id: str) -> DagResult:
    log = stack.logs / f"demo-{dag_id}.log"
    if dag_id in DEMO_SETUP:
        print(f"-> {dag_id}: input {DEMO_SETUP[dag_id](stack)}", flush=True)
    args = ["dags", "test", dag_id]
    if DEMO_CONF.get(dag_id):
        args += ["--conf", json.dumps(DEMO_CONF[dag_id])]
    print(f"-> {dag_id}: running (log: {log})", flush=True)
    started = time.monotonic()
    before = snapshot(stack)
    airflow(env, *args, log=log)
    state, tasks = latest_run(Path(env["AIRFLOW_HOME"]) / "airflow.db", dag_id)
    return DagResult(dag_id, state, time.monotonic() - started, log, tasks, price_new_runs(stack, before))


def summary(results: list[DagResult]) -> str:
    lines = []
    for r in results:
        ok = sum(1 for _, s, _ in r.tasks if s == "success")
        lines.append(f"\n{r.dag_id}: {r.state.upper()}  ({ok}/{len(r.tasks)} tasks succeeded, {r.seconds:.0f}s)")
        if r.cost:
            lines.append(f"  cost: {r.cost.line()}")
        width = max([len(t) for t, _, _ in r.tasks] + [4])
        lines.append(f"  {'task'.ljust(width)}  {'state':<16} seconds")
        for task_id, state, duration in r.tasks:
            secs = f"{duration:.1f}" if duration is not None else "-"
            lines.append(f"  {task_id.ljust(width)}  {state:<16} {secs}")
        if r.state != "success":
            lines.append(f"  log: {r.log}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local.launchers.demo", description=__doc__)
    parser.add_argument("dags", nargs="*", help="DAG ids to run (default: every DAG in dags/)")
    parser.add_argument(
        "--platform", choices=("local", "glue", "emr_serverless"), default="local",
        help="where Spark tasks run: spark-submit on the worker (default), or the local stack's Glue "
        "or EMR Serverless, which execute the runs they are given",
    )  # fmt: skip
    args = parser.parse_args(argv)
    selected = args.dags or demo_order(dag_ids())
    print(f"Starting the local stack; DAGs to run on platform {args.platform}: {', '.join(selected)}", flush=True)
    with running_stack() as stack:
        stack.set_variable("spark_platform", args.platform)  # Airflow reads it from the stack's secrets
        env = stack.airflow_env()
        if airflow(env, "db", "migrate", log=stack.logs / "airflow-db-migrate.log") != 0:
            print(f"airflow db migrate failed: see {stack.logs / 'airflow-db-migrate.log'}")
            return 1
        results = [run_dag(stack, env, dag_id) for dag_id in selected]
    print("\n=== Demo summary ===" + summary(results))
    failed = [r.dag_id for r in results if r.state != "success"]
    print(f"\n{len(results) - len(failed)}/{len(results)} DAGs succeeded" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
