"""The run ledger: every finished Glue and EMR Serverless run, as Parquet on S3, one file per day.

Layout: ``<ledger_uri>/day=YYYY-MM-DD/runs.parquet`` (the day the run started, UTC; Spark
and Athena read ``day`` as a partition column) and ``<ledger_uri>/_watermark.json``.

Appends are merges: a day's file is read, the new rows replace rows with the same
``(platform, run_id)`` and the file is written back whole with one PutObject (atomic on
S3: a reader sees the old file or the new one). So a re-run, or a window that overlaps the
last one, adds no duplicates. Days are small (thousands of runs), which is what makes the
read-merge-write cheap; the aggregation reads the whole ledger with Spark.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterable
from decimal import Decimal

from spark_jobs.cost.model import LEDGER_FIELDS

log = logging.getLogger(__name__)

TAG_COLUMNS = {"team": "team", "cost-center": "cost_center", "environment": "environment", "remediate": "remediate"}
WATERMARK = "_watermark.json"
COST_SCALE = 10


def schema():
    """The ledger's Arrow schema: pricing inputs, tags, the collector's price, provenance."""
    import pyarrow as pa

    text, number, flag = pa.string(), pa.float64(), pa.bool_()
    when = pa.timestamp("us", tz="UTC")
    types = {
        "attempt": pa.int32(), "started_at": when, "completed_at": when, "execution_s_estimated": flag,
        "auto_scaled": flag,
    }  # fmt: skip
    numbers = {
        "execution_s", "workers", "max_capacity", "allocated_capacity", "dpu_seconds", "timeout_minutes",
        "billed_vcpu_hours", "billed_memory_gb_hours", "billed_storage_gb_hours", "total_vcpu_hours",
        "total_memory_gb_hours", "total_storage_gb_hours", "requested_vcpu", "requested_memory_gb",
    }  # fmt: skip
    fields = [pa.field(name, types.get(name, number if name in numbers else text)) for name in LEDGER_FIELDS]
    fields += [pa.field(column, text) for column in TAG_COLUMNS.values()]
    fields += [
        pa.field("tags", text),  # every tag, as JSON
        pa.field("cost_usd", pa.decimal128(24, COST_SCALE)),
        pa.field("dpu_hours", number),
        pa.field("cost_estimated", flag),
        pa.field("cost_basis", text),
        pa.field("cost_notes", text),
        pa.field("collected_at", when),
    ]
    return pa.schema(fields)


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"ledger location {uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def day_of(row: dict) -> dt.date:
    return row["started_at"].astimezone(dt.UTC).date()


def _to_table(rows: list[dict]):
    import pyarrow as pa

    target = schema()
    columns = {}
    for field in target:
        values = [row.get(field.name) for row in rows]
        if field.name == "cost_usd":
            values = [None if v is None else Decimal(v).quantize(Decimal(1).scaleb(-COST_SCALE)) for v in values]
        elif pa.types.is_floating(field.type):
            values = [None if v is None else float(v) for v in values]
        columns[field.name] = pa.array(values, type=field.type)
    return pa.table(columns, schema=target)


def read_day(s3, bucket: str, key: str) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return pq.read_table(io.BytesIO(body)).to_pylist()


def merge_rows(existing: Iterable[dict], new: Iterable[dict]) -> list[dict]:
    """Rows keyed by (platform, run_id); a later collection of the same run replaces the earlier one."""
    merged: dict[tuple, dict] = {}
    for row in [*existing, *new]:
        key = (row["platform"], row["run_id"])
        if key not in merged or row["collected_at"] >= merged[key]["collected_at"]:
            merged[key] = row
    return sorted(merged.values(), key=lambda r: (r["started_at"], r["platform"], r["run_id"]))


def append(s3, ledger_uri: str, rows: list[dict]) -> dict:
    """Merge ``rows`` into their days' files; return per-day counts (before, after, new)."""
    import pyarrow.parquet as pq

    bucket, prefix = split_uri(ledger_uri)
    by_day: dict[dt.date, list[dict]] = {}
    for row in rows:
        by_day.setdefault(day_of(row), []).append(row)
    summary = {}
    for day, new in sorted(by_day.items()):
        key = f"{prefix}/day={day.isoformat()}/runs.parquet".lstrip("/")
        existing = read_day(s3, bucket, key)
        merged = merge_rows(existing, new)
        buffer = io.BytesIO()
        pq.write_table(_to_table(merged), buffer, compression="zstd")
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        summary[day.isoformat()] = {"before": len(existing), "after": len(merged), "added": len(merged) - len(existing)}
        log.info("ledger %s: %d run(s) before, %d after (%d new)", key, len(existing), len(merged), len(merged) - len(existing))  # fmt: skip
    return summary


def read_watermark(s3, ledger_uri: str) -> dict[str, dt.datetime]:
    bucket, prefix = split_uri(ledger_uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{WATERMARK}".lstrip("/"))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return {}
    return {k: dt.datetime.fromisoformat(v) for k, v in json.loads(body).get("platforms", {}).items()}


def write_watermark(s3, ledger_uri: str, marks: dict[str, dt.datetime]) -> None:
    bucket, prefix = split_uri(ledger_uri)
    body = {"platforms": {k: v.isoformat() for k, v in sorted(marks.items())},
            "written_at": dt.datetime.now(dt.UTC).isoformat()}  # fmt: skip
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{WATERMARK}".lstrip("/"), Body=json.dumps(body, indent=2).encode())
