"""The DAG side of the Redshift pipeline: settings, labels, and the proof of pushdown."""

from __future__ import annotations

import json
import unicodedata

import pytest

from deploy.layout import ROOT
from operators.redshift import quarterly_sales as rr
from spark_jobs.redshift import sales_report, warehouse
from spark_jobs.redshift.sales_report import clean_label, warehouse_sql

VARIABLE = {"backend": "postgres", "jdbc_url": "jdbc:postgresql://127.0.0.1:5432/warehouse", "user": "u",
            "schema": "tickit", "tempdir": "s3://data/redshift-temp"}  # fmt: skip


def test_lists_shared_with_the_job_stay_equal():
    assert rr.BACKENDS == warehouse.BACKENDS
    assert set(rr.WRITE_MODES) == set(warehouse.WRITE_MODES)
    assert rr._LABEL_UNSAFE.pattern == sales_report._LABEL_UNSAFE.pattern
    assert rr.LABEL_MAX == sales_report.LABEL_MAX


def java_unicode_identifier_part(ch: str) -> bool:
    """Java's ``Character.isUnicodeIdentifierPart`` (Java 17), the test the Redshift connector
    applies to every character of its ``label`` option: a letter, connecting punctuation (``_``),
    a digit, a numeric letter, a combining or non-spacing mark, or an identifier-ignorable
    character (controls 0-8, 0x0E-0x1B, 0x7F-0x9F, and format characters)."""
    category = unicodedata.category(ch)
    code = ord(ch)
    return (
        category[0] == "L"
        or category in ("Pc", "Nd", "Nl", "Mc", "Mn", "Cf")
        or code <= 8
        or 0x0E <= code <= 0x1B
        or 0x7F <= code <= 0x9F
    )


def connector_accepts_label(label: str) -> bool:
    return all(java_unicode_identifier_part(ch) for ch in label)


def test_the_connector_rule_is_javas():
    assert connector_accepts_label("dag_run_2026_abc") and connector_accepts_label("Zürich_Ⅻ")
    assert not any(connector_accepts_label(f"a{ch}b") for ch in "/-:+.=@ ;*")


# Run ids as Airflow 3 makes them: manual (UI, API, dags test), scheduled, asset-triggered, backfill.
REAL_RUN_IDS = (
    "manual__2026-11-23T12:01:03.434489+00:00",
    "scheduled__2026-11-23T00:00:00+00:00",
    "asset_triggered__2026-11-23T12:01:03.434489+00:00",
    "backfill__2026-11-01T00:00:00+00:00",
    "my run: quarter close (2024) / retry",
)


@pytest.mark.parametrize("run_id", REAL_RUN_IDS)
def test_labels_of_real_run_ids_pass_the_connectors_check(run_id):
    label = rr.query_label("redshift_quarterly_sales", run_id)
    assert connector_accepts_label(label), label
    assert len(label) <= rr.LABEL_MAX
    assert label.startswith("redshift_quarterly_sales__")
    assert clean_label(label) == label  # the job passes it on unchanged


def test_labels_stay_unique_per_run():
    run = REAL_RUN_IDS[0]
    labels = {
        rr.query_label("redshift_quarterly_sales", r)
        for r in (run, run.replace("489", "490"), run.replace(".", "-"), run.replace(":", "_"))
    }
    assert len(labels) == 4
    long_a, long_b = rr.query_label("d" * 300, "r1"), rr.query_label("d" * 300, "r2")
    assert len(long_a) == rr.LABEL_MAX and long_a != long_b and connector_accepts_label(long_a)
    assert rr.query_label("dag", "run with spaces; */").startswith("dag__run_with_spaces_____")


def test_the_history_query_finds_exactly_the_label():
    """The connector writes the label as "lbl" in a JSON query group: the query matches that
    field whole, with no LIKE wildcard (``_`` is one, and labels are full of them)."""
    assert "STRPOS(h.query_label, '\"lbl\":\"' || :label || '\"') > 0" in rr.REDSHIFT_HISTORY_SQL
    assert "LIKE" not in rr.REDSHIFT_HISTORY_SQL


