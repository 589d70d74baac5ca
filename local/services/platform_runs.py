"""The Glue and EMR Serverless runs the local stack holds, and what the new ones cost.

``make demo`` and the DAG end-to-end tests take a snapshot before a DAG runs and read the runs
made since: the tests check that the Spark work went through the platform asked for, the demo
prices them with the cost model the ``cost_alerts`` pipeline uses (``spark_jobs/cost/model.py``),
from each run's own ExecutionTime, DPUSeconds or billedResourceUtilization.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spark_jobs.cost.model import emr_run_cost, glue_run_cost

KINDS = ("glue", "emr_serverless")


def _each_run(stack: Any) -> Iterator[tuple[str, dict, dict]]:
    """(kind, run as listed, its Glue job or EMR Serverless application) for every run."""
    glue, emr = stack.boto3_client("glue"), stack.boto3_client("emr-serverless")
    for page in glue.get_paginator("get_jobs").paginate():
        for job in page["Jobs"]:
            for runs in glue.get_paginator("get_job_runs").paginate(JobName=job["Name"]):
                for run in runs["JobRuns"]:
                    yield "glue", run, job
    for page in emr.get_paginator("list_applications").paginate():
        for app in page["applications"]:
            if app.get("state") == "TERMINATED":  # a deleted application: its runs are gone with it
                continue
            for runs in emr.get_paginator("list_job_runs").paginate(applicationId=app["id"]):
                for run in runs["jobRuns"]:
                    yield "emr_serverless", run, app


def _id_and_state(kind: str, run: dict) -> tuple[str, str]:
    return (run["Id"], run["JobRunState"]) if kind == "glue" else (run["id"], run["state"])


def snapshot(stack: Any) -> dict[str, dict[str, str]]:
    """Every run the stack holds: kind -> run id -> state."""
    found: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
    for kind, run, _ in _each_run(stack):
        run_id, state = _id_and_state(kind, run)
        found[kind][run_id] = state
    return found


def made_since(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {kind: {k: v for k, v in after[kind].items() if k not in before[kind]} for kind in KINDS}


@dataclass
class RunsCost:
    glue_runs: int = 0
    emr_runs: int = 0
    usd: Decimal = Decimal(0)
    unpriced: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not (self.glue_runs or self.emr_runs):
            return "no Glue or EMR Serverless runs"
        text = f"{self.glue_runs} Glue and {self.emr_runs} EMR Serverless runs, ${self.usd:.4f}"
        return text + (f" ({len(self.unpriced)} not priced)" if self.unpriced else "")


def price_new_runs(stack: Any, before: dict[str, dict[str, str]]) -> RunsCost:
    """Price the runs made since ``before`` from their own records, with the default rates."""
    emr = stack.boto3_client("emr-serverless")
    out = RunsCost()
    for kind, run, owner in _each_run(stack):
        run_id, _ = _id_and_state(kind, run)
        if run_id in before[kind]:
            continue
        if kind == "glue":
            out.glue_runs += 1
            _add(out, glue_run_cost(run, owner).cost_usd, run_id)
        else:  # the listing has no utilization figures: the run itself has
            full = emr.get_job_run(applicationId=owner["id"], jobRunId=run_id)["jobRun"]
            out.emr_runs += 1
            _add(out, emr_run_cost(full, owner.get("architecture")).cost_usd, run_id)
    return out


def _add(out: RunsCost, usd: Decimal | None, run_id: str) -> None:
    if usd is None:
        out.unpriced.append(run_id)
    else:
        out.usd += usd
