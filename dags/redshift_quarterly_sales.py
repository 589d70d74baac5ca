"""Quarterly ticket sales for one year, computed inside the warehouse, with proof that it was."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from operators.spark.script_operator import SparkScriptOperator, platform_param

# EMR Serverless ships the Amazon Redshift integration for Apache Spark; these put it on the
# classpath there (Glue loads it by itself; locally only the PostgreSQL backend is used).
EMR_REDSHIFT_JARS = [
    "/usr/share/aws/redshift/jdbc/RedshiftJDBC.jar",
    "/usr/share/aws/redshift/spark-redshift/lib/spark-redshift.jar",
    "/usr/share/aws/redshift/spark-redshift/lib/spark-avro.jar",
    "/usr/share/aws/redshift/spark-redshift/lib/minimal-json.jar",
]

DOC = """
### Redshift quarterly sales (connector pushdown)

Runs `spark_jobs/redshift_pushdown.py` on the configured Spark platform: sales joined with
the date dimension (TICKIT), one year, `qtysold` summed per quarter, sorted, written to
`target_table` in the warehouse. With pushdown the warehouse does all of it and only the
four result rows reach Spark: on Redshift through the connector's autopushdown (IAM auth,
S3 `tempdir`, Parquet UNLOAD, a `label` naming this run); on the local PostgreSQL stand-in
through the report's SQL transpiled by sqlglot.

Then `verify_pushdown` reads the warehouse's own record of the statements carrying this
run's label (Redshift: SYS_QUERY_HISTORY via the Data API; PostgreSQL: its statement log)
and **fails, showing the SQL it saw, unless the join and aggregation ran there**. Before
the job, `ensure_tempdir_expiry` puts a lifecycle expiry rule on the tempdir prefix (the
connector never deletes its files), leaving the bucket's other rules alone.

Settings come from the `redshift_quarterly_sales` Variable (JSON: `backend`, `jdbc_url`,
`schema`, `tempdir`, `tempdir_expire_days`, `aws_iam_role`, and for verification
`cluster_identifier` or `workgroup_name`, `database`, `db_user`; locally `postgres_conn_id`).
The job role's least-privilege IAM policies: `deploy/iam/redshift_quarterly_sales_job_{provisioned,serverless}.json`.

**Params**: `year`, `target_table`, `write_mode`, `platform`, `pushdown` (off: read both
tables whole into Spark; verification then fails, by design).
"""

with DAG(
    dag_id="redshift_quarterly_sales",
    description="TICKIT quarterly sales computed in Redshift through connector pushdown, verified from its query log",
    doc_md=DOC,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spark", "redshift", "pushdown"],
    default_args={"owner": "data-platform", "retries": 1},
    max_active_runs=4,
    params={
        "year": Param(
            2024,
            type="integer",
            minimum=1900,
            maximum=2999,
            title="Year",
            description="Calendar year to report (date.year).",
        ),
        "target_table": Param(
            "quarterly_sales",
            type="string",
            title="Target table",
            pattern=r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$",
            description="Warehouse table for the result: name or schema.name.",
        ),
        "write_mode": Param(
            "overwrite",
            type="string",
            enum=["overwrite", "append", "errorifexists", "ignore"],
            title="Write mode",
            description="overwrite replaces the table's rows; append adds.",
        ),
        "platform": platform_param(),
        "pushdown": Param(
            True,
            type="boolean",
            title="Pushdown",
            description="Off: read both tables whole into Spark (verification then fails).",
        ),
    },  # fmt: skip
) as dag:

    @task
    def settings(params: dict | None = None, dag_run=None) -> dict:
        from airflow.sdk import Variable

        from operators.redshift.quarterly_sales import VARIABLE, query_label, resolve_settings

        cfg = resolve_settings(
            params or {},
            Variable.get(VARIABLE, default=None, deserialize_json=True),
            Variable.get("pipelines_data_uri", default=None),
        )
        cfg["label"] = query_label(dag_run.dag_id, dag_run.run_id)
        print(f"backend {cfg['backend']}, year {cfg['year']}, target {cfg['target_table']} ({cfg['write_mode']}), "
              f"pushdown {'on' if cfg['pushdown'] else 'off'}, query label {cfg['label']}")  # fmt: skip
        return cfg

    @task
    def ensure_tempdir_expiry(cfg: dict) -> str:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from operators.s3_lifecycle import ensure_rule, expiry_rule

        hook = S3Hook(aws_conn_id=cfg["aws_conn_id"])
        bucket, prefix = hook.parse_s3_url(cfg["tempdir"])
        rule = expiry_rule(prefix, int(cfg["tempdir_expire_days"]), rule_id="expire-redshift-connector-tempdir")
        change = ensure_rule(hook.get_conn(), bucket, rule)
        print(f"lifecycle rule {rule['ID']} on s3://{bucket}/{prefix}: expire after "
              f"{cfg['tempdir_expire_days']} day(s) ({change})")  # fmt: skip
        return change

    @task
    def job_arguments(cfg: dict) -> list[str]:
        from operators.redshift.quarterly_sales import job_arguments as build

        return build(cfg, cfg["label"])

    @task(retries=0)  # the warehouse's record does not change on a second look
    def verify_pushdown(cfg: dict) -> str:
        from operators.redshift.quarterly_sales import judge_pushdown, postgres_statements, redshift_statements

        if cfg["backend"] == "redshift":
            from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook

            statements = redshift_statements(RedshiftDataHook(aws_conn_id=cfg["aws_conn_id"]), cfg, cfg["label"])
        else:
            from airflow.providers.postgres.hooks.postgres import PostgresHook

            statements = postgres_statements(PostgresHook(postgres_conn_id=cfg["postgres_conn_id"]), cfg["label"])
        print(f"{len(statements)} statement(s) with label {cfg['label']}:")
        for s in statements:
            print(f"  {s.sql[:400]}")
        verdict = judge_pushdown(statements, cfg["label"])
        print(verdict)
        return verdict

    cfg = settings()
    report = SparkScriptOperator(task_id="quarterly_sales", script="redshift_pushdown.py",
                                 script_args=job_arguments(cfg), number_of_workers=2, emr_jars=EMR_REDSHIFT_JARS)  # fmt: skip
    ensure_tempdir_expiry(cfg) >> report >> verify_pushdown(cfg)
