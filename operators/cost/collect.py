"""Collect Glue and EMR Serverless job runs since the ledger's watermark, priced and tagged.

Called by the ``cost_alerts`` DAG with the boto3 clients of the provider's hooks
(``GlueJobHook``, ``EmrServerlessHook``, ``S3Hook``), so credentials come from the Airflow
connection or the worker's role. AWS calls: GetJobs (paginated) + GetTags per Glue job,
GetJobRuns per job (paginated, newest first: paging stops at the first run older than the
window); ListApplications + GetApplication per EMR Serverless application, ListJobRuns
(filtered by creation time) + GetJobRun per run.

Only finished runs enter the ledger. The new watermark is the collection time, or the
start of the oldest run still going, whichever is earlier, so a long run is picked up once
it ends; each window also reaches back ``overlap`` before the watermark (runs that became
visible late), and the ledger's merge makes the overlap harmless.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from operators.cost import ledger
from spark_jobs.cost.model import DEFAULT_RATES, TERMINAL_EMR_STATES, emr_record, glue_record, record_cost

log = logging.getLogger(__name__)

GLUE_FINISHED = frozenset({"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR", "EXPIRED"})


@dataclass
class Collected:
    platform: str
    rows: list[dict] = field(default_factory=list)
    pending_since: dt.datetime | None = None  # start of the oldest run still going
    jobs: int = 0
    problems: list[str] = field(default_factory=list)

    def still_running(self, started: dt.datetime) -> None:
        self.pending_since = started if self.pending_since is None else min(self.pending_since, started)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def ledger_row(record: dict, tags: Mapping[str, str], rates: Mapping[str, Decimal], collected_at: dt.datetime) -> dict:
    """A flat record plus its tags and price; pricing problems become notes, never errors."""
    row = {**record, "started_at": _utc(record["started_at"]), "completed_at": _utc(record["completed_at"])}
    for tag, column in ledger.TAG_COLUMNS.items():
        row[column] = tags.get(tag)
    row["tags"] = json.dumps(dict(sorted(tags.items())))
    try:
        cost = record_cost(record, rates)
        row.update(cost_usd=cost.cost_usd, dpu_hours=cost.dpu_hours, cost_estimated=cost.estimated,
                   cost_basis=cost.basis, cost_notes="; ".join(cost.notes) or None)  # fmt: skip
    except Exception as exc:  # a field of a shape never seen: keep the run, unpriced
        row.update(cost_usd=None, dpu_hours=None, cost_estimated=True, cost_basis="none",
                   cost_notes=f"could not price: {type(exc).__name__}: {exc}")  # fmt: skip
    row["collected_at"] = collected_at
    return row


def collect_glue(glue, account: str, since: dt.datetime, now: dt.datetime,
                 rates: Mapping[str, Decimal] = DEFAULT_RATES) -> Collected:  # fmt: skip
    out = Collected("glue")
    # The client's own partition (what the provider's hooks report as conn_partition): aws-cn and
    # aws-us-gov accounts name their jobs arn:aws-cn:... and arn:aws-us-gov:...
    region, partition = glue.meta.region_name, glue.meta.partition
    for page in glue.get_paginator("get_jobs").paginate():
        for job in page.get("Jobs", []):
            out.jobs += 1
            tags = _glue_tags(glue, f"arn:{partition}:glue:{region}:{account}:job/{job['Name']}", out)
            for run_page in glue.get_paginator("get_job_runs").paginate(JobName=job["Name"]):
                runs = run_page.get("JobRuns", [])
                for run in runs:
                    started = _utc(run.get("StartedOn"))
                    if started is None or started < since:
                        continue
                    if run.get("JobRunState") not in GLUE_FINISHED:
                        out.still_running(started)
                        continue
                    out.rows.append(ledger_row(glue_record(run, job), tags, rates, now))
                oldest = _utc(runs[-1].get("StartedOn")) if runs else None
                if oldest is not None and oldest < since:
                    break  # newest first: the pages left are older still
    log.info("glue: %d job(s), %d finished run(s) since %s", out.jobs, len(out.rows), since.isoformat())
    return out


def _glue_tags(glue, arn: str, out: Collected) -> dict[str, str]:
    try:
        return glue.get_tags(ResourceArn=arn).get("Tags", {})
    except Exception as exc:  # no glue:GetTags permission: the runs still count, untagged
        out.problems.append(f"tags of {arn}: {exc}")
        log.warning("could not read the tags of %s: %s", arn, exc)
        return {}


def collect_emr(emr, since: dt.datetime, now: dt.datetime, rates: Mapping[str, Decimal] = DEFAULT_RATES) -> Collected:
    out = Collected("emr_serverless")
    for page in emr.get_paginator("list_applications").paginate():
        for summary in page.get("applications", []):
            application = emr.get_application(applicationId=summary["id"])["application"]
            app_tags = application.get("tags") or {}
            architecture = application.get("architecture") or "X86_64"
            out.jobs += 1
            for run_page in emr.get_paginator("list_job_runs").paginate(
                applicationId=summary["id"], createdAtAfter=since
            ):
                for listed in run_page.get("jobRuns", []):
                    if listed.get("state") not in TERMINAL_EMR_STATES:
                        out.still_running(_utc(listed["createdAt"]))
                        continue
                    run = emr.get_job_run(applicationId=summary["id"], jobRunId=listed["id"])["jobRun"]
                    tags = {**app_tags, **(run.get("tags") or {})}
                    out.rows.append(ledger_row(emr_record(run, architecture), tags, rates, now))
    log.info("emr_serverless: %d application(s), %d finished run(s) since %s", out.jobs, len(out.rows), since.isoformat())  # fmt: skip
    return out


def collect(glue, emr, s3, ledger_uri: str, account: str, now: dt.datetime | None = None,
            lookback: dt.timedelta = dt.timedelta(days=35), overlap: dt.timedelta = dt.timedelta(hours=6),
            rates: Mapping[str, Decimal] = DEFAULT_RATES) -> dict:  # fmt: skip
    """One collection: read the watermark, collect both platforms, merge into the ledger, move the watermark."""
    now = now or dt.datetime.now(dt.UTC)
    marks = ledger.read_watermark(s3, ledger_uri)
    results, windows = [], {}
    for platform, run in (("glue", lambda since: collect_glue(glue, account, since, now, rates)),
                          ("emr_serverless", lambda since: collect_emr(emr, since, now, rates))):  # fmt: skip
        since = marks[platform] - overlap if platform in marks else now - lookback
        windows[platform] = since.isoformat()
        results.append(run(since))
    rows = [row for result in results for row in result.rows]
    days = ledger.append(s3, ledger_uri, rows) if rows else {}
    new_marks = {r.platform: min(now, r.pending_since) if r.pending_since else now for r in results}
    ledger.write_watermark(s3, ledger_uri, new_marks)
    summary = {
        "windows": windows,
        "runs": {r.platform: len(r.rows) for r in results},
        "jobs": {r.platform: r.jobs for r in results},
        "still_running": {r.platform: r.pending_since.isoformat() for r in results if r.pending_since},
        "added": sum(d["added"] for d in days.values()),
        "days": days,
        "estimated": sum(1 for row in rows if row["cost_estimated"]),
        "unpriced": sum(1 for row in rows if row["cost_usd"] is None),
        "watermark": {k: v.isoformat() for k, v in new_marks.items()},
        "problems": [p for r in results for p in r.problems],
    }
    log.info("collected %s run(s), %d new in the ledger; %d estimated, %d unpriced; watermark now %s",
             summary["runs"], summary["added"], summary["estimated"], summary["unpriced"], summary["watermark"])  # fmt: skip
    return summary
