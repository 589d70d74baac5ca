"""Glue job runs that run: StartJobRun executes the job's script with local Spark.

What AWS documents, and this engine does (Glue Developer Guide: "Using job parameters in AWS
Glue jobs", "AWS Glue versions", "Defining job properties for Spark jobs", "Logging for AWS
Glue jobs", "Job run statuses"; Glue API Reference: Job, JobRun, StartJobRun,
BatchStopJobRun):

* CreateJob, UpdateJob and StartJobRun refuse a GlueVersion or WorkerType Glue does not have,
  and worker types the job cannot use (G.4X and G.8X need Glue 3.0 or later, G.025X is for
  streaming jobs, Z.2X for Ray jobs), with InvalidInputException;
* arguments: the job's DefaultArguments, then the run's Arguments (the run's win), then
  NonOverridableArguments; the run record keeps the run's own Arguments. The script gets
  ``--JOB_ID``, ``--JOB_RUN_ID``, ``--JOB_NAME`` and ``--TempDir`` (Glue's default, the
  account's ``aws-glue-assets`` bucket, when the job gives none), then every other argument as
  ``--name value`` (the order among them is not documented: ours is the merged map's);
* ``--conf`` is Glue's one Spark-properties argument, ``k1=v1 --conf k2=v2``;
  ``--extra-py-files`` and ``--extra-jars`` are S3 paths, comma separated, fetched onto the
  run; ``--datalake-formats iceberg`` puts the Iceberg jars on the classpath (without it they
  are not there, as on Glue); other formats (hudi, delta) are not in the local image and the
  run fails saying so; ``--additional-python-modules`` fails the run unless each module is
  already installed (the local stack has no network to install from);
* ``MaxConcurrentRuns``: a run over it is refused (ConcurrentRunsExceededException) unless job
  run queuing is on (the job's ``JobRunQueuingEnabled``, or the run's, which wins): then it
  waits in WAITING, first come first served, until a run of the job ends;
* states STARTING (files fetched, waiting for a free slot of the stack), RUNNING, then
  SUCCEEDED, FAILED (``ErrorMessage``: the driver's last error), TIMEOUT (past the run's
  Timeout, else the job's, 2,880 minutes by default) or STOPPING and STOPPED
  (BatchStopJobRun ends the process); StartedOn, CompletedOn, ExecutionTime (seconds the run
  ran), MaxCapacity (workers times the worker type's DPUs), and DPUSeconds only where Glue
  reports it (FLEX execution class or auto scaling);
* the driver's stdout and stderr in CloudWatch Logs, groups ``/aws-glue/jobs/output`` and
  ``/aws-glue/jobs/error``, stream = run id (``LogGroupName`` ``/aws-glue/jobs``), sent while
  the run goes, so the provider's ``verbose=True`` shows them in the task log.

A ``pythonshell`` job runs its script with Python, without Spark, as Glue does. Streaming and
Ray jobs are refused at StartJobRun (the local stack does not run them).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow  # naive UTC, as moto and the run history keep times: they sort together

from local.engines.glue_network import NoSuitableConnection, Placement, place, run_workers
from local.engines.spark_process import (
    ICEBERG_JARS,
    IMAGE_JARS,
    LIVE,
    REGION,
    EngineConfig,
    RunRefused,
    SparkProcess,
    aws_client,
    fetch,
    stack_capacity,
)

GLUE_VERSIONS = ("0.9", "1.0", "2.0", "3.0", "4.0", "5.0")
# Worker type -> DPUs per worker (Glue's "Defining job properties for Spark jobs").
WORKER_DPUS = {
    "Standard": 1.0, "G.025X": 0.25, "G.1X": 1.0, "G.2X": 2.0, "G.4X": 4.0, "G.8X": 8.0,
    "G.12X": 12.0, "G.16X": 16.0, "R.1X": 1.0, "R.2X": 2.0, "R.4X": 4.0, "R.8X": 8.0, "Z.2X": 2.0,
}  # fmt: skip
DEFAULT_TIMEOUT_MINUTES = 2880
LIVE_STATES = ("STARTING", "RUNNING", "STOPPING")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"})
LOG_GROUP = "/aws-glue/jobs"
# Arguments Glue consumes to set the run up; the script gets them too, but not --conf,
# which Glue hands to Spark.
SPARK_ONLY = ("--conf",)
LOG_PUSH_S = 2.0
START_LOCK = threading.Lock()  # a start's limit check and a queued run's turn never interleave
_request = threading.local()  # StartJobRun's JobRunQueuingEnabled, which moto's handler drops

_state: dict[str, Any] = {}


def check_job_definition(glue_version: str | None, worker_type: str | None, command: dict | None) -> None:
    """Refuse what Glue refuses in a job's version, worker type and command."""
    from moto.glue.exceptions import InvalidInputException

    kind = (command or {}).get("Name") or "glueetl"
    if glue_version and glue_version not in GLUE_VERSIONS:
        raise InvalidInputException("CreateJob", f"Glue version {glue_version} is not supported")
    if not worker_type:
        return
    if worker_type not in WORKER_DPUS:
        raise InvalidInputException("CreateJob", f"Worker type {worker_type} is not supported")
    if worker_type == "G.025X" and kind != "gluestreaming":
        raise InvalidInputException("CreateJob", "Worker type G.025X is only supported for streaming jobs")
    if worker_type == "Z.2X" and kind != "glueray":
        raise InvalidInputException("CreateJob", "Worker type Z.2X is only supported for Ray jobs")
    if worker_type in ("G.4X", "G.8X") and glue_version and float(glue_version) < 3.0:
        raise InvalidInputException("CreateJob", f"Worker type {worker_type} requires Glue version 3.0 or later")


