"""Settings of the ``iceberg_maintenance`` DAG: code defaults, the Variable, the trigger form.

The Variable ``iceberg_maintenance`` (JSON) holds the environment's choices::

    {"tables": ["sales.orders"], "glue_database": null, "catalog": "lake",
     "policy": {...MaintenancePolicy fields...}, "storage": {...StorageSettings fields...},
     "lifecycle": {"bucket": "lake-bucket", "prefix": "", "transition_days": 30, "expire_days": 180},
     "report_uri": "s3://bucket/iceberg-maintenance"}

The trigger form overrides the tables, the dry-run switch and individual policy fields.
Policy and storage are validated here, at run time, with the same code the Spark job uses,
so a bad value fails the first task with the setting's name instead of a Spark run later.
"""

from __future__ import annotations

import json
from typing import Any

from spark_jobs.iceberg.policy import as_dict, policy_from, storage_from

VARIABLE = "iceberg_maintenance"
DEFAULT_LIFECYCLE = {"prefix": "", "transition_days": 30, "expire_days": 180, "storage_class": "GLACIER_IR"}
# Trigger-form params that map onto one policy field each (None in the form: keep the Variable's).
POLICY_PARAMS = ("target_file_size_mb", "small_file_ratio", "min_input_files", "sort_key",
                 "snapshot_max_age_days", "retain_last", "orphan_age_days")  # fmt: skip


def resolve_settings(params: dict[str, Any], variable: dict | None, data_uri: str | None) -> dict[str, Any]:
    """One plain dict with everything the tasks need, checked."""
    var = dict(variable or {})
    policy = dict(var.get("policy") or {})
    for name in POLICY_PARAMS:
        value = params.get(name)
        if value is None or value == "":
            continue
        if name == "target_file_size_mb":
            policy["target_file_size_bytes"] = int(value) * 1024 * 1024
        else:
            policy[name] = value
    overrides = params.get("policy_overrides") or {}
    if isinstance(overrides, str):
        overrides = json.loads(overrides) if overrides.strip() else {}
    policy.update(overrides)
    storage = var.get("storage") or {}
    checked_policy, checked_storage = policy_from(policy), storage_from(storage)
    tables = [t for t in (params.get("tables") or []) if t] or list(var.get("tables") or [])
    lifecycle = {**DEFAULT_LIFECYCLE, **(var.get("lifecycle") or {})}
    report_uri = var.get("report_uri") or (f"{data_uri.rstrip('/')}/iceberg-maintenance" if data_uri else None)
    archive_snapshot = params.get("archive_snapshot_id")
    archive_table = params.get("archive_table") or None
    if (archive_snapshot is None) != (archive_table is None):
        raise ValueError("archive_snapshot_id and archive_table go together: give both or neither")
    return {
        "tables": tables,
        "glue_database": var.get("glue_database"),
        "catalog": var.get("catalog", "lake"),
        "policy": as_dict(checked_policy),
        "storage": as_dict(checked_storage),
        "lifecycle": lifecycle,
        "report_uri": report_uri,
        "dry_run": bool(params.get("dry_run", False)),
        "archive_snapshot_id": archive_snapshot,
        "archive_table": archive_table,
        "aws_conn_id": var.get("aws_conn_id", "aws_default"),
    }


def iceberg_tables_of(glue_client, database: str) -> list[str]:
    """Every Iceberg table of a Glue database, as ``database.table`` (paginated GetTables)."""
    names = []
    for page in glue_client.get_paginator("get_tables").paginate(DatabaseName=database):
        for table in page.get("TableList", []):
            if str(table.get("Parameters", {}).get("table_type", "")).upper() == "ICEBERG":
                names.append(f"{database}.{table['Name']}")
    return sorted(names)


def job_arguments(cfg: dict[str, Any], table: str, run_key: str) -> list[str]:
    """The maintenance job's argv for one table (one mapped task each)."""
    args = ["--table", table, "--catalog", cfg["catalog"],
            "--policy", json.dumps(cfg["policy"], sort_keys=True), "--storage", json.dumps(cfg["storage"], sort_keys=True)]  # fmt: skip
    if cfg["dry_run"]:
        args.append("--dry-run")
    if cfg["report_uri"]:
        args += ["--report-uri", report_location(cfg["report_uri"], run_key, table)]
    if cfg["archive_table"] and table == cfg["tables"][0]:
        args += ["--archive-snapshot", str(int(cfg["archive_snapshot_id"])), "--archive-table", cfg["archive_table"]]
    return args


def report_location(report_uri: str, run_key: str, table: str) -> str:
    return f"{report_uri.rstrip('/')}/{run_key}/{table.replace('/', '_')}.json"


def format_reports(reports: list[dict]) -> str:
    """Before/after per table, as a fixed-width table for the task log."""
    head = f"{'table':<34} {'files':>13} {'avg size':>19} {'small':>11} {'snapshots':>9} {'manifests':>9} {'deletes':>9} {'rewritten':>11} {'tags w/d':>9}"  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in reports:
        for t in r.get("tables", []):
            b, a = t.get("before", {}), t.get("after") or t.get("before", {})
            w = t.get("write_tags", {}).get("coverage", "-")
            d = t.get("delete_tags", {}).get("coverage", "-")
            lines.append(
                f"{t['table'][:34]:<34} {b.get('data_files', 0):>6}->{a.get('data_files', 0):<6} "
                f"{_mb(b.get('avg_file_bytes', 0)):>9}->{_mb(a.get('avg_file_bytes', 0)):<9} "
                f"{b.get('small_files', 0):>5}->{a.get('small_files', 0):<5} "
                f"{b.get('snapshots', 0):>4}->{a.get('snapshots', 0):<4} {b.get('manifests', 0):>4}->{a.get('manifests', 0):<4} "
                f"{b.get('delete_files', 0):>4}->{a.get('delete_files', 0):<4} {_mb(t.get('bytes_rewritten', 0)):>11} {w!s:>4}/{d!s:<4}"
            )
            for action in t.get("plan", {}).get("actions", []):
                lines.append(f"    {'(dry run) ' if t.get('dry_run') else ''}{action['kind']}: {action['reason']}")
    return "\n".join(lines)


def _mb(n: int | float) -> str:
    return f"{(n or 0) / 1024 / 1024:.2f}MB"
