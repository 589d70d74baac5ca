"""Measured, partition-aware Iceberg maintenance with S3 tag-based storage tiering.

    spark-submit iceberg_maintenance.py --table lake.sales.orders \\
        --policy '{"target_file_size_bytes": 134217728, "retain_last": 5}' \\
        --storage '{"write_tags": {"lifecycle": "live"}, "delete_tags": {"deleted": "true"}}'

For each table: apply the storage settings (table properties, and the catalog's FileIO, which
is where Iceberg's S3FileIO actually reads them), measure the table from its metadata tables,
plan (:func:`spark_jobs.iceberg.plan.plan_table_maintenance`), run the planned Iceberg
procedures, and verify:

- every compaction commit left the content unchanged (row count and an order-independent
  hash of all rows, compared between the commit and its parent, so concurrent writers'
  commits in between do not confuse the check);
- every file the run wrote carries the write tags;
- every file expire/orphan cleanup removed still exists in S3 and carries the delete tags.

A check that fails makes the job fail (exit 1) after printing the report. ``--dry-run``
measures and plans only. ``--archive-snapshot ID --archive-table NAME`` registers the
metadata file that was current at that snapshot as a separate, read-only archive table.
The last stdout line is a JSON summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, "") and "spark_jobs" not in sys.modules:  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_jobs.common.cli import parse_job_args  # noqa: E402
from spark_jobs.iceberg.plan import MaintenancePlan, TableState, plan_table_maintenance  # noqa: E402
from spark_jobs.iceberg.policy import (  # noqa: E402
    MaintenancePolicy,
    PolicyError,
    StorageSettings,
    as_dict,
    policy_from,
    storage_from,
)
from spark_jobs.iceberg.table import (  # noqa: E402
    IcebergRuntime,
    TableRef,
    action_filter,
    apply_table_properties,
    configure_catalog,
    content_checksums,
    files_added_by,
    measure,
    reachable_files,
    run_action,
    snapshot_lineage,
    sql_string,
)
from spark_jobs.iceberg.tags import TagCheck, check_tags, s3_client  # noqa: E402

log = logging.getLogger("iceberg_maintenance")
REWRITES = ("rewrite_data_files", "rewrite_position_delete_files", "rewrite_manifests")
CLEANUPS = ("expire_snapshots", "remove_orphan_files")


class MaintenanceFailed(RuntimeError):
    """A verification failed; the message lists what, and the report is still printed."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iceberg_maintenance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", action="append", required=True,
                        help="[catalog.]namespace.table; repeat or comma-separate for several")  # fmt: skip
    parser.add_argument("--catalog", default="lake", help="the Spark catalog name of the Iceberg catalog")
    parser.add_argument("--policy", default="{}", help="JSON object overriding MaintenancePolicy defaults")
    parser.add_argument("--storage", default="{}", help="JSON object overriding StorageSettings defaults")
    parser.add_argument("--dry-run", action="store_true", help="measure and plan; change nothing")
    parser.add_argument("--verify-sample", type=int, default=1000,
                        help="at most this many written and removed files have their tags read (0: all)")  # fmt: skip
    parser.add_argument("--archive-snapshot", type=int, default=None, help="snapshot id to register as an archive")
    parser.add_argument("--archive-table", default=None, help="name for the archive table (namespace.table)")
    parser.add_argument("--report-uri", default=None, help="s3:// or local path for the JSON report (also on stdout)")
    parser.add_argument("--now", default=None, help=argparse.SUPPRESS)  # the planning clock, for tests
    return parser