def glue_conf(value: str | None) -> dict[str, str]:
    """Glue's ``--conf`` value, ``k1=v1 --conf k2=v2``, as properties."""
    conf: dict[str, str] = {}
    for part in re.split(r"\s+--conf\s+", (value or "").strip()):
        if not part:
            continue
        key, sep, prop = part.partition("=")
        if not sep:
            raise RunRefused(f"--conf {part!r} is not key=value")
        conf[key.strip()] = prop.strip()
    return conf


def missing_modules(value: str | None) -> list[str]:
    """``--additional-python-modules`` entries (``pkg==1.2``, ``pkg>=1``, S3 wheels) not installed here."""
    missing = []
    for entry in (v.strip() for v in (value or "").split(",")):
        if not entry:
            continue
        name = re.split(r"[=<>~! \[]", entry.rsplit("/", 1)[-1], maxsplit=1)[0]
        name = name.split("-", 1)[0] if entry.endswith(".whl") else name
        if importlib.util.find_spec(name.replace("-", "_")) is None:
            missing.append(entry)
    return missing


def job_id(name: str) -> str:
    return "j_" + hashlib.sha256(name.encode()).hexdigest()[:56]


class GlueRun:
    """The execution behind one moto FakeJobRun."""

    def __init__(self, job: Any, job_run: Any, run_arguments: dict[str, str], config: EngineConfig, capacity,
                 queued: bool = False):  # fmt: skip
        self.job, self.job_run, self.config, self.capacity = job, job_run, config, capacity
        self.queued = queued
        self.run_arguments = dict(run_arguments)
        self.stopping = threading.Event()
        self.workdir = config.runs_dir / "glue" / job.name / job_run.job_run_id
        self.error = ""
        self.placement: Placement | None = None
        self.network_trouble = ""
        self.execution_s: int | None = None
        self.logs = CloudWatchStream(config.endpoint_url, job_run.job_run_id)
        job_run._transitions = []  # the state manager never moves an executed run
        job_run.status = "WAITING" if queued else "STARTING"
        job_run.started_on = job_run.modified_on = utcnow()
        job_run.completed_on = None

    # -- what the run record shows ---------------------------------------------------------
    def overlay(self, record: dict[str, Any]) -> dict[str, Any]:
        record["Arguments"] = self.run_arguments
        record["LogGroupName"] = LOG_GROUP
        record["GlueVersion"] = self.job.glue_version or "5.0"
        record["CompletedOn"] = self.job_run.completed_on
        record["ExecutionTime"] = self.execution_s or 0
        if self.job_run.completed_on is None:
            record.pop("CompletedOn")
        if self.error:
            record["ErrorMessage"] = self.error
        record["Timeout"] = self.timeout_minutes
        record["ExecutionClass"] = self.job.execution_class or "STANDARD"
        if self.queued:
            record["JobRunQueuingEnabled"] = True
        worker = self.job_run.worker_type or self.job.worker_type
        if worker in WORKER_DPUS and self.job_run.number_of_workers:
            record["MaxCapacity"] = WORKER_DPUS[worker] * self.job_run.number_of_workers
            auto_scaling = self.merged_arguments().get("--enable-auto-scaling", "").lower() == "true"
            if self.execution_s and (auto_scaling or record["ExecutionClass"] == "FLEX"):
                record["DPUSeconds"] = float(self.execution_s * record["MaxCapacity"])
        return record

    @property
    def timeout_minutes(self) -> int:
        return int(self.job_run.timeout or self.job.timeout or DEFAULT_TIMEOUT_MINUTES)

    def merged_arguments(self) -> dict[str, str]:
        return {
            **(self.job.default_arguments or {}),
            **self.run_arguments,
            **(self.job.non_overridable_arguments or {}),
        }

    def place_network(self) -> None:
        """Glue's choice of the job's VPC connection, made as the run is submitted (or, for a
        queued run, as its turn comes); a run that finds none fails with the first's trouble."""
        connections = (self.job.connections or {}).get("Connections") or []
        if not connections:
            return
        python_shell = (self.job.command or {}).get("Name") == "pythonshell"
        workers = run_workers(self.job_run, self.job, python_shell)
        try:
            self.placement = place(connections, workers, python_shell, self.config.endpoint_url)
        except NoSuitableConnection as exc:
            self.network_trouble = str(exc)
            return
        except Exception as exc:  # the engine's own fault: the run fails, StartJobRun does not
            self.network_trouble = f"the local stack could not check the job's network: {exc}"
            return
        if self.placement:
            self.logs.output_line(self.placement.line())

    def _fail_before_start(self, message: str) -> None:
        """FAILED with ``message`` as ErrorMessage and in the error log, no process started."""
        self.error = message
        self.logs.error_line(message)
        self._set("FAILED")

    def _set(self, state: str) -> None:
        self.job_run.status = state
        self.job_run.modified_on = utcnow()

    def stop(self) -> None:
        if self.job_run.status in TERMINAL:
            return
        self._set("STOPPING")
        self.stopping.set()

    # -- the run -----------------------------------------------------------------------------
    def thread(self) -> None:
        try:
            self._execute()
        except Exception as exc:  # the engine's own fault: the run fails, saying so
            self.error = f"the local stack could not run the job: {exc}"
            self._set("FAILED")
        finally:
            if self.placement:
                self.placement.release()
            if self.job_run.status not in TERMINAL:
                self._set("STOPPED")
            self.job_run.completed_on = utcnow()
            self.logs.ensure_streams()

    def _wait_for_its_turn(self) -> bool:
        """WAITING until the job has room and no earlier queued run is ahead; False if stopped."""
        limit = (self.job.execution_property or {}).get("MaxConcurrentRuns", 1)
        while not self.stopping.is_set():
            with START_LOCK:
                runs = self.job.job_runs
                live = sum(1 for r in runs if r.status in LIVE_STATES)
                ahead = next((r for r in runs if r.status == "WAITING"), None)
                if live < limit and ahead is self.job_run:
                    self._set("STARTING")
                    self.place_network()
                    return True
            self.stopping.wait(0.5)
        return False

    def _execute(self) -> None:
        if self.queued and not self._wait_for_its_turn():
            return
        if self.network_trouble:
            self._fail_before_start(self.network_trouble)
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            process = self._prepare()
        except RunRefused as exc:
            self._fail_before_start(str(exc))
            return
        if not self.capacity.acquire(self.stopping):
            return
        try:
            if not self.stopping.is_set():
                self._run(process)
        finally:
            self.capacity.release()

    def _prepare(self):
        arguments = self.merged_arguments()
        kind = (self.job.command or {}).get("Name") or "glueetl"
        if kind not in ("glueetl", "pythonshell"):
            raise RunRefused(f"the local stack runs glueetl and pythonshell jobs, not {kind}")
        if missing := missing_modules(arguments.get("--additional-python-modules")):
            raise RunRefused(
                f"--additional-python-modules {', '.join(missing)}: not installed in the local image, and the "
                "local stack has no network to install from (ship pure-Python code with --extra-py-files)"
            )
        s3 = aws_client("s3", self.config.endpoint_url)
        files = self.workdir / "files"
        script_uri = arguments.get("--scriptLocation") or (self.job.command or {}).get("ScriptLocation")
        if not script_uri:
            raise RunRefused("the job has no ScriptLocation")
        script = fetch(s3, script_uri, files)
        py_files = [fetch(s3, uri, files / "py") for uri in _paths(arguments.get("--extra-py-files"))]
        jars = self.config.jars(IMAGE_JARS)
        jars += [fetch(s3, uri, files / "jars") for uri in _paths(arguments.get("--extra-jars"))]
        for fmt in _paths(arguments.get("--datalake-formats")):
            if fmt != "iceberg":
                raise RunRefused(f"--datalake-formats {fmt}: the local image has Iceberg only")
            jars += self.config.jars(ICEBERG_JARS)
        argv = self._script_argv(arguments)
        if kind == "pythonshell":
            return PythonShell(self.workdir, script, argv, py_files, self.config)
        conf = glue_conf(arguments.get("--conf"))
        return SparkProcess(
            workdir=self.workdir, entry_point=script, args=argv, conf=conf, jars=list(dict.fromkeys(jars)),
            py_files=py_files, app_name=self.job.name, config=self.config,
        )  # fmt: skip

    def _script_argv(self, arguments: dict[str, str]) -> list[str]:
        account = getattr(self.job, "account_id", None) or "123456789012"
        glue_own = {
            "--JOB_ID": job_id(self.job.name),
            "--JOB_RUN_ID": self.job_run.job_run_id,
            "--JOB_NAME": self.job.name,
            "--TempDir": arguments.get("--TempDir") or f"s3://aws-glue-assets-{account}-{REGION}/temporary/",
        }
        argv: list[str] = []
        for key, value in {**glue_own, **arguments}.items():
            if key not in SPARK_ONLY:
                argv += [key, value]
        return argv

    def _run(self, process) -> None:
        started = time.monotonic()
        deadline = started + self.timeout_minutes * 60
        self._set("RUNNING")
        LIVE.add(process)
        try:
            process.start()
            outcome = process.wait(deadline, self.stopping, tick=lambda: self.logs.follow(process), every=LOG_PUSH_S)
        finally:
            LIVE.discard(process)
            self.logs.follow(process)
        self.execution_s = math.ceil(time.monotonic() - started)
        if outcome == "timeout":
            self.error = f"Job run timed out after {self.timeout_minutes} minutes"
            self._set("TIMEOUT")
        elif outcome == "stopped":
            self._set("STOPPED")
        elif process.process.returncode == 0:
            self._set("SUCCEEDED")
        else:
            self.error = f"{process.last_error()} (exit code {process.process.returncode}; see the run's error log)"
            self._set("FAILED")


