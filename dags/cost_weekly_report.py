"""Weekly cost report over Glue and EMR Serverless runs: HTML e-mail through SES, copy on S3."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from operators.spark.script_operator import SparkScriptOperator, platform_param

DOC = """
### Weekly cost report (Glue and EMR Serverless)

For one ISO week (Monday to Sunday; by default the last complete week before the run):

1. **collect** the runs into the ledger (as `cost_alerts` does: idempotent, from the watermark);
2. **aggregate** the week with Spark (`spark_jobs/cost_aggregation.py`, output under the
   report's folder);
3. **report**: an HTML page with the most expensive jobs (and their change against the
   trailing 4 weeks), cost by tag (team, cost center, environment), the longest runs, the
   most retried jobs, failures and timeouts, runs by worker type and execution class, and a
   chart of cost per day of the top jobs over the last 28 days. Stored as
   `<report_uri>/<week start>/report.html` (+ the chart as PNG) and e-mailed through SES to
   the Variable's recipients (or the form's).

**Params**: week ending (a Sunday, or any day of the week wanted), recipients, dry run
(build and store the report, send no e-mail).
"""

with DAG(
    dag_id="cost_weekly_report",
    description="Weekly Glue/EMR Serverless cost report: tables and a chart, e-mailed through SES and stored on S3",
    doc_md=DOC,
    schedule="0 6 * * 1",
    start_date=pendulum.datetime(2026, 1, 5, tz="UTC"),
    catchup=False,
    tags=["cost", "glue", "emr-serverless", "report"],
    default_args={"owner": "finops", "retries": 1},
    max_active_runs=1,
    params={
        "week_ending": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Week ending",
            description="Any day of the week to report (UTC); empty: the last complete week.",
        ),
        "recipients": Param(
            [],
            type="array",
            items={"type": "string", "format": "email"},
            title="Recipients",
            description="E-mail addresses; empty: the cost_alerts Variable's.",
        ),
        "dry_run": Param(
            False, type="boolean", title="Dry run", description="Build and store the report on S3; send no e-mail."
        ),
        "platform": platform_param(),
    },  # fmt: skip
) as dag:

    @task
    def settings(params: dict | None = None, logical_date=None) -> dict:
        import datetime as dt

        from airflow.sdk import Variable

        from operators.cost.settings import VARIABLE, resolve_settings

        params = params or {}
        cfg = resolve_settings({"dry_run": params.get("dry_run")}, Variable.get(VARIABLE, default=None, deserialize_json=True),
                               Variable.get("pipelines_data_uri", default=None))  # fmt: skip
        if params.get("recipients"):
            cfg["recipients"] = list(params["recipients"])
        if params.get("week_ending"):
            day = dt.date.fromisoformat(params["week_ending"])
        else:
            day = (logical_date or pendulum.now("UTC")).date() - dt.timedelta(days=7)
        start = day - dt.timedelta(days=day.weekday())
        cfg.update(week_start=start.isoformat(), week_end=(start + dt.timedelta(days=6)).isoformat(), window_days=7)
        print(f"week {cfg['week_start']} to {cfg['week_end']}; to {cfg['recipients']}; dry run {cfg['dry_run']}")
        return cfg

    @task
    def collect(cfg: dict) -> dict:
        from operators.cost import tasks as cost_tasks

        return cost_tasks.collect(cfg)

    @task
    def aggregation_args(cfg: dict) -> list[str]:
        from operators.cost.settings import aggregation_arguments
        from operators.cost.tasks import report_location

        return aggregation_arguments({**cfg, "aggregates_uri": f"{report_location(cfg)}/aggregates"}, cfg["week_end"])

    @task
    def report(cfg: dict) -> dict:
        from operators.cost import tasks as cost_tasks

        return cost_tasks.weekly_report(cfg)

    cfg = settings()
    aggregate = SparkScriptOperator(
        task_id="aggregate", script="cost_aggregation.py", script_args=aggregation_args(cfg), number_of_workers=2
    )
    collect(cfg) >> aggregate >> report(cfg)
