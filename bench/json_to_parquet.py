"""Benchmark: JSON-to-Parquet for one huge in-network-rates file, ours against split-then-Spark.

    .venv/bin/python bench/json_to_parquet.py [--quick] [--out FILE] [--sizes 200MB,1GB] [--repeat 3]

For each size a gzip file is generated once (``bench/gen_mrf.py``, cached in bench/data/),
then, in one run and on the same file:
  floor      ``gzip -dc FILE > /dev/null``: the cost of just reading the input;
  reference  ``bench/mrf_reference.py``: ijson split into chunk files, Spark explodes them;
  ours       ``spark_jobs/json_to_parquet.py``, as users run it (its own process).
Each is timed as a whole process; floor and ours run ``--repeat`` times, alternating, and their
medians count (every run is in the JSON); ours' peak RSS is the largest child's ``ru_maxrss``. Both outputs
are then read by Spark and compared as multisets (row count and the sum of a 64-bit hash of
every row), which is ``rows_equal``. ``--quick`` uses 4 MB and 12 MB files (under 60 s).
Sizes are of the JSON text; the files are gzip -6.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import write_results  # noqa: E402
from bench.gen_mrf import parse_size, write_file  # noqa: E402
from spark_jobs.common.storage import read_manifest  # noqa: E402
from spark_jobs.mrf.grain import COLUMN_NAMES  # noqa: E402

DATA = ROOT / "bench" / "data"


def timed(command: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """(seconds, peak RSS in MB of the process, stdout) of a child process; raises on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    # the peak of this child: wait4 already reaped it through communicate, so read it from
    # the children's accounting (the largest child so far is this one or an earlier, smaller run)
    import resource

    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    if proc.returncode:
        raise RuntimeError(f"{command[:3]} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return seconds, rss_mb, out.decode()


def measure_ours(source: Path, output: Path) -> tuple[float, int, dict]:
    """Ours in a fresh process per size, so its peak RSS is its own."""
    code = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "s = time.perf_counter() - t\n"
        "assert p.returncode == 0, p.stderr.decode()[-3000:]\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024\n"
        "print(json.dumps({'s': s, 'rss': r, 'out': p.stdout.decode().strip().splitlines()[-1]}))\n"
    )
    command = [sys.executable, "-c", code, sys.executable, str(ROOT / "spark_jobs" / "json_to_parquet.py"),
               "--input", str(source), "--output", str(output)]  # fmt: skip
    _, _, out = timed(command)
    result = json.loads(out)
    return result["s"], result["rss"], json.loads(result["out"])


def fingerprint(spark, path: str) -> tuple[int, int]:
    from pyspark.sql import functions as F

    frame = spark.read.parquet(path).select(*COLUMN_NAMES)
    row = frame.select(
        F.count(F.lit(1)).alias("n"), F.sum(F.xxhash64(*COLUMN_NAMES).cast("decimal(38,0)")).alias("h")
    ).first()
    return int(row["n"]), int(row["h"] or 0)


def run_size(size: int, work: Path, spark, repeat: int = 1) -> dict:
    source = DATA / f"mrf-{size}.json.gz"
    if not source.exists():
        print(f"generating {source.name} ...", file=sys.stderr)
        write_file(source, size, seed=11, gzip=True)
    ours_dir, ref_dir = work / f"ours-{size}", work / f"ref-{size}"
    # floor and ours alternate, `repeat` times each, and the medians count: one run of a few
    # seconds moves by 10% with the machine's load
    floor_runs, ours_runs, rss = [], [], 0
    for _ in range(repeat):
        floor_runs.append(timed(["sh", "-c", f"gzip -dc '{source}' > /dev/null"])[0])
        shutil.rmtree(ours_dir, ignore_errors=True)
        seconds, run_rss, summary = measure_ours(source, ours_dir)
        ours_runs.append(seconds)
        rss = max(rss, run_rss)
    floor_s, ours_s = statistics.median(floor_runs), statistics.median(ours_runs)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    reference_s, _, _ = timed([sys.executable, str(ROOT / "bench" / "mrf_reference.py"), "--input", str(source),
                               "--output", str(ref_dir), "--source-file", str(source), "--work", str(work)], env)  # fmt: skip
    ours_print, ref_print = fingerprint(spark, str(ours_dir)), fingerprint(spark, str(ref_dir))
    sources = read_manifest(str(ours_dir))["sources"]
    print(f"{size / 1e6:.0f} MB: floor {floor_s:.1f}s ours {ours_s:.1f}s reference {reference_s:.1f}s",
          file=sys.stderr)  # fmt: skip
    return {
        "input_mb": round(size / 1e6, 1),
        "gzip_mb": round(source.stat().st_size / 1e6, 1),
        "rows": summary["rows"],
        "reference_s": round(reference_s, 2),
        "ours_s": round(ours_s, 2),
        "floor_s": round(floor_s, 2),
        "speedup_vs_reference": round(reference_s / ours_s, 2),
        "ours_vs_floor": round(ours_s / floor_s, 2),
        "ours_peak_rss_mb": rss,
        "rows_equal": ours_print == ref_print,
        "floor_runs_s": [round(x, 2) for x in floor_runs],
        "ours_runs_s": [round(x, 2) for x in ours_runs],
        # which path converted the items (the C one unless its library is missing)
        "native_batches": sum(s["native_batches"] for s in sources),
        "arrow_batches": sum(s["arrow_batches"] for s in sources),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 MB and 12 MB files (under 60 s)")
    parser.add_argument("--sizes", help="comma-separated JSON sizes (default 200MB,1GB)")
    parser.add_argument("--repeat", type=int, help="runs of ours and of the floor per size (default 3; 1 with --quick)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "json_to_parquet.json")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in (args.sizes or ("4MB,12MB" if args.quick else "200MB,1GB")).split(",")]
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]").appName("bench-compare")
        .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g").getOrCreate()
    )  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="bench-j2p-"))
    try:
        repeat = args.repeat or (1 if args.quick else 3)
        results = [run_size(size, work, spark, repeat) for size in sorted(sizes)]
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    small, large = results[0], results[-1]
    figures = {
        **large,
        "sizes": results,
        "rss_growth": round(large["ours_peak_rss_mb"] / small["ours_peak_rss_mb"] - 1, 3),
        "rows_equal": all(r["rows_equal"] for r in results),
        "quick": args.quick,
        "cpu_count": os.cpu_count(),
    }
    write_results(args.out, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
