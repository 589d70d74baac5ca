"""Blanket Iceberg maintenance against ours, on the same fragmented table, on the local stack.

    .venv/bin/python bench/iceberg_maintenance.py [--quick] [--out FILE]

Starts a private local stack (moto S3 with real tag calls, the JDBC catalog on PostgreSQL;
stopped at the end) and builds two identical tables: some partitions written as many tiny
files, the others (most of the bytes) as one file near the target size each. Then, one
table each:

* blanket: ``rewrite_data_files`` with ``rewrite-all`` over the whole table, then
  ``expire_snapshots`` (what a calendar-driven job does);
* ours: ``spark_jobs/iceberg_maintenance.py`` (measure, plan, partition-aware compaction,
  expire, orphan scan, and its own verification, all inside the timed run).

For each: files before/after, bytes rewritten, maintenance time, a full aggregate query's
time before and after, small files and unhealthy partitions after (by the policy's own
rule), and, read back from S3 for both the same way: write-tag coverage of the files the
run added, delete-tag coverage of the files it removed, and removed files that no longer
exist (hard deletes). ``rows_equal``/``checksum_equal`` compare each table's content before
and after and the two tables with each other. Figures go to bench/results/iceberg_maintenance.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import write_results  # noqa: E402
from local.seeds.iceberg_tables import FragmentedTable, attach_lake, build_fragmented_table, unattached_lake_session  # noqa: E402
from local.services.stack import running_stack  # noqa: E402
from spark_jobs.iceberg.plan import compaction_reason  # noqa: E402
from spark_jobs.iceberg.policy import policy_from, storage_from  # noqa: E402

STORAGE = storage_from({"write_tags": {"lifecycle": "live"}, "delete_tags": {"deleted": "true"}})
SCAN = "SELECT p, count(*) AS n, sum(amount) AS total, max(length(note)) AS longest FROM {table} GROUP BY p ORDER BY p"


def shape_for(quick: bool) -> FragmentedTable:
    if quick:
        return FragmentedTable(small_partitions=3, files_per_small_partition=40, rows_per_small_partition=2_000,
                               healthy_partitions=3, rows_per_healthy_partition=40_000)  # fmt: skip
    return FragmentedTable(small_partitions=8, files_per_small_partition=100, rows_per_small_partition=20_000,
                           healthy_partitions=8, rows_per_healthy_partition=300_000)  # fmt: skip


def timed_scan(spark, table: str, repeat: int) -> tuple[float, list]:
    """Median of ``repeat`` runs of the aggregate query (the checksum pass in compare() warms the JVM first)."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = [tuple(r) for r in spark.sql(SCAN.format(table=table)).collect()]
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def health(spark, ref, policy) -> dict:
    from spark_jobs.iceberg.table import IcebergRuntime, measure

    state = measure(spark, ref, IcebergRuntime(spark).table_info(ref), policy.small_file_bytes)
    return {"files": state.data_files, "bytes": state.data_bytes, "small_files": state.small_files,
            "unhealthy_partitions": sum(1 for p in state.partitions if compaction_reason(p, policy))}  # fmt: skip


def tag_figures(spark, ref, added_by: list[int], reachable_before) -> dict:
    """Coverage of write tags on added files and delete tags on removed files, read from S3."""
    from spark_jobs.iceberg.table import files_added_by, reachable_files
    from spark_jobs.iceberg.tags import check_tags
    from spark_jobs.iceberg_maintenance import catalog_s3_client

    s3 = catalog_s3_client(spark, ref.catalog)
    added = [r.path for r in files_added_by(spark, ref, added_by).collect()]
    removed = [r.path for r in reachable_before.subtract(reachable_files(spark, ref)).collect()]
    written = check_tags(s3, "written", added, STORAGE.write_tags)
    deleted = check_tags(s3, "removed", removed, STORAGE.delete_tags)
    return {"write_tag_coverage": round(written.coverage, 4), "delete_tag_coverage": round(deleted.coverage, 4),
            "files_written": written.checked, "files_removed": deleted.checked,
            "hard_deleted_files": len(deleted.hard_deleted) + len(written.hard_deleted)}  # fmt: skip


