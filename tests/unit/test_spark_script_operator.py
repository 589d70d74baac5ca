"""How SparkScriptOperator hands a script to each platform (no Airflow runner needed)."""

from __future__ import annotations

import math
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from local.aws import extensions as moto_ext
from operators.spark.script_operator import PLATFORM_CONF, SparkScriptOperator
from operators.spark.settings import SettingsError, merge_settings

CONFIG = {
    "scripts_uri": "s3://artifacts/spark_jobs/",
    "glue_role_arn": "arn:aws:iam::123456789012:role/glue",
    "emr_application_id": "app-1",
    "emr_execution_role_arn": "arn:aws:iam::123456789012:role/emr",
    "iceberg_catalog": {"warehouse": "s3://lake/wh"},
}
ARGS = ["--output", "s3://data/out", "--run-id", "r1"]


def operator(**kwargs) -> SparkScriptOperator:
    return SparkScriptOperator(task_id="t", script="platform_check.py", script_args=ARGS, aws_conn_id=None, **kwargs)


def test_glue_delegate_gets_the_script_args_and_conf():
    settings = merge_settings(CONFIG, "glue", None)
    op = operator(number_of_workers=7)
    glue = op._build_delegate(settings, ARGS)
    assert type(glue).__name__ == "GlueJobOperator"
    assert glue.job_name == "mwaa-pipelines-platform_check"
    assert glue.script_location == "s3://artifacts/spark_jobs/platform_check.py"
    assert glue.script_args == {"--output": "s3://data/out", "--run-id": "r1"}
    defaults = glue.create_job_kwargs["DefaultArguments"]
    assert defaults["--extra-py-files"] == "s3://artifacts/spark_jobs/spark_jobs.zip"
    assert defaults["--datalake-formats"] == "iceberg"
    assert f"{PLATFORM_CONF}=glue" in defaults["--conf"]
    assert "spark.sql.catalog.lake.warehouse=s3://lake/wh" in defaults["--conf"]
    assert glue.create_job_kwargs["NumberOfWorkers"] == 7
    assert glue.update_config and glue.stop_job_run_on_kill and glue.resume_glue_job_on_retry
    assert not glue.verbose and operator(verbose=True)._build_delegate(settings, ARGS).verbose


def test_emr_delegate_gets_the_same_argv():
    settings = merge_settings(CONFIG, "emr_serverless", None)
    emr = operator()._build_delegate(settings, ARGS)
    driver = emr.job_driver["sparkSubmit"]
    assert driver["entryPoint"] == "s3://artifacts/spark_jobs/platform_check.py"
    assert driver["entryPointArguments"] == ARGS
    assert f"--conf {PLATFORM_CONF}=emr_serverless" in driver["sparkSubmitParameters"]
    assert driver["sparkSubmitParameters"].endswith("--py-files s3://artifacts/spark_jobs/spark_jobs.zip")
    assert emr.cancel_on_kill


def test_emr_jars_join_the_iceberg_runtime_on_emr_only():
    jars = [
        "/usr/share/aws/redshift/jdbc/RedshiftJDBC.jar",
        "/usr/share/aws/redshift/spark-redshift/lib/spark-redshift.jar",
    ]
    emr = operator(emr_jars=jars)._build_delegate(merge_settings(CONFIG, "emr_serverless", None), ARGS)
    params = emr.job_driver["sparkSubmit"]["sparkSubmitParameters"]
    assert "spark.jars=/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar," + ",".join(jars) in params, params
    glue = operator(emr_jars=jars)._build_delegate(merge_settings(CONFIG, "glue", None), ARGS)
    assert "redshift" not in glue.create_job_kwargs["DefaultArguments"]["--conf"]


@pytest.mark.parametrize("platform", ["glue", "emr_serverless"])
def test_waits_fit_long_jobs(platform):
    """The provider's EMR Serverless default gives up after 25 x 60 s; ours waits max_run_time."""
    settings = merge_settings(CONFIG, platform, None)
    delegate = operator(waiter_delay=30)._build_delegate(settings, ARGS)
    assert delegate.waiter_delay * delegate.waiter_max_attempts >= timedelta(hours=48).total_seconds()
    short = operator(waiter_delay=10, max_run_time=timedelta(hours=2))._build_delegate(settings, ARGS)
    assert short.waiter_delay * short.waiter_max_attempts == 2 * 3600


