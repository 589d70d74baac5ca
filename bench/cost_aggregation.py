"""How the cost aggregation scales with the ledger, and whether its totals equal the Python model.

    .venv/bin/python bench/cost_aggregation.py [--quick] [--runs N] [--out FILE]

Generates a synthetic run ledger of N records (1e5 with --quick, 1e7 otherwise) in the
ledger's own layout (Parquet, ``day=`` partitions, the collector's schema) and a second
one of N/10, with a realistic spread: Glue and EMR Serverless, every worker type, Flex and
auto-scaled runs billed by DPU-seconds, Python shell, Glue 1.0, failures, retries, tags.
Then ``spark_jobs/cost_aggregation.py`` runs on each (in one local Spark session, warmed
on a tiny ledger first), and the figures go to bench/results/cost_aggregation.json:
``runs_small``, ``runs_large``, ``s_small``, ``s_large``, ``scaling`` = (s_large / s_small)
/ (runs_large / runs_small) (1.0 is linear, less is better), and ``cost_matches_oracle``:
for a sample of jobs, the weekly totals Spark wrote equal the sum of
``cost_model.record_cost`` over the same runs, computed in plain Python from the ledger
files. Targets: scaling <= 1.2, cost_matches_oracle true.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import write_results  # noqa: E402

WORKER_TYPES = ["G.025X", "G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X", "R.1X", "R.2X", "R.4X", "R.8X", "Z.2X", "Standard"]  # fmt: skip
WORKER_WEIGHTS = [2, 40, 25, 8, 3, 1, 1, 4, 3, 1, 1, 2, 1]
TEAMS = ["analytics", "finance", "data-platform", "data-science", "marketing", "risk"]


def generate(folder: Path, runs: int, seed: int, end: dt.date) -> dict:
    """Write ``runs`` synthetic ledger rows under ``folder`` (day=YYYY-MM-DD/part-*.parquet)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as ds

    from operators.cost.ledger import schema

    rng = np.random.default_rng(seed)
    jobs = max(50, runs // 2000)
    days = 35 if runs <= 100_000 else 90 if runs <= 1_000_000 else 365
    job = rng.integers(0, jobs, runs)
    # A job keeps its platform, worker type, class and tags; runs vary in size and outcome.
    job_emr = rng.random(jobs) < 0.15
    job_worker = rng.choice(len(WORKER_TYPES), jobs, p=np.array(WORKER_WEIGHTS) / sum(WORKER_WEIGHTS))
    job_shell = (rng.random(jobs) < 0.05) & ~job_emr
    job_flex = (rng.random(jobs) < 0.1) & ~job_shell & ~job_emr
    job_auto = (rng.random(jobs) < 0.1) & ~job_flex & ~job_shell & ~job_emr
    job_legacy = (rng.random(jobs) < 0.03) & ~job_emr
    job_team = rng.integers(0, len(TEAMS), jobs)
    job_arm = rng.random(jobs) < 0.4
    import pyarrow.compute as pc

    emr, shell, flex, auto = job_emr[job], job_shell[job], job_flex[job], job_auto[job]
    glue = ~emr
    start_us = int(dt.datetime.combine(end - dt.timedelta(days=days - 1), dt.time(), dt.UTC).timestamp() * 1e6)
    started_us = start_us + rng.integers(0, days * 86_400_000_000, runs)
    execution = np.round(rng.lognormal(6.5, 1.0, runs)).clip(5, 60_000)
    workers = rng.integers(2, 41, runs).astype(float)
    state_index = rng.choice(4, runs, p=[0.93, 0.04, 0.01, 0.02])
    vcpu = rng.choice([4.0, 8.0, 16.0, 32.0], runs) * execution / 3600
    when = pa.timestamp("us", tz="UTC")

    def text(indices, words, mask=None):
        """Strings by index into ``words`` (built in Arrow, not as Python objects), null where ``mask`` is false."""
        array = pa.DictionaryArray.from_arrays(pa.array(indices.astype("int32")), pa.array(words)).cast(pa.string())
        return array if mask is None else pc.if_else(pa.array(mask), array, pa.nulls(runs, pa.string()))

    def number(values, mask=None):
        return pa.array(values.astype(float), mask=None if mask is None else ~mask)

    nulls = {name: pa.nulls(runs, kind) for name, kind in (("text", pa.string()), ("number", pa.float64()))}
    glue_states, emr_states = (
        ["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED"],
        ["SUCCESS", "FAILED", "FAILED", "CANCELLED"],
    )
    columns = {
        "platform": text(emr.astype(int), ["glue", "emr_serverless"]),
        "run_id": pc.binary_join_element_wise(f"r{seed}-", pc.cast(pa.array(np.arange(runs)), pa.string()), ""),
        "job_name": text(job, [f"job-{j:05d}" for j in range(jobs)]),
        "application_id": text(np.zeros(runs), ["app-1"], emr),
        "attempt": pa.array((rng.random(runs) < 0.05).astype("int32")),
        "previous_run_id": nulls["text"],
        "state": text(state_index + 4 * emr, glue_states + emr_states),
        "started_at": pa.array(started_us, type=when),
        "completed_at": pa.array(started_us + (execution * 1e6).astype("int64"), type=when),
        "execution_s": number(execution),
        "execution_s_estimated": pa.array(np.zeros(runs, bool)),
        "glue_version": text(job_legacy[job].astype(int), ["4.0", "1.0"], glue),
        "command": text(shell.astype(int), ["glueetl", "pythonshell"], glue),
        "execution_class": text(flex.astype(int), ["STANDARD", "FLEX"], glue),
        "worker_type": text(job_worker[job], WORKER_TYPES, glue & ~shell),
        "workers": number(workers, glue & ~shell),
        "max_capacity": number(np.where(job % 2 == 0, 0.0625, 1.0), shell),
        "allocated_capacity": nulls["number"],
        "dpu_seconds": number((execution * workers * rng.uniform(0.3, 1.0, runs)).round(1), flex | auto),
        "auto_scaled": pa.array(auto),
        "timeout_minutes": number(np.full(runs, 2880.0)),
        "architecture": text(job_arm[job].astype(int), ["X86_64", "ARM64"], emr),
        "billed_vcpu_hours": number(vcpu.round(4), emr),
        "billed_memory_gb_hours": number((vcpu * 4).round(4), emr),
        "billed_storage_gb_hours": number((vcpu * 5).round(4), emr),
        **{name: nulls["number"] for name in ("total_vcpu_hours", "total_memory_gb_hours", "total_storage_gb_hours",
                                              "requested_vcpu", "requested_memory_gb", "dpu_hours")},
        "error_message": nulls["text"],
        "team": text(job_team[job], TEAMS),
        "cost_center": text(job_team[job], [f"cc-{100 + 100 * t}" for t in range(len(TEAMS))]),
        "environment": text((job % 5 == 0).astype(int), ["prod", "dev"]),
        "remediate": nulls["text"], "tags": nulls["text"], "cost_notes": nulls["text"],
        "cost_usd": pa.nulls(runs, pa.decimal128(24, 10)),
        "cost_estimated": pa.array(np.zeros(runs, bool)),
        "cost_basis": text(np.zeros(runs), ["synthetic"]),
        "collected_at": pa.array(np.full(runs, started_us.max()), type=when),
    }  # fmt: skip
    day_index = (started_us - start_us) // 86_400_000_000
    day_names = [(end - dt.timedelta(days=days - 1 - d)).isoformat() for d in range(days)]
    table = pa.table(columns, schema=schema())
    table = table.append_column("day", text(day_index, day_names))
    ds.write_dataset(table, folder, format="parquet", partitioning=ds.partitioning(pa.schema([("day", pa.string())]), flavor="hive"),
                     existing_data_behavior="overwrite_or_ignore", max_rows_per_file=2_000_000)  # fmt: skip
    return {"runs": runs, "jobs": jobs, "days": days}


def aggregate(spark, ledger: Path, output: Path, as_of: dt.date) -> float:
    from spark_jobs import cost_aggregation as job

    argv = ["--ledger", str(ledger), "--output", str(output), "--as-of", as_of.isoformat()]
    started = time.perf_counter()
    summary = job.run(job.parse_job_args(job.build_parser(), argv), spark)
    seconds = time.perf_counter() - started
    print(f"aggregated {summary['runs']} runs in {seconds:.1f} s: {summary['rows']}", flush=True)
    return seconds


def oracle_matches(spark, ledger: Path, output: Path, sample_jobs: int) -> dict:
    """Per (job, week) cost from Spark's job_weekly vs record_cost over the ledger rows, for a sample."""
    import pyarrow.dataset as ds

    from spark_jobs.cost.model import record_cost

    weekly = spark.read.parquet(str(output / "job_weekly")).select("job_name", "week", "cost").collect()
    names = sorted({r.job_name for r in weekly})[:: max(1, len({r.job_name for r in weekly}) // sample_jobs)][
        :sample_jobs
    ]
    rows = ds.dataset(ledger, format="parquet", partitioning="hive").to_table(
        filter=ds.field("job_name").isin(names)).to_pylist()  # fmt: skip
    python: dict[tuple, Decimal] = defaultdict(Decimal)
    for row in rows:
        monday = row["started_at"].date() - dt.timedelta(days=row["started_at"].weekday())
        cost = record_cost(row).cost_usd
        python[(row["job_name"], monday)] += cost if cost is not None else Decimal(0)
    spark_side = {(r.job_name, r.week): r.cost or Decimal(0) for r in weekly if r.job_name in set(names)}
    worst = max((abs(spark_side.get(k, Decimal(0)) - v) for k, v in python.items()), default=Decimal(0))
    same_keys = set(spark_side) == set(python)
    return {"sample_jobs": len(names), "sample_runs": len(rows), "sample_groups": len(python),
            "max_abs_diff_usd": float(worst), "cost_matches_oracle": bool(same_keys and worst < Decimal("0.000001"))}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e5 runs (and 1e4): under 60 s")
    parser.add_argument("--runs", type=int, help="the large ledger's size (default 1e7; --quick: 1e5)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cost_aggregation.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    large = args.runs or (100_000 if args.quick else 10_000_000)
    small = max(1000, large // 10)
    from local.services.spark_session import local_session, stop_session

    work = Path(tempfile.mkdtemp(prefix="bench-cost-"))
    end = dt.datetime.now(dt.UTC).date()
    started = time.perf_counter()
    try:
        conf = {"spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": "false"}
        with ThreadPoolExecutor(1) as pool:  # the ledgers are written while the JVM starts
            made = pool.submit(lambda: {name: generate(work / f"ledger-{name}", runs, seed, end)
                                        for name, runs, seed in (("warm", 500, 1), ("small", small, 2), ("large", large, 3))})  # fmt: skip
            spark = local_session("bench-cost-aggregation", os.cpu_count() or 2, **conf)
            shapes = made.result()
        print(f"generated ledgers of {[s['runs'] for s in shapes.values()]} runs; Spark up", flush=True)
        spark.sparkContext.setLogLevel("ERROR")
        try:
            aggregate(spark, work / "ledger-warm", work / "out-warm", end)  # JVM and code paths warm
            s_small = aggregate(spark, work / "ledger-small", work / "out-small", end)
            s_large = aggregate(spark, work / "ledger-large", work / "out-large", end)
            oracle = oracle_matches(spark, work / "ledger-large", work / "out-large", 3 if args.quick else 25)
        finally:
            stop_session(spark)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        "runs_small": small, "runs_large": large, "s_small": round(s_small, 2), "s_large": round(s_large, 2),
        "scaling": round((s_large / s_small) / (large / small), 3), **oracle,
        "jobs_large": shapes["large"]["jobs"], "days_large": shapes["large"]["days"],
        "quick": args.quick, "cpu_count": os.cpu_count(), "total_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    figures["targets_met"] = figures["scaling"] <= 1.2 and figures["cost_matches_oracle"]
    write_results(args.out, figures)
    return 0 if figures["cost_matches_oracle"] else 1


if __name__ == "__main__":
    sys.exit(main())
