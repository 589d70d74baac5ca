"""Check that the configured Spark platform works: storage, Iceberg, versions."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, chain, task

from operators.spark.script_operator import SparkScriptOperator, platform_param

DOC = """
### Spark platform check

Run this after setting up an environment (or switching the `spark_platform` Variable).
It runs `spark_jobs/platform_check.py` on the configured platform (`glue`,
`emr_serverless` or `local`): the job writes and reads Parquet under the data bucket,
creates or appends to an Iceberg table in the configured catalog, and writes a report.
The last task prints the report: platform, Spark / Python / Iceberg versions, storage
and Iceberg results.

**Params**
- `platform`: `default` uses the `spark_platform` Variable; or force one platform.
- `output_uri`: where the probe writes; empty uses the `pipelines_data_uri` Variable.
- `require_iceberg`: fail when the Iceberg probe fails.
"""

# Run ids of manual runs hold ':' and '+', which Hadoop paths reject.
SAFE_RUN_ID = "{{ run_id | replace(':', '') | replace('+', '') }}"

with DAG(
    dag_id="spark_platform_check",
    description="Run a small Spark job on the configured platform and report what works",
    doc_md=DOC,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spark", "platform", "setup"],
    default_args={"owner": "data-platform", "retries": 0},
    params={
        "platform": platform_param(),
        "output_uri": Param(
            None,
            type=["null", "string"],
            title="Output URI",
            description="s3://bucket/prefix for probe data; empty uses the pipelines_data_uri Variable.",
            pattern=r"^$|^(s3|s3a|file)://.+",
        ),
        "require_iceberg": Param(
            True,
            type="boolean",
            title="Require Iceberg",
            description="On: the check fails when the platform cannot write and read an Iceberg table.",
        ),
    },
) as dag:

    @task
    def resolve_output(params: dict | None = None, run_id: str | None = None) -> str:
        from airflow.sdk import Variable

        if params and params.get("output_uri"):
            return params["output_uri"].rstrip("/")
        base = Variable.get("pipelines_data_uri", default=None)
        if not base:
            raise ValueError("no output_uri given and the Airflow Variable 'pipelines_data_uri' is not set")
        safe = (run_id or "run").replace(":", "").replace("+", "")
        return f"{base.rstrip('/')}/platform_check/{safe}"

    output = resolve_output()

    check = SparkScriptOperator(
        task_id="run_platform_check",
        script="platform_check.py",
        script_args=[
            "--output",
            "{{ ti.xcom_pull(task_ids='resolve_output') }}",
            "--run-id",
            SAFE_RUN_ID,
            "--require-iceberg",
            "{{ 'true' if params.require_iceberg else 'false' }}",
        ],
        number_of_workers=2,
    )

    @task
    def report(output_uri: str) -> dict:
        from operators.spark.platform_report import format_report, read_report

        found = read_report(output_uri)
        print(format_report(found))
        return found

    chain(output, check, report(output))
