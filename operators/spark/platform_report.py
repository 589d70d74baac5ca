"""Read and present the report that ``spark_jobs/platform_check.py`` writes."""

from __future__ import annotations

import json
from typing import Any


def parse_s3_uri(uri: str) -> tuple[str, str]:
    scheme, _, rest = uri.partition("://")
    if scheme not in {"s3", "s3a"} or not rest:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = rest.partition("/")
    return bucket, key


def read_report(output_uri: str, aws_conn_id: str = "aws_default") -> dict[str, Any]:
    """Find the report part file under ``<output>/report/`` and parse it."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    bucket, prefix = parse_s3_uri(f"{output_uri.rstrip('/')}/report/")
    hook = S3Hook(aws_conn_id=aws_conn_id)
    keys = [k for k in hook.list_keys(bucket_name=bucket, prefix=prefix) or [] if "/part-" in k]
    if not keys:
        raise FileNotFoundError(
            f"no platform report under s3://{bucket}/{prefix}: the Spark job did not write one "
            "(did it run? see the run_platform_check task's log)"
        )
    line = hook.read_key(keys[0], bucket_name=bucket).strip().splitlines()[0]
    return json.loads(line)


def format_report(report: dict[str, Any]) -> str:
    iceberg = report.get("iceberg", {})
    storage = report.get("storage", {})
    rows = [
        ("platform", report.get("platform")),
        ("spark", report.get("spark_version")),
        ("python", report.get("python_version")),
        ("iceberg runtime", report.get("iceberg_version") or "not on classpath"),
        (
            "storage",
            f"{'ok' if storage.get('ok') else 'FAILED'} ({storage.get('rows_read')} rows at {storage.get('path')})",
        ),
        (
            "iceberg table",
            f"ok: {iceberg.get('table')} ({iceberg.get('snapshots')} snapshots)"
            if iceberg.get("available")
            else f"unavailable: {iceberg.get('error') or iceberg.get('reason')}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["Spark platform check"] + [f"  {k.ljust(width)}  {v}" for k, v in rows])
