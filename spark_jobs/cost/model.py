"""What a Glue or EMR Serverless job run costs, from the fields the AWS APIs return.

Pure Python (``decimal`` only), so the same code prices a run in the Airflow collector, in
the tests' hand-computed cases and in the benchmark's oracle; the Spark aggregation
(``spark_jobs/cost_aggregation.py``) applies the same rules as column expressions built
from the tables below, and the benchmark checks the two agree.

Rates live in :data:`DEFAULT_RATES` (USD, us-east-1, on-demand list prices; source and date
in :data:`RATES_SOURCE` / :data:`RATES_AS_OF`). They are overridable as a whole or key by
key (the DAGs read the ``cost_rates`` Variable); :func:`rates_from` checks the override.

Billing rules applied:

* Glue Spark / streaming / Ray, standard execution class, fixed workers:
  ``max(ExecutionTime, minimum) x workers x DPU per worker type x rate``; the minimum is
  60 s, or 600 s on Glue 0.9 and 1.0.
* Auto-scaled and Flex runs are billed for the DPU-seconds they used: ``DPUSeconds x rate``
  (the Flex rate for Flex). When ``DPUSeconds`` is missing (moto never sets it), the run is
  priced from its workers as above and flagged as estimated.
* Python shell: ``max(ExecutionTime, 60 s) x MaxCapacity (0.0625 or 1 DPU) x rate``.
* Legacy runs with neither workers nor worker type: ``MaxCapacity`` (or ``AllocatedCapacity``)
  DPUs.
* EMR Serverless: ``billedResourceUtilization`` (vCPU-hours, memory GB-hours, storage
  GB-hours) x the architecture's rates (x86_64 or arm64). Without it, the total utilization
  or, failing that, the run's duration x its requested driver and executors, flagged as
  estimated.

A run whose fields do not allow any price gets ``cost_usd=None`` and a note saying why; the
collector keeps it (it still counts as a run) and never fails on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

RATES_SOURCE = "https://aws.amazon.com/glue/pricing/ and https://aws.amazon.com/emr/serverless/pricing/ (us-east-1)"
RATES_AS_OF = "2025-06-01"

DEFAULT_RATES: dict[str, Decimal] = {
    "glue_dpu_hour": Decimal("0.44"),  # Spark, streaming and Ray jobs, standard execution class
    "glue_flex_dpu_hour": Decimal("0.29"),  # Flex execution class
    "glue_python_shell_dpu_hour": Decimal("0.44"),
    "glue_memory_optimized_dpu_hour": Decimal("0.52"),  # R.* workers
    "emr_x86_64_vcpu_hour": Decimal("0.052624"),
    "emr_x86_64_memory_gb_hour": Decimal("0.0057785"),
    "emr_arm64_vcpu_hour": Decimal("0.042094"),
    "emr_arm64_memory_gb_hour": Decimal("0.004628"),
    "emr_storage_gb_hour": Decimal("0.000111"),
}

# DPUs per Glue worker type; each is priced by its own count.
WORKER_DPU: dict[str, Decimal] = {
    "Standard": Decimal(1),
    "G.025X": Decimal("0.25"),
    "G.1X": Decimal(1),
    "G.2X": Decimal(2),
    "G.4X": Decimal(4),
    "G.8X": Decimal(8),
    "G.12X": Decimal(12),
    "G.16X": Decimal(16),
    "R.1X": Decimal(1),
    "R.2X": Decimal(2),
    "R.4X": Decimal(4),
    "R.8X": Decimal(8),
    "Z.2X": Decimal(2),  # Ray
}
LEGACY_GLUE_VERSIONS = ("0.9", "1.0")  # 10-minute minimum
MINIMUM_S = {"legacy": 600, "default": 60}
PYTHON_SHELL = "pythonshell"
# EMR Serverless Spark defaults when a run names no sizes (driver and each executor).
EMR_DEFAULT_WORKER = {"vcpu": Decimal(4), "memory_gb": Decimal(16)}
EMR_DEFAULT_EXECUTORS = 3
HOUR = Decimal(3600)
TERMINAL_EMR_STATES = frozenset({"SUCCESS", "FAILED", "CANCELLED"})  # a run in one of these has ended


class RateError(ValueError):
    """An override of the rate table that cannot be used."""


def rates_from(override: Mapping[str, object] | None = None) -> dict[str, Decimal]:
    """:data:`DEFAULT_RATES` with ``override`` applied; unknown keys and bad values are refused."""
    rates = dict(DEFAULT_RATES)
    for key, value in (override or {}).items():
        if key not in DEFAULT_RATES:
            raise RateError(f"cost rate {key!r} is not one of {sorted(DEFAULT_RATES)}")
        try:
            rate = Decimal(str(value))
        except InvalidOperation as exc:
            raise RateError(f"cost rate {key!r}: {value!r} is not a number") from exc
        if not rate.is_finite() or rate < 0:
            raise RateError(f"cost rate {key!r}: {value!r} must be a number >= 0")
        rates[key] = rate
    return rates


@dataclass(frozen=True)
class RunCost:
    """A run's price and how it was reached."""

    cost_usd: Decimal | None
    rate_key: str | None = None
    dpu_seconds: Decimal | None = None  # Glue: billed DPU-seconds (after the minimum)
    vcpu_hours: Decimal | None = None  # EMR Serverless
    memory_gb_hours: Decimal | None = None
    storage_gb_hours: Decimal | None = None
    estimated: bool = False
    basis: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def dpu_hours(self) -> Decimal | None:
        return None if self.dpu_seconds is None else self.dpu_seconds / HOUR

    def cents(self) -> Decimal | None:
        return None if self.cost_usd is None else self.cost_usd.quantize(Decimal("0.01"))


