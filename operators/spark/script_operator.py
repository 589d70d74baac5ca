"""Run any script from ``spark_jobs/`` on Glue, EMR Serverless or local spark-submit.

The platform is chosen at run time (see :mod:`operators.spark.settings`), never by
editing a DAG. On ``glue`` and ``emr_serverless`` the work is delegated to the Amazon
provider's ``GlueJobOperator`` / ``EmrServerlessStartJobOperator`` (created with
``deferrable`` and a wait that fits long jobs); on ``local`` the script runs under
spark-submit on the worker. The script gets the same ``argv`` everywhere, plus the Spark
property ``spark.mwaa_pipelines.platform`` so it can report where it ran.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from airflow.sdk import BaseOperator, Param
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from operators.aws_errors import failing_fast_on_missing_permission
from operators.spark.arguments import (
    JOBS_ARCHIVE,
    emr_spark_submit_parameters,
    glue_conf_value,
    glue_script_args,
    validate_script_args,
)
from operators.spark.settings import SparkPlatformSettings, connection_names, resolve_settings
from operators.vpc.health import CONNECTION_ARG

PLATFORM_CONF = "spark.mwaa_pipelines.platform"
# How long a run may take, sent to the platform as its own limit and used to size the wait:
# Glue's Timeout (minutes, default 2,880 = 48 h for glueetl, at most 10,080 = 7 days) and EMR
# Serverless' executionTimeoutMinutes (default 720 = 12 h: a longer run is cancelled unless
# StartJobRun says otherwise). The provider's EMR Serverless wait gives up (and cancels the
# job) after 25 x 60 s, far too soon.
DEFAULT_MAX_RUN_TIME = timedelta(hours=48)
GLUE_MAX_TIMEOUT_MINUTES = 10_080
DELEGATE_XCOM = "spark_platform_delegate"
RANKING_XCOM = "glue_connection_ranking"


def platform_param() -> Param:
    """The trigger form's ``platform`` field, which SparkScriptOperator reads (same in every DAG)."""
    return Param(
        "default",
        type="string",
        enum=["default", "glue", "emr_serverless", "local"],
        title="Spark platform",
        description="'default' follows the spark_platform Variable.",
    )


