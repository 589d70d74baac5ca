"""EMR Serverless job runs that run: StartJobRun executes the entry point with local Spark.

What AWS documents, and this engine does (EMR Serverless API Reference: StartJobRun,
CancelJobRun, JobRun, JobRunState; User Guide: "Job run states", "Other considerations",
"Default Spark properties", "Storing logs"):

* states SUBMITTED, PENDING (the run's files are fetched), SCHEDULED (waiting for capacity:
  here, a free slot of the stack), RUNNING, then SUCCESS, FAILED (``stateDetails`` names the
  driver's last exception) or CANCELLING and CANCELLED;
* ``executionTimeoutMinutes``: a run still going past it is cancelled; left out it is 720
  (12 hours); 0 means the run never times out (the API's range starts at 0: moto's own
  refusal of values under 5 is not AWS's and is lifted here);
* CancelJobRun on a live run ends its process (CANCELLING, then CANCELLED); on a finished run
  it changes nothing;
* a new application is CREATED (moto makes it STARTED at once); a run on a CREATED or STOPPED
  application starts it when auto-start is on (the default), and is refused when it is off;
* ``sparkSubmit``: ``entryPoint`` and ``--py-files`` / ``--jars`` from S3, ``--conf k=v``;
  jars named by their path in the EMR image are the local image's (the Iceberg runtime is on
  the classpath only when asked, as on EMR); a jar of the image the local stack lacks (the
  Redshift connector is not served by Maven) is left out and the driver's log says so;
* ``totalResourceUtilization`` and ``billedResourceUtilization`` from the run's real
  duration and its driver and executor sizes (the Spark properties, else EMR Serverless'
  defaults: 4 vCPU, 14 GB plus 10 % overhead, 20 GB disk; dynamic allocation starting at 3
  executors), billed with a one-minute minimum per worker and the first 20 GB of each
  worker's storage free; ``totalExecutionDurationSeconds`` the same duration;
* the driver's stdout and stderr, gzipped, under the monitoring ``logUri`` at
  ``applications/<app>/jobs/<run>/SPARK_DRIVER/``.
"""

from __future__ import annotations

import gzip
import math
import re
import shlex
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any

from moto.core.utils import utcnow  # naive UTC, as moto and the run history keep times: they sort together

from local.engines.spark_process import (
    ICEBERG_JARS,
    IMAGE_JARS,
    LIVE,
    Capacity,
    EngineConfig,
    RunRefused,
    SparkProcess,
    aws_client,
    fetch,
    split_s3_uri,
    stack_capacity,
)

DEFAULT_TIMEOUT_MINUTES = 720
TERMINAL = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
# EMR Serverless' image paths for jars it ships, and the local jars that stand for them.
IMAGE_PATHS = {"/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar": ICEBERG_JARS}
SUPPORTED_OPTIONS = ("--conf", "--py-files", "--jars")
FREE_STORAGE_GB = 20
MIN_BILLED_SECONDS = 60

_state: dict[str, Any] = {}


@dataclass(frozen=True)
class Worker:
    vcpu: float
    memory_gb: float
    disk_gb: float


def _size_gb(value: str | None, default_gb: float) -> float:
    if not value:
        return default_gb
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*", value.lower())
    if not match:
        raise RunRefused(f"{value!r} is not a size (such as 14g or 2048m)")
    number, unit = float(match.group(1)), match.group(2) or "m"
    return number * {"k": 1 / 1024**2, "m": 1 / 1024, "g": 1, "t": 1024}[unit]


def worker_of(conf: dict[str, str], role: str) -> Worker:
    """A driver's or executor's worker size: cores, memory plus overhead, disk."""
    memory = _size_gb(conf.get(f"spark.{role}.memory"), 14)
    overhead = max(memory * 0.1, 384 / 1024)
    return Worker(
        vcpu=float(conf.get(f"spark.{role}.cores", 4)),
        memory_gb=float(math.ceil(memory + overhead)),
        disk_gb=_size_gb(conf.get(f"spark.emr-serverless.{role}.disk"), FREE_STORAGE_GB),
    )


def executors_of(conf: dict[str, str]) -> int:
    if conf.get("spark.dynamicAllocation.enabled", "true").lower() == "false":
        return int(conf.get("spark.executor.instances", 3))
    return int(conf.get("spark.dynamicAllocation.initialExecutors", 3))