@pytest.mark.parametrize("platform", ["glue", "emr_serverless"])
def test_the_wait_interval_comes_from_the_setting_unless_the_task_sets_its_own(platform):
    settings = merge_settings({**CONFIG, "waiter_delay": 5}, platform, None)
    delegate = operator()._build_delegate(settings, ARGS)
    assert delegate.waiter_delay == 5
    assert delegate.waiter_max_attempts == math.ceil(timedelta(hours=48).total_seconds() / 5)
    assert operator(waiter_delay=12)._build_delegate(settings, ARGS).waiter_delay == 12
    assert operator()._build_delegate(merge_settings(CONFIG, platform, None), ARGS).waiter_delay == 30


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "5"])
def test_a_wait_interval_that_is_not_whole_seconds_is_refused(bad):
    with pytest.raises(SettingsError, match="waiter_delay"):
        merge_settings({**CONFIG, "waiter_delay": bad}, "glue", None)


def test_missing_settings_fail_before_any_call():
    settings = merge_settings({"scripts_uri": "s3://a/b"}, "emr_serverless", None)
    with pytest.raises(ValueError, match="emr_application_id, emr_execution_role_arn"):
        operator()._build_delegate(settings, ARGS)


@pytest.fixture
def moto_aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    moto_ext.apply()
    from moto.moto_api import state_manager

    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 1000})
    with mock_aws():
        yield
    state_manager.unset_transition("glue::job_run")


def test_kill_stops_the_glue_run(moto_aws):
    glue = boto3.client("glue", region_name="us-east-1")
    glue.create_job(
        Name="mwaa-pipelines-platform_check", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://x"}
    )
    run_id = glue.start_job_run(JobName="mwaa-pipelines-platform_check")["JobRunId"]
    op = operator()
    delegate = op._build_delegate(merge_settings(CONFIG, "glue", None), ARGS)
    delegate._job_run_id = run_id
    op.on_kill()
    state = glue.get_job_run(JobName="mwaa-pipelines-platform_check", RunId=run_id)["JobRun"]["JobRunState"]
    assert state == "STOPPED"


