"""How a Spark job reads from and writes to the warehouse: Redshift on AWS, PostgreSQL locally.

The backend is configuration (``--backend``), never code in the job:

``redshift``
    The Amazon Redshift integration for Apache Spark
    (``io.github.spark_redshift_community.spark.redshift``): IAM auth through the
    ``jdbc:redshift:iam://`` URL and ``aws_iam_role`` for Redshift's own UNLOAD/COPY to S3
    (no password anywhere), ``tempdir`` on S3, Parquet unload, ``autopushdown`` (the
    connector turns the DataFrame plan, join included, into one SQL statement) and
    ``label``, which lands in SYS_QUERY_HISTORY.query_label of every statement it runs.
``postgres``
    Spark's JDBC source against the local stand-in. The connection's ``ApplicationName`` is
    the label (pg_stat_activity, the statement log); statements also carry it as a comment
    (see :mod:`spark_jobs.redshift.sales_report`), which pg_stat_statements keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

from spark_jobs.redshift.sales_report import check_identifier, clean_label

REDSHIFT_FORMAT = "io.github.spark_redshift_community.spark.redshift"
BACKENDS = ("postgres", "redshift")
WRITE_MODES = ("append", "overwrite", "errorifexists", "ignore")
FETCH_SIZE = 10_000


@dataclass(frozen=True)
class Warehouse:
    backend: str
    url: str
    schema: str | None = None
    user: str | None = None  # postgres only; Redshift's user is DbUser in the IAM URL
    tempdir: str | None = None
    aws_iam_role: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown warehouse backend {self.backend!r}; one of {', '.join(BACKENDS)}")
        if self.schema:
            check_identifier(self.schema, "schema")
        if self.backend == "redshift":
            missing = [n for n in ("tempdir", "aws_iam_role") if not getattr(self, n)]
            if missing:
                raise ValueError(
                    f"the redshift backend needs {' and '.join('--' + m.replace('_', '-') for m in missing)}"
                )
            if not self.url.startswith("jdbc:redshift:iam://"):
                raise ValueError(
                    "the redshift backend authenticates with IAM: the URL must start with jdbc:redshift:iam://"
                )
            if "password=" in self.url.lower():
                raise ValueError("no password in the warehouse URL: Redshift is reached with IAM credentials")
        elif not self.url.startswith("jdbc:postgresql://"):
            raise ValueError("the postgres backend needs a jdbc:postgresql:// URL")

    def qualified(self, table: str) -> str:
        check_identifier(table, "table")
        return table if "." in table or not self.schema else f"{self.schema}.{table}"

    # -- options ------------------------------------------------------------------------------
    def _common(self) -> dict[str, str]:
        if self.backend == "redshift":
            options = {
                "url": self.url,
                "tempdir": self.tempdir,
                "aws_iam_role": self.aws_iam_role,
                "unload_s3_format": "PARQUET",
                "tempformat": "PARQUET",
            }
            if self.label:
                options["label"] = clean_label(self.label)
            return options  # type: ignore[return-value]
        options = {"url": self.url, "driver": "org.postgresql.Driver", "fetchsize": str(FETCH_SIZE)}
        if self.user:
            options["user"] = self.user
        if self.label:
            options["ApplicationName"] = clean_label(self.label)[:63]  # PostgreSQL's NAMEDATALEN
        return options

    def read_options(
        self, *, query: str | None = None, table: str | None = None, pushdown: bool = True, small_result: bool = False
    ) -> dict[str, str]:
        """Options for ``spark.read.format(self.format)`` of a query or a whole table.

        ``small_result``: the answer is a handful of rows (an aggregate), so PostgreSQL is
        asked for it in one go rather than through a cursor; it only runs a statement with
        parallel workers when the statement cannot be suspended between fetches.
        """
        if (query is None) == (table is None):
            raise ValueError("read a query or a table, not both")
        options = self._common()
        if query is not None:
            options["query"] = query
        else:
            options["dbtable"] = self.qualified(table)  # type: ignore[arg-type]
        if self.backend == "redshift":
            options["autopushdown"] = "true" if pushdown else "false"
        elif small_result:
            options["fetchsize"] = "0"
        return options

    def write_options(self, table: str, mode: str) -> dict[str, str]:
        if mode not in WRITE_MODES:
            raise ValueError(f"unknown write mode {mode!r}; one of {', '.join(WRITE_MODES)}")
        options = self._common()
        options["dbtable"] = self.qualified(table)
        if self.backend == "postgres" and mode == "overwrite":
            options["truncate"] = "true"  # keep the table, its grants and its readers' views
        return options

    @property
    def format(self) -> str:
        return REDSHIFT_FORMAT if self.backend == "redshift" else "jdbc"

    @property
    def sql_dialect(self) -> str:
        return self.backend


# The connector fails when an UNLOAD writes no file (no rows): Spark finds no Parquet to read.
_EMPTY_UNLOAD_SIGNS = ("Unable to infer schema for Parquet", "UNABLE_TO_INFER_SCHEMA", "Path does not exist")


def is_empty_unload_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the connector's known failure on an UNLOAD of zero rows."""
    text = f"{type(exc).__name__}: {exc}"
    return any(sign in text for sign in _EMPTY_UNLOAD_SIGNS)


def rows_read(frame) -> int:
    """Rows the frame's source scans returned to Spark (their ``numOutputRows`` metrics).

    Read after an action on ``frame``: how many rows crossed from the warehouse into Spark,
    as Spark itself counted them (adaptive plans and query stages are walked into).
    """
    total = 0
    stack = [frame._jdf.queryExecution().executedPlan()]
    while stack:
        node = stack.pop()
        name = node.getClass().getSimpleName()
        if name == "AdaptiveSparkPlanExec":
            stack.append(node.executedPlan())
            continue
        if name.endswith("QueryStageExec"):
            stack.append(node.plan())
            continue
        metrics = node.metrics()
        if "Scan" in name and metrics.contains("numOutputRows"):
            total += int(metrics.apply("numOutputRows").value())
        children = node.children()
        stack.extend(children.apply(i) for i in range(children.size()))
    return total