def _paths(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class PythonShell(SparkProcess):
    """A Python shell job: the script under Python, no Spark (``--extra-py-files`` on the path)."""

    def __init__(self, workdir: Path, script: Path, argv: list[str], py_files: list[Path], config: EngineConfig):
        super().__init__(workdir=workdir, entry_point=script, args=argv, conf={}, jars=[], py_files=py_files,
                         app_name=script.stem, config=config)  # fmt: skip

    def command(self) -> list[str]:
        return [sys.executable, str(self.entry_point), *self.args]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        if self.py_files:
            env["PYTHONPATH"] = ":".join(str(p) for p in self.py_files)
        return env


class CloudWatchStream:
    """The run's stdout and stderr into Glue's two log groups, as they grow."""

    def __init__(self, endpoint_url: str, stream: str):
        self.endpoint_url, self.stream = endpoint_url, stream
        self.sent = {"output": 0, "error": 0}
        self._client = None
        self._lock = threading.Lock()

    @property
    def client(self):
        if self._client is None:
            self._client = aws_client("logs", self.endpoint_url)
            for kind in ("output", "error"):
                group = f"{LOG_GROUP}/{kind}"
                try:
                    self._client.create_log_group(logGroupName=group)
                except self._client.exceptions.ResourceAlreadyExistsException:
                    pass
                self._client.create_log_stream(logGroupName=group, logStreamName=self.stream)
        return self._client

    def _send(self, kind: str, lines: list[str]) -> None:
        if not lines:
            return
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines]
        for i in range(0, len(events), 5000):
            self.client.put_log_events(
                logGroupName=f"{LOG_GROUP}/{kind}", logStreamName=self.stream, logEvents=events[i : i + 5000]
            )

    def follow(self, process: SparkProcess) -> None:
        with self._lock:
            for kind, path in (("output", process.stdout_path), ("error", process.stderr_path)):
                if not path.exists():
                    continue
                lines = path.read_text(errors="replace").splitlines()
                done = self.sent[kind]
                # The last line may still be growing until the process ends.
                complete = lines if process.process is None or process.process.poll() is not None else lines[:-1]
                self._send(kind, complete[done:])
                self.sent[kind] = max(done, len(complete))

    def error_line(self, message: str) -> None:
        with self._lock:
            self._send("error", [message])

    def output_line(self, message: str) -> None:
        with self._lock:
            self._send("output", [message])

    def ensure_streams(self) -> None:
        """Make sure both streams exist, so a reader finds them even for a run that never ran."""
        with self._lock:
            _ = self.client


