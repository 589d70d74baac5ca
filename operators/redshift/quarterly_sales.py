"""The Airflow side of the Redshift quarterly-sales pipeline: settings, label, tempdir, proof.

The job (``spark_jobs/redshift_pushdown.py``) runs on any Spark platform; around it the DAG

* resolves the warehouse settings (Variable ``redshift_quarterly_sales``) and a query label
  unique to the run (:func:`query_label`);
* makes sure the connector's ``tempdir`` prefix has an expiry rule (the connector never
  deletes its UNLOAD/COPY files);
* afterwards reads the warehouse's own record of what it executed for that label, and fails
  unless the report's aggregation ran there (:func:`judge_pushdown`): on Redshift,
  SYS_QUERY_HISTORY through the Redshift Data API; on the PostgreSQL stand-in, the server's
  statement log read over SQL (``pg_current_logfile`` + ``pg_read_file``; pg_stat_statements
  merges statements that differ only in comments and constants, so it cannot tell runs apart).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

VARIABLE = "redshift_quarterly_sales"
DEFAULTS = {
    "backend": "redshift",
    "schema": "public",
    "tempdir_expire_days": 1,
    "postgres_conn_id": "warehouse_postgres",
    "aws_conn_id": "aws_default",
    "database": "dev",
}
# The job's own lists (spark_jobs.redshift.warehouse; the job ships apart from the DAGs, so the
# lists live in both places and a test keeps them equal).
BACKENDS = ("postgres", "redshift")
WRITE_MODES = ("append", "overwrite", "errorifexists", "ignore")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
LOG_TAIL_BYTES = 32 * 1024 * 1024
PG_NAME_MAX = 63  # application_name is cut to NAMEDATALEN - 1
LABEL_MAX = 100  # the Redshift connector keeps at most 100 characters of its `label` option
LABEL_HASH = 10
# The connector refuses a label with any character that is not a Unicode identifier part
# (Parameters.validateUserParameters: IllegalArgumentException before any SQL runs); ASCII
# letters, digits and _ are, and stay plain inside a SQL comment. As spark_jobs.redshift.sales_report.
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


class PushdownNotVerified(RuntimeError):
    """The warehouse's record shows no statement that ran the report's aggregation."""


@dataclass(frozen=True)
class Statement:
    sql: str
    rows: int | None = None
    source: str = ""


def query_label(dag_id: str, run_id: str) -> str:
    """``<dag_id>__<run_id>_<hash>``, so an admin reading the query history knows the DAG run.

    Only identifier characters (``[A-Za-z0-9_]``), which the Redshift connector requires of its
    ``label``: the others in run ids (``- : + .``) become ``_``. Two runs can then read the
    same, and a long DAG id is cut to fit 100 characters, so the label ends with a hash of the
    exact DAG id and run id: one label per run, whatever its characters.
    """
    digest = hashlib.sha1(f"{dag_id}\0{run_id}".encode()).hexdigest()[:LABEL_HASH]
    head = _LABEL_UNSAFE.sub("_", f"{dag_id}__{run_id}")[: LABEL_MAX - LABEL_HASH - 1]
    return f"{head}_{digest}"


def resolve_settings(params: dict, variable: dict | None = None, data_uri: str | None = None) -> dict:
    """Form params over the Variable over defaults; checks what the job would refuse later."""
    cfg = {**DEFAULTS, **(variable or {})}
    if not cfg.get("tempdir") and data_uri:
        cfg["tempdir"] = f"{data_uri.rstrip('/')}/redshift-temp/"
    missing = [k for k in ("jdbc_url", "tempdir") if not cfg.get(k)]
    if missing:
        raise ValueError(f"Variable {VARIABLE} lacks {', '.join(missing)}")
    if cfg["backend"] not in BACKENDS:
        raise ValueError(f"Variable {VARIABLE}: backend must be one of {BACKENDS}, got {cfg['backend']!r}")
    year = params.get("year")
    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2999:
        raise ValueError(f"year must be an integer between 1900 and 2999, got {year!r}")
    cfg["year"] = year
    cfg["target_table"] = params.get("target_table") or "quarterly_sales"
    if not _TABLE.match(cfg["target_table"]):
        raise ValueError(f"target table {cfg['target_table']!r} is not a plain [schema.]name identifier")
    cfg["write_mode"] = params.get("write_mode") or "overwrite"
    if cfg["write_mode"] not in WRITE_MODES:
        raise ValueError(f"write_mode must be one of {WRITE_MODES}, got {cfg['write_mode']!r}")
    cfg["pushdown"] = bool(params.get("pushdown", True))
    if not cfg["tempdir"].endswith("/"):
        cfg["tempdir"] += "/"
    return cfg


def job_arguments(cfg: dict, label: str) -> list[str]:
    args = ["--backend", cfg["backend"], "--url", cfg["jdbc_url"], "--schema", cfg["schema"],
            "--year", str(cfg["year"]), "--target-table", cfg["target_table"], "--mode", cfg["write_mode"],
            "--label", label, "--tempdir", cfg["tempdir"]]  # fmt: skip
    if cfg.get("user"):
        args += ["--user", cfg["user"]]
    if cfg.get("aws_iam_role"):
        args += ["--aws-iam-role", cfg["aws_iam_role"]]
    return [*args, "--pushdown", "on" if cfg["pushdown"] else "off"]


# -- proof of pushdown ----------------------------------------------------------------------------
_QUOTES = re.compile(r"[\"`\[\]]")


def runs_report(sql: str) -> bool:
    """Whether ``sql`` is the report itself: joins sales with date and sums per group.

    Works on our transpiled query and on the Redshift connector's generated SQL (quoted
    aliases, nested subqueries, the report inside an UNLOAD('...') string).
    """
    text = re.sub(r"\s+", " ", _QUOTES.sub("", sql)).upper()
    return (
        re.search(r"\bSUM ?\(", text) is not None
        and "GROUP BY" in text
        and re.search(r"\bJOIN\b", text) is not None
        and re.search(r"\bSALES\b", text) is not None
        and re.search(r"\bDATE\b", text) is not None
    )


def judge_pushdown(statements: list[Statement], label: str) -> str:
    """Pass (a one-line reason) when the report ran in the warehouse; raise with what was seen."""
    report = [s for s in statements if runs_report(s.sql)]
    if report:
        rows = report[-1].rows
        travelled = f", {rows} row(s) returned" if rows is not None else ""
        return f"pushdown verified: the warehouse ran the join and aggregation for label {label}{travelled}"
    seen = "\n".join(f"  [{s.source}] {s.sql[:2000]}" for s in statements) or "  (no statement carries the label)"
    raise PushdownNotVerified(
        f"pushdown NOT verified for label {label}: no statement with that label joined sales with date "
        f"and aggregated in the warehouse. The warehouse ran:\n{seen}"
    )


_LOG_LINE = re.compile(r"^\S+ \S+ \S+ \[\d+\] app=(?P<app>.*?) db=\S* (?P<level>[A-Z]+):\s+(?P<msg>.*)$")
_STATEMENT = re.compile(r"^(?:statement|execute [^:]*|parse [^:]*|bind [^:]*): (?P<sql>.*)$", re.S)


def statements_from_log(text: str, label: str) -> list[Statement]:
    """Statements of ``label`` in a PostgreSQL log (``log_statement = all``, prefix ``... app=%a db=%d``).

    A statement belongs to the label when its text carries the ``label=<label> */`` comment,
    or when the connection's application_name is the label (only for labels of at most 63
    characters: PostgreSQL cuts longer names, and a cut name may be shared by two runs).
    """
    entries: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            entries.append((match["app"], match["msg"]) if match["level"] == "LOG" else ("", ""))
        elif entries and entries[-1][1]:  # a continuation line of a multi-line statement
            entries[-1] = (entries[-1][0], entries[-1][1] + "\n" + line.lstrip("\t"))
    app_name = label if len(label) <= PG_NAME_MAX else None
    marker = f"label={label} */"
    found = []
    for app, msg in entries:
        statement = _STATEMENT.match(msg)
        if statement and (app == app_name or marker in statement["sql"]):
            found.append(Statement(statement["sql"], source="postgres log"))
    return found


def postgres_statements(hook, label: str) -> list[Statement]:
    """The label's statements from the server's statement log, read over the hook's connection."""
    sql = (
        "SELECT pg_read_file(f, greatest(0, (pg_stat_file(f)).size - %s), %s) "
        "FROM (SELECT pg_current_logfile() AS f) AS log"
    )
    try:
        rows = hook.get_records(sql, parameters=(LOG_TAIL_BYTES, LOG_TAIL_BYTES))
    except Exception as exc:
        if "permission denied" in str(exc).lower():
            raise PushdownNotVerified(f"pushdown cannot be verified as this user: {POSTGRES_VISIBILITY}") from exc
        raise
    if not rows or rows[0][0] is None:
        raise PushdownNotVerified(
            "PostgreSQL has no current log file: the stand-in needs logging_collector = on and log_statement = all"
        )
    return statements_from_log(rows[0][0], label)


