"""Every DAG in dags/ runs end to end with `airflow dags test` against the local stack."""

from __future__ import annotations

import pytest

from local.launchers.demo import DEMO_CONF, DEMO_SETUP, dag_ids

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.mark.parametrize("dag_id", dag_ids())
def test_dag_runs_end_to_end(airflow_runner, dag_id):
    if dag_id in DEMO_SETUP:
        DEMO_SETUP[dag_id](airflow_runner.stack)
    result = airflow_runner.dags_test(dag_id, DEMO_CONF.get(dag_id), timeout=1500)
    states = airflow_runner.task_states(dag_id)
    assert states and set(states.values()) == {"success"}, (states, result.stdout[-5000:], result.stderr[-3000:])