def test_kill_cancels_the_emr_serverless_run(moto_aws):
    emr = boto3.client("emr-serverless", region_name="us-east-1")
    app = emr.create_application(name="a", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
    run = emr.start_job_run(
        applicationId=app,
        executionRoleArn="arn:aws:iam::123456789012:role/emr",
        jobDriver={"sparkSubmit": {"entryPoint": "s3://x/a.py"}},
    )["jobRunId"]
    op = operator()
    delegate = op._build_delegate(merge_settings({**CONFIG, "emr_application_id": app}, "emr_serverless", None), ARGS)
    delegate.job_id = run
    op.on_kill()
    assert emr.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["state"] == "CANCELLED"


def test_emr_serverless_runs_get_the_tasks_run_time_limit(moto_aws):
    """EMR Serverless cancels a run at executionTimeoutMinutes, 720 unless StartJobRun says
    otherwise: the run gets max_run_time (48 h by default), not EMR's 12 hours."""
    settings = merge_settings(CONFIG, "emr_serverless", None)
    assert operator()._build_delegate(settings, ARGS).config == {"executionTimeoutMinutes": 48 * 60}
    emr = operator(max_run_time=timedelta(minutes=90, seconds=1))._build_delegate(settings, ARGS)
    assert emr.config == {"executionTimeoutMinutes": 91}
    # The provider passes config on to StartJobRun as it is; the service takes it.
    client = boto3.client("emr-serverless", region_name="us-east-1")
    app = client.create_application(name="a", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
    run = client.start_job_run(applicationId=app, executionRoleArn=CONFIG["emr_execution_role_arn"],
                               jobDriver=emr.job_driver, **emr.config)["jobRunId"]  # fmt: skip
    assert client.get_job_run(applicationId=app, jobRunId=run)["jobRun"]["executionTimeoutMinutes"] == 91


def test_glue_jobs_get_the_run_time_limit_and_the_log_arguments_glue_reads():
    settings = merge_settings({**CONFIG, "log_uri": "s3://logs/spark/"}, "glue", None)
    glue = operator(max_run_time=timedelta(hours=3))._build_delegate(settings, ARGS)
    kwargs = glue.create_job_kwargs
    assert kwargs["Timeout"] == 180
    assert "LogUri" not in kwargs  # reserved by Glue: it does nothing
    defaults = kwargs["DefaultArguments"]
    assert defaults["--enable-continuous-cloudwatch-log"] == "true"
    assert defaults["--enable-spark-ui"] == "true"
    assert defaults["--spark-event-logs-path"] == "s3://logs/spark/spark-events/"
    with pytest.raises(ValueError, match="10080 minutes"):
        operator(max_run_time=timedelta(days=8))._build_delegate(settings, ARGS)


def test_the_glue_jobs_concurrency_covers_the_tasks_fan_out():
    """The provider's default MaxConcurrentRuns is 1: the second of several mapped or concurrent
    tasks sharing the job would fail with ConcurrentRunsExceededException."""
    from airflow.sdk import DAG

    settings = merge_settings(CONFIG, "glue", None)
    with DAG("fan_out", schedule=None, max_active_runs=4, max_active_tasks=6):
        single = SparkScriptOperator(task_id="s", script="platform_check.py", aws_conn_id=None)
        mapped = SparkScriptOperator(task_id="m", script="platform_check.py", max_active_tis_per_dagrun=5)
        mapped_unbounded = SparkScriptOperator(task_id="u", script="platform_check.py")
    assert single.concurrent_runs(settings) == 10  # the setting's default beats a fan-out of 4
    mapped._mapped = mapped_unbounded._mapped = True
    assert mapped.fan_out() == 20 and mapped.concurrent_runs(settings) == 20
    assert mapped_unbounded.fan_out() == 24  # four runs of six tasks
    low = merge_settings({**CONFIG, "glue_max_concurrent_runs": 1}, "glue", None)
    assert single.concurrent_runs(low) == 4
    glue = mapped._build_delegate(settings, ARGS)
    assert glue.concurrent_run_limit == 20
    assert operator(concurrent_run_limit=3)._build_delegate(settings, ARGS).concurrent_run_limit == 3
    with pytest.raises(ValueError, match="glue_max_concurrent_runs"):
        merge_settings({**CONFIG, "glue_max_concurrent_runs": 0}, "glue", None)


def test_glue_connections_reach_the_job_definition_and_the_run_records_the_choice():
    """A job in a VPC: the ranked connections become the job's Connections, and the chosen one
    travels in the run's arguments so later decisions count its IPs and failures."""
    from operators.vpc.health import CONNECTION_ARG

    settings = merge_settings(CONFIG, "glue", None)
    op = operator()
    op._vpc = (["net-b", "net-a"], "net-b")
    glue = op._build_delegate(settings, ARGS)
    assert glue.create_job_kwargs["Connections"] == {"Connections": ["net-b", "net-a"]}
    assert glue.script_args[CONNECTION_ARG] == "net-b"
    op._vpc = None
    plain = op._build_delegate(settings, ARGS)
    assert "Connections" not in plain.create_job_kwargs and CONNECTION_ARG not in plain.script_args


def test_glue_connections_come_from_the_task_or_the_setting(monkeypatch):
    """The task's list wins (``[]``: no VPC for this task); None follows the setting."""
    import operators.vpc.choice as choice

    asked: list[tuple[str, ...]] = []

    class Ranked:
        strategy, ordered, chosen = "capacity", (), None

        def table(self):
            return ""

        def as_dict(self):
            return {}

    def fake_choose(glue, ec2, job_name, names, workers, strategy):
        asked.append((tuple(names), workers, strategy))
        return Ranked(), None

    class TI:
        def xcom_push(self, key, value):
            pass

    monkeypatch.setattr(choice, "choose_connections", fake_choose)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings = merge_settings(
        {**CONFIG, "glue_connections": ["a", "b"], "glue_connection_strategy": "weighted"}, "glue", None
    )
    with mock_aws():
        assert operator(glue_connections=[])._choose_glue_connections({"ti": TI()}, settings) is None
        Ranked.chosen = type("V", (), {"connection": "b"})()
        operator(number_of_workers=5)._choose_glue_connections({"ti": TI()}, settings)
        operator(glue_connections="c, d,c")._choose_glue_connections({"ti": TI()}, settings)
    assert asked == [(("a", "b"), 5, "weighted"), (("c", "d"), 2, "weighted")]


def test_waits_are_deferred_by_default_whatever_airflows_default_deferrable_says():
    """Airflow's (and MWAA's) ``[operators] default_deferrable`` is false: a Spark task must still
    wait for its Glue or EMR Serverless run in the triggerer, not in a worker slot."""
    from airflow.configuration import conf

    assert conf.getboolean("operators", "default_deferrable") is False
    assert operator().deferrable is True
    assert operator(deferrable=False).deferrable is False


def test_the_glue_wait_in_the_triggerer_stops_its_run_when_killed_and_survives_serialization():
    """The triggerer rebuilds a trigger from its classpath and kwargs: ours must come back whole."""
    import importlib

    from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger

    provider = GlueJobCompleteTrigger(job_name="j", run_id="jr_1", waiter_delay=5, waiter_max_attempts=7,
                                      aws_conn_id="aws_x", region_name="eu-west-1")  # fmt: skip
    classpath, kwargs = SparkScriptOperator._stoppable(provider).serialize()
    assert classpath == "operators.glue_trigger.GlueJobRunTrigger"
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert (rebuilt.job_name, rebuilt.run_id, rebuilt.waiter_delay, rebuilt.attempts) == ("j", "jr_1", 5, 7)
    assert (rebuilt.aws_conn_id, rebuilt.region_name, rebuilt.stop_on_kill) == ("aws_x", "eu-west-1", True)
    other = object()
    assert SparkScriptOperator._stoppable(other) is other  # EMR Serverless' trigger cancels on its own
