"""The Redshift pipeline against the local stack: PostgreSQL stands in for Redshift.

The report's SQL transpiled for PostgreSQL must give what Spark computes from the whole
tables, the warehouse's own record must show the aggregation ran there (or not), and the
DAG must pass with pushdown and fail without it.
"""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from local.seeds.tickit import SCHEMA
from operators.s3_lifecycle import current_rules, ensure_rule, expiry_rule
from spark_jobs import redshift_pushdown as job

pytestmark = pytest.mark.stack
BUCKET = "mwaa-pipelines-data"


@pytest.fixture(scope="module")
def pg(stack):
    info = stack.info()["postgres"]
    conn = psycopg2.connect(host=info["host"], port=info["port"], user=info["user"], dbname="warehouse")
    conn.autocommit = True
    yield conn
    conn.close()


def query(pg, sql, *params):
    with pg.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


@pytest.fixture(scope="module")
def spark():
    from local.services.spark_session import local_session, stop_session

    session = local_session("test-redshift-pushdown")
    yield session
    stop_session(session)


def run_job(stack, spark, year: int, table: str, *extra: str) -> dict:
    info = stack.info()["postgres"]
    argv = ["--backend", "postgres", "--url", f"jdbc:postgresql://{info['host']}:{info['port']}/warehouse",
            "--user", info["user"], "--schema", SCHEMA, "--year", str(year), "--target-table", table, *extra]  # fmt: skip
    return job.run(job.parse_job_args(job.build_parser(), argv), spark)


def independent(pg, year: int) -> list[tuple[int, int]]:
    """The report computed by hand-written SQL, not by the job or its transpiled query."""
    rows = query(pg, f"SELECT d.qtr, sum(s.qtysold) FROM {SCHEMA}.sales s, {SCHEMA}.date d "
                 "WHERE s.dateid = d.dateid AND d.year = %s GROUP BY d.qtr ORDER BY d.qtr", year)  # fmt: skip
    return [(int(q), int(t)) for q, t in rows]


def test_warehouse_sql_equals_the_in_spark_result_and_only_result_rows_travel(stack, spark, pg):
    table = f"qs_{uuid.uuid4().hex[:8]}"
    query(pg, "SELECT pg_stat_statements_reset()")
    pushed = run_job(stack, spark, 2024, table, "--label", "it-pushed")
    spark_side = run_job(stack, spark, 2024, table + "_ref", "--pushdown", "off", "--label", "it-reference")
    assert pushed["rows"] == spark_side["rows"]
    assert [(r["qtr"], r["total_qtysold"]) for r in pushed["rows"]] == independent(pg, 2024)
    assert pushed["result_rows"] == 4 and pushed["written"] is True
    # What crossed into Spark, as Spark's scans counted it.
    sales_rows = stack.info()["postgres"]["tickit"]["sales_rows"]
    assert pushed["rows_transferred"] == 4
    assert spark_side["rows_transferred"] == sales_rows + 366  # all sales, and 2024's dates (filter pushed)
    assert query(pg, f"SELECT qtr, total_qtysold FROM {SCHEMA}.{table} ORDER BY qtr") == independent(pg, 2024)
    # The warehouse's own statistics agree for the pushed report (PostgreSQL 15's
    # pg_stat_statements does not count rows fetched through a cursor, as the whole-table reads are).
    fetched = query(pg, "SELECT query, rows FROM pg_stat_statements WHERE query LIKE %s", "%label=it_pushed%")
    assert sum(rows for _, rows in fetched) == 4 and any("GROUP BY" in sql for sql, _ in fetched)


def test_write_modes_and_an_empty_year(stack, spark, pg):
    table = f"qs_{uuid.uuid4().hex[:8]}"
    run_job(stack, spark, 2023, table)
    run_job(stack, spark, 2023, table, "--mode", "append")
    assert query(pg, f"SELECT count(*) FROM {SCHEMA}.{table}") == [(8,)]
    run_job(stack, spark, 2022, table, "--mode", "overwrite")
    assert query(pg, f"SELECT qtr, total_qtysold FROM {SCHEMA}.{table} ORDER BY qtr") == independent(pg, 2022)
    with pytest.raises(Exception, match="already exists"):
        run_job(stack, spark, 2022, table, "--mode", "errorifexists")
    empty = run_job(stack, spark, 1999, table, "--mode", "overwrite")
    assert empty["rows"] == [] and empty["written"] is False
    assert query(pg, f"SELECT count(*) FROM {SCHEMA}.{table}") == [(4,)]  # an empty year replaced nothing