def run_blanket(spark, ref, policy) -> tuple[float, int, list[int]]:
    from spark_jobs.iceberg.table import snapshot_lineage, sql_string

    known = {s["snapshot_id"] for s in snapshot_lineage(spark, ref)}
    started = time.perf_counter()
    result = spark.sql(
        f"CALL lake.system.rewrite_data_files(table => {sql_string(ref.name)}, options => map("
        f"'rewrite-all', 'true', 'target-file-size-bytes', '{policy.target_file_size_bytes}'))"
    ).first()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    spark.sql(f"CALL lake.system.expire_snapshots(table => {sql_string(ref.name)}, older_than => TIMESTAMP '{now}', retain_last => 1)")  # fmt: skip
    seconds = time.perf_counter() - started
    added = [s["snapshot_id"] for s in snapshot_lineage(spark, ref) if s["snapshot_id"] not in known]
    return seconds, int(result.rewritten_bytes_count), added


def run_ours(spark, ref, policy_dict: dict) -> tuple[float, dict]:
    from spark_jobs import iceberg_maintenance as job

    argv = ["--table", ref.full, "--policy", json.dumps(policy_dict), "--storage",
            json.dumps({"write_tags": STORAGE.write_tags, "delete_tags": STORAGE.delete_tags}), "--verify-sample", "0"]  # fmt: skip
    started = time.perf_counter()
    report = job.run(job.parse_job_args(job.build_parser(), argv), spark)
    return time.perf_counter() - started, report