# The connector sets each statement's query group to JSON carrying the label as "lbl"
# (Utils.queryGroupInfo): find that field exactly (STRPOS, not LIKE, where _ is a wildcard), so
# a label never matches a longer one or one that differs in a character. SYS_QUERY_HISTORY's
# query_text stops at 4,000 characters (a long UNLOAD can lose its GROUP BY there): the whole
# text comes from SYS_QUERY_TEXT, 4,000-character rows in `sequence` order.
REDSHIFT_HISTORY_SQL = (
    "SELECT h.query_id, h.returned_rows, h.query_type, h.status, "
    "LISTAGG(t.text, '') WITHIN GROUP (ORDER BY t.sequence) AS query_text "
    "FROM sys_query_history h JOIN sys_query_text t ON t.query_id = h.query_id "
    "WHERE STRPOS(h.query_label, '\"lbl\":\"' || :label || '\"') > 0 "
    "GROUP BY h.query_id, h.returned_rows, h.query_type, h.status, h.start_time ORDER BY h.start_time"
)
# SYS_QUERY_HISTORY and SYS_QUERY_TEXT show a user only its own queries, unless it has the
# SYS:MONITOR role (Redshift's "Visibility of data in system tables and views").
REDSHIFT_VISIBILITY = (
    "SYS_QUERY_HISTORY shows a database user only its own queries: verify as the job's database user "
    "(db_user), or grant the verifying user the system role that sees every user's queries: "
    "GRANT ROLE sys:monitor TO <user> (see deploy/iam/README.md)"
)
# The PostgreSQL stand-in's record is its server log, which only a superuser, or a user granted
# pg_read_server_files and EXECUTE on the log functions, may read.
POSTGRES_GRANT = (
    "GRANT pg_read_server_files TO <user>; GRANT EXECUTE ON FUNCTION pg_current_logfile(), "
    "pg_stat_file(text), pg_read_file(text, bigint, bigint) TO <user>"
)
POSTGRES_VISIBILITY = (
    f"the stand-in's statement log is readable only by a superuser or a user granted: {POSTGRES_GRANT} "
    "(on Redshift: GRANT ROLE sys:monitor TO <user>)"
)


