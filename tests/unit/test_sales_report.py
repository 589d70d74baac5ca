"""The quarterly-sales report: one SQL text, transpiled per warehouse, and run over DataFrames."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import date, timedelta

import pytest

from spark_jobs import redshift_pushdown as job
from spark_jobs.redshift.sales_report import LABEL_MAX, clean_label, quarterly_sales, table_read_sql, warehouse_sql
from spark_jobs.redshift.warehouse import Warehouse, is_empty_unload_error


def test_postgres_sql_is_the_whole_report_with_schema_year_and_label():
    sql = warehouse_sql("postgres", 2024, schema="tickit", label="dag.run-1")
    assert sql.startswith("/* mwaa-pipelines label=dag_run_1 */ SELECT")
    assert '"tickit"."sales" AS "s" JOIN "tickit"."date" AS "d"' in sql
    assert '"d"."year" = 2024' in sql and ":year" not in sql and "%(year)s" not in sql
    assert 'SUM("s"."qtysold")' in sql and 'GROUP BY "d"."qtr"' in sql and 'ORDER BY "d"."qtr"' in sql


def test_redshift_and_spark_dialects():
    assert '"date" AS "d"' in warehouse_sql("redshift", 2008)
    assert "`date` AS `d`" in warehouse_sql("spark", 2008)


@pytest.mark.parametrize("year", [1899, 3000, "2024", True, 2024.0])
def test_bad_years_are_refused(year):
    with pytest.raises(ValueError, match="year"):
        warehouse_sql("postgres", year)


@pytest.mark.parametrize("schema", ["tickit; DROP TABLE sales", "a.b.c", "1abc", "we ird"])
def test_schema_must_be_a_plain_identifier(schema):
    with pytest.raises(ValueError, match="identifier"):
        warehouse_sql("postgres", 2024, schema=schema)


def test_unknown_dialect():
    with pytest.raises(ValueError, match="dialect"):
        warehouse_sql("oracle", 2024)


def test_labels_cannot_break_out_of_the_comment_and_fit_redshift():
    label = clean_label("x */ DROP TABLE sales; --" + "y" * 200)
    assert "*/" not in label and ";" not in label and " " not in label
    assert len(label) == LABEL_MAX
    assert table_read_sql("sales", "tickit", "l1") == '/* mwaa-pipelines label=l1 */ SELECT * FROM "tickit"."sales"'


# -- the report over DataFrames, against an independent computation --------------------------------
def tickit_rows(n_sales: int, seed: int):
    rng = random.Random(seed)
    days = [date(2007, 12, 1) + timedelta(days=i) for i in range(800)]
    dates = [(i + 1, d, d.strftime("%a"), d.isocalendar()[1], d.strftime("%b"), (d.month - 1) // 3 + 1, d.year, False)
             for i, d in enumerate(days)]  # fmt: skip
    sales = []
    for sid in range(1, n_sales + 1):
        dateid = rng.randint(1, len(days) + 20)  # some sales point at no date row: the join drops them
        sales.append((sid, rng.randint(1, 99), 1, 2, 3, dateid, rng.randint(1, 8), 10.0, 1.5, None))
    return sales, dates


def expected_report(sales, dates, year):
    quarter_of = {d[0]: d[5] for d in dates if d[6] == year}
    totals = defaultdict(int)
    for s in sales:
        if s[5] in quarter_of:
            totals[quarter_of[s[5]]] += s[6]
    return sorted(totals.items())


@pytest.fixture(scope="module")
def spark():
    from local.services.spark_session import local_session, stop_session

    session = local_session("test-sales-report")
    yield session
    stop_session(session)


SALES_DDL = ("salesid INT, listid INT, sellerid INT, buyerid INT, eventid INT, dateid INT, qtysold INT, "
             "pricepaid DOUBLE, commission DOUBLE, saletime TIMESTAMP")  # fmt: skip
DATE_DDL = "dateid INT, caldate DATE, day STRING, week INT, month STRING, qtr INT, year INT, holiday BOOLEAN"


@pytest.mark.parametrize("year", [2008, 2009, 2007, 1999])
def test_quarterly_sales_over_dataframes_matches_an_independent_sum(spark, year):
    sales, dates = tickit_rows(3000, seed=year)
    got = quarterly_sales(spark.createDataFrame(sales, SALES_DDL), spark.createDataFrame(dates, DATE_DDL), year)
    assert got.columns == ["qtr", "total_qtysold"]
    assert [(r.qtr, r.total_qtysold) for r in got.collect()] == expected_report(sales, dates, year)
    if year == 1999:
        assert got.count() == 0


# -- the job's options and argument checks (no warehouse needed) ------------------------------------
REDSHIFT = {"backend": "redshift", "url": "jdbc:redshift:iam://wg.1.eu-west-1.redshift-serverless.amazonaws.com:5439/dev",
            "tempdir": "s3://b/tmp/", "aws_iam_role": "arn:aws:iam::1:role/r", "label": "L" * 150}  # fmt: skip


def test_redshift_options_use_iam_tempdir_parquet_autopushdown_and_label():
    wh = Warehouse(**REDSHIFT, schema="public")
    opts = wh.read_options(table="sales")
    assert wh.format == "io.github.spark_redshift_community.spark.redshift"
    assert opts["dbtable"] == "public.sales" and opts["autopushdown"] == "true"
    assert opts["aws_iam_role"] == REDSHIFT["aws_iam_role"] and opts["tempdir"] == "s3://b/tmp/"
    assert opts["unload_s3_format"] == "PARQUET" and len(opts["label"]) == 100
    assert not any("password" in k.lower() for k in opts) and "user" not in opts
    assert wh.read_options(table="sales", pushdown=False)["autopushdown"] == "false"


@pytest.mark.parametrize(
    "change,message",
    [({"tempdir": None}, "--tempdir"), ({"aws_iam_role": None}, "--aws-iam-role"),
     ({"url": "jdbc:redshift://h:5439/dev"}, "IAM"), ({"url": REDSHIFT["url"] + "?password=x"}, "no password"),
     ({"backend": "mysql"}, "backend")],
)  # fmt: skip
def test_redshift_settings_are_checked(change, message):
    with pytest.raises(ValueError, match=message):
        Warehouse(**{**REDSHIFT, **change})


def test_postgres_options_label_the_connection_and_overwrite_by_truncate():
    wh = Warehouse("postgres", "jdbc:postgresql://127.0.0.1:5432/warehouse", schema="tickit", user="u", label="x" * 80)
    read = wh.read_options(query="SELECT 1")
    assert read["query"] == "SELECT 1" and read["driver"] == "org.postgresql.Driver" and read["user"] == "u"
    assert len(read["ApplicationName"]) == 63 and read["fetchsize"] == "10000"
    assert wh.read_options(query="SELECT 1", small_result=True)["fetchsize"] == "0"
    assert wh.write_options("quarterly_sales", "overwrite")["truncate"] == "true"
    assert "truncate" not in wh.write_options("quarterly_sales", "append")
    assert wh.write_options("other.quarterly_sales", "append")["dbtable"] == "other.quarterly_sales"
    with pytest.raises(ValueError, match="write mode"):
        wh.write_options("t", "upsert")
    with pytest.raises(ValueError, match="not both"):
        wh.read_options(query="SELECT 1", table="sales")


def test_the_connectors_empty_unload_failure_is_recognised():
    assert is_empty_unload_error(RuntimeError("[UNABLE_TO_INFER_SCHEMA] Unable to infer schema for Parquet."))
    assert not is_empty_unload_error(RuntimeError("permission denied for relation sales"))


@pytest.mark.parametrize(
    "argv,message",
    [(["--year", "1800"], "year"), (["--target-table", "x; drop"], "identifier"), (["--schema", "a b"], "identifier")],
)
def test_job_refuses_bad_arguments_before_starting_spark(argv, message, capsys):
    base = ["--backend", "postgres", "--url", "jdbc:postgresql://127.0.0.1:1/w", "--year", "2024",
            "--target-table", "quarterly_sales"]  # fmt: skip
    assert job.main(base + argv) == 2
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["ok"] is False and message in out["error"]
