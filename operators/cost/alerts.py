"""Send each cost violation to SNS exactly once.

The aggregation job writes ``violations`` (Parquet) with a stable ``key`` per violation
(``failed:glue:jr_...``, ``cost_jump:glue:finance-close:2026-11-16``,
``budget:team=finance:2026-11-16``). This module reads them, skips keys already in the
alert state (a JSON object on S3, ``{key: {sent_at, message_id}}``), publishes the rest and
records each key right after its message is accepted, so a re-run, a retry or an
overlapping window sends nothing twice. (A crash between SNS accepting a message and the
state write can repeat that one message: SNS standard topics offer no idempotent publish.)
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

from operators.cost.ledger import split_uri

log = logging.getLogger(__name__)

SUBJECT_LIMIT = 99  # SNS Publish: ASCII, no line breaks or control characters, "less than 100 characters"
TITLES = {
    "workers_over": "run over the worker threshold",
    "duration_over": "run over the duration threshold",
    "failed": "failed run",
    "timed_out": "timed-out run",
    "cost_jump": "weekly cost jump",
    "budget": "tag group over budget",
}


def read_violations(s3, uri: str) -> list[dict]:
    """The violations dataset at ``uri``, in a stable order."""
    return sorted(read_dataset(s3, uri), key=lambda r: (r["kind"], r["period"] or "", r["key"]))


def read_dataset(s3, uri: str) -> list[dict]:
    """Every row of the Parquet dataset at ``uri`` (a folder of part files, as Spark writes it)."""
    import pyarrow.parquet as pq

    bucket, prefix = split_uri(uri)
    rows: list[dict] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".parquet"):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return rows


def load_state(s3, uri: str) -> dict[str, dict]:
    bucket, key = split_uri(uri)
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return {}


def save_state(s3, uri: str, state: dict[str, dict]) -> None:
    bucket, key = split_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(state, indent=1, sort_keys=True).encode())


def subject(violation: dict) -> str:
    what = violation.get("job_name") or violation["key"].split(":")[1]
    text = f"[cost] {TITLES.get(violation['kind'], violation['kind'])}: {what}"
    text = "".join(ch if " " <= ch <= "~" else "?" for ch in text)  # printable ASCII only
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."


def message(violation: dict) -> str:
    fields = {k: v for k, v in violation.items() if v is not None}
    return f"{violation['detail']}\n\n{json.dumps(fields, indent=2, sort_keys=True, default=str)}\n"


def attributes(violation: dict) -> dict:
    out = {"kind": {"DataType": "String", "StringValue": violation["kind"]}}
    for tag in ("team", "cost_center", "environment"):
        if violation.get(tag):
            out[tag] = {"DataType": "String", "StringValue": str(violation[tag])}
    return out


def publish_new(sns, s3, topic_arn: str | None, violations: list[dict], state_uri: str, dry_run: bool) -> dict:
    """Publish the violations not sent before; return counts per kind and what was skipped."""
    state = load_state(s3, state_uri)
    new = [v for v in violations if v["key"] not in state]
    summary = {"violations": len(violations), "already_sent": len(violations) - len(new), "sent": 0,
               "by_kind": {}, "dry_run": dry_run}  # fmt: skip
    for violation in new:
        summary["by_kind"][violation["kind"]] = summary["by_kind"].get(violation["kind"], 0) + 1
        if dry_run:
            log.info("dry run, not sent: %s | %s", subject(violation), violation["detail"])
            continue
        if not topic_arn:
            raise ValueError("cost_alerts: no `topic_arn` in the Variable: nowhere to send alerts")
        response = sns.publish(TopicArn=topic_arn, Subject=subject(violation), Message=message(violation),
                               MessageAttributes=attributes(violation))  # fmt: skip
        state[violation["key"]] = {"sent_at": dt.datetime.now(dt.UTC).isoformat(), "message_id": response["MessageId"]}
        save_state(s3, state_uri, state)  # at once: a retry after a failure resends nothing already out
        summary["sent"] += 1
        log.info("sent %s | %s", subject(violation), violation["detail"])
    log.info("alerts: %d violation(s), %d sent before, %d sent now%s", summary["violations"],
             summary["already_sent"], summary["sent"], " (dry run)" if dry_run else "")  # fmt: skip
    return summary