def utilization(conf: dict[str, str], seconds: int) -> tuple[dict[str, float], dict[str, float]]:
    """(total, billed) resource use of a run of ``seconds`` with the sizes in ``conf``."""
    workers = [worker_of(conf, "driver")] + [worker_of(conf, "executor")] * executors_of(conf)
    billed_s = max(seconds, MIN_BILLED_SECONDS)
    total = {
        "vCPUHour": sum(w.vcpu for w in workers) * seconds / 3600,
        "memoryGBHour": sum(w.memory_gb for w in workers) * seconds / 3600,
        "storageGBHour": sum(w.disk_gb for w in workers) * seconds / 3600,
    }
    billed = {
        "vCPUHour": sum(w.vcpu for w in workers) * billed_s / 3600,
        "memoryGBHour": sum(w.memory_gb for w in workers) * billed_s / 3600,
        "storageGBHour": sum(max(0.0, w.disk_gb - FREE_STORAGE_GB) for w in workers) * billed_s / 3600,
    }
    return {k: round(v, 6) for k, v in total.items()}, {k: round(v, 6) for k, v in billed.items()}


def parse_submit_parameters(text: str | None) -> tuple[dict[str, str], list[str], list[str]]:
    """``sparkSubmitParameters`` -> (Spark properties, py-files, jars)."""
    conf: dict[str, str] = {}
    py_files: list[str] = []
    jars: list[str] = []
    words = shlex.split(text or "")
    for i in range(0, len(words), 2):
        option = words[i]
        if option not in SUPPORTED_OPTIONS or i + 1 >= len(words):
            raise RunRefused(
                f"sparkSubmitParameters option {option!r} is not supported by the local stack "
                f"(it runs {', '.join(SUPPORTED_OPTIONS)})"
            )
        value = words[i + 1]
        if option == "--conf":
            key, sep, prop = value.partition("=")
            if not sep:
                raise RunRefused(f"--conf {value!r} is not key=value")
            conf[key] = prop
        else:
            (py_files if option == "--py-files" else jars).extend(v for v in value.split(",") if v)
    jars += [j for j in conf.get("spark.jars", "").split(",") if j]
    return conf, py_files, jars


class EmrRun:
    """The execution behind one moto JobRun."""

    def __init__(self, job_run: Any, config: EngineConfig, capacity: Capacity):
        self.job_run = job_run
        self.config = config
        self.capacity = capacity
        self.stopping = threading.Event()
        self.cancel_reason = ""
        self.workdir = config.runs_dir / "emr-serverless" / job_run.application_id / job_run.id
        self.notes: list[str] = []
        self.conf: dict[str, str] = {}  # the run's Spark properties, once prepared

    def _set(self, state: str, details: str | None = None) -> None:
        self.job_run.state = state
        if details is not None:
            self.job_run.state_details = details
        self.job_run.updated_at = utcnow()

    def cancel(self, reason: str) -> None:
        if self.job_run.state in TERMINAL:
            return
        self.cancel_reason = reason
        self._set("CANCELLING")
        self.stopping.set()

    def thread(self) -> None:
        try:
            self._execute()
        except Exception as exc:  # the engine's own fault: the run fails, saying so
            self._set("FAILED", f"the local stack could not run the job: {exc}")
        finally:
            if self.job_run.state not in TERMINAL:
                self._set("CANCELLED", self.cancel_reason)
            self.job_run.ended_at = utcnow()

    def _prepare(self) -> SparkProcess:
        driver = (self.job_run.job_driver or {}).get("sparkSubmit")
        if not driver or not driver.get("entryPoint"):
            raise RunRefused("the local stack runs sparkSubmit job drivers with an entryPoint")
        conf, py_files, jars = parse_submit_parameters(driver.get("sparkSubmitParameters"))
        s3 = aws_client("s3", self.config.endpoint_url)
        files = self.workdir / "files"
        entry = fetch(s3, driver["entryPoint"], files)
        local_py = [fetch(s3, uri, files / "py") for uri in py_files]
        classpath = self.config.jars(IMAGE_JARS)
        for jar in jars:
            if jar.startswith(("s3://", "s3a://")):
                classpath.append(fetch(s3, jar, files / "jars"))
            elif jar in IMAGE_PATHS:
                classpath += self.config.jars(IMAGE_PATHS[jar])
            else:
                self.notes.append(f"{jar}: a jar of the EMR image the local stack does not have; left out")
        self.conf = conf
        return SparkProcess(
            workdir=self.workdir, entry_point=entry, args=[str(a) for a in driver.get("entryPointArguments") or []],
            conf=conf, jars=list(dict.fromkeys(classpath)), py_files=local_py,
            app_name=self.job_run.name or self.job_run.id, config=self.config,
        )  # fmt: skip

    def _execute(self) -> None:
        self._set("PENDING")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            process = self._prepare()
        except RunRefused as exc:
            self._set("FAILED", str(exc))
            return
        self._set("SCHEDULED")
        queued = time.monotonic()
        if not self.capacity.acquire(self.stopping):
            return
        try:
            self.job_run.queued_duration_milliseconds = int((time.monotonic() - queued) * 1000)
            if self.stopping.is_set():
                return
            self._run(process)
        finally:
            self.capacity.release()
            self._upload_logs(process)

    def _run(self, process: SparkProcess) -> None:
        minutes = self.job_run.execution_timeout_minutes
        started = time.monotonic()
        deadline = started + minutes * 60 if minutes else None
        self.job_run.started_at = utcnow()
        self._set("RUNNING")
        LIVE.add(process)
        try:
            process.start()
            outcome = process.wait(deadline, self.stopping)
        finally:
            LIVE.discard(process)
        seconds = math.ceil(time.monotonic() - started)
        self.job_run.total_execution_duration_seconds = seconds
        total, billed = utilization(self.conf, seconds)
        self.job_run.total_resource_utilization = total
        self.job_run.billed_resource_utilization = billed
        if outcome == "timeout":
            self.cancel_reason = f"Job run exceeded its execution timeout of {minutes} minutes and was cancelled"
            self._set("CANCELLED", self.cancel_reason)
        elif outcome == "stopped":
            self._set("CANCELLED", self.cancel_reason)
        elif process.process.returncode == 0:
            self._set("SUCCESS", "")
        else:
            self._set(
                "FAILED",
                f"Job failed with exit code {process.process.returncode}; the driver's last error: "
                f"{process.last_error()} (full logs under the run's logUri)",
            )

    def _upload_logs(self, process: SparkProcess) -> None:
        overrides = self.job_run.configuration_overrides or {}
        log_uri = ((overrides.get("monitoringConfiguration") or {}).get("s3MonitoringConfiguration") or {}).get(
            "logUri"
        )
        if self.notes:
            with open(process.stderr_path, "a") as err:
                err.writelines(f"local stack: {note}\n" for note in self.notes)
        if log_uri:
            bucket, prefix = split_s3_uri(log_uri.rstrip("/") + "/x")
            prefix = prefix[:-1]
            base = f"{prefix}applications/{self.job_run.application_id}/jobs/{self.job_run.id}/SPARK_DRIVER"
            s3 = aws_client("s3", self.config.endpoint_url)
            for path in (process.stdout_path, process.stderr_path):
                body = gzip.compress(path.read_bytes() if path.exists() else b"")
                s3.put_object(Bucket=bucket, Key=f"{base}/{path.name}.gz", Body=body)
        if self.job_run.state == "SUCCESS":
            shutil.rmtree(self.workdir / "files", ignore_errors=True)