def worker_dpu(worker_type: str | None) -> tuple[Decimal | None, bool]:
    """DPUs of one worker and whether that is a guess (a type newer than the table: ``G.32X``)."""
    if not worker_type:
        return None, False
    if worker_type in WORKER_DPU:
        return WORKER_DPU[worker_type], False
    match = re.fullmatch(r"[A-Z]\.(\d+)X", worker_type)
    return (Decimal(match.group(1)), True) if match else (None, False)


LEDGER_FIELDS = (
    "platform", "run_id", "job_name", "application_id", "attempt", "previous_run_id", "state",
    "started_at", "completed_at", "execution_s", "execution_s_estimated", "glue_version", "command",
    "execution_class", "worker_type", "workers", "max_capacity", "allocated_capacity", "dpu_seconds",
    "auto_scaled", "timeout_minutes", "architecture", "billed_vcpu_hours", "billed_memory_gb_hours",
    "billed_storage_gb_hours", "total_vcpu_hours", "total_memory_gb_hours", "total_storage_gb_hours",
    "requested_vcpu", "requested_memory_gb", "error_message",
)  # fmt: skip
"""The pricing inputs of a run, flat: one ledger row (tags travel beside them)."""


def _number(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _seconds_between(start: object, end: object) -> Decimal | None:
    if start is None or end is None or not hasattr(end, "__sub__"):
        return None
    return Decimal(str(max((end - start).total_seconds(), 0)))  # type: ignore[operator]


def glue_record(run: Mapping[str, object], job: Mapping[str, object] | None = None) -> dict:
    """A Glue ``JobRun`` (GetJobRuns' shape) and its ``Job`` definition as one flat ledger row."""
    job = job or {}
    execution = _number(run.get("ExecutionTime"))
    estimated = False
    if execution is None and run.get("CompletedOn") is not None:
        execution, estimated = _seconds_between(run.get("StartedOn"), run.get("CompletedOn")), True

    def pick(name: str) -> object:
        value = run.get(name)
        return job.get(name) if value is None or value == "" else value

    return {
        "platform": "glue",
        "run_id": run.get("Id"),
        "job_name": run.get("JobName") or job.get("Name"),
        "application_id": None,
        "attempt": int(run.get("Attempt") or 0),
        "previous_run_id": run.get("PreviousRunId"),
        "state": run.get("JobRunState"),
        "started_at": run.get("StartedOn"),
        "completed_at": run.get("CompletedOn"),
        "execution_s": execution,
        "execution_s_estimated": estimated,
        "glue_version": str(pick("GlueVersion") or "") or None,
        "command": str((job.get("Command") or {}).get("Name") or "") or None,  # type: ignore[union-attr]
        "execution_class": str(pick("ExecutionClass") or "STANDARD").upper(),
        "worker_type": pick("WorkerType"),
        "workers": _number(pick("NumberOfWorkers")),
        "max_capacity": _number(pick("MaxCapacity")),
        "allocated_capacity": _number(pick("AllocatedCapacity")),
        "dpu_seconds": _number(run.get("DPUSeconds")),
        "auto_scaled": str((job.get("DefaultArguments") or {}).get("--enable-auto-scaling", "")).lower() == "true",  # type: ignore[union-attr]
        "timeout_minutes": _number(pick("Timeout")),
        "architecture": None,
        **dict.fromkeys(("billed_vcpu_hours", "billed_memory_gb_hours", "billed_storage_gb_hours", "total_vcpu_hours",
                         "total_memory_gb_hours", "total_storage_gb_hours", "requested_vcpu", "requested_memory_gb")),
        "error_message": run.get("ErrorMessage"),
    }  # fmt: skip


def emr_record(run: Mapping[str, object], architecture: str | None = "X86_64") -> dict:
    """An EMR Serverless ``jobRun`` (GetJobRun's shape) on ``architecture`` as one flat ledger row."""
    billed = run.get("billedResourceUtilization") or {}
    total = run.get("totalResourceUtilization") or {}
    started = run.get("startedAt") or run.get("createdAt")
    ended = run.get("endedAt") or (run.get("updatedAt") if run.get("state") in TERMINAL_EMR_STATES else None)
    execution = _number(run.get("totalExecutionDurationSeconds")) or None
    estimated = False
    if execution is None and ended is not None:
        execution, estimated = _seconds_between(started, ended), True
    vcpu, memory = _requested_capacity(run)
    attempt = run.get("attempt")
    return {
        "platform": "emr_serverless",
        "run_id": run.get("jobRunId") or run.get("id"),
        "job_name": run.get("name") or run.get("jobRunId") or run.get("id"),
        "application_id": run.get("applicationId"),
        "attempt": max(int(attempt) - 1, 0) if attempt else 0,  # EMR counts from 1, Glue from 0
        "previous_run_id": None,
        "state": run.get("state"),
        "started_at": started,
        "completed_at": ended,
        "execution_s": execution,
        "execution_s_estimated": estimated,
        **dict.fromkeys(("glue_version", "command", "execution_class", "worker_type", "workers", "max_capacity",
                         "allocated_capacity", "dpu_seconds")),
        "auto_scaled": False,
        "timeout_minutes": _number(run.get("executionTimeoutMinutes")),
        "architecture": "ARM64" if str(architecture or "").upper() == "ARM64" else "X86_64",
        "billed_vcpu_hours": _number(billed.get("vCPUHour")),  # type: ignore[union-attr]
        "billed_memory_gb_hours": _number(billed.get("memoryGBHour")),  # type: ignore[union-attr]
        "billed_storage_gb_hours": _number(billed.get("storageGBHour")),  # type: ignore[union-attr]
        "total_vcpu_hours": _number(total.get("vCPUHour")),  # type: ignore[union-attr]
        "total_memory_gb_hours": _number(total.get("memoryGBHour")),  # type: ignore[union-attr]
        "total_storage_gb_hours": _number(total.get("storageGBHour")),  # type: ignore[union-attr]
        "requested_vcpu": vcpu,
        "requested_memory_gb": memory,
        "error_message": run.get("stateDetails") if run.get("state") == "FAILED" else None,
    }  # fmt: skip


def record_cost(rec: Mapping[str, object], rates: Mapping[str, Decimal] = DEFAULT_RATES) -> RunCost:
    """Price one ledger row. The Spark aggregation mirrors this function column by column."""
    if rec.get("platform") == "emr_serverless":
        return _emr_cost(rec, rates)
    return _glue_cost(rec, rates)


def glue_run_cost(run: Mapping[str, object], job: Mapping[str, object] | None = None,
                  rates: Mapping[str, Decimal] = DEFAULT_RATES) -> RunCost:  # fmt: skip
    """Price one Glue ``JobRun``; ``job`` is its ``Job`` definition, if known."""
    return record_cost(glue_record(run, job), rates)


def emr_run_cost(run: Mapping[str, object], architecture: str | None = "X86_64",
                 rates: Mapping[str, Decimal] = DEFAULT_RATES) -> RunCost:  # fmt: skip
    """Price one EMR Serverless ``jobRun`` on ``architecture``."""
    return record_cost(emr_record(run, architecture), rates)


def glue_rate_key(rec: Mapping[str, object]) -> str:
    if rec.get("command") == PYTHON_SHELL:
        return "glue_python_shell_dpu_hour"
    if rec.get("execution_class") == "FLEX":
        return "glue_flex_dpu_hour"
    if str(rec.get("worker_type") or "").startswith("R."):
        return "glue_memory_optimized_dpu_hour"
    return "glue_dpu_hour"


def glue_minimum_s(rec: Mapping[str, object]) -> Decimal:
    legacy = rec.get("glue_version") in LEGACY_GLUE_VERSIONS and rec.get("command") != PYTHON_SHELL
    return Decimal(MINIMUM_S["legacy"] if legacy else MINIMUM_S["default"])


def _glue_cost(rec: Mapping[str, object], rates: Mapping[str, Decimal]) -> RunCost:
    notes: list[str] = []
    estimated = bool(rec.get("execution_s_estimated"))
    if estimated:
        notes.append("no ExecutionTime: priced from StartedOn to CompletedOn")
    rate_key = glue_rate_key(rec)
    seconds = _number(rec.get("execution_s"))
    billed_s = None if seconds is None else max(seconds, glue_minimum_s(rec))
    dpu_seconds = _number(rec.get("dpu_seconds"))
    if rec.get("command") == PYTHON_SHELL:
        capacity = _number(rec.get("max_capacity"))
        if capacity is None:
            capacity, estimated = Decimal("0.0625"), True
            notes.append("Python shell run without MaxCapacity: priced at 0.0625 DPU")
        if billed_s is None:
            return RunCost(None, rate_key, estimated=True, basis="none", notes=(*notes, "no execution time"))
        return _glue(capacity * billed_s, rate_key, rates, estimated, "max_capacity", notes)
    if dpu_seconds:
        return _glue(dpu_seconds, rate_key, rates, estimated, "dpu_seconds", notes)
    if billed_s is None:
        return RunCost(None, rate_key, estimated=True, basis="none", notes=(*notes, "no execution time"))
    worker_type = rec.get("worker_type")
    per_worker, guessed = worker_dpu(str(worker_type) if worker_type else None)
    workers = _number(rec.get("workers"))
    if per_worker is not None and workers:
        if guessed:
            estimated = True
            notes.append(f"worker type {worker_type} is not in the table: {per_worker} DPU read from its name")
        if rec.get("execution_class") == "FLEX" or rec.get("auto_scaled"):
            estimated = True
            notes.append("auto-scaled or Flex run without DPUSeconds: priced at its maximum workers")
        return _glue(workers * per_worker * billed_s, rate_key, rates, estimated, "workers", notes)
    for name in ("max_capacity", "allocated_capacity"):
        capacity = _number(rec.get(name))
        if capacity:
            if worker_type or name == "allocated_capacity":
                estimated = True
                notes.append(f"priced from {name}: the run names no usable workers")
            return _glue(capacity * billed_s, rate_key, rates, estimated, name, notes)
    return RunCost(None, rate_key, estimated=True, basis="none", notes=(*notes, "no workers, worker type or capacity"))


def _glue(dpu_seconds: Decimal, rate_key: str, rates: Mapping[str, Decimal], estimated: bool, basis: str,
          notes: list[str]) -> RunCost:  # fmt: skip
    cost = dpu_seconds / HOUR * rates[rate_key]
    return RunCost(cost, rate_key, dpu_seconds=dpu_seconds, estimated=estimated, basis=basis, notes=tuple(notes))


def emr_rate_keys(architecture: object) -> tuple[str, str]:
    arch = "arm64" if str(architecture or "").upper() == "ARM64" else "x86_64"
    return f"emr_{arch}_vcpu_hour", f"emr_{arch}_memory_gb_hour"


def _emr_cost(rec: Mapping[str, object], rates: Mapping[str, Decimal]) -> RunCost:
    vcpu_key, memory_key = emr_rate_keys(rec.get("architecture"))
    for prefix, estimated in (("billed", False), ("total", True)):
        vcpu, memory = _number(rec.get(f"{prefix}_vcpu_hours")), _number(rec.get(f"{prefix}_memory_gb_hours"))
        if vcpu or memory:
            storage = _number(rec.get(f"{prefix}_storage_gb_hours")) or Decimal(0)
            notes = (
                ["no billed utilization: priced from total utilization (no per-worker minimum)"] if estimated else []
            )
            return _emr(vcpu or Decimal(0), memory or Decimal(0), storage, vcpu_key, memory_key, rates, estimated,
                        f"{prefix}_utilization", notes)  # fmt: skip
    seconds = _number(rec.get("execution_s"))
    if not seconds:
        return RunCost(None, vcpu_key, estimated=True, basis="none", notes=("no utilization and no duration",))
    hours = max(seconds, Decimal(MINIMUM_S["default"])) / HOUR
    vcpu = _number(rec.get("requested_vcpu")) or Decimal(0)
    memory = _number(rec.get("requested_memory_gb")) or Decimal(0)
    notes = ["no utilization reported: priced from the duration x the requested driver and executors"]
    return _emr(
        vcpu * hours, memory * hours, Decimal(0), vcpu_key, memory_key, rates, True, "requested_capacity", notes
    )


def _requested_capacity(run: Mapping[str, object]) -> tuple[Decimal, Decimal]:
    """vCPUs and memory GB of the driver plus executors the run's spark-submit parameters ask for."""
    params = str(((run.get("jobDriver") or {}).get("sparkSubmit") or {}).get("sparkSubmitParameters") or "")  # type: ignore[union-attr]
    conf = dict(re.findall(r"--conf\s+([\w.]+)=(\S+)", params))

    def size(key: str, default: Decimal) -> Decimal:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([gGmM]?)", conf.get(key, ""))
        if not match:
            return default
        number = Decimal(match.group(1))
        return number / 1024 if match.group(2).lower() == "m" else number

    executors = size("spark.executor.instances", Decimal(EMR_DEFAULT_EXECUTORS))
    cores, memory_gb = EMR_DEFAULT_WORKER["vcpu"], EMR_DEFAULT_WORKER["memory_gb"]
    vcpu = size("spark.driver.cores", cores) + executors * size("spark.executor.cores", cores)
    memory = size("spark.driver.memory", memory_gb) + executors * size("spark.executor.memory", memory_gb)
    return vcpu, memory


def _emr(vcpu: Decimal, memory: Decimal, storage: Decimal, vcpu_key: str, memory_key: str,
         rates: Mapping[str, Decimal], estimated: bool, basis: str, notes: list[str]) -> RunCost:  # fmt: skip
    cost = vcpu * rates[vcpu_key] + memory * rates[memory_key] + storage * rates["emr_storage_gb_hour"]
    return RunCost(cost, vcpu_key.rsplit("_vcpu_hour", 1)[0], vcpu_hours=vcpu, memory_gb_hours=memory,
                   storage_gb_hours=storage, estimated=estimated, basis=basis, notes=tuple(notes))  # fmt: skip
