"""Spark side of Iceberg maintenance: measure a table, run the planned procedures, check content.

Thin on purpose: the decisions are in :mod:`spark_jobs.iceberg.plan`. Everything here
reads the table's metadata tables (``files``, ``snapshots``, ``manifests``, ``all_*``) or
calls Iceberg's Spark procedures, and works on the Iceberg runtimes Glue 5.0 (1.7.1) and
Glue 5.1 / EMR 7.12 (1.10.0) ship: procedure options are probed on the running jar and the
ones it lacks are dropped with a log line rather than failing the call.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass

from spark_jobs.iceberg.plan import Action, PartitionStats, SnapshotInfo, TableState, partition_predicate
from spark_jobs.iceberg.policy import StorageSettings

log = logging.getLogger(__name__)

# Classes whose public static String fields are the option names the runtime's actions accept
# (1.10 plans rewrites in *Planner/*Runner classes, 1.7 in *Rewriter ones).
_OPTION_CLASSES = (
    "org.apache.iceberg.actions.RewriteDataFiles",
    "org.apache.iceberg.actions.RewritePositionDeleteFiles",
    "org.apache.iceberg.actions.SizeBasedFileRewritePlanner",
    "org.apache.iceberg.actions.BinPackRewriteFilePlanner",
    "org.apache.iceberg.actions.SizeBasedFileRewriter",
    "org.apache.iceberg.actions.SizeBasedDataRewriter",
    "org.apache.iceberg.spark.actions.SparkShufflingDataRewriter",
    "org.apache.iceberg.spark.actions.SparkShufflingFileRewriteRunner",
)


def quote_ident(name: str) -> str:
    """``a.b.c`` as ```a`.`b`.`c``` for SQL (each part back-quoted)."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class TableRef:
    catalog: str
    name: str  # namespace.table inside the catalog

    @classmethod
    def parse(cls, full: str, catalog: str) -> TableRef:
        parts = full.split(".")
        if len(parts) >= 3 and parts[0] == catalog:
            return cls(catalog, ".".join(parts[1:]))
        if len(parts) >= 2 and parts[0] != catalog:
            return cls(catalog, full)
        raise ValueError(f"table {full!r}: give <namespace>.<table> or {catalog}.<namespace>.<table>")

    @property
    def full(self) -> str:
        return f"{self.catalog}.{self.name}"

    @property
    def sql(self) -> str:
        return quote_ident(self.full)

    def meta(self, table: str) -> str:
        """A metadata table (``files``, ``snapshots``, ...) of this table, for SQL."""
        return f"{self.sql}.`{table}`"


@dataclass(frozen=True)
class TableInfo:
    location: str
    format_version: int
    transforms: dict[str, tuple[str, str]]  # partition field -> (source column, transform)
    sort_order: tuple[str, ...]
    properties: dict[str, str]
    current_snapshot_id: int | None
    spec_count: int = 1  # partition specs the table has had: more than one, and old files may span partitions


class IcebergRuntime:
    """The Iceberg jar the session runs: its version and the action options it knows."""

    def __init__(self, spark):
        jvm = spark.sparkContext._jvm
        self._spark = spark
        self.version = str(jvm.org.apache.iceberg.IcebergBuild.version())
        self.options = self._probe_options(jvm)

    @staticmethod
    def _probe_options(jvm) -> set[str]:
        modifier = jvm.java.lang.reflect.Modifier
        names: set[str] = set()
        for cls in _OPTION_CLASSES:
            try:
                klass = jvm.org.apache.spark.util.Utils.classForName(cls, True, False)
            except Exception:  # noqa: BLE001 - the class is absent in this runtime
                continue
            for f in klass.getFields():
                if modifier.isStatic(f.getModifiers()) and f.getType().getName() == "java.lang.String":
                    try:
                        value = f.get(None)
                    except Exception:  # noqa: BLE001 - a public field of a package-private class
                        continue
                    if value:
                        names.add(str(value))
        return names

    def usable(self, options: tuple[tuple[str, str], ...], action: str) -> dict[str, str]:
        kept = {}
        for key, value in options:
            if key in self.options:
                kept[key] = value
            else:
                log.info("%s: option %s is not known to Iceberg %s; left out", action, key, self.version)
        return kept

    def table_info(self, ref: TableRef) -> TableInfo:
        jvm = self._spark.sparkContext._jvm
        table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(self._spark._jsparkSession, ref.full)
        schema = table.schema()
        transforms = {}
        for f in table.spec().fields():
            transforms[str(f.name())] = (str(schema.findColumnName(f.sourceId())), str(f.transform().toString()))
        order = []
        for f in table.sortOrder().fields():
            column = str(schema.findColumnName(f.sourceId()))
            order.append(
                column if str(f.transform().toString()) == "identity" else f"{f.transform().toString()}({column})"
            )
        current = table.currentSnapshot()
        props = {str(k): str(v) for k, v in dict(table.properties()).items()}
        return TableInfo(
            location=str(table.location()),
            format_version=int(table.operations().current().formatVersion()),
            transforms=transforms,
            sort_order=tuple(order),
            properties=props,
            current_snapshot_id=int(current.snapshotId()) if current is not None else None,
            spec_count=int(table.specs().size()),
        )


