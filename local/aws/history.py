"""Past job runs for the local stack: what no AWS API can create.

The cost pipeline reads Glue and EMR Serverless run history, but a run can only be made by
starting it, and moto's runs all start now, take 123 s and report no ``DPUSeconds`` or
billed utilization. ``POST /_local/job-runs`` with

    {"glue": [{"JobName": "j", "Id": "jr_...", "JobRunState": "FAILED", "StartedOn": ISO,
               "CompletedOn": ISO, "ExecutionTime": 300, "WorkerType": "G.1X", ...}],
     "emr_serverless": [{"applicationId": "...", "jobRunId": "...", "name": "n", "state": "SUCCESS",
                         "createdAt": ISO, "updatedAt": ISO, "billedResourceUtilization": {...}, ...}]}

adds runs to existing Glue jobs and EMR Serverless applications (a run whose Id exists
replaces it: the same run, later), with exactly the fields given (GetJobRuns / GetJobRun / ListJobRuns then return them as AWS would). Glue runs come
back newest first, as AWS returns them. Also kept, where moto drops it: an EMR Serverless
application's ``architecture``.

``GET /_local/ses-sent`` returns the mail SES has accepted (moto's record: id, source,
destinations and the raw MIME of each ``SendRawEmail``), for tests of the weekly report.
AWS keeps no readable record of sent mail; moto's own ``/moto-api/data.json`` dumps every
model of every service and fails on some of them. Served by the local moto server as a WSGI middleware
(:class:`RunHistory`); :func:`post_job_runs` is the client side.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

JOB_RUNS_PATH = "/_local/job-runs"
SES_SENT_PATH = "/_local/ses-sent"
_GLUE_TIMES = ("StartedOn", "CompletedOn", "LastModifiedOn")
_EMR_TIMES = ("createdAt", "updatedAt", "startedAt", "endedAt", "attemptCreatedAt", "attemptUpdatedAt")
_APPLIED = False


def apply() -> None:
    """Let injected Glue runs report their own fields (moto's ``as_dict`` is a fixed literal)."""
    global _APPLIED
    if _APPLIED:
        return
    from moto.glue.models import FakeJob, FakeJobRun

    plain_as_dict = FakeJobRun.as_dict

    def as_dict(self) -> dict[str, Any]:
        fields = plain_as_dict(self)
        injected = getattr(self, "local_fields", None)
        if injected:
            fields = {k: v for k, v in fields.items() if k in ("Id", "JobName", "JobRunState", "LogGroupName")}
            fields.update(injected)
        return fields

    plain_get_job_runs = FakeJob.get_job_runs

    def get_job_runs(self) -> list:
        return sorted(plain_get_job_runs(self), key=lambda r: r.started_on, reverse=True)

    FakeJobRun.as_dict = as_dict
    FakeJob.get_job_runs = get_job_runs
    _fix_emr_list_filters()
    _keep_emr_architecture()
    _APPLIED = True


def _keep_emr_architecture() -> None:
    """moto drops CreateApplication's ``architecture``; AWS keeps it (X86_64 by default) and
    returns it from GetApplication. Run prices depend on it (arm64 rates are lower)."""
    from moto.emrserverless.models import Application
    from moto.emrserverless.responses import EMRServerlessResponse

    Application.architecture = "X86_64"
    plain = EMRServerlessResponse.create_application

    def create_application(self):  # type: ignore[no-untyped-def]
        result = plain(self)
        architecture = self._get_param("architecture")
        if architecture:  # the application just made is the last one of that name
            applications = self.emrserverless_backend.applications.values()
            [a for a in applications if a.name == self._get_param("name")][-1].architecture = architecture
        return result

    EMRServerlessResponse.create_application = create_application


def _fix_emr_list_filters() -> None:
    """moto compares ``createdAtAfter``/``createdAtBefore`` as sent (text) with its datetimes, and fails."""
    from moto.emrserverless.models import EMRServerlessBackend

    plain = EMRServerlessBackend.list_job_runs

    def as_time(value: Any) -> dt.datetime | None:
        if value is None or isinstance(value, dt.datetime):
            return value
        if isinstance(value, int | float) or str(value).replace(".", "", 1).isdigit():
            return dt.datetime.fromtimestamp(float(value), dt.UTC).replace(tzinfo=None)
        return _time(value)

    def list_job_runs(self, application_id, created_at_after, created_at_before, states):  # type: ignore[no-untyped-def]
        runs = plain(self, application_id, as_time(created_at_after), as_time(created_at_before), states)
        return sorted(runs, key=lambda r: r.created_at, reverse=True)

    EMRServerlessBackend.list_job_runs = list_job_runs


def _time(value: Any) -> dt.datetime:
    """A naive UTC datetime, as moto keeps its own (``utcnow()``), so both sort and compare."""
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def add_glue_runs(runs: list[dict], account: str, region: str) -> int:
    from moto.glue.models import FakeJobRun, glue_backends

    backend = glue_backends[account][region]
    for spec in runs:
        job = backend.get_job(spec["JobName"])
        run = FakeJobRun(job_name=job.name)
        fields = {k: (_time(v) if k in _GLUE_TIMES and v is not None else v) for k, v in spec.items()}
        run.job_run_id = fields.setdefault("Id", run.job_run_id)
        run._status = fields.get("JobRunState", "SUCCEEDED")
        run.started_on = fields.get("StartedOn") or run.started_on
        run.completed_on = fields.get("CompletedOn")
        run.local_fields = fields
        # The same Id again is the same run, later (a run that was going and has ended).
        job.job_runs[:] = [r for r in job.job_runs if r.job_run_id != run.job_run_id] + [run]
    return len(runs)


def add_emr_runs(runs: list[dict], account: str, region: str) -> int:
    from moto.emrserverless.models import JobRun, emrserverless_backends

    backend = emrserverless_backends[account][region]
    for spec in runs:
        application = backend.applications[spec["applicationId"]]
        run = JobRun(
            application_id=application.id, client_token="local-history", execution_role_arn=spec.get("executionRole", ""),
            account_id=account, region_name=region, release_label=application.release_label,
            application_type=application.type, job_driver=spec.get("jobDriver"), configuration_overrides=None,
            tags=spec.get("tags"), network_configuration=None,
            execution_timeout_minutes=spec.get("executionTimeoutMinutes"), name=spec.get("name"),
        )  # fmt: skip
        if spec.get("jobRunId"):
            run.arn = run.arn.replace(run.id, spec["jobRunId"])
            run.id = spec["jobRunId"]
        for key, value in spec.items():
            attribute = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
            if key in ("applicationId", "jobRunId", "tags", "jobDriver", "name", "executionTimeoutMinutes"):
                continue
            setattr(run, attribute, _time(value) if key in _EMR_TIMES and value is not None else value)
        runs_of_app = backend.job_runs.setdefault(application.id, [])
        runs_of_app[:] = [r for r in runs_of_app if r.id != run.id] + [run]
    return len(runs)


class RunHistory:
    def __init__(self, app: Callable, account: str | None = None, region: str = "us-east-1"):
        self.app, self.account, self.region = app, account, region

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        from moto.core import DEFAULT_ACCOUNT_ID

        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == SES_SENT_PATH:
            from moto.ses.models import ses_backends

            sent = ses_backends[self.account or DEFAULT_ACCOUNT_ID][self.region].sent_messages
            fields = ("id", "source", "destinations", "raw_data", "subject", "body")
            reply = [{k: getattr(m, k) for k in fields if hasattr(m, k)} for m in sent]
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(reply).encode()]
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != JOB_RUNS_PATH:
            return self.app(environ, start_response)

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        account, region = self.account or DEFAULT_ACCOUNT_ID, body.get("region", self.region)
        try:
            reply = {
                "glue": add_glue_runs(body.get("glue", []), account, region),
                "emr_serverless": add_emr_runs(body.get("emr_serverless", []), account, region),
            }
            status = "200 OK"
        except (KeyError, ValueError, TypeError) as exc:
            reply, status = {"error": f"{type(exc).__name__}: {exc}"}, "400 Bad Request"
        except Exception as exc:  # moto's own not-found errors: an unknown job or application
            reply, status = {"error": f"{type(exc).__name__}: {exc}"}, "404 Not Found"
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(reply).encode()]


def ses_sent(endpoint_url: str) -> list[dict]:
    """Client side: the mail the local stack's SES has accepted, oldest first."""
    import urllib.request

    with urllib.request.urlopen(f"{endpoint_url}{SES_SENT_PATH}", timeout=60) as response:
        return json.loads(response.read())


def post_job_runs(endpoint_url: str, glue: list[dict] | None = None, emr_serverless: list[dict] | None = None) -> dict:
    """Client side: add past runs to the local stack's moto server."""
    import urllib.error
    import urllib.request

    def encode(value: Any) -> Any:
        return value.isoformat() if isinstance(value, dt.datetime) else str(value)

    payload = json.dumps({"glue": glue or [], "emr_serverless": emr_serverless or []}, default=encode).encode()
    request = urllib.request.Request(f"{endpoint_url}{JOB_RUNS_PATH}", data=payload, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"adding job runs to the local stack failed: {exc.read().decode()}") from exc