def redshift_statements(data_hook, cfg: dict, label: str) -> list[Statement]:
    """The label's statements with their whole text (SYS_QUERY_HISTORY joined with SYS_QUERY_TEXT),
    through the Redshift Data API, as ``db_user`` (provisioned) or the caller's role (Serverless)."""
    target = {k: cfg[k] for k in ("cluster_identifier", "workgroup_name", "db_user", "secret_arn") if cfg.get(k)}
    statement_id = data_hook.execute_query(
        sql=REDSHIFT_HISTORY_SQL,
        database=cfg["database"],
        parameters=[{"name": "label", "value": label}],
        wait_for_completion=True,
        poll_interval=2,
        **target,
    ).statement_id
    found, token = [], None
    while True:
        page = data_hook.conn.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
        found += statements_from_result(page)
        token = page.get("NextToken")
        if not token:
            break
    if not found:
        raise PushdownNotVerified(
            f"no statement with label {label} is visible in SYS_QUERY_HISTORY: {REDSHIFT_VISIBILITY}"
        )
    return found


def statements_from_result(page: dict) -> list[Statement]:
    """Rows of a GetStatementResult page of ``REDSHIFT_HISTORY_SQL``, by column name."""
    names = [c.get("name") or c.get("label") for c in page.get("ColumnMetadata", [])]
    if "query_text" not in names:
        raise PushdownNotVerified(f"SYS_QUERY_HISTORY answered without a query_text column: {names}")
    text_at, rows_at = names.index("query_text"), names.index("returned_rows") if "returned_rows" in names else None
    found = []
    for record in page.get("Records", []):
        rows = record[rows_at].get("longValue") if rows_at is not None else None
        found.append(Statement(record[text_at].get("stringValue", ""), rows, source="SYS_QUERY_HISTORY"))
    return found
