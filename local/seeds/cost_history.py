"""Several weeks of Glue and EMR Serverless runs on the local stack, for the cost pipeline.

Jobs cover what the cost pipeline must tell apart: every Glue pricing path (fixed workers of
several types, Flex and auto-scaled runs billed by DPU-seconds, Python shell, Glue 1.0's
10-minute minimum), EMR Serverless on x86_64 and arm64, failures with retries, a timeout, a
stopped run, a run over the worker threshold, runs over the duration threshold (one on a job
tagged ``remediate=false``), and a job whose cost jumps in the last week. Runs are made by
the local stack's ``/_local/job-runs`` extension (``local/aws/history.py``), with fixed
seeds, so the same ``end`` gives the same history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field, replace

from local.aws.history import post_job_runs

ROLE = "arn:aws:iam::123456789012:role/mwaa-pipelines-glue"


@dataclass(frozen=True)
class JobSpec:
    name: str
    tags: dict[str, str]
    worker_type: str | None = "G.1X"
    workers: int | None = 2
    minutes: tuple[int, int] = (10, 30)
    runs_per_day: int = 1
    every_days: int = 1
    command: str = "glueetl"
    glue_version: str = "4.0"
    execution_class: str = "STANDARD"
    auto_scaling: bool = False
    max_capacity: float | None = None
    fail_every: int = 0  # every Nth run fails (then a retry succeeds)
    last_week_factor: float = 1.0  # workers x this in the last 7 days: a cost jump
    special: dict[int, dict] = field(default_factory=dict)  # run index from the end -> field overrides


def _tags(team: str, center: str, env: str, **more: str) -> dict[str, str]:
    return {"team": team, "cost-center": center, "environment": env, **more}


GLUE_JOBS = (
    JobSpec("sales-nightly", _tags("analytics", "cc-100", "prod"), "G.1X", 10, (20, 40)),
    JobSpec("clickstream-sessions", _tags("analytics", "cc-100", "prod"), "G.2X", 5, (5, 15), runs_per_day=3,
            fail_every=17),
    JobSpec("finance-close", _tags("finance", "cc-200", "prod"), "G.4X", 8, (30, 50), last_week_factor=3.0),
    JobSpec("ml-features", _tags("data-science", "cc-300", "dev"), "G.1X", 10, (20, 60), execution_class="FLEX"),
    JobSpec("feature-backfill", _tags("data-science", "cc-300", "prod"), "G.2X", 20, (30, 60), every_days=7,
            auto_scaling=True),
    JobSpec("sandbox-explore", _tags("data-science", "cc-300", "dev", remediate="false"), "G.1X", 12, (20, 40),
            every_days=2, special={0: {"ExecutionTime": 510 * 60}}),
    JobSpec("etl-backfill", _tags("data-platform", "cc-400", "prod"), "G.1X", 8, (40, 90), every_days=3,
            special={0: {"ExecutionTime": 525 * 60}, 2: {"JobRunState": "TIMEOUT", "ErrorMessage": "Job timed out"}}),
    JobSpec("ops-cleanup", _tags("data-platform", "cc-400", "prod"), None, None, (1, 3), runs_per_day=2,
            command="pythonshell", glue_version="3.0", max_capacity=0.0625,
            special={3: {"JobRunState": "STOPPED"}}),
    JobSpec("legacy-report", _tags("finance", "cc-200", "prod"), "Standard", 10, (4, 8), every_days=7,
            glue_version="1.0"),
    JobSpec("memory-heavy-join", _tags("analytics", "cc-100", "prod"), "R.2X", 4, (30, 45), every_days=2),
)  # fmt: skip

# EMR Serverless: (application name, architecture, job name, tags, vCPUs, memory GB, minutes)
EMR_JOBS = (
    ("mwaa-pipelines", "X86_64", "events-compaction", _tags("data-platform", "cc-400", "prod"), 16, 64, (20, 40)),
    ("arm-analytics", "ARM64", "sessionize", _tags("analytics", "cc-100", "prod"), 32, 128, (30, 60)),
)


def _run_id(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def glue_runs(spec: JobSpec, start: dt.datetime, end: dt.datetime, rng: random.Random) -> list[dict]:
    runs: list[dict] = []
    day, index = start, 0
    while day < end:
        for slot in range(spec.runs_per_day):
            started = day + dt.timedelta(hours=2 + slot * (20 // max(spec.runs_per_day, 1)), minutes=rng.randint(0, 50))
            if started >= end:
                continue
            minutes = rng.randint(*spec.minutes)
            workers = spec.workers
            if workers and end - started <= dt.timedelta(days=7):
                workers = int(workers * spec.last_week_factor)
            run = {"JobName": spec.name, "Id": f"jr_{_run_id(spec.name, started.isoformat())}", "Attempt": 0,
                   "JobRunState": "SUCCEEDED", "StartedOn": started, "ExecutionTime": minutes * 60,
                   "GlueVersion": spec.glue_version, "ExecutionClass": spec.execution_class,
                   "Timeout": 2880}  # fmt: skip
            if spec.worker_type:
                run.update(WorkerType=spec.worker_type, NumberOfWorkers=workers)
            if spec.max_capacity is not None:
                run["MaxCapacity"] = spec.max_capacity
            if spec.execution_class == "FLEX" or spec.auto_scaling:
                run["DPUSeconds"] = round(minutes * 60 * (workers or 1) * rng.uniform(0.4, 0.9), 1)
            index += 1
            if spec.fail_every and index % spec.fail_every == 0:
                run.update(JobRunState="FAILED", ErrorMessage="ExecutorLostFailure (executor 3 exited)")
            runs.append(run)
            if run["JobRunState"] == "FAILED":
                retry_start = started + dt.timedelta(minutes=minutes + 2)
                if retry_start < end:
                    runs.append({**run, "Id": f"jr_{_run_id(spec.name, retry_start.isoformat())}", "Attempt": 1,
                                 "PreviousRunId": run["Id"], "JobRunState": "SUCCEEDED", "StartedOn": retry_start,
                                 "ErrorMessage": None})  # fmt: skip
        day += dt.timedelta(days=spec.every_days)
    runs.sort(key=lambda r: r["StartedOn"])
    for back, overrides in spec.special.items():
        if back < len(runs):
            runs[-1 - back].update(overrides)
    for run in runs:
        run["CompletedOn"] = run["StartedOn"] + dt.timedelta(seconds=run["ExecutionTime"])
        run["LastModifiedOn"] = run["CompletedOn"]
    return [{k: v for k, v in run.items() if v is not None} for run in runs]


def emr_runs(app_id: str, name: str, tags: dict[str, str], vcpu: int, memory: int, minutes: tuple[int, int],
             start: dt.datetime, end: dt.datetime, rng: random.Random) -> list[dict]:  # fmt: skip
    runs, day = [], start
    while day < end:
        created = day + dt.timedelta(hours=4, minutes=rng.randint(0, 50))
        if created < end:
            seconds = rng.randint(*minutes) * 60
            hours = seconds / 3600
            used = rng.uniform(0.7, 1.0)
            runs.append({
                "applicationId": app_id, "jobRunId": _run_id(app_id, name, created.isoformat())[:16], "name": name,
                "jobDriver": {"sparkSubmit": {
                    "entryPoint": f"s3://mwaa-pipelines-artifacts/jobs/{name}.py", "entryPointArguments": [],
                    "sparkSubmitParameters": f"--conf spark.executor.instances={vcpu // 4 - 1} --conf spark.executor.cores=4 "
                                             "--conf spark.executor.memory=16g"}},
                "state": "SUCCESS", "createdAt": created, "startedAt": created + dt.timedelta(seconds=40),
                "endedAt": created + dt.timedelta(seconds=40 + seconds), "updatedAt": created + dt.timedelta(seconds=40 + seconds),
                "totalExecutionDurationSeconds": seconds, "tags": tags, "attempt": 1,
                "billedResourceUtilization": {"vCPUHour": round(vcpu * hours, 4), "memoryGBHour": round(memory * hours, 4),
                                              "storageGBHour": round(20 * hours, 4)},
                "totalResourceUtilization": {"vCPUHour": round(vcpu * hours * used, 4),
                                             "memoryGBHour": round(memory * hours * used, 4), "storageGBHour": 0.0},
            })  # fmt: skip
        day += dt.timedelta(days=1)
    return runs


def seed_cost_history(stack, end: dt.datetime | None = None, weeks: int = 5, seed: int = 7, prefix: str = "") -> dict:
    """Create the jobs (with tags) and ``weeks`` of runs ending at ``end``; return what was made.

    ``prefix`` goes in front of every job name, so tests sharing one stack keep their histories apart.
    """
    end = (end or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    start = (end - dt.timedelta(weeks=weeks)).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    glue = stack.boto3_client("glue")
    existing = {j["Name"] for page in glue.get_paginator("get_jobs").paginate() for j in page["Jobs"]}
    all_glue: list[dict] = []
    for spec in (replace(spec, name=prefix + spec.name) for spec in GLUE_JOBS):
        if spec.name not in existing:
            definition = {"Name": spec.name, "Role": ROLE, "GlueVersion": spec.glue_version, "Tags": spec.tags,
                          "Command": {"Name": spec.command, "ScriptLocation": f"s3://mwaa-pipelines-artifacts/jobs/{spec.name}.py"},
                          "ExecutionClass": spec.execution_class}  # fmt: skip
            if spec.worker_type:
                definition.update(WorkerType=spec.worker_type, NumberOfWorkers=spec.workers)
            if spec.max_capacity is not None:
                definition["MaxCapacity"] = spec.max_capacity
            if spec.auto_scaling:
                definition["DefaultArguments"] = {"--enable-auto-scaling": "true"}
            glue.create_job(**definition)
        all_glue += glue_runs(spec, start, end, rng)
    emr = stack.boto3_client("emr-serverless")
    apps = {
        a["name"]: a["id"] for page in emr.get_paginator("list_applications").paginate() for a in page["applications"]
    }
    all_emr: list[dict] = []
    for app_name, architecture, name, tags, vcpu, memory, minutes in EMR_JOBS:
        if app_name not in apps:
            apps[app_name] = emr.create_application(name=app_name, releaseLabel="emr-7.12.0", type="SPARK",
                                                    architecture=architecture)["applicationId"]  # fmt: skip
        all_emr += emr_runs(apps[app_name], prefix + name, tags, vcpu, memory, minutes, start, end, rng)
    post_job_runs(stack.info()["moto"]["endpoint_url"], glue=all_glue, emr_serverless=all_emr)
    return {"start": start.isoformat(), "end": end.isoformat(), "glue_runs": len(all_glue), "emr_runs": len(all_emr),
            "glue_jobs": len(GLUE_JOBS), "emr_jobs": len(EMR_JOBS),
            "run_ids": {("glue", r["Id"]) for r in all_glue} | {("emr_serverless", r["jobRunId"]) for r in all_emr}}  # fmt: skip


def seed_demo_history(stack) -> str:
    """``make demo``'s input for the cost DAGs: five weeks of runs up to now."""
    made = seed_cost_history(stack)
    return (f"{made['glue_runs']} Glue runs of {made['glue_jobs']} jobs and {made['emr_runs']} EMR Serverless runs "
            f"of {made['emr_jobs']} jobs, {made['start'][:10]} to {made['end'][:10]}")  # fmt: skip