def started_session():
    """A Spark session started while the stack starts: each takes seconds, mostly waiting."""
    spark = unattached_lake_session("bench-iceberg-maintenance")
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class Phases:
    """Wall time of each step of the run, kept in the results so a slow step shows."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._mark, 1)
        self._mark = now
        print(f"{name}: {self.seconds[name]} s", flush=True)


def build_tables(spark, names: list[str], shape: FragmentedTable) -> None:
    """Build the tables concurrently: their writes wait on the S3 endpoint more than on the CPU."""
    for namespace in {name.rsplit(".", 1)[0] for name in names}:
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")  # once: concurrent creates race in the catalog
    with ThreadPoolExecutor(len(names)) as pool:
        for future in [pool.submit(build_fragmented_table, spark, name, shape) for name in names]:
            future.result()


def compare(spark, shape: FragmentedTable, repeat: int, phases: Phases) -> dict:
    from spark_jobs.iceberg.table import TableRef, content_checksums, reachable_files, snapshot_lineage

    refs = {name: TableRef("lake", f"bench.{name}") for name in ("blanket", "ours")}
    build_tables(spark, [ref.full for ref in refs.values()], shape)
    phases.done("build")
    # Target: just above the healthy files' size, so they count as healthy (Iceberg's own
    # rule: within 75%..180% of the target) and only the tiny files need compaction.
    healthy = [r.size for r in spark.sql(f"SELECT file_size_in_bytes AS size FROM {refs['ours'].full}.data_files "
                                         f"WHERE partition.p >= {shape.small_partitions}").collect()]  # fmt: skip
    target = max(1024 * 1024, int(max(healthy) * 1.05))
    policy_dict = {"target_file_size_bytes": target, "snapshot_max_age_days": 0, "retain_last": 1}
    policy = policy_from(policy_dict)
    figures: dict = {"target_file_size_bytes": target}
    # Also warms the JVM's scan path before the first timed scan.
    checksums_before = dict(zip(refs, content_checksums(spark, [(ref, None) for ref in refs.values()]), strict=True))
    phases.done("checksums_before")
    results = {}
    for name, ref in refs.items():
        before = health(spark, ref, policy)
        scan_before, rows_before = timed_scan(spark, ref.full, repeat)
        reachable = reachable_files(spark, ref).localCheckpoint(eager=True)
        phases.done(f"{name}_before")
        if name == "blanket":
            seconds, rewritten, added = run_blanket(spark, ref, policy)
        else:
            known = {s["snapshot_id"] for s in snapshot_lineage(spark, ref)}
            seconds, report = run_ours(spark, ref, policy_dict)
            if not report["ok"]:
                raise RuntimeError(report["error"])
            rewritten = report["tables"][0]["bytes_rewritten"]
            added = [s["snapshot_id"] for s in snapshot_lineage(spark, ref)
                     if s["snapshot_id"] not in known and s["operation"] == "replace"]  # fmt: skip
        phases.done(f"{name}_maintenance")
        after = health(spark, ref, policy)
        scan_after, rows_after = timed_scan(spark, ref.full, repeat)
        (checksum_after,) = content_checksums(spark, [(ref, None)])
        results[name] = {
            "files_before": before["files"],
            "files_after": after["files"],
            "small_files_after": after["small_files"],
            "unhealthy_partitions_before": before["unhealthy_partitions"],
            "unhealthy_partitions_after": after["unhealthy_partitions"],
            "bytes_before": before["bytes"],
            "bytes_rewritten": rewritten,
            "maintenance_s": round(seconds, 3),
            "scan_s_before": round(scan_before, 3),
            "scan_s_after": round(scan_after, 3),
            "scan_speedup": round(scan_before / scan_after, 2),
            "rows_equal": rows_before == rows_after,
            "checksum_equal": checksums_before[name] == checksum_after,
            **tag_figures(spark, ref, added, reachable),
            "_checksum": checksum_after,
        }
        phases.done(f"{name}_after")
        print(f"{name}: {json.dumps({k: v for k, v in results[name].items() if not k.startswith('_')})}", flush=True)
    same_content = results["blanket"].pop("_checksum") == results["ours"].pop("_checksum")
    b, o = results["blanket"], results["ours"]
    figures.update(
        blanket=b,
        ours=o,
        rows_equal=b["rows_equal"] and o["rows_equal"] and same_content,
        checksum_equal=b["checksum_equal"] and o["checksum_equal"] and same_content,
        write_tag_coverage=min(b["write_tag_coverage"], o["write_tag_coverage"]),
        delete_tag_coverage=min(b["delete_tag_coverage"], o["delete_tag_coverage"]),
        hard_deleted_files=b["hard_deleted_files"] + o["hard_deleted_files"],
        bytes_rewritten_ratio=round(o["bytes_rewritten"] / b["bytes_rewritten"], 4) if b["bytes_rewritten"] else None,
        same_health=o["unhealthy_partitions_after"] <= b["unhealthy_partitions_after"]
        and o["small_files_after"] <= b["small_files_after"],
    )
    figures["targets_met"] = bool(
        figures["same_health"]
        and figures["bytes_rewritten_ratio"] is not None
        and figures["bytes_rewritten_ratio"] <= 0.5
        and o["scan_speedup"] >= 3
        and figures["write_tag_coverage"] == 1.0
        and figures["delete_tag_coverage"] == 1.0
        and figures["hard_deleted_files"] == 0
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small table, one timed scan each (under 60 s)")
    parser.add_argument(
        "--repeat", type=int, help="timed scans per measurement, after one JVM warm-up (default 3; --quick: 1)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "iceberg_maintenance.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    shape = shape_for(args.quick)
    repeat = args.repeat or (1 if args.quick else 3)
    from local.services.spark_session import stop_session

    started = time.perf_counter()
    phases = Phases()
    scratch = Path(tempfile.mkdtemp(prefix="bench-iceberg-"))
    with ThreadPoolExecutor(1, thread_name_prefix="spark-start") as pool:
        starting = pool.submit(started_session)
        try:
            with running_stack(scratch / "stack", discard=True) as stack:
                phases.done("stack_start")
                spark = starting.result()
                phases.done("spark_start")
                attach_lake(spark, stack.info(), STORAGE)
                figures = compare(spark, shape, repeat, phases)
        finally:
            if starting.exception() is None:  # waits for it: never leave a JVM starting behind
                stop_session(starting.result())
            shutil.rmtree(scratch, ignore_errors=True)
    phases.done("stop")
    figures.update(shape=shape.__dict__, repeat=repeat, quick=args.quick, cpu_count=os.cpu_count(),
                   phases_s=phases.seconds, total_s=round(time.perf_counter() - started, 1))  # fmt: skip
    write_results(args.out, figures)
    return 0 if figures["rows_equal"] and figures["checksum_equal"] and figures["hard_deleted_files"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