def _call_unguarded(operator: BaseOperator, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call a delegate operator's method without Airflow's nested-operator warning.

    The warning is for DAG authors who call ``execute`` by mistake; here delegation is
    the design, and the delegate runs inside this task's own Task Runner context.
    """
    func = getattr(type(operator), method)
    func = getattr(func, "__wrapped__", func)
    return func(operator, *args, **kwargs)


class SparkScriptOperator(BaseOperator):
    """Run ``spark_jobs/<script>`` with ``script_args`` on the configured Spark platform.

    :param script: path of the script relative to ``spark_jobs/`` (templated).
    :param script_args: ``--name value`` pairs passed to the script (templated).
    :param platform: ``glue`` | ``emr_serverless`` | ``local``; ``None`` or ``default``
        reads the run's ``platform`` param, then the ``spark_platform`` Variable (templated).
    :param spark_conf: extra Spark properties (templated).
    :param job_name: Glue job name / EMR Serverless run name; defaults to the configured
        prefix plus the script's stem.
    :param number_of_workers: Glue workers for this task (default from settings).
    :param worker_type: Glue worker type for this task (default from settings).
    :param max_run_time: how long to wait for the run before giving up.
    :param waiter_delay: seconds between status checks; default: the ``waiter_delay`` setting (30).
    :param deferrable: wait in the triggerer (frees the worker slot) on Glue / EMR; on by
        default, whatever ``[operators] default_deferrable`` says (Airflow's default, and MWAA's,
        is false, which would hold a worker slot for the whole of every Spark job).
    :param concurrent_run_limit: the Glue job's MaxConcurrentRuns; default: the larger of the
        ``glue_max_concurrent_runs`` setting and this task's own fan-out (runs of the DAG that may
        be active at once, times the mapped instances each may run at once).
    :param glue_connections: Glue connections (NETWORK or JDBC) the task's Glue job runs in
        (templated; a list or a comma-separated string); default: the ``glue_connections``
        setting, ``[]`` for none. They are ranked at run time by the healthiest-subnet checks
        (``operators.vpc.choice``, the subnet operator's own decision path): the job's
        connection list becomes the healthy ones in rank order, and no healthy one fails the
        try before anything starts, with one line per connection saying why.
    :param verbose: on Glue, copy the driver's output and errors from CloudWatch Logs into the
        task log while waiting (the provider's ``verbose``; each check then reads the logs too).
    :param emr_jars: jars of the EMR Serverless image to put on the classpath there (EMR
        ships connectors such as Redshift's but loads them only when asked; Glue loads its
        own, and local spark-submit has the fetched jars).
    """

    template_fields: Sequence[str] = ("script", "script_args", "platform", "spark_conf", "job_name", "glue_connections")
    template_fields_renderers = {"script_args": "json", "spark_conf": "json"}
    ui_color = "#f6e7c8"

    @property
    def operator_extra_links(self):
        """The Glue job run or the EMR Serverless dashboard of the run, whichever platform ran it
        (the delegate operator stores what they need; imported when first asked, so DAG files
        stay light to parse)."""
        from operators.links import EmrServerlessDashboardLink, GlueJobRunDetailsLink

        return (GlueJobRunDetailsLink(), EmrServerlessDashboardLink())

    def __init__(
        self,
        *,
        script: str,
        script_args: Sequence[str] | None = None,
        platform: str | None = None,
        spark_conf: dict[str, str] | None = None,
        job_name: str | None = None,
        number_of_workers: int | None = None,
        worker_type: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        max_run_time: timedelta = DEFAULT_MAX_RUN_TIME,
        waiter_delay: int | None = None,
        deferrable: bool = True,
        emr_jars: Sequence[str] = (),
        concurrent_run_limit: int | None = None,
        glue_connections: Sequence[str] | str | None = None,
        verbose: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.script = script
        # A list, or an XComArg resolved at run time (a task that computes the arguments).
        self.script_args = script_args if hasattr(script_args, "resolve") else list(script_args or [])
        self.platform = platform
        self.spark_conf = dict(spark_conf or {})
        self.job_name = job_name
        self.number_of_workers = number_of_workers
        self.worker_type = worker_type
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.max_run_time = max_run_time
        self.waiter_delay = waiter_delay
        self.deferrable = deferrable
        self.emr_jars = list(emr_jars)
        self.concurrent_run_limit = concurrent_run_limit
        self.glue_connections = glue_connections
        self.verbose = verbose
        self._vpc: tuple[list[str], str] | None = None  # at run time: (ranked connections, chosen)
        self._mapped = False  # set at run time: a mapped instance (map_index >= 0)
        self._delegate: BaseOperator | None = None
        self._local_run = None

    # -- decisions -------------------------------------------------------------------
    @property
    def max_run_minutes(self) -> int:
        """``max_run_time`` in whole minutes, the unit of both platforms' run limits."""
        return math.ceil(self.max_run_time.total_seconds() / 60)

    def fan_out(self) -> int:
        """How many runs of this task may be live at once: the DAG's active runs, times, for a
        mapped task, the instances one run may execute at once (max_active_tis_per_dagrun, or
        the DAG's max_active_tasks)."""
        dag = self.dag if self.has_dag() else None
        runs = (getattr(dag, "max_active_runs", None) or 1) if dag else 1
        if not self._mapped:
            return runs
        per_run = getattr(self, "max_active_tis_per_dagrun", None) or (getattr(dag, "max_active_tasks", None) or 16)
        return runs * per_run

    def concurrent_runs(self, settings: SparkPlatformSettings) -> int:
        """The Glue job's MaxConcurrentRuns (the provider's default of 1 refuses a second run)."""
        if self.concurrent_run_limit:
            return int(self.concurrent_run_limit)
        return max(settings.glue_max_concurrent_runs, self.fan_out())

    def wait_interval(self, settings: SparkPlatformSettings) -> int:
        """Seconds between status checks: the task's own ``waiter_delay``, else the setting."""
        return int(self.waiter_delay or settings.waiter_delay)

    def waiter_max_attempts(self, settings: SparkPlatformSettings) -> int:
        """Enough checks to wait the whole ``max_run_time``."""
        return max(1, math.ceil(self.max_run_time.total_seconds() / self.wait_interval(settings)))

    def run_name(self, settings: SparkPlatformSettings) -> str:
        if self.job_name:
            return self.job_name
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", PurePosixPath(self.script).stem)
        return f"{settings.glue_job_prefix}{stem}"

    def spark_properties(self, settings: SparkPlatformSettings) -> dict[str, str]:
        props = {**settings.iceberg_spark_conf(), **settings.spark_conf, **self.spark_conf}
        props[PLATFORM_CONF] = settings.platform
        return props

    def script_uri(self, settings: SparkPlatformSettings) -> str:
        settings.require("scripts_uri")
        return f"{settings.scripts_uri}/{PurePosixPath(self.script).as_posix()}"

    # -- execution -------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        map_index = getattr(context.get("ti"), "map_index", None)
        self._mapped = map_index is not None and map_index >= 0
        settings = resolve_settings(context, self.platform)
        args = validate_script_args(self.script_args)
        self.log.info("Running spark_jobs/%s on platform %r with args %s", self.script, settings.platform, args)
        if settings.platform == "local":
            return self._run_local(settings, args)
        with failing_fast_on_missing_permission(self.task_id):  # no retry mends a policy
            if settings.platform == "glue":
                self._vpc = self._choose_glue_connections(context, settings)
            delegate = self._build_delegate(settings, args)
            try:
                result = _call_unguarded(delegate, "execute", context)
            except TaskDeferred as deferred:
                raise self._deferred_here(context, deferred, asdict(settings), args) from None
        return self._result(settings, result)

    def _choose_glue_connections(self, context: Any, settings: SparkPlatformSettings) -> tuple[list[str], str] | None:
        """Rank the task's Glue connections as the healthiest-subnet operator does; None: no VPC."""
        names = connection_names(
            settings.glue_connections if self.glue_connections is None else self.glue_connections,
            f"{self.task_id}: glue_connections",
        )
        if not names:
            return None
        from airflow.providers.amazon.aws.hooks.ec2 import EC2Hook
        from airflow.providers.amazon.aws.hooks.glue import GlueJobHook

        from operators.vpc.choice import choose_connections

        where = {"aws_conn_id": self.aws_conn_id, "region_name": self.region_name}
        glue = GlueJobHook(**where).conn
        ec2 = EC2Hook(**where, api_type="client_type").conn
        workers = self.number_of_workers or settings.glue_number_of_workers
        ranking, _ = choose_connections(
            glue, ec2, self.run_name(settings), names, workers, strategy=settings.glue_connection_strategy
        )
        self.log.info(
            "Glue connections for %s (%s strategy, %d workers):\n%s",
            self.run_name(settings), ranking.strategy, workers, ranking.table(),
        )  # fmt: skip
        context["ti"].xcom_push(key=RANKING_XCOM, value=ranking.as_dict())
        return [v.connection for v in ranking.ordered], ranking.chosen.connection

    def _deferred_here(
        self, context: Any, deferred: TaskDeferred, settings: dict[str, Any], args: list[str]
    ) -> TaskDeferred:
        """Resume in this operator, which rebuilds the delegate from the same settings.

        The delegate's state travels in XCom, not only in the deferral's kwargs:
        ``airflow dags test`` resumes with the trigger event alone.
        """
        state = {
            "settings": settings,
            "args": args,
            "delegate_method": deferred.method_name,
            "delegate_kwargs": deferred.kwargs or {},
        }
        context["ti"].xcom_push(key=DELEGATE_XCOM, value=state)
        return TaskDeferred(
            trigger=self._stoppable(deferred.trigger), method_name="resume_delegate", kwargs=None,
            timeout=deferred.timeout,
        )  # fmt: skip

    @staticmethod
    def _stoppable(trigger: Any) -> Any:
        """The provider's Glue wait, as one that stops its run when a user kills the deferred task
        (``operators.glue_trigger``); EMR Serverless' own trigger already cancels its job."""
        from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger

        from operators.glue_trigger import GlueJobRunTrigger

        if isinstance(trigger, GlueJobCompleteTrigger) and not isinstance(trigger, GlueJobRunTrigger):
            return GlueJobRunTrigger.replacing(trigger)
        return trigger

    def resume_delegate(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        state = context["ti"].xcom_pull(task_ids=self.task_id, key=DELEGATE_XCOM, map_indexes=context["ti"].map_index)
        if not state:
            raise AirflowException(f"{self.task_id}: resumed without the platform state pushed before deferring")
        restored = SparkPlatformSettings(**state["settings"])
        delegate = self._build_delegate(restored, state["args"])
        method = state["delegate_method"]
        try:
            result = _call_unguarded(delegate, method, context, event=event, **state["delegate_kwargs"])
        except TaskDeferred as deferred:
            raise self._deferred_here(context, deferred, state["settings"], state["args"]) from None
        return self._result(restored, result)

    def on_kill(self) -> None:
        if self._local_run is not None:
            self.log.info("Stopping local spark-submit (pid %s)", getattr(self._local_run.process, "pid", None))
            self._local_run.kill()
        if self._delegate is not None:
            self._delegate.on_kill()

    def _result(self, settings: SparkPlatformSettings, run_id: Any) -> dict[str, Any]:
        return {"platform": settings.platform, "script": self.script, "run_id": run_id}

    def _build_delegate(self, settings: SparkPlatformSettings, args: list[str]) -> BaseOperator:
        builder = self._glue_operator if settings.platform == "glue" else self._emr_serverless_operator
        self._delegate = builder(settings, args)
        return self._delegate

    def _glue_operator(self, settings: SparkPlatformSettings, args: list[str]) -> BaseOperator:
        from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

        settings.require("scripts_uri", "glue_role_arn")
        if self.max_run_minutes > GLUE_MAX_TIMEOUT_MINUTES:
            raise ValueError(f"max_run_time {self.max_run_time} is over Glue's limit for a run, "
                             f"{GLUE_MAX_TIMEOUT_MINUTES} minutes (7 days)")  # fmt: skip
        default_arguments = {
            "--datalake-formats": "iceberg",
            "--extra-py-files": f"{settings.scripts_uri}/{JOBS_ARCHIVE}",
            "--enable-metrics": "true",
            # The driver's and executors' logs in CloudWatch while the run goes (Glue's job
            # parameter; the job definition's LogUri is reserved and does nothing).
            "--enable-continuous-cloudwatch-log": "true",
        }
        if settings.log_uri:
            # Spark's event logs, for the Spark UI (or a history server) on the run afterwards.
            default_arguments["--enable-spark-ui"] = "true"
            default_arguments["--spark-event-logs-path"] = f"{settings.log_uri.rstrip('/')}/spark-events/"
        glue_conf = glue_conf_value(self.spark_properties(settings))
        if glue_conf:
            default_arguments["--conf"] = glue_conf
        create_job_kwargs = {
            "GlueVersion": settings.glue_version,
            "WorkerType": self.worker_type or settings.glue_worker_type,
            "NumberOfWorkers": self.number_of_workers or settings.glue_number_of_workers,
            "DefaultArguments": default_arguments,
            "Timeout": self.max_run_minutes,
        }
        run_arguments = glue_script_args(args)
        if self._vpc:
            ranked, chosen = self._vpc
            create_job_kwargs["Connections"] = {"Connections": ranked}
            # Glue starts on the first listed connection that can; the run records the chosen one,
            # so later decisions count its IPs as pending and its failures against it.
            run_arguments[CONNECTION_ARG] = chosen
        return GlueJobOperator(
            task_id=self.task_id,
            job_name=self.run_name(settings),
            job_desc=f"spark_jobs/{self.script}, managed by Airflow",
            script_location=self.script_uri(settings),
            iam_role_arn=settings.glue_role_arn,
            script_args=run_arguments,
            create_job_kwargs=create_job_kwargs,
            concurrent_run_limit=self.concurrent_runs(settings),
            update_config=True,
            wait_for_completion=True,
            deferrable=self.deferrable,
            stop_job_run_on_kill=True,
            resume_glue_job_on_retry=True,
            verbose=self.verbose,
            job_poll_interval=self.wait_interval(settings),
            waiter_delay=self.wait_interval(settings),
            waiter_max_attempts=self.waiter_max_attempts(settings),
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
        )

    def _emr_serverless_operator(self, settings: SparkPlatformSettings, args: list[str]) -> BaseOperator:
        from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator

        settings.require("scripts_uri", "emr_application_id", "emr_execution_role_arn")
        props = self.spark_properties(settings)
        if settings.iceberg_catalog:
            # EMR Serverless ships the Iceberg runtime; it is on the classpath only when asked.
            props.setdefault("spark.jars", "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar")
        if self.emr_jars:
            props["spark.jars"] = ",".join([*filter(None, props.get("spark.jars", "").split(",")), *self.emr_jars])
        overrides: dict[str, Any] = {}
        if settings.log_uri:
            overrides["monitoringConfiguration"] = {"s3MonitoringConfiguration": {"logUri": settings.log_uri}}
        return EmrServerlessStartJobOperator(
            task_id=self.task_id,
            application_id=settings.emr_application_id,
            execution_role_arn=settings.emr_execution_role_arn,
            name=self.run_name(settings),
            job_driver={
                "sparkSubmit": {
                    "entryPoint": self.script_uri(settings),
                    "entryPointArguments": args,
                    "sparkSubmitParameters": emr_spark_submit_parameters(
                        props, f"{settings.scripts_uri}/{JOBS_ARCHIVE}"
                    ),
                }
            },
            configuration_overrides=overrides or None,
            # Without it EMR Serverless cancels the run at 12 hours, whatever max_run_time says.
            config={"executionTimeoutMinutes": self.max_run_minutes},
            wait_for_completion=True,
            deferrable=self.deferrable,
            cancel_on_kill=True,
            waiter_delay=self.wait_interval(settings),
            waiter_max_attempts=self.waiter_max_attempts(settings),
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            enable_application_ui_links=True,  # stores what the dashboard link needs (off by default)
        )

    def _run_local(self, settings: SparkPlatformSettings, args: list[str]) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        from operators.spark.local_runner import (
            default_jars_dir,
            default_scripts_dir,
            prepare_local_run,
            s3_endpoint_conf,
        )

        hook = AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="s3")
        endpoint = hook.conn_config.get_service_endpoint_url("s3")
        credentials = hook.get_credentials()
        aws_env = {
            "AWS_ACCESS_KEY_ID": credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
            "AWS_REGION": hook.conn_region_name or "us-east-1",
            "AWS_DEFAULT_REGION": hook.conn_region_name or "us-east-1",
        }
        if credentials.token:
            aws_env["AWS_SESSION_TOKEN"] = credentials.token
        if endpoint:  # for readers outside Spark's s3a (pyarrow, boto3) in the job's own process
            aws_env["AWS_ENDPOINT_URL_S3"] = endpoint
        conf_props = {
            **s3_endpoint_conf(
                endpoint,
                hook.conn_region_name,
                settings.iceberg_catalog_name if settings.iceberg_catalog else None,
            ),
            **self.spark_properties(settings),
        }
        run = prepare_local_run(
            script=self.script,
            args=args,
            conf=conf_props,
            master=settings.local_master,
            scripts_dir=Path(settings.local_scripts_dir) if settings.local_scripts_dir else default_scripts_dir(),
            jars_dir=Path(settings.local_jars_dir) if settings.local_jars_dir else default_jars_dir(),
            aws_env=aws_env,
            app_name=self.run_name(settings),
        )
        self._local_run = run
        try:
            self.log.info("spark-submit: %s", " ".join(run.command))
            code = run.run(lambda line: self.log.info("[spark] %s", line))
        finally:
            shutil.rmtree(run.workdir, ignore_errors=True)
        if code != 0:
            raise AirflowException(
                f"spark_jobs/{self.script} failed on the local platform (spark-submit exit code {code}); "
                "see the [spark] lines above"
            )
        return self._result(settings, f"local-exit-{code}")
