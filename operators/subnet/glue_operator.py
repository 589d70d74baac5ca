"""Run a Glue job on the healthiest of its candidate VPC connections.

A sibling of the provider's ``GlueJobOperator`` (same parameter names; the provider's
GlueJobHook, trigger and waits), that decides at run time which connection the job uses.
It is a plain BaseOperator so that DAG files importing it stay light: the provider and
boto3 are imported when the task runs, not when the DAG is parsed.

1. under an S3 lease for this job (no other task rewrites the job between our UpdateJob
   and StartJobRun), read the health of every candidate in six AWS calls
   (:mod:`operators.vpc.health`) and rank them (:mod:`operators.vpc.ranking`);
2. if a run this task instance started on an earlier try is still going, wait for it
   instead of starting a duplicate;
3. otherwise write the job's connection list in rank order (healthy candidates only, so
   Glue's own in-order fallback still works; connections we do not manage keep their
   place after ours), start the run with the chosen connection and the task instance
   recorded in its arguments, and release the lease;
4. wait for the run (deferrable: the worker slot is freed while waiting).

Every try decides again, because conditions change. The ranking, with the reason for
every candidate, goes to the log as a table and to XCom (``subnet_ranking``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from operators.aws_errors import failing_fast_on_missing_permission
from operators.vpc.choice import choose_connections
from operators.vpc.health import CONNECTION_ARG, CallCounter
from operators.vpc.ranking import STRATEGIES, Ranking, is_python_shell, job_workers

TASK_ARG = "--mwaa-pipelines-task"
RANKING_XCOM = "subnet_ranking"
# JobUpdate members UpdateJob accepts: GetJob returns more (Name, CreatedOn, ...).
JOB_UPDATE_KEYS = (
    "JobMode", "JobRunQueuingEnabled", "Description", "LogUri", "Role", "ExecutionProperty", "Command",
    "DefaultArguments", "NonOverridableArguments", "Connections", "MaxRetries", "Timeout", "MaxCapacity",
    "WorkerType", "NumberOfWorkers", "SecurityConfiguration", "NotificationProperty", "GlueVersion",
    "CodeGenConfigurationNodes", "ExecutionClass", "SourceControlDetails", "MaintenanceWindow",
)  # fmt: skip


def job_update_with_connections(job: dict[str, Any], ranked: Sequence[str], managed: Sequence[str]) -> dict:
    """The job's definition with its connection list rewritten: ranked first, then unmanaged ones.

    UpdateJob replaces the whole definition, so everything else is carried over as is.
    ``MaxCapacity`` cannot be sent together with a worker type (Glue rejects it).
    """
    update = {k: job[k] for k in JOB_UPDATE_KEYS if job.get(k) not in (None, {}, [])}
    if update.get("WorkerType"):
        update.pop("MaxCapacity", None)
    current = (job.get("Connections") or {}).get("Connections") or []
    unmanaged = [c for c in current if c not in set(managed)]
    update["Connections"] = {"Connections": [*ranked, *unmanaged]}
    return update


def task_marker(ti: Any) -> str:
    return f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{getattr(ti, 'map_index', -1)}"


def parse_lock_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or not uri[5:].strip("/"):
        raise ValueError(f"lock_uri must be s3://bucket[/prefix], got {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


class GlueJobOnHealthiestSubnetOperator(BaseOperator):
    """Start ``job_name`` on the healthiest of ``candidate_connections`` and wait for it.

    :param job_name: an existing Glue job (its definition stays; only its connection list
        is rewritten).
    :param candidate_connections: Glue NETWORK/JDBC connections to choose from (templated).
    :param strategy: ``capacity`` | ``random`` | ``weighted`` | ``az-spread`` (templated).
    :param num_workers: workers for this run; default: the job's NumberOfWorkers.
    :param avoid_zones: Availability Zones not to use, by hand (templated).
    :param dry_run: decide and report, start nothing (templated).
    :param lock_uri: ``s3://bucket/prefix`` for the per-job lease that serialises
        decide + UpdateJob + StartJobRun across workers; None disables it (templated).
    :param seed: random seed for the random strategies (tests, reproducible benchmarks).
    Other parameters mean what they mean for the provider's GlueJobOperator.
    """

    template_fields: Sequence[str] = (
        "job_name",
        "script_args",
        "run_job_kwargs",
        "candidate_connections",
        "strategy",
        "num_workers",
        "avoid_zones",
        "dry_run",
        "lock_uri",
    )
    ui_color = "#d7ecd9"

    def __init__(
        self,
        *,
        job_name: str,
        candidate_connections: Sequence[str] | str,
        strategy: str = "capacity",
        num_workers: int | None = None,
        avoid_zones: Sequence[str] = (),
        dry_run: bool = False,
        lock_uri: str | None = None,
        lock_ttl: timedelta = timedelta(minutes=5),
        lock_wait: timedelta = timedelta(minutes=15),
        seed: int | None = None,
        script_args: dict[str, str] | None = None,
        run_job_kwargs: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        verbose: bool = False,
        stop_job_run_on_kill: bool = True,
        sleep_before_return: int = 0,
        job_poll_interval: int | float = 6,
        waiter_delay: int = 60,
        waiter_max_attempts: int = 2880,  # 48 h at 60 s: Glue's own longest run
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.script_args = script_args or {}
        self.run_job_kwargs = run_job_kwargs or {}
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.verbose = verbose
        self.stop_job_run_on_kill = stop_job_run_on_kill
        self.sleep_before_return = sleep_before_return
        self.job_poll_interval = job_poll_interval
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self._job_run_id: str | None = None
        self._hook = None
        self.candidate_connections = candidate_connections
        self.strategy = strategy
        self.num_workers = num_workers
        self.avoid_zones = avoid_zones
        self.dry_run = dry_run
        self.lock_uri = lock_uri
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.seed = seed
        self.calls = CallCounter()

    @property
    def hook(self):
        """The provider's GlueJobHook, created on first use (never at DAG parse time)."""
        if self._hook is None:
            from airflow.providers.amazon.aws.hooks.glue import GlueJobHook

            self._hook = GlueJobHook(
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                job_name=self.job_name,
                job_poll_interval=self.job_poll_interval,
            )
        return self._hook

    # -- inputs ----------------------------------------------------------------------------
    def _candidates(self) -> list[str]:
        value = self.candidate_connections
        names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value or []) if str(v).strip()]
        if not names:
            raise ValueError(f"{self.task_id}: candidate_connections is empty: give at least one Glue connection name")
        return list(dict.fromkeys(names))

    def _validate(self) -> None:
        if not self.job_name:
            raise ValueError(f"{self.task_id}: job_name is empty")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"{self.task_id}: unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}")
        if self.num_workers not in (None, "") and int(self.num_workers) < 1:
            raise ValueError(f"{self.task_id}: num_workers must be at least 1, got {self.num_workers}")

    def _lease(self):
        if not self.lock_uri:
            return contextlib.nullcontext()
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from operators.subnet.lease import S3Lease

        bucket, prefix = parse_lock_uri(self.lock_uri)
        key = f"{prefix}/glue-jobs/{self.job_name}.lease".lstrip("/")
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).conn
        return S3Lease(s3, bucket, key, ttl=self.lock_ttl, wait=self.lock_wait)

    # -- the decision ------------------------------------------------------------------------
    def decide(self, job: dict[str, Any], workers: int) -> tuple[Ranking, Any]:
        from airflow.providers.amazon.aws.hooks.ec2 import EC2Hook

        ec2 = EC2Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, api_type="client_type").conn
        return choose_connections(
            self.hook.conn, ec2, self.job_name, self._candidates(), workers,
            strategy=self.strategy, avoid_zones=self.avoid_zones, seed=self.seed, calls=self.calls,
        )  # fmt: skip

    # -- execution ---------------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        try:
            self._validate()
        except ValueError as exc:  # a setting no retry can mend: fail now, without retries
            raise AirflowFailException(str(exc)) from exc
        with failing_fast_on_missing_permission(self.task_id):  # no retry mends a policy
            return self._execute(context)

    def _execute(self, context: Any) -> Any:
        ti = context["ti"]
        marker = task_marker(ti)
        with self._lease():
            job = self.hook.conn.get_job(JobName=self.job_name)["Job"]
            try:
                workers = job_workers(job, self.num_workers)
            except ValueError as exc:
                raise AirflowFailException(f"{self.task_id}: {exc}") from exc
            ranking, history = self.decide(job, workers)
            self.log.info(
                "Subnet ranking for Glue job %s (%s strategy, %d workers, %d AWS calls):\n%s",
                self.job_name, ranking.strategy, ranking.demand.workers, self.calls.count, ranking.table(),
            )  # fmt: skip
            ti.xcom_push(key=RANKING_XCOM, value=ranking.as_dict())
            if self.dry_run:
                self.log.info(
                    "Dry run: would start %s on %s; nothing started", self.job_name, ranking.chosen.connection
                )
                self._persist_links(context, ranking, ranking.chosen.connection, None)
                return {"dry_run": True, "chosen": ranking.chosen.connection, "ranking": ranking.as_dict()}
            ours = [r for r in history.active_runs if (r.get("Arguments") or {}).get(TASK_ARG) == marker]
            if ours:
                self._job_run_id = ours[0]["Id"]
                chosen = ours[0]["Arguments"][CONNECTION_ARG]
                self.log.info(
                    "Run %s from an earlier try of this task is still %s on %s: waiting for it, not starting another",
                    self._job_run_id, ours[0]["JobRunState"], chosen,
                )  # fmt: skip
            else:
                chosen = ranking.chosen.connection
                ranked = [v.connection for v in ranking.ordered]
                update = job_update_with_connections(job, ranked, self._candidates())
                self.hook.conn.update_job(JobName=self.job_name, JobUpdate=update)
                self._job_run_id = self._start(job, ranking, chosen, marker)
                self.log.info(
                    "Started run %s of %s on %s (connections now %s)",
                    self._job_run_id,
                    self.job_name,
                    chosen,
                    update["Connections"]["Connections"],
                )
        ti.xcom_push(key="glue_job_run_id", value=self._job_run_id)
        ti.xcom_push(key="chosen_connection", value=chosen)
        self._persist_links(context, ranking, chosen, self._job_run_id)
        return self._wait(context)

    @property
    def operator_extra_links(self):
        """The Glue job run and the chosen subnet in the AWS console (imported when first asked:
        DAG files stay light to parse)."""
        from operators.links import ChosenSubnetLink, GlueJobRunDetailsLink

        return (GlueJobRunDetailsLink(), ChosenSubnetLink())

    def _persist_links(self, context: Any, ranking: Ranking, chosen: str, job_run_id: str | None) -> None:
        """What the UI's links are built from when the task ends (the provider's way: XCom)."""
        from operators.links import ChosenSubnetLink, GlueJobRunDetailsLink

        where = {"region_name": self.hook.conn_region_name, "aws_partition": self.hook.conn_partition}
        subnets = {v.connection: v.subnet_id for v in (*ranking.ordered, *ranking.rejected)}
        if subnets.get(chosen):
            ChosenSubnetLink.persist(context=context, operator=self, subnet_id=subnets[chosen], **where)
        if job_run_id:
            GlueJobRunDetailsLink.persist(
                context=context, operator=self, job_name=self.job_name, job_run_id=job_run_id, **where
            )

    def _start(self, job: dict[str, Any], ranking: Ranking, chosen: str, marker: str) -> str:
        arguments = {**(self.script_args or {}), CONNECTION_ARG: chosen, TASK_ARG: marker}
        kwargs: dict[str, Any] = {"JobName": self.job_name, "Arguments": arguments, **(self.run_job_kwargs or {})}
        if self.num_workers and not is_python_shell(job):
            kwargs["NumberOfWorkers"] = ranking.demand.workers
            kwargs["WorkerType"] = job.get("WorkerType") or "G.1X"
        return self.hook.conn.start_job_run(**kwargs)["JobRunId"]

    def _wait(self, context: Any) -> Any:
        if not self.wait_for_completion:
            return self._job_run_id
        if self.deferrable:
            from operators.glue_trigger import GlueJobRunTrigger

            self.defer(
                trigger=GlueJobRunTrigger(
                    stop_on_kill=self.stop_job_run_on_kill,
                    job_name=self.job_name,
                    run_id=self._job_run_id,
                    verbose=self.verbose,
                    aws_conn_id=self.aws_conn_id,
                    waiter_delay=self.waiter_delay,
                    waiter_max_attempts=self.waiter_max_attempts,
                    region_name=self.region_name,
                ),
                method_name="execute_complete",
            )
        try:
            run = self.hook.job_completion(self.job_name, self._job_run_id, self.verbose, self.sleep_before_return)
        except AirflowException as exc:
            raise self._run_failed(str(exc)) from exc
        self.log.info("Glue job %s run %s: %s", self.job_name, self._job_run_id, run["JobRunState"])
        return self._job_run_id

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> str:
        if not event or event.get("status") != "success":
            raise self._run_failed(f"did not succeed: {event}")
        return event.get("run_id") or self._job_run_id or ""

    def _run_failed(self, detail: str) -> AirflowException:
        """The failure with Glue's own ErrorMessage: the provider's hook names only the state,
        and the message (a script's error, a subnet out of addresses) is what the reader needs."""
        message = ""
        if self._job_run_id:
            try:
                run = self.hook.conn.get_job_run(JobName=self.job_name, RunId=self._job_run_id)["JobRun"]
                message = run.get("ErrorMessage") or ""
            except Exception as exc:  # the failure itself still has to be raised
                self.log.warning("Could not read the failed run's ErrorMessage: %s", exc)
        text = f"Glue job {self.job_name} run {self._job_run_id or ''} {detail}"
        return AirflowException(f"{text}: {message}" if message else text)

    def on_kill(self) -> None:
        """Stop the run this task started (the provider's GlueJobOperator does the same)."""
        if self.stop_job_run_on_kill and self._job_run_id:
            self.log.info("Stopping Glue job %s run %s", self.job_name, self._job_run_id)
            self.hook.conn.batch_stop_job_run(JobName=self.job_name, JobRunIds=[self._job_run_id])