def test_settings_take_the_form_over_the_variable_and_check_it():
    cfg = rr.resolve_settings({"year": 2023, "write_mode": "append", "pushdown": False}, VARIABLE)
    assert (cfg["year"], cfg["write_mode"], cfg["pushdown"], cfg["target_table"]) == (
        2023,
        "append",
        False,
        "quarterly_sales",
    )
    assert cfg["tempdir"] == "s3://data/redshift-temp/" and cfg["tempdir_expire_days"] == 1
    derived = rr.resolve_settings({"year": 2024}, {**VARIABLE, "tempdir": None}, data_uri="s3://lake/")
    assert derived["tempdir"] == "s3://lake/redshift-temp/"
    for params, message in [({"year": 1800}, "year"), ({"year": 2024, "target_table": "a;b"}, "target table"),
                            ({"year": 2024, "write_mode": "merge"}, "write_mode")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            rr.resolve_settings(params, VARIABLE)
    with pytest.raises(ValueError, match="jdbc_url"):
        rr.resolve_settings({"year": 2024}, {"backend": "postgres", "tempdir": "s3://x/"})


def test_job_arguments_are_pairs_the_job_accepts():
    from spark_jobs import redshift_pushdown as job

    cfg = rr.resolve_settings({"year": 2024, "pushdown": False}, {**VARIABLE, "aws_iam_role": "arn:r"})
    args = rr.job_arguments(cfg, "lbl")
    assert len(args) % 2 == 0
    parsed = job.build_parser().parse_args(args)
    assert (parsed.year, parsed.pushdown, parsed.label, parsed.schema, parsed.aws_iam_role) == (
        2024,
        "off",
        "lbl",
        "tickit",
        "arn:r",
    )


# -- recognising the report in what the warehouse ran -----------------------------------------------
# The shape of SQL the Redshift connector generates with autopushdown (aliased subqueries inside
# an UNLOAD), written out by hand for the test.
CONNECTOR_UNLOAD = """UNLOAD ('SELECT ( "SUBQUERY_7"."SUBQUERY_7_COL_0" ) AS "SUBQUERY_8_COL_0", ( "SUBQUERY_7"."SUBQUERY_7_COL_1" )
 AS "SUBQUERY_8_COL_1" FROM ( SELECT ( "SUBQUERY_6"."SUBQUERY_6_COL_0" ) AS "SUBQUERY_7_COL_0", ( SUM ( "SUBQUERY_6"."SUBQUERY_6_COL_1" ) )
 AS "SUBQUERY_7_COL_1" FROM ( SELECT * FROM ( SELECT * FROM "public"."sales" AS "RS_CONNECTOR_QUERY_ALIAS" ) AS "SUBQUERY_0"
 INNER JOIN ( SELECT * FROM "public"."date" AS "RS_CONNECTOR_QUERY_ALIAS" ) AS "SUBQUERY_3" ON ( "SUBQUERY_0"."DATEID" = "SUBQUERY_3"."DATEID" ) )
 AS "SUBQUERY_6" GROUP BY "SUBQUERY_6"."SUBQUERY_6_COL_0" ) AS "SUBQUERY_7" ORDER BY ( "SUBQUERY_7"."SUBQUERY_8_COL_0" ) ASC NULLS FIRST ')
 TO 's3://bucket/redshift-temp/0b1c/' WITH CREDENTIALS 'aws_iam_role=arn:aws:iam::1:role/r' ESCAPE MANIFEST NULL AS '@NU@' FORMAT AS PARQUET"""
SPARK_TABLE_READS = [
    'SELECT "dateid","qtysold" FROM (/* mwaa-pipelines label=L */ SELECT * FROM "tickit"."sales") SPARK_GEN_SUBQ_0 WHERE ("dateid" IS NOT NULL)',
    'SELECT "dateid","qtr" FROM (/* mwaa-pipelines label=L */ SELECT * FROM "tickit"."date") SPARK_GEN_SUBQ_8 WHERE ("year" = 2023)',
    "SELECT c.oid, a.attnum FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid",
    'INSERT INTO tickit.quarterly_sales ("qtr","total_qtysold") VALUES ($1,$2)',
]


def test_the_report_is_recognised_in_our_sql_and_the_connectors():
    assert rr.runs_report(warehouse_sql("postgres", 2024, "tickit", "L"))
    assert rr.runs_report(warehouse_sql("redshift", 2024))
    assert rr.runs_report(CONNECTOR_UNLOAD)
    assert not any(rr.runs_report(sql) for sql in SPARK_TABLE_READS)


def test_judge_passes_on_pushdown_and_fails_with_the_sql_it_saw():
    reads = [rr.Statement(sql, source="postgres log") for sql in SPARK_TABLE_READS]
    with pytest.raises(rr.PushdownNotVerified) as failure:
        rr.judge_pushdown(reads, "L")
    message = str(failure.value)
    assert "NOT verified" in message and '"tickit"."sales") SPARK_GEN_SUBQ_0' in message
    with pytest.raises(rr.PushdownNotVerified, match="no statement carries the label"):
        rr.judge_pushdown([], "L")
    verdict = rr.judge_pushdown([*reads, rr.Statement(CONNECTOR_UNLOAD, rows=4)], "L")
    assert "verified" in verdict and "4 row(s)" in verdict


LOG = """2026-11-23 12:01:30.100 UTC [3244] app=PostgreSQL JDBC Driver db=warehouse LOG:  execute <unnamed>: SELECT 1
2026-11-23 12:01:30.200 UTC [3244] app=dag.abc db=warehouse LOG:  execute <unnamed>: SELECT * FROM (/* mwaa-pipelines label=dag.abc */ SELECT "d"."qtr",
\tSUM("s"."qtysold") FROM "tickit"."sales" AS "s" JOIN "tickit"."date" AS "d" ON "s"."dateid" = "d"."dateid" GROUP BY "d"."qtr") q
2026-11-23 12:01:30.300 UTC [3244] app=dag.abc db=warehouse ERROR:  relation "tickit.quarterly_sales" does not exist
2026-11-23 12:01:30.301 UTC [3244] app=dag.abc db=warehouse STATEMENT:  SELECT 1 FROM tickit.quarterly_sales WHERE 1=0
2026-11-23 12:01:30.400 UTC [3250] app=dag.abc db=warehouse LOG:  execute S_1: COMMIT
2026-11-23 12:01:30.500 UTC [3251] app=psql db=warehouse LOG:  statement: /* mwaa-pipelines label=dag.abc */ SELECT 2
2026-11-23 12:01:30.600 UTC [3252] app=dag.other db=warehouse LOG:  statement: SELECT 3
2026-11-23 12:01:30.700 UTC [3252] app=dag.abc db=warehouse LOG:  duration: 1.2 ms
"""


def test_statements_are_read_from_the_postgres_log_by_label():
    found = rr.statements_from_log(LOG, "dag.abc")
    assert [s.sql.split("\n")[0][:40] for s in found] == [
        "SELECT * FROM (/* mwaa-pipelines label=d",
        "COMMIT",
        "/* mwaa-pipelines label=dag.abc */ SELEC",
    ]
    assert "GROUP BY" in found[0].sql  # the continuation line belongs to the statement
    assert rr.judge_pushdown(found, "dag.abc").startswith("pushdown verified")
    assert rr.statements_from_log(LOG, "dag.other")[0].sql == "SELECT 3"
    assert rr.statements_from_log(LOG, "dag.ab") == []  # a label that is a prefix of another is not it


def test_long_labels_are_matched_by_their_comment_only():
    label = "x" * 70
    log = (f"2026-11-23 12:00:00.000 UTC [1] app={label[:63]} db=w LOG:  statement: INSERT INTO t VALUES (1)\n"
           f"2026-11-23 12:00:00.000 UTC [1] app={label[:63]} db=w LOG:  statement: /* mwaa-pipelines label={label} */ SELECT 1\n")  # fmt: skip
    assert [s.sql for s in rr.statements_from_log(log, label)] == [f"/* mwaa-pipelines label={label} */ SELECT 1"]


def test_sys_query_history_rows_are_read_by_column_name():
    page = {
        "ColumnMetadata": [{"name": n} for n in ("query_text", "returned_rows", "query_type", "status")],
        "Records": [
            [{"stringValue": CONNECTOR_UNLOAD}, {"longValue": 4}, {"stringValue": "UNLOAD"}, {"stringValue": "success"}]
        ],
    }
    (statement,) = rr.statements_from_result(page)
    assert statement.rows == 4 and rr.runs_report(statement.sql)
    with pytest.raises(rr.PushdownNotVerified, match="query_text"):
        rr.statements_from_result({"ColumnMetadata": [{"name": "Number"}], "Records": []})


# -- the job's IAM policies ------------------------------------------------------------------------
POLICIES = sorted((ROOT / "deploy" / "iam").glob("redshift_quarterly_sales_job_*.json"))
VALUES = {"Region": "eu-west-1", "AccountId": "123456789012", "ClusterIdentifier": "analytics", "DbUser": "etl_spark",
          "Database": "dev", "WorkgroupId": "0f1e2d3c", "TempdirBucket": "data", "TempdirPrefix": "redshift-temp/"}  # fmt: skip


def filled(path) -> dict:
    text = path.read_text()
    for name, value in VALUES.items():
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, f"{path.name}: an undocumented placeholder"
    return json.loads(text)


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_job_policy_is_least_privilege(path):
    policy = filled(path)
    assert policy["Version"] == "2012-10-17"
    statements = policy["Statement"]
    assert all(s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s for s in statements)
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert not any("*" in a for a in actions), actions
    for s in statements:
        for resource in _as_list(s["Resource"]):
            assert resource != "*" and not resource.endswith(":*")
            if resource.startswith("arn:aws:s3:::"):
                assert resource in ("arn:aws:s3:::data", "arn:aws:s3:::data/redshift-temp/*"), resource
        if "s3:ListBucket" in _as_list(s["Action"]):
            assert s["Condition"]["StringLike"]["s3:prefix"] == ["redshift-temp/*"]
    credentials = [
        s
        for s in statements
        if {"redshift:GetClusterCredentials", "redshift-serverless:GetCredentials"} & set(_as_list(s["Action"]))
    ]
    assert len(credentials) == 1
    resources = _as_list(credentials[0]["Resource"])
    if "serverless" in path.stem:
        assert resources == ["arn:aws:redshift-serverless:eu-west-1:123456789012:workgroup/0f1e2d3c"]
    else:
        assert "arn:aws:redshift:eu-west-1:123456789012:dbuser:analytics/etl_spark" in resources
        assert all(":dbuser:analytics/etl_spark" in r or ":dbname:analytics/dev" in r for r in resources)
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"} <= actions


def test_both_policy_variants_exist():
    assert [p.stem.rsplit("_", 1)[1] for p in POLICIES] == ["provisioned", "serverless"]


def test_the_history_query_reads_the_whole_text_from_sys_query_text():
    """SYS_QUERY_HISTORY.query_text stops at 4,000 characters; SYS_QUERY_TEXT holds the rest."""
    sql = rr.REDSHIFT_HISTORY_SQL
    assert "JOIN sys_query_text t ON t.query_id = h.query_id" in sql
    assert "LISTAGG(t.text, '') WITHIN GROUP (ORDER BY t.sequence) AS query_text" in sql


def test_nothing_visible_in_the_history_names_the_grant():
    class Conn:
        def get_statement_result(self, Id):
            return {"ColumnMetadata": [{"name": "query_id"}, {"name": "query_text"}], "Records": []}

    class DataHook:
        conn = Conn()

        def execute_query(self, **kwargs):
            return type("Out", (), {"statement_id": "s1"})()

    with pytest.raises(rr.PushdownNotVerified, match="GRANT ROLE sys:monitor TO <user>"):
        rr.redshift_statements(DataHook(), {"database": "dev", "db_user": "reporter"}, "lbl")