def configure_catalog(spark, catalog: str, storage: StorageSettings) -> dict[str, str]:
    """Give the session's catalog the storage policy's FileIO settings (before it first loads).

    Spark builds a catalog from ``spark.sql.catalog.<name>.*`` the first time it is used, so
    this must run before any query touches the catalog; a session whose catalog was already
    loaded keeps its old FileIO, and the job's tag check then fails.
    """
    wanted = {f"spark.sql.catalog.{catalog}.{k}": v for k, v in storage.catalog_properties().items()}
    prefix = f"spark.sql.catalog.{catalog}.s3."
    for row in spark.sql("SET").collect():
        if row.key.startswith((prefix + "write.tags.", prefix + "delete.tags.")) and row.key not in wanted:
            spark.conf.unset(row.key)
    for key, value in wanted.items():
        spark.conf.set(key, value)
    return wanted


def apply_table_properties(spark, ref: TableRef, storage: StorageSettings, current: dict[str, str]) -> dict[str, str]:
    """Set the storage properties that differ and drop tag properties the policy no longer has."""
    wanted = storage.table_properties()
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    stale = [k for k in current if k.startswith(("s3.write.tags.", "s3.delete.tags.")) and k not in wanted]
    if not storage.data_path and "write.data.path" in current:
        stale.append("write.data.path")
    if changed:
        pairs = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in sorted(changed.items()))
        spark.sql(f"ALTER TABLE {ref.sql} SET TBLPROPERTIES ({pairs})")
    if stale:
        spark.sql(f"ALTER TABLE {ref.sql} UNSET TBLPROPERTIES IF EXISTS ({', '.join(sql_string(k) for k in stale)})")
    return {**changed, **{k: None for k in stale}}


def measure(spark, ref: TableRef, info: TableInfo, small_file_bytes: int) -> TableState:
    """The table's state from its metadata tables, aggregated per partition in Spark."""
    files = spark.table(ref.full + ".files")
    group = "partition" if "partition" in files.columns else None
    small = int(small_file_bytes)
    agg = f"""
        SELECT {"partition AS p," if group else ""}
               count_if(content = 0) AS data_files,
               coalesce(sum(IF(content = 0, file_size_in_bytes, 0)), 0) AS data_bytes,
               count_if(content = 0 AND file_size_in_bytes < {small}) AS small_files,
               coalesce(sum(IF(content = 0 AND file_size_in_bytes < {small}, file_size_in_bytes, 0)), 0) AS small_bytes,
               coalesce(sum(IF(content = 0, record_count, 0)), 0) AS records,
               count_if(content = 1) AS position_delete_files,
               coalesce(sum(IF(content = 1, record_count, 0)), 0) AS position_deletes,
               count_if(content = 2) AS equality_delete_files
        FROM {ref.meta("files")} {"GROUP BY partition" if group else ""}
    """
    partitions = []
    for row in spark.sql(agg).collect():
        d = row.asDict()
        part = tuple(d.pop("p").asDict().items()) if group else ()
        partitions.append(PartitionStats(partition=part, **{k: int(v) for k, v in d.items()}))
    snapshots = tuple(
        SnapshotInfo(int(r.snapshot_id), _utc(r.committed_at), str(r.operation))
        for r in spark.sql(f"SELECT snapshot_id, committed_at, operation FROM {ref.meta('snapshots')}").collect()
    )
    m = spark.sql(f"SELECT count(*) AS n, coalesce(sum(length), 0) AS bytes FROM {ref.meta('manifests')}").first()
    return TableState(
        name=ref.full,
        partitions=tuple(sorted(partitions, key=lambda p: repr(p.partition))),
        snapshots=snapshots,
        manifests=int(m.n),
        manifest_bytes=int(m.bytes),
        format_version=info.format_version,
        sort_order=info.sort_order,
    )


def _utc(value: dt.datetime) -> dt.datetime:
    # The job runs with spark.sql.session.timeZone=UTC, so Spark's naive timestamps are UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _ts(value: dt.datetime) -> str:
    return f"TIMESTAMP '{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S.%f}'"


def action_filter(action: Action, info: TableInfo) -> str | None:
    """The row filter that confines ``action`` to its partitions; None for the whole table.

    None also when a partition's transform has no filter on its source column: the action
    then runs over the whole table, and Iceberg's own file selection skips healthy files.
    """
    if not action.partitions:
        return None
    terms = [partition_predicate(p, info.transforms) for p in action.partitions]
    return " OR ".join(f"({t})" for t in terms) if all(terms) else None


