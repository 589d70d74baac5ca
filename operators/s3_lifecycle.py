"""Ensure one S3 lifecycle rule on a bucket without touching the bucket's other rules.

PutBucketLifecycleConfiguration replaces the whole configuration, so a rule is added by
reading the current rules, replacing the one with the same ID (or appending it) and writing
all of them back; nothing is written when the rule is already there as wanted. The S3 hook
has no lifecycle methods, so this takes the hook's boto3 client.
"""

from __future__ import annotations

import hashlib

from botocore.exceptions import ClientError


def expiry_rule(prefix: str, days: int, rule_id: str | None = None) -> dict:
    """Expire objects under ``prefix`` after ``days`` (and abandoned multipart uploads after 1)."""
    if days < 1:
        raise ValueError(f"expiry days must be at least 1, got {days}")
    if not prefix:
        raise ValueError("refusing an expiry rule on a whole bucket: give a prefix")
    rule_id = (
        rule_id or f"expire-{prefix.strip('/').replace('/', '-')[:180]}-{hashlib.sha1(prefix.encode()).hexdigest()[:8]}"
    )
    return {
        "ID": rule_id,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": int(days)},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def tiering_rule(
    tags: dict[str, str],
    transition_days: int,
    expire_days: int,
    *,
    prefix: str = "",
    storage_class: str = "GLACIER_IR",
    rule_id: str | None = None,
) -> dict:
    """Move objects carrying all of ``tags`` to ``storage_class`` after N days, expire them after M.

    Iceberg's S3FileIO marks the files it would have deleted with its delete tags, so this
    rule is what finally removes them, cheaply stored in between.
    """
    if not tags:
        raise ValueError("a tiering rule needs at least one tag to select the objects")
    if transition_days < 0 or expire_days < 1:
        raise ValueError(f"transition after {transition_days} day(s), expire after {expire_days}: need N >= 0, M >= 1")
    if expire_days <= transition_days:
        raise ValueError(f"expire_days ({expire_days}) must be later than transition_days ({transition_days})")
    tag_set = [{"Key": k, "Value": str(v)} for k, v in sorted(tags.items())]
    if len(tag_set) == 1 and not prefix:
        rule_filter = {"Tag": tag_set[0]}
    else:
        rule_filter = {"And": {"Prefix": prefix, "Tags": tag_set}}
    if rule_id is None:
        digest = hashlib.sha1(repr((prefix, tag_set)).encode()).hexdigest()[:8]
        rule_id = f"tier-deleted-{digest}"
    return {
        "ID": rule_id,
        "Filter": rule_filter,
        "Status": "Enabled",
        "Transitions": [{"Days": int(transition_days), "StorageClass": storage_class}],
        "Expiration": {"Days": int(expire_days)},
    }


def current_rules(s3, bucket: str) -> list[dict]:
    try:
        return s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise


def ensure_rule(s3, bucket: str, rule: dict) -> str:
    """Put ``rule`` on ``bucket`` keeping its other rules; return created, updated or unchanged."""
    rules = current_rules(s3, bucket)
    others = [r for r in rules if r.get("ID") != rule["ID"]]
    existing = next((r for r in rules if r.get("ID") == rule["ID"]), None)
    if existing is not None and _same(existing, rule):
        return "unchanged"
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*others, rule]})
    return "created" if existing is None else "updated"


def _same(existing: dict, wanted: dict) -> bool:
    return all(existing.get(key) == value for key, value in wanted.items())
