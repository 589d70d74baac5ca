"""Convert price-transparency in-network-rates files (JSON, plain or .gz) to Parquet.

    python spark_jobs/json_to_parquet.py --input FILE-OR-PREFIX --output DIR-OR-URI
    spark-submit json_to_parquet.py --input s3://bucket/mrf/ --output s3://bucket/tables/mrf

Each file is streamed (never parsed whole) into rows of the grain in
:mod:`spark_jobs.mrf.grain`, written as Parquet under ``billing_code_bucket=NN/`` folders
(see :mod:`spark_jobs.mrf.convert`). Several files are converted in parallel: by
Spark executors when a Spark session is wanted (``--engine spark``, or ``auto`` with more than
one file), else one after another in this process. Everything goes to a staging location
first; the run checks that the Parquet row count equals the rows counted while streaming,
then publishes (:mod:`spark_jobs.common.storage`) with a ``_SUCCESS`` manifest. A failure at
any point leaves the previous output as it was. The last stdout line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# numpy's BLAS threads are never used here, but once started they spin on a core the
# converter's own threads need (3% of the CPU of a run); set before numpy is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

if __package__ in (None, "") and "spark_jobs" not in sys.modules:  # run as a script from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_jobs.common import storage  # noqa: E402
from spark_jobs.common.cli import parse_job_args  # noqa: E402
from spark_jobs.mrf.convert import BUCKET_COLUMN, Options, convert  # noqa: E402
from spark_jobs.mrf.grain import COLUMNS, MrfError  # noqa: E402

log = logging.getLogger("json_to_parquet")
SCHEME = f"{BUCKET_COLUMN} = crc32(utf8(billing_code)) % buckets"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="json_to_parquet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", action="append", required=True,
                        help="a .json/.json.gz file, or a folder/prefix of them (repeatable)")  # fmt: skip
    parser.add_argument("--output", required=True, help="output folder or s3:// prefix (replaced atomically)")
    parser.add_argument("--buckets", type=int, default=16, help="billing_code hash buckets (default 16)")
    parser.add_argument("--target-file-mb", type=int, default=128, help="close a Parquet file at this size")
    parser.add_argument("--batch-mb", type=int, default=16, help="JSON bytes parsed per batch (memory bound)")
    parser.add_argument("--compression", default="zstd", choices=["zstd", "snappy", "gzip", "lz4", "none"])
    parser.add_argument("--zstd-level", type=int, default=-1,
                        help="zstd level (default -1, zstd's fast mode; 1 to 22 give smaller files, slower)")  # fmt: skip
    parser.add_argument("--engine", default="auto", choices=["auto", "local", "spark"],
                        help="spark: one Spark task per file; local: this process; auto: spark for 2+ files")  # fmt: skip
    parser.add_argument("--progress-seconds", type=float, default=10.0)
    parser.add_argument("--no-fetch-locations", action="store_true",
                        help="do not read provider files named by `location` (count them as unresolved)")  # fmt: skip
    parser.add_argument("--no-native", action="store_true",
                        help="skip the C fast path (spark_jobs/mrf/native.py) even where it is built")  # fmt: skip
    parser.add_argument("--run-id", default=None, help="names the staging location (default: time and pid)")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    if args.buckets < 1 or args.target_file_mb < 1 or args.batch_mb < 1:
        raise ValueError("--buckets, --target-file-mb and --batch-mb must be positive")
    return Options(
        buckets=args.buckets,
        target_file_bytes=args.target_file_mb << 20,
        batch_bytes=args.batch_mb << 20,
        compression=args.compression,
        compression_level=args.zstd_level,
        progress_seconds=args.progress_seconds,
        fetch_locations=not args.no_fetch_locations,
        native=not args.no_native,
    )


def _convert_one(task: tuple[int, str, int], staging_uri: str, options: Options) -> dict:
    """Convert input number ``i``: its files are ``part-<i>-NNNNN`` in every bucket."""
    index, source, size = task
    fs, root = storage.filesystem(staging_uri)
    return convert(source, size, fs, root, f"part-{index:05d}", options).as_dict()


def _spark_session():
    """The platform's session; started by hand (local master), workers run this interpreter."""
    import os

    from spark_jobs.common.session import get_spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    root = str(Path(__file__).resolve().parent.parent)
    if root not in os.environ.get("PYTHONPATH", "").split(os.pathsep):  # workers import spark_jobs from here
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return get_spark("json_to_parquet")


def run(args: argparse.Namespace) -> dict:
    options = options_from(args)
    inputs = [f for uri in args.input for f in storage.list_inputs(uri)]
    if len({uri for uri, _ in inputs}) != len(inputs):
        raise ValueError("the same input file is listed twice")
    tasks = [(i, uri, size) for i, (uri, size) in enumerate(inputs)]
    total = sum(size for _, _, size in tasks)
    log.info(
        "converting %d file(s), %.1f MB, to %s (%d buckets)", len(tasks), total / 1e6, args.output, options.buckets
    )
    staging = storage.Staging.create(args.output, args.run_id)
    staging_uri = staging.path if storage.is_local(staging.fs) else f"s3://{staging.path}"
    started = time.monotonic()
    try:
        engine = args.engine if args.engine != "auto" else ("spark" if len(tasks) > 1 else "local")
        if engine == "spark":
            spark = _spark_session()
            results = (
                spark.sparkContext.parallelize(tasks, len(tasks))
                .map(lambda task: _convert_one(task, staging_uri, options))
                .collect()
            )
        else:
            results = [_convert_one(task, staging_uri, options) for task in tasks]
        manifest = validate(staging, results, options)
        manifest["seconds"] = round(time.monotonic() - started, 3)
        manifest["engine"] = engine
        staging.publish(manifest)
    except BaseException:
        staging.abort()
        raise
    log.info("published %s rows in %d files to %s", f"{manifest['rows']:,}", len(manifest["files"]), args.output)
    return manifest


def validate(staging: storage.Staging, results: list[dict], options: Options) -> dict:
    """Reconcile the staged Parquet footers with the counts seen while streaming."""
    import pyarrow.parquet as pq

    files = []
    for result in results:
        for f in result["files"]:
            with staging.fs.open_input_file(f"{staging.path}/{f['path']}") as handle:
                rows = pq.ParquetFile(handle).metadata.num_rows
            if rows != f["rows"]:
                raise RuntimeError(f"{f['path']}: {rows} rows in the file, {f['rows']} written")
            files.append(f)
        written = sum(f["rows"] for f in result["files"])
        if written != result["rows"]:
            raise RuntimeError(f"{result['source']}: {result['rows']:,} rows streamed but {written:,} in Parquet")
    return {
        "rows": sum(r["rows"] for r in results),
        "items": sum(r["items"] for r in results),
        "unresolved_references": sum(r["unresolved_references"] for r in results),
        "sources": [{k: v for k, v in r.items() if k != "files"} for r in results],
        "files": sorted(files, key=lambda f: f["path"]),
        "partitioning": {"column": BUCKET_COLUMN, "buckets": options.buckets, "scheme": SCHEME},
        "schema": [list(column) for column in COLUMNS],  # for catalog registration (Spark SQL types)
        "compression": options.compression,
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_job_args(build_parser(), argv)
    try:
        manifest = run(args)
    except (MrfError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2
    summary = {k: manifest[k] for k in ("rows", "items", "unresolved_references", "seconds", "engine")}
    summary.update(ok=True, output=args.output, files=len(manifest["files"]))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