def apply(config: EngineConfig) -> None:
    """Make the server's Glue runs execute (idempotent)."""
    import inspect

    from moto.glue.exceptions import ConcurrentRunsExceededException
    from moto.glue.models import FakeJob, FakeJobRun, GlueBackend

    if _state:
        _state["config"] = config
        return
    _state.update(config=config, capacity=stack_capacity(config.slots), runs={})
    original_create = GlueBackend.create_job
    create_signature = inspect.signature(original_create)
    original_start = FakeJob.start_job_run
    original_as_dict = FakeJobRun.as_dict

    def create_job(self, *args, **kwargs):
        bound = create_signature.bind(self, *args, **kwargs).arguments
        check_job_definition(bound.get("glue_version"), bound.get("worker_type"), bound.get("command"))
        return original_create(self, *args, **kwargs)

    def start_job_run(self, allocated_capacity, max_capacity, timeout, worker_type, security_configuration,
                      number_of_workers, notification_property, previous_run_id, arguments):  # fmt: skip
        check_job_definition(self.glue_version, worker_type or self.worker_type, self.command)
        kind = (self.command or {}).get("Name") or "glueetl"
        if kind in ("gluestreaming", "glueray"):
            from moto.glue.exceptions import InvalidInputException

            raise InvalidInputException("StartJobRun", f"the local stack does not run {kind} jobs")
        queuing = getattr(_request, "queuing", None)
        queuing = getattr(self, "job_run_queuing_enabled", None) if queuing is None else queuing
        limit = (self.execution_property or {}).get("MaxConcurrentRuns", 1)
        with START_LOCK:
            live = [r for r in self.job_runs if r.status in LIVE_STATES]
            queued = len(live) >= limit or any(r.status == "WAITING" for r in self.job_runs)
            if queued and not queuing:
                if len(live) >= limit:
                    raise ConcurrentRunsExceededException(f"Concurrent runs exceeded for {self.name}")
                queued = False
            saved = self.execution_property
            if queued:  # moto's own check would refuse it: the run waits instead
                self.execution_property = {**(saved or {}), "MaxConcurrentRuns": 10**9}
            try:
                run_id = original_start(
                    self, allocated_capacity=allocated_capacity, max_capacity=max_capacity, timeout=timeout,
                    worker_type=worker_type, security_configuration=security_configuration,
                    number_of_workers=number_of_workers, notification_property=notification_property,
                    previous_run_id=previous_run_id, arguments=arguments,
                )  # fmt: skip
            finally:
                self.execution_property = saved
            job_run = next(r for r in self.job_runs if r.job_run_id == run_id)
            recorded = {k: v for k, v in (job_run.arguments or {}).items() if k.startswith("--local-stack-")}
            run = GlueRun(
                self, job_run, {**(arguments or {}), **recorded}, _state["config"], _state["capacity"], queued=queued
            )
            job_run.request_stop = run.stop
            if not queued:
                run.place_network()
        _state["runs"][run_id] = run
        threading.Thread(target=run.thread, name=f"glue-{run_id[:12]}", daemon=True).start()
        return run_id

    def as_dict(self):
        record = original_as_dict(self)
        run = _state["runs"].get(self.job_run_id)
        return run.overlay(record) if run else record

    original_update = GlueBackend.update_job  # local/aws/extensions.py's, applied first

    def update_job(self, name, job_update):
        check_job_definition(job_update.get("GlueVersion"), job_update.get("WorkerType"), job_update.get("Command"))
        return original_update(self, name, job_update)

    from moto.glue.responses import GlueResponse

    original_create_response = GlueResponse.create_job
    original_start_response = GlueResponse.start_job_run
    original_job_as_dict = FakeJob.as_dict

    def create_job_response(self):
        result = original_create_response(self)
        job = self.glue_backend.jobs[self._get_param("Name")]
        job.job_run_queuing_enabled = self._get_param("JobRunQueuingEnabled")
        return result

    def start_job_run_response(self):
        _request.queuing = self._get_param("JobRunQueuingEnabled")
        try:
            return original_start_response(self)
        finally:
            _request.queuing = None

    def job_as_dict(self):
        record = original_job_as_dict(self)
        if getattr(self, "job_run_queuing_enabled", None) is not None:
            record["JobRunQueuingEnabled"] = self.job_run_queuing_enabled
        return record

    GlueResponse.create_job = create_job_response
    GlueResponse.start_job_run = start_job_run_response
    FakeJob.as_dict = job_as_dict
    GlueBackend.create_job = create_job
    GlueBackend.update_job = update_job
    FakeJob.start_job_run = start_job_run
    FakeJobRun.as_dict = as_dict