def _json_arg(text: str, name: str) -> dict:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise PolicyError(f"--{name}: not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise PolicyError(f"--{name}: expected a JSON object, got {type(value).__name__}")
    return value


def settings_from(args: argparse.Namespace) -> tuple[MaintenancePolicy, StorageSettings, list[str], dt.datetime]:
    """Everything checked before Spark starts: a bad setting is exit 2, not a half-run."""
    policy = policy_from(_json_arg(args.policy, "policy"))
    storage = storage_from(_json_arg(args.storage, "storage"))
    tables = [t.strip() for arg in args.table for t in arg.split(",") if t.strip()]
    if not tables:
        raise PolicyError("--table: no table given")
    if (args.archive_snapshot is None) != (args.archive_table is None):
        raise PolicyError("--archive-snapshot and --archive-table go together")
    if args.archive_table and len(tables) != 1:
        raise PolicyError("--archive-table: give exactly one --table to archive from")
    now = dt.datetime.fromisoformat(args.now) if args.now else dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return policy, storage, tables, now


def health(state: TableState) -> dict:
    files = state.data_files
    return {
        "data_files": files,
        "data_bytes": state.data_bytes,
        "avg_file_bytes": round(state.data_bytes / files) if files else 0,
        "small_files": state.small_files,
        "snapshots": len(state.snapshots),
        "manifests": state.manifests,
        "delete_files": state.delete_files,
        "partitions": len(state.partitions),
    }


def _paths(frame, limit: int) -> tuple[list[str], int]:
    """Up to ``limit`` paths (all when 0) from a one-column DataFrame, and how many there are."""
    total = frame.count()
    rows = frame.collect() if limit <= 0 or total <= limit else frame.orderBy("path").limit(limit).collect()
    return [r.path for r in rows], total


def _compaction_chains(new_snapshots: list[dict]) -> list[tuple[int, int]]:
    """(parent of first, last) of each run of consecutive replace commits among the new snapshots."""
    chains: list[list[dict]] = []
    for snap in new_snapshots:
        if snap["operation"] != "replace":
            continue
        if chains and chains[-1][-1]["snapshot_id"] == snap["parent_id"]:
            chains[-1].append(snap)
        else:
            chains.append([snap])
    return [(c[0]["parent_id"], c[-1]["snapshot_id"]) for c in chains if c[0]["parent_id"] is not None]


class TableMaintenance:
    """One table's run: measure, plan, act, verify. Holds what the report needs."""

    def __init__(self, spark, runtime: IcebergRuntime, ref: TableRef, policy: MaintenancePolicy,
                 storage: StorageSettings, now: dt.datetime, sample: int):  # fmt: skip
        self.spark, self.runtime, self.ref = spark, runtime, ref
        self.policy, self.storage, self.now, self.sample = policy, storage, now, sample
        self.report: dict = {"table": ref.full}
        self.problems: list[str] = []
        # Row filters of the compactions run; None among them: one ran over the whole table.
        self.compacted: list[str | None] = []

    def run(self, dry_run: bool) -> dict:
        started = time.monotonic()
        info = self.runtime.table_info(self.ref)
        if dry_run:
            wanted = self.storage.table_properties()
            self.report["properties_to_change"] = {k: v for k, v in wanted.items() if info.properties.get(k) != v}
        else:
            self.report["properties_changed"] = apply_table_properties(
                self.spark, self.ref, self.storage, info.properties
            )
            if self.report["properties_changed"]:
                log.info("%s: storage properties set: %s", self.ref.full, self.report["properties_changed"])
        before = measure(self.spark, self.ref, info, self.policy.small_file_bytes)
        plan = plan_table_maintenance(before, self.policy, self.now)
        for line in plan.lines():
            log.info("%s", line)
        self.report.update(before=health(before), plan=_plan_summary(plan), dry_run=dry_run)
        if dry_run:
            return self._finish(started)
        known = {s["snapshot_id"] for s in snapshot_lineage(self.spark, self.ref)}
        results = self._rewrite(plan, info)
        new = [s for s in snapshot_lineage(self.spark, self.ref) if s["snapshot_id"] not in known]
        ours = [s["snapshot_id"] for s in new if s["operation"] == "replace"]
        self._verify_content(new)
        self._verify_written(ours)
        results.update(self._cleanup(plan, info))
        # Maintenance changes neither the partition spec nor the sort order: the table's info still holds.
        after = measure(self.spark, self.ref, info, self.policy.small_file_bytes)
        self.report.update(after=health(after), results=results, bytes_rewritten=_bytes_rewritten(results),
                           commits=len(ours))  # fmt: skip
        return self._finish(started)

    def _finish(self, started: float) -> dict:
        self.report["seconds"] = round(time.monotonic() - started, 3)
        self.report["problems"] = list(self.problems)
        return self.report

    def _rewrite(self, plan: MaintenancePlan, info) -> dict:
        results: dict = {}
        for action in (a for a in plan.actions if a.kind in REWRITES):
            self._note_compaction(action, info)
            rows = run_action(self.spark, self.runtime, self.ref, info, action)
            results[action.kind] = rows[0] if rows else {}
            log.info("%s: %s", action.kind, results[action.kind])
            if action.kind == "rewrite_data_files" and results[action.kind].get("failed_data_files_count", 0):
                results["rewrite_data_files_retry"] = self._retry_compaction(info, results[action.kind])
        return results

    def _retry_compaction(self, info, first: dict) -> dict:
        """Groups that lost a commit race (a concurrent delete, say) are planned again, once."""
        log.warning("%s: %d data file(s) could not be committed (a concurrent write changed them); "
                    "re-measuring and compacting what is still unhealthy", self.ref.full, first["failed_data_files_count"])  # fmt: skip
        state = measure(self.spark, self.ref, info, self.policy.small_file_bytes)
        action = plan_table_maintenance(state, self.policy, self.now).action("rewrite_data_files")
        if action is None:
            return {"skipped": "nothing left to compact"}
        self._note_compaction(action, info)
        rows = run_action(self.spark, self.runtime, self.ref, info, action)
        return rows[0] if rows else {}

    def _note_compaction(self, action, info) -> None:
        if action.kind == "rewrite_data_files":
            # With one partition spec, the filter selects exactly the rows of the files the
            # compaction may rewrite; older specs' files may hold rows outside it.
            self.compacted.append(action_filter(action, info) if info.spec_count == 1 else None)

    def _verify_content(self, new_snapshots: list[dict]) -> None:
        """Same rows before and after each chain of compaction commits.

        Only the compacted partitions are read when every compaction named its partitions:
        the others' files are not touched by a rewrite confined to those, and on a large
        table they are most of the bytes.
        """
        checks = []
        where = None if None in self.compacted else " OR ".join(f"({w})" for w in self.compacted) or None
        for parent, last in _compaction_chains(new_snapshots):
            a, b = content_checksums(self.spark, [(self.ref, parent), (self.ref, last)], where)
            checks.append({"parent": parent, "compacted": last, "rows": b.rows, "equal": a == b,
                           "scope": where or "whole table"})  # fmt: skip
            if a != b:
                self.problems.append(f"compaction changed the content: snapshot {parent} has {a.as_dict()}, "
                                     f"compacted snapshot {last} has {b.as_dict()}")  # fmt: skip
            else:
                log.info("content unchanged by compaction %s -> %s: %d rows, hash %s (%s)", parent, last, b.rows, b.hash_sum,
                         where or "whole table")  # fmt: skip
        self.report["content_checks"] = checks

    def _verify_written(self, snapshot_ids: list[int]) -> None:
        paths, total = _paths(files_added_by(self.spark, self.ref, snapshot_ids), self.sample)
        check = check_tags(self._s3(), "written", paths, self.storage.write_tags, total)
        self._tag_result("write_tags", check)

    def _cleanup(self, plan: MaintenancePlan, info) -> dict:
        results: dict = {}
        actions = [a for a in plan.actions if a.kind in CLEANUPS]
        if not actions:
            return results
        reachable = reachable_files(self.spark, self.ref).localCheckpoint(eager=True)
        orphans: list[str] = []
        for action in actions:
            rows = run_action(self.spark, self.runtime, self.ref, info, action)
            if action.kind == "remove_orphan_files":
                orphans = [r["orphan_file_location"] for r in rows]
                results[action.kind] = {"orphan_files": len(orphans)}
            else:
                results[action.kind] = rows[0] if rows else {}
            log.info("%s: %s", action.kind, results[action.kind])
        removed_frame = reachable.subtract(reachable_files(self.spark, self.ref))
        removed, total = _paths(removed_frame, self.sample)
        keep = self.sample - len(removed) if self.sample > 0 else len(orphans)
        removed += orphans[: max(keep, 0)]
        total += len(orphans)
        if self.storage.delete_enabled:
            log.info(
                "%d file(s) removed and deleted by Iceberg (s3.delete-enabled=true): no delete tags to check", total
            )
            self.report["delete_tags"] = {"files": total, "checked": 0, "note": "delete-enabled: hard deletes"}
        else:
            self._tag_result("delete_tags", check_tags(self._s3(), "removed", removed, self.storage.delete_tags, total))
        return results

    def _tag_result(self, key: str, check: TagCheck) -> None:
        self.report[key] = check.summary()
        self.problems.extend(check.problems())

    def _s3(self):
        return catalog_s3_client(self.spark, self.ref.catalog)


def catalog_s3_client(spark, catalog: str):
    """A boto3 S3 client for the endpoint and region the catalog's S3FileIO uses."""
    conf = spark.conf
    endpoint = conf.get(f"spark.sql.catalog.{catalog}.s3.endpoint", None) or conf.get(
        "spark.hadoop.fs.s3a.endpoint", None
    )
    return s3_client(endpoint, conf.get(f"spark.sql.catalog.{catalog}.client.region", None))


def _plan_summary(plan: MaintenancePlan) -> dict:
    return {
        "actions": [
            {"kind": a.kind, "partitions": len(a.partitions) or "all", "reason": a.reason} for a in plan.actions
        ],
        "skipped": [{"kind": k, "reason": r} for k, r in plan.skipped],
    }


def _bytes_rewritten(results: dict) -> int:
    return sum(int(results.get(k, {}).get("rewritten_bytes_count", 0) or 0)
               for k in ("rewrite_data_files", "rewrite_data_files_retry", "rewrite_position_delete_files"))  # fmt: skip


def register_archive(spark, catalog: str, source: TableRef, snapshot_id: int, archive: str) -> dict:
    """Register the metadata file that was current at ``snapshot_id`` as a read-only archive table.

    ``metadata_log_entries`` lists the table's previous metadata files, but it names their
    snapshot from the current snapshot history, where an expired snapshot no longer is; so
    the files themselves are read, newest first, until one has ``snapshot_id`` as its
    current snapshot. The archive shares data files with the source table: with
    ``s3.delete-enabled=false`` expiry only tags them, and the bucket's tiering rule keeps
    them (in Glacier Instant Retrieval, still readable) until its expiry days pass.
    "Read-only" is a table property for people and tools; Iceberg does not enforce it, so
    grant writers no access to the archive namespace.
    """
    entries = spark.sql(f"SELECT file FROM {source.meta('metadata_log_entries')} ORDER BY timestamp DESC").collect()
    s3 = catalog_s3_client(spark, catalog)
    metadata_file = next((e.file for e in entries if _current_snapshot(s3, e.file) == int(snapshot_id)), None)
    if metadata_file is None:
        raise PolicyError(f"--archive-snapshot: {snapshot_id} is not the current snapshot of any metadata file "
                          f"in the metadata log of {source.full} ({len(entries)} files read)")  # fmt: skip
    target = TableRef.parse(archive, catalog)
    result = spark.sql(
        f"CALL `{catalog}`.system.register_table(table => {sql_string(target.name)}, metadata_file => {sql_string(metadata_file)})"
    ).first()
    spark.sql(f"ALTER TABLE {target.sql} SET TBLPROPERTIES ('read-only' = 'true', "
              f"'archive.source-table' = {sql_string(source.full)}, 'archive.snapshot-id' = '{int(snapshot_id)}')")  # fmt: skip
    rows_now = spark.table(target.full).count()
    log.info(
        "archived snapshot %d of %s as %s (%s): %d rows", snapshot_id, source.full, target.full, metadata_file, rows_now
    )
    return {"table": target.full, "metadata_file": metadata_file, "snapshot_id": snapshot_id, "rows": rows_now,
            "registered": result.asDict() if result else {}}  # fmt: skip


def _current_snapshot(s3, uri: str) -> int | None:
    import gzip

    from spark_jobs.iceberg.tags import split_uri

    bucket, key = split_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if body[:2] == b"\x1f\x8b":  # write.metadata.compression-codec=gzip
        body = gzip.decompress(body)
    current = json.loads(body).get("current-snapshot-id")
    return None if current in (None, -1) else int(current)


def write_report(spark, catalog: str, uri: str, summary: dict) -> None:
    """The summary where the DAG's report task reads it (Glue and EMR keep stdout in their logs)."""
    body = json.dumps(summary, default=str, indent=1).encode()
    if uri.startswith(("s3://", "s3a://")):
        from spark_jobs.iceberg.tags import split_uri

        bucket, key = split_uri(uri)
        catalog_s3_client(spark, catalog).put_object(Bucket=bucket, Key=key, Body=body)
    else:
        path = Path(uri.removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    log.info("report written to %s", uri)


def run(args: argparse.Namespace, spark=None) -> dict:
    policy, storage, tables, now = settings_from(args)
    if spark is None:
        from spark_jobs.common.session import get_spark

        spark = get_spark("iceberg_maintenance")
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # snapshot times and procedure timestamps in UTC
    configure_catalog(spark, args.catalog, storage)
    runtime = IcebergRuntime(spark)
    log.info(
        "Iceberg %s; catalog %s; policy %s; storage %s",
        runtime.version,
        args.catalog,
        as_dict(policy),
        as_dict(storage),
    )
    summary: dict = {"iceberg": runtime.version, "dry_run": args.dry_run, "now": now.isoformat(), "tables": []}
    refs = [TableRef.parse(t, args.catalog) for t in tables]
    if args.archive_table:
        summary["archive"] = register_archive(spark, args.catalog, refs[0], args.archive_snapshot, args.archive_table)
    for ref in refs:
        summary["tables"].append(TableMaintenance(spark, runtime, ref, policy, storage, now, args.verify_sample).run(args.dry_run))  # fmt: skip
    problems = [f"{t['table']}: {p}" for t in summary["tables"] for p in t["problems"]]
    summary["ok"] = not problems
    if problems:
        summary["error"] = "; ".join(problems)
    if args.report_uri:
        write_report(spark, args.catalog, args.report_uri, summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_job_args(build_parser(), argv)
    try:
        summary = run(args)
    except (PolicyError, ValueError) as exc:
        log.error("%s", exc)
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2
    print(json.dumps(summary, default=str))
    if not summary["ok"]:
        log.error("maintenance verification failed: %s", summary["error"])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
