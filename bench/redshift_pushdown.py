"""Quarterly sales with and without pushdown, on generated TICKIT data in a private PostgreSQL.

    .venv/bin/python bench/redshift_pushdown.py [--quick] [--out FILE] [--sales-rows N] [--repeat K]

Starts its own PostgreSQL (127.0.0.1, a free port, a temporary data folder; stopped at the
end), generates ``sales`` (5,000,000 rows; ``--quick``: 1,000,000) and ``date`` inside it, then
times in one Spark session the job's two read paths for one year:

* reference: both tables read whole over JDBC (Spark 3.5 pushes the filter on ``date`` and
  the column pruning, not the join), joined, filtered, aggregated and sorted in Spark;
* ours: the report's SQL transpiled to PostgreSQL and sent as the JDBC ``query``, so the
  warehouse does everything and only the result rows travel.

``rows_transferred_*`` are the rows Spark's JDBC scans returned (their ``numOutputRows``
metrics), ``results_equal`` compares the two results row for row, times are the median of
``--repeat`` runs after one warm-up of each. Figures go to bench/results/redshift_pushdown.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import write_results  # noqa: E402
from local.seeds.tickit import DATABASE, SCHEMA, TickitData, seed_tickit  # noqa: E402
from local.services import postgres  # noqa: E402
from local.services.stack import free_port  # noqa: E402

YEAR = 2024


def measure(spark, wh, pushdown: bool, repeat: int) -> dict:
    from spark_jobs.redshift.warehouse import rows_read
    from spark_jobs.redshift_pushdown import read_report

    times, rows, transferred = [], None, None
    for attempt in range(repeat + 1):  # the first run warms the JVM paths and PostgreSQL's cache
        started = time.perf_counter()
        frame = read_report(spark, wh, YEAR, pushdown)
        rows = [tuple(r) for r in frame.collect()]
        elapsed = time.perf_counter() - started
        transferred = rows_read(frame)
        if attempt:
            times.append(elapsed)
    return {"seconds": statistics.median(times), "runs_s": [round(t, 3) for t in times], "rows": rows,
            "rows_transferred": transferred}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 sales rows, one timed run each (under 60 s)")
    parser.add_argument("--sales-rows", type=int, help="default 5,000,000 (--quick: 1,000,000)")
    parser.add_argument("--repeat", type=int, help="timed runs per approach (default 3; --quick: 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "redshift_pushdown.json")
    args = parser.parse_args(argv)
    sales_rows = args.sales_rows or (1_000_000 if args.quick else 5_000_000)
    repeat = args.repeat or (1 if args.quick else 3)

    work = Path(tempfile.mkdtemp(prefix="bench-redshift-"))
    data_dir, port = work / "pg", free_port()
    postgres.start(port, data_dir)
    try:
        started = time.perf_counter()
        data = TickitData(sales_rows=sales_rows, first_year=2021, last_year=2024)
        seeded = seed_tickit("127.0.0.1", port, postgres.SUPERUSER, data)
        seed_s = time.perf_counter() - started
        print(f"seeded {seeded['sales_rows']:,} sales rows in {seed_s:.1f}s", flush=True)
        figures = compare(port, repeat)
    finally:
        postgres.stop(postgres.server_data_dir(data_dir))
        shutil.rmtree(postgres.server_data_dir(data_dir), ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    figures.update(sales_rows=seeded["sales_rows"], year=YEAR, seed_s=round(seed_s, 1), repeat=repeat,
                   quick=args.quick, cpu_count=os.cpu_count())  # fmt: skip
    write_results(args.out, figures)
    return 0 if figures["results_equal"] else 1


def compare(port: int, repeat: int) -> dict:
    from local.services.spark_session import local_session, stop_session
    from spark_jobs.redshift.warehouse import Warehouse

    spark = local_session("bench-redshift-pushdown", **{"spark.driver.memory": "2g"})
    spark.sparkContext.setLogLevel("ERROR")
    try:
        wh = Warehouse("postgres", postgres.jdbc_url(port, DATABASE), schema=SCHEMA,
                       user=postgres.SUPERUSER, label="bench-redshift-pushdown")  # fmt: skip
        reference = measure(spark, wh, pushdown=False, repeat=repeat)
        ours = measure(spark, wh, pushdown=True, repeat=repeat)
    finally:
        stop_session(spark)
    return {
        "rows_transferred_reference": reference["rows_transferred"],
        "rows_transferred_ours": ours["rows_transferred"],
        "result_rows": len(ours["rows"]),
        "reference_s": round(reference["seconds"], 3),
        "ours_s": round(ours["seconds"], 3),
        "speedup": round(reference["seconds"] / ours["seconds"], 2),
        "results_equal": reference["rows"] == ours["rows"],
        "reference_runs_s": reference["runs_s"],
        "ours_runs_s": ours["runs_s"],
        "result": [list(r) for r in ours["rows"]],
    }


if __name__ == "__main__":
    sys.exit(main())