def apply(config: EngineConfig) -> None:
    """Make the server's EMR Serverless runs execute (idempotent)."""
    from moto.emrserverless.exceptions import ValidationException
    from moto.emrserverless.models import EMRServerlessBackend

    if _state:
        _state["config"] = config
        return
    _state.update(config=config, capacity=stack_capacity(config.slots), runs={})
    original_create = EMRServerlessBackend.create_application
    original_start = EMRServerlessBackend.start_job_run
    original_cancel = EMRServerlessBackend.cancel_job_run

    def create_application(self, *args, **kwargs):
        application = original_create(self, *args, **kwargs)
        application.state = "CREATED"
        return application

    def start_job_run(self, application_id, client_token, execution_role_arn, job_driver, configuration_overrides,
                      tags, execution_timeout_minutes, name):  # fmt: skip
        application = self.get_application(application_id)
        if application.state in ("CREATED", "STOPPED"):
            if not (application.auto_start_configuration or {}).get("enabled", True):
                raise ValidationException(
                    f"Application {application_id} is {application.state} and its auto-start is off: "
                    "start it (StartApplication) before submitting job runs"
                )
            application.state = "STARTED"
        job_run = original_start(
            self, application_id, client_token, execution_role_arn, job_driver, configuration_overrides,
            tags, None, name,
        )  # fmt: skip
        job_run.execution_timeout_minutes = (
            DEFAULT_TIMEOUT_MINUTES if execution_timeout_minutes is None else int(execution_timeout_minutes)
        )
        job_run.state, job_run.state_details = "SUBMITTED", ""
        job_run.created_at = job_run.updated_at = utcnow()
        run = EmrRun(job_run, _state["config"], _state["capacity"])
        _state["runs"][job_run.id] = run
        threading.Thread(target=run.thread, name=f"emr-serverless-{job_run.id}", daemon=True).start()
        return job_run

    def cancel_job_run(self, application_id, job_run_id):
        self.get_job_run(application_id, job_run_id)  # ResourceNotFound as moto answers it
        run = _state["runs"].get(job_run_id)
        if run is None:
            return original_cancel(self, application_id, job_run_id)
        run.cancel("Job run was cancelled by a CancelJobRun request")
        return application_id, job_run_id

    EMRServerlessBackend.create_application = create_application
    EMRServerlessBackend.start_job_run = start_job_run
    EMRServerlessBackend.cancel_job_run = cancel_job_run
