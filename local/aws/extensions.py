"""Narrow extensions to moto for APIs the operators need and moto lacks.

moto 5.2 has no Glue ``UpdateJob``. The real API replaces the whole job definition
with ``JobUpdate`` (fields left out fall back to their defaults) and keeps the job's
name, runs, bookmarks and tags; this module adds exactly that, so the provider's
``GlueJobHook.update_job`` and our operators run unchanged against the local stack.

Load it with :func:`apply` before serving requests: the local moto server
(``local/aws/server.py``) and in-process tests both call it. Calling it twice is
harmless.

moto has no Glue ``BatchStopJobRun`` either (the provider's GlueJobOperator calls it when
a task is killed); it is added too: a STARTING/RUNNING run becomes STOPPED, other ids
come back under ``Errors`` as AWS does.

Glue ``DeleteConnection`` is missing as well (the subnet benchmark cleans up with it).

Test instrumentation, same module: every job run records the job's connection list as
it stood at StartJobRun, in its ``Arguments`` under ``--local-stack-connections-at-start``,
so tests can prove no other task rewrote the job between our UpdateJob and StartJobRun.

Fidelity fix, same module: moto's GetConnection/GetConnections leave out the
connection's ``ConnectionType`` (AWS returns it); it is added back from what was created.

EMR Serverless ``GetDashboardForJobRun`` (the provider's dashboard link asks for it when
a task ends) is missing: added for the server, answering for a known run with a URL of the
real dashboard's shape (nothing serves it locally), and ResourceNotFound otherwise.

EMR Serverless ``ListJobRuns`` on an application that has no run yet: moto answers
ResourceNotFound, AWS an empty list (API Reference, ListJobRuns: ResourceNotFound is for an
application that does not exist). Answered as AWS does.

Redshift Data API: moto records ExecuteStatement calls but leaves every statement STARTED
forever, so any caller that waits for completion (the provider's RedshiftDataHook) hangs.
Here a statement is FINISHED once submitted (moto runs nothing, so nothing is pending);
its results stay moto's fixed rows.
"""

from __future__ import annotations

from typing import Any

_APPLIED = False

# JobUpdate member -> FakeJob attribute (moto's names), with the default AWS applies
# when the member is left out of an UpdateJob call.
_JOB_UPDATE_FIELDS: dict[str, tuple[str, Any]] = {
    "Description": ("description", None),
    "LogUri": ("log_uri", None),
    "Role": ("role", None),
    "ExecutionProperty": ("execution_property", {"MaxConcurrentRuns": 1}),
    "Command": ("command", None),
    "DefaultArguments": ("default_arguments", {}),
    "NonOverridableArguments": ("non_overridable_arguments", None),
    "Connections": ("connections", None),
    "MaxRetries": ("max_retries", 0),
    "AllocatedCapacity": ("allocated_capacity", None),
    "Timeout": ("timeout", 2880),
    "MaxCapacity": ("max_capacity", None),
    "WorkerType": ("worker_type", None),
    "NumberOfWorkers": ("number_of_workers", None),
    "SecurityConfiguration": ("security_configuration", None),
    "NotificationProperty": ("notification_property", None),
    "GlueVersion": ("glue_version", None),
    "CodeGenConfigurationNodes": ("code_gen_configuration_nodes", None),
    "ExecutionClass": ("execution_class", "STANDARD"),
    "SourceControlDetails": ("source_control_details", None),
    "JobRunQueuingEnabled": ("job_run_queuing_enabled", None),
}


def _update_job(backend: Any, name: str, job_update: dict[str, Any]) -> str:
    from moto.core.utils import utcnow
    from moto.glue.exceptions import EntityNotFoundException, InvalidInputException

    job = backend.jobs.get(name)
    if job is None:
        raise EntityNotFoundException(f"Job {name} not found.")
    if not job_update.get("Role") or not job_update.get("Command"):
        raise InvalidInputException("UpdateJob", "JobUpdate requires Role and Command")
    for member, (attribute, default) in _JOB_UPDATE_FIELDS.items():
        setattr(job, attribute, job_update.get(member, default))
    job.last_modified_on = utcnow()
    return name


def _update_job_response(self: Any) -> Any:
    from moto.core.responses import ActionResult

    name = self._get_param("JobName")
    job_update = self._get_param("JobUpdate") or {}
    return ActionResult({"JobName": self.glue_backend.update_job(name, job_update)})


