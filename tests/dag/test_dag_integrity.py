"""Every DAG file: parses cleanly with no network, stays light, and is usable from the UI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.layout import DAGS_DIR, stage_dags_bundle
from local.launchers.demo import dag_ids
from local.paths import TMP

# Manual runs in Airflow 3 can have no logical date: nothing a trigger touches may use these.
LOGICAL_DATE_TEMPLATE = re.compile(
    r"\{\{[^}]*\b(ds|ds_nodash|ts|ts_nodash|ts_nodash_with_tz|logical_date|execution_date|"
    r"data_interval_start|data_interval_end|prev_ds|next_ds|yesterday_ds|tomorrow_ds)\b"
)


@pytest.fixture(scope="module")
def parsed() -> dict:
    bundle = stage_dags_bundle(TMP / "integrity-dags")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(TMP / "integrity-airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(bundle),
        # Unreachable endpoint: any AWS call at parse time would fail (and is also blocked).
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9"}}),
        "PYTHONPATH": "",  # imports resolve from the bundle alone, as on MWAA
    }
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("inspect_dags.py")), str(bundle)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_dag_file_imports_without_network(parsed):
    assert parsed["import_errors"] == {}
    assert parsed["network_attempts"] == []
    assert sorted(parsed["dags"]) == sorted(dag_ids()), "every DAG file under dags/ is found in the bundle"
    assert len(parsed["dags"]) == len(list(DAGS_DIR.glob("*.py")))


def test_no_heavy_imports_at_parse_time(parsed):
    assert parsed["heavy_modules"] == []


@pytest.mark.parametrize("dag_id", dag_ids())
def test_dag_is_documented_owned_tagged_and_typed(parsed, dag_id):
    dag = parsed["dags"][dag_id]
    assert dag["tags"], f"{dag_id} has no tags"
    assert dag["owners"] and "airflow" not in dag["owners"], f"{dag_id} owners: {dag['owners']}"
    assert len(dag["doc_md"]) > 80, f"{dag_id} needs a doc_md that tells a user what it does"
    for name, schema in dag["params"].items():
        assert "type" in schema, f"{dag_id} param {name!r} has no type"
        assert schema.get("title"), f"{dag_id} param {name!r} has no title"
        assert dag["param_forms"][name]["description"], f"{dag_id} param {name!r} has no description"


def form_blockers(params: dict, forms: dict) -> list[str]:
    """Fields the trigger form marks required yet leaves empty, so its Trigger button stays off.

    The form requires every field whose type does not admit null, and counts "" and a
    missing default as empty: a "leave empty to use the Variable" field must admit null.
    """
    blocked = []
    for name, schema in params.items():
        types = schema.get("type")
        nullable = "null" in types if isinstance(types, list) else types == "null"
        if not nullable and forms[name]["default"] in ("", None):
            blocked.append(name)
    return blocked


@pytest.mark.parametrize("dag_id", dag_ids())
def test_trigger_form_can_be_sent_with_its_defaults(parsed, dag_id):
    dag = parsed["dags"][dag_id]
    assert form_blockers(dag["params"], dag["param_forms"]) == []


def test_the_form_check_catches_an_empty_required_field():
    params = {"a": {"type": "string"}, "b": {"type": ["null", "string"]}, "c": {"type": "integer"}}
    forms = {"a": {"default": ""}, "b": {"default": None}, "c": {"default": 3}}
    assert form_blockers(params, forms) == ["a"]


@pytest.mark.parametrize("dag_id", dag_ids())
def test_no_logical_date_in_templates(parsed, dag_id):
    offending = [t for t in parsed["dags"][dag_id]["templates"] if LOGICAL_DATE_TEMPLATE.search(t)]
    assert offending == []


def test_the_check_catches_logical_dates():
    assert LOGICAL_DATE_TEMPLATE.search('["--day", "{{ ds }}"]')
    assert LOGICAL_DATE_TEMPLATE.search("{{ data_interval_start | ds }}")
    assert not LOGICAL_DATE_TEMPLATE.search("{{ run_id | replace(':', '') }}")