def test_tempdir_expiry_rule_is_idempotent_and_keeps_other_rules(stack):
    s3 = stack.boto3_client("s3")
    bucket = f"lifecycle-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    other = {"ID": "archive-logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
             "Transitions": [{"Days": 30, "StorageClass": "GLACIER_IR"}]}  # fmt: skip
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [other]})
    rule = expiry_rule("redshift-temp/", 1, rule_id="expire-redshift-connector-tempdir")
    assert ensure_rule(s3, bucket, rule) == "created"
    assert ensure_rule(s3, bucket, rule) == "unchanged"
    assert ensure_rule(s3, bucket, expiry_rule("redshift-temp/", 3, rule_id=rule["ID"])) == "updated"
    rules = {r["ID"]: r for r in current_rules(s3, bucket)}
    assert set(rules) == {"archive-logs", rule["ID"]}
    assert rules[rule["ID"]]["Expiration"]["Days"] == 3 and rules[rule["ID"]]["Filter"]["Prefix"] == "redshift-temp/"
    assert rules["archive-logs"]["Transitions"][0]["StorageClass"] == "GLACIER_IR"
    fresh = f"lifecycle-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=fresh)
    assert ensure_rule(s3, fresh, rule) == "created"
    with pytest.raises(ValueError, match="prefix"):
        expiry_rule("", 1)


def test_dag_verifies_pushdown_and_fails_without_it(stack, airflow_runner, pg):
    dag_id = "redshift_quarterly_sales"
    table = f"qs_{uuid.uuid4().hex[:8]}"
    result = airflow_runner.dags_test(dag_id, {"year": 2024, "target_table": table})
    states = airflow_runner.task_states(dag_id)
    assert set(states.values()) == {"success"}, (states, result.stdout[-4000:])
    assert query(pg, f"SELECT qtr, total_qtysold FROM {SCHEMA}.{table} ORDER BY qtr") == independent(pg, 2024)
    rules = current_rules(stack.boto3_client("s3"), BUCKET)
    assert any(
        r["ID"] == "expire-redshift-connector-tempdir" and r["Filter"]["Prefix"] == "redshift-temp/" for r in rules
    )

    result = airflow_runner.dags_test(dag_id, {"year": 2023, "target_table": table, "pushdown": False})
    states = airflow_runner.task_states(dag_id)
    assert states["quarterly_sales"] == "success" and states["verify_pushdown"] == "failed", states
    output = result.stdout + result.stderr
    assert "pushdown NOT verified" in output
    assert f'SELECT * FROM "{SCHEMA}"."sales"' in output  # the SQL it saw: the whole table read
    # The job still wrote the right numbers; only the proof of pushdown failed.
    assert query(pg, f"SELECT qtr, total_qtysold FROM {SCHEMA}.{table} ORDER BY qtr") == independent(pg, 2023)


def test_redshift_history_is_asked_through_the_data_api_by_label(aws_env):
    """Against moto's Redshift Data API: the query, its label parameter and the result parsing.

    moto answers every statement with the same fixed rows (no query_text column), so the
    verification must refuse to call that a proof."""
    import boto3
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook

    from operators.redshift.quarterly_sales import PushdownNotVerified, redshift_statements

    class RecordingHook(RedshiftDataHook):
        ids: list[str] = []

        def execute_query(self, *args, **kwargs):
            out = super().execute_query(*args, **kwargs)
            self.ids.append(out.statement_id)
            return out

    cfg = {"database": "dev", "cluster_identifier": "analytics", "db_user": "etl_spark"}
    with pytest.raises(PushdownNotVerified, match="query_text"):
        redshift_statements(RecordingHook(aws_conn_id=None), cfg, "redshift_quarterly_sales.0123abcd")
    client = boto3.client("redshift-data", endpoint_url=aws_env, region_name="us-east-1")
    (statement_id,) = RecordingHook.ids
    sent = client.describe_statement(Id=statement_id)
    assert "sys_query_history" in sent["QueryString"] and "query_label" in sent["QueryString"]
    assert sent["QueryParameters"] == [{"name": "label", "value": "redshift_quarterly_sales.0123abcd"}]
    assert sent["ClusterIdentifier"] == "analytics" and sent["DbUser"] == "etl_spark"


class _RecordsHook:
    """The part of PostgresHook that postgres_statements uses, over one connection."""

    def __init__(self, conn):
        self.conn = conn

    def get_records(self, sql, parameters=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, parameters)
            return cur.fetchall()


def test_verifying_as_a_user_who_cannot_see_others_statements_names_the_grant(stack, pg):
    """As on Redshift (SYS_QUERY_HISTORY shows a user its own queries only, unless SYS:MONITOR),
    the stand-in's record is closed to a plain user: the verification says which grant it needs."""
    import uuid

    from operators.redshift.quarterly_sales import POSTGRES_GRANT, PushdownNotVerified, postgres_statements

    info = stack.info()["postgres"]
    role = f"verifier_{uuid.uuid4().hex[:8]}"
    query(pg, f"CREATE ROLE {role} LOGIN")
    conn = psycopg2.connect(host=info["host"], port=info["port"], user=role, dbname="warehouse")
    conn.autocommit = True
    try:
        with pytest.raises(PushdownNotVerified, match=r"GRANT pg_read_server_files TO <user>.*sys:monitor"):
            postgres_statements(_RecordsHook(conn), "redshift_quarterly_sales__x_0123456789")
        for grant in POSTGRES_GRANT.replace("<user>", role).split("; "):
            query(pg, grant)
        assert postgres_statements(_RecordsHook(conn), "redshift_quarterly_sales__x_0123456789") == []
    finally:
        conn.close()