def _batch_stop_job_run_response(self: Any) -> Any:
    from moto.core.responses import ActionResult

    name = self._get_param("JobName")
    run_ids = self._get_param("JobRunIds") or []
    job = self.glue_backend.jobs.get(name)
    runs = {run.job_run_id: run for run in (job.job_runs if job else [])}
    stopped, errors = [], []
    for run_id in run_ids:
        run = runs.get(run_id)
        if run is None or run.status not in ("WAITING", "STARTING", "RUNNING", "STOPPING"):
            errors.append(
                {
                    "JobName": name,
                    "JobRunId": run_id,
                    "ErrorDetail": {"ErrorCode": "InvalidInputException", "ErrorMessage": "run is not active"},
                }
            )
            continue
        stop = getattr(run, "request_stop", None)  # a run the local stack executes ends its process
        if stop is not None:
            stop()
        else:
            run.status = "STOPPED"
        stopped.append({"JobName": name, "JobRunId": run_id})
    return ActionResult({"SuccessfulSubmissions": stopped, "Errors": errors})


def _connection_as_dict(original: Any) -> Any:
    def as_dict(self: Any, hide_password: bool = False) -> dict[str, Any]:
        result = original(self, hide_password)
        result.setdefault("ConnectionType", self.connection_input.get("ConnectionType"))
        return result

    return as_dict


def _delete_connection_response(self: Any) -> Any:
    from moto.core.responses import EmptyResult
    from moto.glue.exceptions import EntityNotFoundException

    name = self._get_param("ConnectionName")
    if self.glue_backend.connections.pop(name, None) is None:
        raise EntityNotFoundException(f"Connection {name} not found.")
    return EmptyResult()


CONNECTIONS_AT_START_ARG = "--local-stack-connections-at-start"


def _recording_start_job_run(original: Any) -> Any:
    def start_job_run(self: Any, *args: Any, **kwargs: Any) -> str:
        import json

        snapshot = json.dumps(((self.connections or {}).get("Connections")) or [])
        run_id = original(self, *args, **kwargs)
        for run in self.job_runs:
            if run.job_run_id == run_id:
                run.arguments = {**(run.arguments or {}), CONNECTIONS_AT_START_ARG: snapshot}
        return run_id

    return start_job_run


def _finished_statement(original: Any) -> Any:
    def execute_statement(self: Any, *args: Any, **kwargs: Any) -> Any:
        statement = original(self, *args, **kwargs)
        statement.status = "FINISHED"
        return statement

    return execute_statement


DASHBOARD_PATH = "{0}/applications/(?P<applicationId>[^/]+)/jobruns/(?P<jobRunId>[^/]+)/dashboard$"


def _dashboard_response(self: Any) -> Any:
    from moto.core.responses import ActionResult

    application_id, job_run_id = self._get_param("applicationId"), self._get_param("jobRunId")
    self.emrserverless_backend.get_job_run(application_id=application_id, job_run_id=job_run_id)  # or not found
    region = self.emrserverless_backend.region_name
    url = f"https://{application_id}.dashboard.emr-serverless.{region}.amazonaws.com/?runId={job_run_id}"
    return ActionResult({"url": url})


def _listing_runs_of_a_new_application(original: Any) -> Any:
    def list_job_runs(self: Any, application_id: str, *args: Any, **kwargs: Any) -> Any:
        if application_id in self.applications and application_id not in self.job_runs:
            return []
        return original(self, application_id, *args, **kwargs)

    return list_job_runs


def apply() -> None:
    """Install the extensions into moto's Glue backend and response classes."""
    global _APPLIED
    if _APPLIED:
        return
    from moto.glue.models import FakeConnection, FakeJob, GlueBackend
    from moto.glue.responses import GlueResponse

    GlueBackend.update_job = _update_job  # type: ignore[attr-defined]
    GlueResponse.update_job = _update_job_response  # type: ignore[attr-defined]
    GlueResponse.batch_stop_job_run = _batch_stop_job_run_response  # type: ignore[attr-defined]
    GlueResponse.delete_connection = _delete_connection_response  # type: ignore[attr-defined]
    FakeConnection.as_dict = _connection_as_dict(FakeConnection.as_dict)  # type: ignore[method-assign]
    FakeJob.start_job_run = _recording_start_job_run(FakeJob.start_job_run)  # type: ignore[method-assign]
    from moto.emrserverless import urls as emr_serverless_urls
    from moto.emrserverless.models import EMRServerlessBackend
    from moto.emrserverless.responses import EMRServerlessResponse

    EMRServerlessBackend.list_job_runs = _listing_runs_of_a_new_application(  # type: ignore[method-assign]
        EMRServerlessBackend.list_job_runs
    )
    EMRServerlessResponse.get_dashboard_for_job_run = _dashboard_response  # type: ignore[attr-defined]
    emr_serverless_urls.url_paths[DASHBOARD_PATH] = EMRServerlessResponse.dispatch
    from moto.redshiftdata.models import RedshiftDataAPIServiceBackend

    RedshiftDataAPIServiceBackend.execute_statement = _finished_statement(  # type: ignore[method-assign]
        RedshiftDataAPIServiceBackend.execute_statement
    )
    _APPLIED = True
