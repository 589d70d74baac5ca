"""Daily cost alerts over Glue and EMR Serverless runs: collect, aggregate, alert."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from operators.spark.script_operator import SparkScriptOperator, platform_param

DOC = """
### Cost alerts (Glue and EMR Serverless)

1. **collect**: every Glue job run (GetJobRuns per job) and EMR Serverless job run
   (ListJobRuns + GetJobRun) since the ledger's watermark, with each job's tags (team,
   cost-center, environment, remediate), priced with the rate table (`cost_rates` in the
   Variable overrides it) and merged into the run ledger: Parquet on S3, one file per day.
   Re-runs and overlapping windows add no duplicates; runs still going wait for the next day.
2. **aggregate** (Spark, `spark_jobs/cost_aggregation.py`): per job and per tag, per day
   and week: runs, failures, timeouts, stops, retries, duration p50/p95/max, DPU-hours,
   cost and the change against the trailing 4 weeks; and the violations of the window.
3. **alert**: one SNS message per violation, never twice: runs over the worker threshold
   (10) or the duration threshold (480 min of actual run time), failed and timed-out runs,
   a job whose weekly cost jumps against its own trailing average (+50%), a tag group over
   its weekly budget. Jobs tagged `remediate=false` are never alerted.

**Params**: window (days), thresholds, budgets, the window's last day (`as_of`), and
dry run (collect and aggregate, print what would be sent, send nothing).
Settings: the `cost_alerts` Variable (locations, topic, budgets, rates).
"""

with DAG(
    dag_id="cost_alerts",
    description="Collect Glue/EMR Serverless runs into a priced ledger, aggregate with Spark, alert once via SNS",
    doc_md=DOC,
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cost", "glue", "emr-serverless", "alerts"],
    default_args={"owner": "finops", "retries": 1},
    max_active_runs=1,
    params={
        "window_days": Param(
            7,
            type="integer",
            minimum=1,
            maximum=366,
            title="Window (days)",
            description="Alert on runs and weeks within this many days up to the last day.",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Last day of the window",
            description="UTC date; empty: the run's logical date.",
        ),
        "max_workers": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Worker threshold",
            description="Alert on runs with more workers; empty: the Variable's (default 10).",
        ),
        "max_minutes": Param(
            None,
            type=["null", "number"],
            minimum=1,
            title="Duration threshold (minutes)",
            description="Alert on runs longer than this (actual run time; default 480).",
        ),
        "cost_jump": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Weekly cost jump",
            description="Alert when a job's weekly cost exceeds its trailing 4-week average by "
            "this fraction (0.5 = +50%, the default).",
        ),
        "budgets": Param(
            {},
            type="object",
            title="Weekly budgets (USD)",
            description='Tag group -> budget, e.g. {"team=finance": 150}; empty: the Variable\'s.',
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Collect and aggregate; print the alerts instead of sending them.",
        ),
        "platform": platform_param(),
    },  # fmt: skip
) as dag:

    @task
    def settings(params: dict | None = None, logical_date=None) -> dict:
        from airflow.sdk import Variable

        from operators.cost.settings import VARIABLE, resolve_settings

        cfg = resolve_settings(
            params or {},
            Variable.get(VARIABLE, default=None, deserialize_json=True),
            Variable.get("pipelines_data_uri", default=None),
        )
        cfg["as_of"] = cfg["as_of"] or (logical_date or pendulum.now("UTC")).date().isoformat()
        print(f"ledger {cfg['ledger_uri']}; window {cfg['window_days']} day(s) to {cfg['as_of']}; "
              f"thresholds {cfg['thresholds'] or 'defaults'}; budgets {cfg['budgets']}; dry run {cfg['dry_run']}")  # fmt: skip
        return cfg

    @task
    def collect(cfg: dict) -> dict:
        from operators.cost import tasks as cost_tasks

        return cost_tasks.collect(cfg)

    @task
    def aggregation_args(cfg: dict) -> list[str]:
        from operators.cost.settings import aggregation_arguments

        return aggregation_arguments(cfg, cfg["as_of"])

    @task
    def alert(cfg: dict) -> dict:
        from operators.cost import tasks as cost_tasks

        return cost_tasks.alert(cfg)

    cfg = settings()
    aggregate = SparkScriptOperator(
        task_id="aggregate", script="cost_aggregation.py", script_args=aggregation_args(cfg), number_of_workers=2
    )
    collect(cfg) >> aggregate >> alert(cfg)
