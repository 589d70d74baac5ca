"""The quarterly-sales report, written once as SQL and run either in Spark or in the warehouse.

``REPORT_SQL`` is the single copy of the report's logic (join sales with the date dimension,
keep one year, sum ``qtysold`` per quarter, sort). It is Spark SQL over the TICKIT tables
``sales`` and ``date``:

* in Spark, :func:`quarterly_sales` runs it over two DataFrames (temporary views);
* in the warehouse, :func:`warehouse_sql` transpiles it with sqlglot to the warehouse's
  dialect (``postgres`` for the local stand-in, ``redshift`` on AWS), with the tables
  qualified by schema and the year bound as a literal, and the job sends the result as the
  read's ``query``. Spark 3.5's JDBC source pushes filters and single-table aggregates but
  never a join, so this is how the whole report runs in the warehouse and only the result
  rows travel.

Every statement the job sends starts with a comment carrying the run's label (see
:func:`labelled`), so the warehouse's own statement record (pg_stat_statements, the server
log, SYS_QUERY_HISTORY) can be searched for what this run executed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

TABLES = ("sales", "date")
RESULT_COLUMNS = ("qtr", "total_qtysold")
REPORT_SQL = """
SELECT d.qtr AS qtr, SUM(s.qtysold) AS total_qtysold
FROM sales AS s
JOIN date AS d ON s.dateid = d.dateid
WHERE d.year = :year
GROUP BY d.qtr
ORDER BY d.qtr
"""
DIALECTS = ("postgres", "redshift", "spark")
LABEL_MAX = 100  # the Redshift connector keeps 100 characters of its `label` (the "lbl" of query_label)
# The connector refuses any label character that is not a Unicode identifier part
# (Parameters.validateUserParameters); ASCII letters, digits and _ are, and stay plain in a comment.
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def check_year(year: int) -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2999:
        raise ValueError(f"year must be an integer between 1900 and 2999, got {year!r}")
    return year


def check_identifier(name: str, what: str) -> str:
    """A plain SQL identifier (optionally schema-qualified for tables): nothing to quote or inject."""
    parts = name.split(".")
    if not name or len(parts) > 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise ValueError(f"{what} {name!r} is not a plain identifier (letters, digits, _ and $; schema.table at most)")
    return name


def clean_label(label: str) -> str:
    """A label the connector accepts, safe inside a SQL comment, at most ``LABEL_MAX`` characters."""
    cleaned = _LABEL_UNSAFE.sub("_", label)[:LABEL_MAX]
    if not cleaned:
        raise ValueError("the query label is empty")
    return cleaned


def labelled(sql: str, label: str | None) -> str:
    """``sql`` with a leading comment naming the label (kept by pg_stat_statements and the log)."""
    if not label:
        return sql
    return f"/* mwaa-pipelines label={clean_label(label)} */ {sql}"


def warehouse_sql(dialect: str, year: int, schema: str | None = None, label: str | None = None) -> str:
    """``REPORT_SQL`` in ``dialect``, tables qualified with ``schema``, ``year`` bound."""
    if schema:
        check_identifier(schema, "schema")
    return labelled(_render(dialect, year, {t: (schema, t) for t in TABLES}), label)


def _render(dialect: str, year: int, tables: dict[str, tuple[str | None, str]]) -> str:
    import sqlglot
    from sqlglot import exp

    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; one of {', '.join(DIALECTS)}")
    tree = exp.replace_placeholders(sqlglot.parse_one(REPORT_SQL, read="spark"), year=check_year(year))
    for table in tree.find_all(exp.Table):
        db, name = tables[table.name]
        table.set("this", exp.to_identifier(name))
        table.set("db", exp.to_identifier(db) if db else None)
    # Quoted identifiers: `date` is a keyword in some dialects, a table name in TICKIT.
    return tree.sql(dialect=dialect, identify=True)


def quarterly_sales(sales: DataFrame, date: DataFrame, year: int) -> DataFrame:
    """The report over two DataFrames (Spark does the join, filter, aggregate and sort)."""
    views = {}
    for table, frame in zip(TABLES, (sales, date), strict=True):
        views[table] = (None, f"report_{table}_{id(frame):x}")  # private to this call
        frame.createOrReplaceTempView(views[table][1])
    return sales.sparkSession.sql(_render("spark", year, views))


def table_read_sql(table: str, schema: str | None, label: str | None) -> str:
    """The whole-table read of the reference path (no pushdown), labelled like the report."""
    name = f'"{schema}"."{table}"' if schema else f'"{table}"'
    return labelled(f"SELECT * FROM {name}", label)
