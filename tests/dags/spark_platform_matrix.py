"""Test DAG: one SparkScriptOperator whose platform and output come from the run's conf.

The probe's run id is the output folder's name, so each test's Iceberg rows are its own."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from operators.spark.script_operator import SparkScriptOperator

with DAG(
    dag_id="test_spark_platform_matrix",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
    params={"platform": Param("default", type="string"), "output": Param("", type="string")},
):
    SparkScriptOperator(
        task_id="run_script",
        script="platform_check.py",
        script_args=[
            "--output",
            "{{ params.output }}",
            "--run-id",
            "{{ params.output.rsplit('/', 1)[-1] or 'matrix' }}",
            "--require-iceberg",
            "false",
        ],
        waiter_delay=1,
        deferrable=True,
    )
