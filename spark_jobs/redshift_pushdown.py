"""Quarterly sales for one year, computed in the warehouse, written back to a warehouse table.

    spark-submit redshift_pushdown.py --backend postgres --url jdbc:postgresql://host:5432/dev \\
        --user etl --year 2024 --target-table quarterly_sales --mode overwrite --label run-1
    spark-submit redshift_pushdown.py --backend redshift \\
        --url 'jdbc:redshift:iam://wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/dev' \\
        --tempdir s3://bucket/redshift-temp/ --aws-iam-role arn:aws:iam::123456789012:role/redshift-s3 ...

The report (:mod:`spark_jobs.redshift.sales_report`) joins ``sales`` with ``date``, keeps one
year, sums ``qtysold`` per quarter and sorts. With pushdown (the default) the warehouse runs
all of it and only the result rows (four for a full year) reach Spark: on Redshift the
connector's autopushdown turns the DataFrame plan into one UNLOAD; on PostgreSQL the report's
SQL, transpiled by sqlglot, is the JDBC read's ``query``. ``--pushdown off`` reads both tables
whole and lets Spark do the work (the reference the benchmark compares with, and the case
the DAG's verification must catch). A year with no sales writes nothing, says so in the log
and in the summary, and exits 0. The last stdout line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, "") and "spark_jobs" not in sys.modules:  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_jobs.common.cli import parse_job_args  # noqa: E402
from spark_jobs.redshift.sales_report import (  # noqa: E402
    RESULT_COLUMNS,
    TABLES,
    check_year,
    quarterly_sales,
    table_read_sql,
    warehouse_sql,
)
from spark_jobs.redshift.warehouse import (  # noqa: E402
    BACKENDS,
    WRITE_MODES,
    Warehouse,
    is_empty_unload_error,
    rows_read,
)

log = logging.getLogger("redshift_pushdown")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redshift_pushdown", description=__doc__.split("\n\n")[0])
    parser.add_argument("--year", type=int, required=True, help="the calendar year to report")
    parser.add_argument("--target-table", required=True, help="warehouse table for the result ([schema.]name)")
    parser.add_argument("--mode", default="overwrite", choices=WRITE_MODES, help="how to write the target table")
    parser.add_argument("--backend", default="redshift", choices=BACKENDS)
    parser.add_argument("--url", required=True, help="JDBC URL (jdbc:redshift:iam://... or jdbc:postgresql://...)")
    parser.add_argument("--schema", default=None, help="schema of sales and date (default: the user's search path)")
    parser.add_argument("--user", default=None, help="database user (postgres; Redshift's comes from the IAM URL)")
    parser.add_argument("--tempdir", default=None, help="s3:// prefix for Redshift UNLOAD/COPY files")
    parser.add_argument("--aws-iam-role", default=None, help="role Redshift assumes to reach the tempdir")
    parser.add_argument("--label", default=None, help="query label carried by every statement (<= 100 chars)")
    parser.add_argument("--pushdown", default="on", choices=["on", "off"],
                        help="off: read both tables whole and compute in Spark (the reference)")  # fmt: skip
    return parser


def warehouse_from(args: argparse.Namespace) -> Warehouse:
    return Warehouse(backend=args.backend, url=args.url, schema=args.schema, user=args.user,
                     tempdir=args.tempdir, aws_iam_role=args.aws_iam_role, label=args.label)  # fmt: skip


def read_report(spark, wh: Warehouse, year: int, pushdown: bool):
    """The report as a DataFrame, from the warehouse (pushdown) or computed by Spark."""
    reader = spark.read.format(wh.format)
    if pushdown and wh.backend == "postgres":
        query = warehouse_sql(wh.sql_dialect, year, wh.schema, wh.label)
        log.info("pushdown: the report runs in PostgreSQL as: %s", query)
        return reader.options(**wh.read_options(query=query, small_result=True)).load()
    if wh.backend == "redshift":
        # The connector pushes the whole plan (join, filter, aggregate, sort) when autopushdown is on.
        frames = [reader.options(**wh.read_options(table=t, pushdown=pushdown)).load() for t in TABLES]
        log.info(
            "%s: the report is planned by Spark over the Redshift connector",
            "autopushdown" if pushdown else "no pushdown",
        )
    else:
        frames = [
            reader.options(**wh.read_options(query=table_read_sql(t, wh.schema, wh.label))).load() for t in TABLES
        ]
        log.info("no pushdown: reading %s whole into Spark", " and ".join(TABLES))
    return quarterly_sales(*frames, year)


def collect_report(spark, wh: Warehouse, year: int, pushdown: bool):
    """The result rows (a handful), their schema, and how many rows the warehouse sent Spark.

    ``([], None, 0)`` for a year without sales."""
    try:
        report = read_report(spark, wh, year, pushdown)
        rows = report.collect()
    except Exception as exc:
        if wh.backend == "redshift" and is_empty_unload_error(exc):
            log.info("Redshift's UNLOAD returned no rows (%s): treating it as an empty report", type(exc).__name__)
            return [], None, 0
        raise
    return rows, report.schema, rows_read(report)


def write_result(spark, wh: Warehouse, rows: list, schema, table: str, mode: str) -> None:
    """Write the collected rows: the warehouse is not asked to run the report a second time."""
    frame = spark.createDataFrame(rows, schema).coalesce(1)
    frame.write.format(wh.format).options(**wh.write_options(table, mode)).mode(mode).save()


def _plain(value):
    """JSON-friendly: Decimal and numpy-ish values as int or float."""
    if value is None or isinstance(value, (int, str)):
        return value
    number = float(value)
    return int(number) if number.is_integer() else number


def run(args: argparse.Namespace, spark=None) -> dict:
    year = check_year(args.year)
    wh = warehouse_from(args)
    target = wh.qualified(args.target_table)
    if spark is None:
        from spark_jobs.common.session import get_spark

        spark = get_spark("redshift_pushdown")
    started = time.monotonic()
    pushdown = args.pushdown == "on"
    rows, schema, transferred = collect_report(spark, wh, year, pushdown)
    log.info("%s row(s) came from the warehouse into Spark for %d result row(s)", f"{transferred:,}", len(rows))
    result = [{c: _plain(row[c]) for c in RESULT_COLUMNS} for row in rows]
    summary = {"year": year, "backend": wh.backend, "pushdown": pushdown, "label": wh.label, "target": target,
               "mode": args.mode, "rows": result, "result_rows": len(rows), "rows_transferred": transferred}  # fmt: skip
    if not rows:
        log.warning("no sales in %d: the report is empty; %s left unchanged (nothing written)", year, target)
        summary["written"] = False
    else:
        for r in result:
            log.info("%d Q%s: %s tickets sold", year, r["qtr"], f"{r['total_qtysold']:,}")
        write_result(spark, wh, rows, schema, args.target_table, args.mode)
        log.info("wrote %d rows to %s (mode %s)", len(rows), target, args.mode)
        summary["written"] = True
    summary["seconds"] = round(time.monotonic() - started, 3)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_job_args(build_parser(), argv)
    try:
        summary = run(args)
    except ValueError as exc:
        log.error("%s", exc)
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2
    print(json.dumps({"ok": True, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
