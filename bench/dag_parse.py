"""DAG parse time, per DAG file, relative to a trivial DAG parsed in the same run.

Each file is parsed the way the dag processor does (BundleDagBag over the MWAA-shaped
bundle, in a process forked from one that has imported Airflow), so the file's own
imports count and Airflow's do not. The figure is the median parse time of the file divided by the median
of a trivial one-task DAG, measured alternately in the same run:

    {"files": {"<name>": ratio}, "max_ratio": x, "files_vs_trivial_taskflow": {...},
     "seconds": {...}, "runs": n}

    python bench/dag_parse.py [--quick] [--out bench/results/dag_parse.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import write_results  # noqa: E402
from deploy.layout import DAGS_DIR, stage_dags_bundle  # noqa: E402

TRIVIAL_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("trivial", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="noop")
"""

# The same with one TaskFlow task: TaskFlow imports the standard provider's Python operator
# (~0.1 s), a cost every DAG with a Python step pays; this second baseline separates it
# from what our own modules cost.
TRIVIAL_TASKFLOW_DAG = """
import pendulum
from airflow.sdk import DAG, task

with DAG("trivial_taskflow", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task
    def noop():
        return None

    noop()
"""

# One interpreter imports Airflow once, then forks a child per parse, as the dag processor
# does: each child starts from the same pre-imported state and pays for its file's imports.
PARSE_ALL = """
import json, os, sys, time
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
bundle, runs, names = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
samples = {name: [] for name in names}
for _ in range(runs):
    for name in names:  # interleaved, so drift hits every file alike
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            start = time.perf_counter()
            bag = BundleDagBag(dag_folder=str(bundle / name), bundle_path=bundle, safe_mode=False)
            elapsed = time.perf_counter() - start
            ok = bool(bag.dags) and not bag.import_errors
            os.write(write_end, json.dumps([elapsed, ok, str(bag.import_errors)[:500]]).encode())
            os._exit(0)
        os.close(write_end)
        data = b""
        while chunk := os.read(read_end, 65536):
            data += chunk
        os.close(read_end)
        os.waitpid(pid, 0)
        elapsed, ok, errors = json.loads(data)
        if not ok:
            raise SystemExit(f"parsing {name} failed: {errors}")
        samples[name].append(elapsed)
print(json.dumps(samples))
"""


def parse_samples(bundle: Path, names: list[str], runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    out = subprocess.run(
        [sys.executable, "-c", PARSE_ALL, str(bundle), str(runs), *names],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"parsing failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 runs per file instead of 25")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dag_parse.json")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else 25

    with tempfile.TemporaryDirectory(prefix="dag-parse-") as tmp:
        bundle = stage_dags_bundle(Path(tmp) / "dags")
        (bundle / "zz_trivial_dag.py").write_text(TRIVIAL_DAG)
        (bundle / "zz_trivial_taskflow_dag.py").write_text(TRIVIAL_TASKFLOW_DAG)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(Path(tmp) / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "PYTHONPATH": "",
        }
        files = sorted(p.name for p in DAGS_DIR.glob("*.py"))
        samples = parse_samples(bundle, [*files, "zz_trivial_dag.py", "zz_trivial_taskflow_dag.py"], runs, env)

    trivial = statistics.median(samples.pop("zz_trivial_dag.py"))
    trivial_taskflow = statistics.median(samples.pop("zz_trivial_taskflow_dag.py"))
    medians = {Path(n).stem: statistics.median(s) for n, s in samples.items()}
    ratios = {name: round(sec / trivial, 3) for name, sec in medians.items()}
    result = {
        "files": ratios,
        "max_ratio": max(ratios.values()) if ratios else None,
        "files_vs_trivial_taskflow": {name: round(sec / trivial_taskflow, 3) for name, sec in medians.items()},
        "seconds": {
            **{k: round(v, 4) for k, v in medians.items()},
            "trivial_dag": round(trivial, 4),
            "trivial_taskflow_dag": round(trivial_taskflow, 4),
        },
        "runs": runs,
    }
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
