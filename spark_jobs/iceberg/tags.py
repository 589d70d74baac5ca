"""Check S3 object tags on the files a maintenance run wrote and removed.

Iceberg's S3FileIO only logs a warning when it cannot tag an object (a missing
s3:PutObjectTagging permission, say), and with ``s3.delete-enabled=false`` a file it could
not tag is simply left behind unmarked. So the job reads the tags back: every file the run
wrote must carry the write tags; every file it removed must still exist (never hard-deleted)
and carry the delete tags. One GetObjectTagging call per file, in parallel threads.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class TagCheck:
    """Result of checking ``checked`` files for ``wanted`` tags."""

    kind: str
    wanted: dict[str, str]
    total: int = 0  # files in the set (may exceed the sample)
    checked: int = 0
    tagged: int = 0
    missing_tags: list[str] = field(default_factory=list)
    hard_deleted: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return 1.0 if self.checked == 0 else self.tagged / self.checked

    def problems(self) -> list[str]:
        out = []
        if self.missing_tags:
            out.append(f"{len(self.missing_tags)} of {self.checked} {self.kind} file(s) lack tags {self.wanted}, "
                       f"e.g. {self.missing_tags[:3]}")  # fmt: skip
        if self.hard_deleted:
            out.append(f"{len(self.hard_deleted)} {self.kind} file(s) were hard-deleted, e.g. {self.hard_deleted[:3]}")
        return out

    def summary(self) -> dict:
        return {"files": self.total, "checked": self.checked, "tagged": self.tagged, "coverage": round(self.coverage, 4),
                "missing_tags": len(self.missing_tags), "hard_deleted": len(self.hard_deleted)}  # fmt: skip


def s3_client(endpoint_url: str | None, region: str | None, threads: int = 16):
    import boto3  # present on Glue and EMR Serverless; imported late so planning needs no AWS SDK
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(max_pool_connections=threads, retries={"max_attempts": 5, "mode": "standard"}),
    )


def split_uri(uri: str) -> tuple[str, str]:
    scheme, _, rest = uri.partition("://")
    if scheme not in ("s3", "s3a", "s3n") or "/" not in rest:
        raise ValueError(f"not an S3 object URI: {uri}")
    bucket, key = rest.split("/", 1)
    return bucket, key


def _tags_of(s3, uri: str) -> dict[str, str] | None:
    """The object's tags, or None when the object does not exist."""
    from botocore.exceptions import ClientError

    bucket, key = split_uri(uri)
    try:
        tag_set = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    return {t["Key"]: t["Value"] for t in tag_set}


def check_tags(s3, kind: str, uris: list[str], wanted: dict[str, str], total: int | None = None,
               threads: int = 16) -> TagCheck:  # fmt: skip
    """Check that every object in ``uris`` exists and carries every tag in ``wanted``."""
    result = TagCheck(kind=kind, wanted=dict(wanted), total=len(uris) if total is None else total)
    if not uris:
        return result
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(uris)))) as pool:
        for uri, tags in zip(uris, pool.map(lambda u: _tags_of(s3, u), uris), strict=True):
            result.checked += 1
            if tags is None:
                result.hard_deleted.append(uri)
            elif all(tags.get(k) == v for k, v in wanted.items()):
                result.tagged += 1
            else:
                result.missing_tags.append(uri)
    log.info("%s files: %d checked of %d, %d carry %s, %d hard-deleted", kind, result.checked, result.total,
             result.tagged, wanted, len(result.hard_deleted))  # fmt: skip
    return result
