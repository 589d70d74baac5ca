"""Measured, partition-aware Iceberg maintenance with S3 tag-based storage tiering."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from operators.spark.script_operator import SparkScriptOperator, platform_param

DOC = """
### Iceberg maintenance (tagging, compaction, tiering)

For each table (from the `iceberg_maintenance` Variable, the `tables` param, or every
Iceberg table of the Variable's `glue_database`), one mapped Spark task runs
`spark_jobs/iceberg_maintenance.py`:

1. **Storage settings** on the table, idempotently: `s3.write.tags.*`, `s3.delete.tags.*`,
   `s3.delete-enabled=false` (removed files are tagged, never hard-deleted), optional
   object-store layout. The job's catalog gets the same FileIO settings.
2. **Measure** the table from its `files`, `snapshots` and `manifests` metadata tables.
3. **Plan** (a pure function, logged as a decision record): compaction only of partitions
   whose small-file share is over the threshold (binpack, or sort when a sort key or the
   table's sort order exists; partial progress on), position-delete and manifest rewrites
   when they pile up, `expire_snapshots` (older than N days, keep the last K),
   `remove_orphan_files` (never younger than the safe age, 3 days by default).
4. **Verify**: content unchanged by compaction (row count and a hash of every row),
   every written file carries the write tags, every removed file still exists and carries
   the delete tags. A failed check fails the task.

Before the tables, `ensure_lifecycle_rule` puts a rule on the lake bucket that moves objects
with the delete tags to Glacier Instant Retrieval after N days and expires them after M,
keeping the bucket's other rules. `report` prints before/after per table.

**Params**: `tables`, `dry_run` (measure and plan only), policy overrides (target file
size, small-file ratio, minimum files, sort key, snapshot age and count, orphan age, or
any policy field as JSON), and `archive_snapshot_id` + `archive_table` to register the
metadata of an (expired) snapshot as a read-only archive table.
"""

with DAG(
    dag_id="iceberg_maintenance",
    description="Partition-aware Iceberg compaction, snapshot/orphan cleanup and S3 tag tiering, verified",
    doc_md=DOC,
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spark", "iceberg", "maintenance"],
    default_args={"owner": "data-platform", "retries": 1},
    max_active_runs=1,
    params={
        "tables": Param(
            [],
            type="array",
            items={"type": "string", "pattern": r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+){1,3}$"},
            title="Tables",
            description="namespace.table (or catalog.namespace.table); empty: the Variable's list or Glue database.",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run", description="Measure and plan only; change nothing."),
        "target_file_size_mb": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=4096,
            title="Target file size (MB)",
            description="Compaction's output file size; empty: the Variable's (default 512).",
        ),
        "small_file_ratio": Param(
            None,
            type=["null", "number"],
            minimum=0,
            exclusiveMaximum=1,
            title="Small-file ratio",
            description="Compact a partition when more than this share of its files is small (default 0.3).",
        ),
        "min_input_files": Param(
            None,
            type=["null", "integer"],
            minimum=2,
            title="Minimum small files",
            description="...and it has at least this many small files (default 5).",
        ),
        "sort_key": Param(
            None,
            type=["null", "string"],
            pattern=r"^[A-Za-z_][A-Za-z0-9_]*(,[A-Za-z_][A-Za-z0-9_]*)*$",
            title="Sort key",
            description="Comma-separated columns: compact with sort instead of binpack.",
        ),
        "snapshot_max_age_days": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Expire snapshots older than (days)",
            description="Default 5.",
        ),
        "retain_last": Param(
            None, type=["null", "integer"], minimum=1, title="Snapshots always kept", description="Default 5."
        ),
        "orphan_age_days": Param(
            None,
            type=["null", "number"],
            minimum=1,
            title="Orphan files older than (days)",
            description="Never under 1; default 3.",
        ),
        "policy_overrides": Param(
            {},
            type="object",
            title="More policy overrides",
            description="Any MaintenancePolicy field as JSON, e.g. {'rewrite_manifests': false}.",
        ),
        "archive_snapshot_id": Param(
            None,
            type=["null", "integer"],
            title="Archive: snapshot id",
            description="Register this snapshot's metadata file as a read-only table (with Archive table).",
        ),
        "archive_table": Param(
            None,
            type=["null", "string"],
            pattern=r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$",
            title="Archive: table name",
            description="namespace.table for the archive; the first table is archived from.",
        ),
        "platform": platform_param(),
    },  # fmt: skip
) as dag:

    @task
    def settings(params: dict | None = None, dag_run=None) -> dict:
        from airflow.sdk import Variable

        from operators.iceberg.settings import VARIABLE, iceberg_tables_of, resolve_settings

        cfg = resolve_settings(
            params or {},
            Variable.get(VARIABLE, default=None, deserialize_json=True),
            Variable.get("pipelines_data_uri", default=None),
        )
        if not cfg["tables"] and cfg["glue_database"]:
            from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

            cfg["tables"] = iceberg_tables_of(
                GlueCatalogHook(aws_conn_id=cfg["aws_conn_id"]).get_conn(), cfg["glue_database"]
            )
            print(f"{len(cfg['tables'])} Iceberg table(s) in Glue database {cfg['glue_database']}")
        if not cfg["tables"]:
            raise ValueError(
                "no tables: set `tables` in the iceberg_maintenance Variable or the trigger form, or `glue_database`"
            )
        cfg["run_key"] = dag_run.run_id.replace(":", "").replace("+", "")
        print(f"tables: {cfg['tables']}; dry run: {cfg['dry_run']}")
        print(f"policy: {cfg['policy']}")
        print(f"storage: {cfg['storage']}")
        return cfg

    @task
    def ensure_lifecycle_rule(cfg: dict) -> str:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from operators.s3_lifecycle import ensure_rule, tiering_rule

        life = cfg["lifecycle"]
        if not life.get("bucket"):
            print("no lifecycle bucket configured: skipping the tiering rule")
            return "skipped"
        rule = tiering_rule(cfg["storage"]["delete_tags"], int(life["transition_days"]), int(life["expire_days"]),
                            prefix=life.get("prefix", ""), storage_class=life.get("storage_class", "GLACIER_IR"))  # fmt: skip
        if cfg["dry_run"]:
            print(f"dry run: would ensure {rule}")
            return "dry-run"
        change = ensure_rule(S3Hook(aws_conn_id=cfg["aws_conn_id"]).get_conn(), life["bucket"], rule)
        print(f"lifecycle rule {rule['ID']} on s3://{life['bucket']}/{life.get('prefix', '')}: objects tagged "
              f"{cfg['storage']['delete_tags']} -> {rule['Transitions'][0]['StorageClass']} after {life['transition_days']} "
              f"day(s), expired after {life['expire_days']} ({change})")  # fmt: skip
        return change

    @task
    def table_arguments(cfg: dict) -> list[list[str]]:
        from operators.iceberg.settings import job_arguments

        return [job_arguments(cfg, table, cfg["run_key"]) for table in cfg["tables"]]

    @task(trigger_rule="all_done", retries=0)
    def report(cfg: dict) -> dict:
        import json

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from operators.iceberg.settings import format_reports, report_location

        hook, reports, missing = S3Hook(aws_conn_id=cfg["aws_conn_id"]), [], []
        for table in cfg["tables"]:
            bucket, key = hook.parse_s3_url(report_location(cfg["report_uri"], cfg["run_key"], table))
            if hook.check_for_key(key, bucket):
                reports.append(json.loads(hook.read_key(key, bucket)))
            else:
                missing.append(table)
        print(format_reports(reports))
        failed = [t["table"] for r in reports for t in r["tables"] if t.get("problems")]
        if missing or failed:
            raise RuntimeError(f"maintenance incomplete: no report for {missing}; verification failed for {failed}")
        return {"tables": len(reports), "dry_run": cfg["dry_run"]}

    cfg = settings()
    maintain = SparkScriptOperator.partial(
        task_id="maintain", script="iceberg_maintenance.py", number_of_workers=2
    ).expand(script_args=table_arguments(cfg))
    ensure_lifecycle_rule(cfg) >> maintain >> report(cfg)
