"""Test DAGs for the real-scheduler test: a Spark task whose run holds (the stack's hold
script, published under the scripts prefix as ``tests/hold.py``) so a test can act on it.

``test_spark_run_kill``: deferred while its run holds; the test marks it failed, as the UI's
"Mark as failed" does, and the run must stop. ``test_spark_run_retry``: waits in its worker
(not deferred) with one retry; the test kills the task's process, and the retry must attach
to the run still going instead of starting another.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from operators.spark.script_operator import SparkScriptOperator

HOLD_SCRIPT = "tests/hold.py"

for dag_id, wait_in_triggerer, retries in (("test_spark_run_kill", True, 0), ("test_spark_run_retry", False, 1)):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["test"],
        params={"platform": Param("default", type="string"), "seconds": Param(300, type="integer")},
    ):
        SparkScriptOperator(
            task_id="hold",
            script=HOLD_SCRIPT,
            script_args=["--seconds", "{{ params.seconds }}"],
            job_name=dag_id.replace("_", "-"),
            deferrable=wait_in_triggerer,
            waiter_delay=2,
            retries=retries,
            retry_delay=timedelta(seconds=1),
        )