def run_action(spark, runtime: IcebergRuntime, ref: TableRef, info: TableInfo, action: Action) -> list[dict]:
    """Call the Iceberg procedure for ``action``; its result rows as dicts."""
    args = [f"table => {sql_string(ref.name)}"]
    where = action_filter(action, info)
    if action.partitions and where is None:
        log.info("%s: a partition transform of %s has no source-column filter; "
                 "running over the whole table and letting Iceberg's file selection skip healthy files",
                 action.kind, ref.full)  # fmt: skip
    if action.kind in ("rewrite_data_files", "rewrite_position_delete_files"):
        if action.kind == "rewrite_data_files":
            args.append(f"strategy => {sql_string(action.strategy or 'binpack')}")
            if action.strategy == "sort" and action.sort_order:
                args.append(f"sort_order => {sql_string(', '.join(action.sort_order))}")
        options = runtime.usable(action.options, action.kind)
        if options:
            args.append("options => map(" + ", ".join(f"{sql_string(k)}, {sql_string(v)}" for k, v in options.items()) + ")")  # fmt: skip
        if where:
            args.append(f"where => {sql_string(where)}")
    elif action.kind == "expire_snapshots":
        args += [f"older_than => {_ts(action.older_than)}", f"retain_last => {int(action.retain_last)}"]
    elif action.kind == "remove_orphan_files":
        return remove_orphan_files(spark, ref, action.older_than)
    elif action.kind != "rewrite_manifests":
        raise ValueError(f"unknown action {action.kind}")
    statement = f"CALL {quote_ident(ref.catalog)}.system.{action.kind}({', '.join(args)})"
    log.info("running %s", statement)
    return [r.asDict() for r in spark.sql(statement).collect()]


def remove_orphan_files(spark, ref: TableRef, older_than: dt.datetime) -> list[dict]:
    """Iceberg's DeleteOrphanFiles action, through the Java API.

    The procedure refuses any cut-off within 24 hours of the wall clock; the policy already
    enforces its own minimum age (``MIN_ORPHAN_AGE_DAYS``) against the planning clock, and
    the action takes the cut-off as given. With ``s3.delete-enabled=false`` the "deletes"
    are delete tags.
    """
    jvm = spark.sparkContext._jvm
    table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, ref.full)
    millis = int(older_than.timestamp() * 1000)
    log.info("running DeleteOrphanFiles on %s, older than %s", ref.full, older_than.isoformat())
    result = jvm.org.apache.iceberg.spark.actions.SparkActions.get(spark._jsparkSession).deleteOrphanFiles(table).olderThan(millis).execute()  # fmt: skip
    found, it = [], result.orphanFileLocations().iterator()
    while it.hasNext():
        found.append({"orphan_file_location": str(it.next())})
    return found


@dataclass(frozen=True)
class Checksum:
    rows: int
    hash_sum: str
    hash_xor: int

    def as_dict(self) -> dict:
        return asdict(self)


def content_checksums(spark, versions: list[tuple[TableRef, int | None]], where: str | None = None) -> list[Checksum]:
    """Row count and an order-independent hash of every row (sum and xor of xxhash64) of each
    (table, snapshot id or None for the current one), all in one Spark job; only the rows
    ``where`` selects when given (Iceberg then reads only the files that can hold them).

    One job rather than one per version: the scans of small files overlap, which is most of
    the cost when the version being checked is the fragmented one.
    """
    parts = []
    condition = f" WHERE {where}" if where else ""
    for i, (ref, snapshot_id) in enumerate(versions):
        version = f" VERSION AS OF {int(snapshot_id)}" if snapshot_id is not None else ""
        parts.append(
            f"SELECT {i} AS i, count(*) AS n, CAST(sum(CAST(xxhash64(*) AS DECIMAL(38, 0))) AS STRING) AS s, "
            f"bit_xor(xxhash64(*)) AS x FROM {ref.sql}{version}{condition}"
        )
    rows = {r.i: r for r in spark.sql(" UNION ALL ".join(parts)).collect()}
    return [Checksum(int(rows[i].n), str(rows[i].s or "0"), int(rows[i].x or 0)) for i in range(len(versions))]


def snapshot_lineage(spark, ref: TableRef) -> list[dict]:
    """Every snapshot still in the table's metadata: id, parent, operation, commit time, oldest first."""
    rows = spark.sql(
        f"SELECT snapshot_id, parent_id, operation, committed_at, manifest_list FROM {ref.meta('snapshots')} "
        "ORDER BY committed_at, snapshot_id"
    ).collect()
    return [r.asDict() for r in rows]


def reachable_files(spark, ref: TableRef):
    """A one-column (``path``) DataFrame of every file some snapshot references."""
    return spark.sql(
        f"SELECT file_path AS path FROM {ref.meta('all_files')} "
        f"UNION SELECT path FROM {ref.meta('all_manifests')} "
        f"UNION SELECT manifest_list AS path FROM {ref.meta('snapshots')}"
    )


def files_added_by(spark, ref: TableRef, snapshot_ids: list[int]):
    """A one-column (``path``) DataFrame of the data, delete and manifest files those snapshots wrote."""
    ids = ", ".join(str(int(i)) for i in snapshot_ids) or "NULL"
    return spark.sql(
        f"SELECT data_file.file_path AS path FROM {ref.meta('all_entries')} WHERE status = 1 AND snapshot_id IN ({ids}) "
        f"UNION SELECT path FROM {ref.meta('all_manifests')} WHERE added_snapshot_id IN ({ids}) "
        f"UNION SELECT manifest_list AS path FROM {ref.meta('snapshots')} WHERE snapshot_id IN ({ids})"
    )
