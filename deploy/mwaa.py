"""Deploy to an Amazon MWAA environment in one command.

    python -m deploy.mwaa --environment NAME [--scripts-uri s3://bucket/spark_jobs]
                          [--region R] [--endpoint-url URL] [--dry-run] [--wait-minutes 30]

What it does, in order:
1. reads the environment (its bucket and dags path), waits while it is busy (UPDATING,
   CREATING...; a failed or deleted one stops the deploy) and checks the bucket is versioned;
2. syncs dags/: the DAG files, ``.airflowignore``, ``constraints.txt`` and operators/
   under ``dags/operators/`` (AWS's guidance for custom operators), deleting files under
   that prefix that are no longer in the bundle; a file is uploaded only when its SHA-256
   differs from the checksum S3 keeps with the object (ETags are no MD5 under SSE-KMS);
3. uploads spark_jobs/ (entry points and ``spark_jobs.zip``) to the scripts prefix the
   Glue / EMR Serverless tasks read;
4. uploads plugins.zip (plugins/ only: UI extensions) and requirements.txt;
5. calls UpdateEnvironment with the new object versions of plugins.zip and
   requirements.txt, only when either changed (DAG files sync without an update).

Credentials come from the usual AWS chain (profile, role); nothing is stored here.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import boto3
from botocore.config import Config

from deploy.layout import SPARK_JOBS_DIR, dags_bundle, plugins_zip, spark_jobs_files
from operators.spark.arguments import JOBS_ARCHIVE, jobs_archive

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_KEY = "plugins.zip"
REQUIREMENTS_KEY = "requirements.txt"


class DeployError(RuntimeError):
    """The environment or its bucket is not fit for a deploy; the message says why."""


@dataclass
class DeployReport:
    environment: str
    bucket: str
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    environment_updated: bool = False

    def summary(self) -> str:
        lines = [
            f"MWAA environment {self.environment} (bucket {self.bucket})",
            f"  uploaded {len(self.uploaded)}, unchanged {len(self.unchanged)}, deleted {len(self.deleted)}",
        ]
        lines += [f"  - deleted {key}" for key in self.deleted]
        lines += [f"  {key} version {version}" for key, version in sorted(self.versions.items())]
        lines.append(
            "  UpdateEnvironment called: workers restart with the new plugins/requirements"
            if self.environment_updated
            else "  plugins.zip and requirements.txt unchanged: no environment update needed"
        )
        return "\n".join(lines)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise DeployError(f"--scripts-uri must look like s3://bucket/prefix, got {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def sha256_b64(body: bytes) -> str:
    """S3's form of a SHA-256 checksum (``ChecksumSHA256``): the digest, base64."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


class Uploader:
    """Puts objects only when their content changed: the SHA-256 checksum S3 stored with the
    object against the file's. (An ETag is an MD5 of the data only for unencrypted or SSE-S3
    objects; with SSE-KMS, a common MWAA bucket setting, it never matches, and every deploy
    would upload everything and restart the environment.) Objects put before checksums were
    sent have none and are uploaded once more."""

    def __init__(self, s3, report: DeployReport, dry_run: bool):
        self.s3, self.report, self.dry_run = s3, report, dry_run

    def put(self, bucket: str, key: str, body: bytes) -> str | None:
        checksum = sha256_b64(body)
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except self.s3.exceptions.ClientError:
            head = None
        if head and head.get("ChecksumSHA256") == checksum:
            self.report.unchanged.append(f"s3://{bucket}/{key}")
            return head.get("VersionId")
        self.report.uploaded.append(f"s3://{bucket}/{key}")
        if self.dry_run:
            return None
        # The SDK computes the SHA-256 and S3 checks and keeps it with the object.
        return self.s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256").get("VersionId")


# MWAA environment statuses (GetEnvironment Status): busy ones pass by themselves; the others
# need a person. UpdateEnvironment is accepted in AVAILABLE and UPDATE_FAILED only.
BUSY = ("CREATING", "UPDATING", "CREATING_SNAPSHOT", "ROLLING_BACK", "PENDING", "MAINTENANCE")
READY = ("AVAILABLE", "UPDATE_FAILED")


def ready_environment(mwaa, name: str, wait: timedelta, poll_seconds: float) -> dict:
    """The environment once its status accepts an update; waits out a busy status up to ``wait``."""
    deadline = time.monotonic() + wait.total_seconds()
    while True:
        env = mwaa.get_environment(Name=name)["Environment"]
        status = env.get("Status", "AVAILABLE")
        if status in READY:
            return env
        if status not in BUSY:
            raise DeployError(f"MWAA environment {name} is {status}: it cannot take a deploy")
        if time.monotonic() >= deadline:
            raise DeployError(f"MWAA environment {name} is still {status} after {wait}; deploy again once it is "
                              "AVAILABLE (or give --wait-minutes more)")  # fmt: skip
        print(f"MWAA environment {name} is {status}: waiting for it to be AVAILABLE", file=sys.stderr)
        time.sleep(poll_seconds)


def put_spark_jobs(up: Uploader, scripts_uri: str, root: Path = ROOT) -> None:
    """The jobs' entry points and ``spark_jobs.zip`` under ``scripts_uri``, where Glue and EMR
    Serverless runs read them (the local stack seeds its own S3 with this same call)."""
    scripts_bucket, scripts_prefix = parse_s3_uri(scripts_uri)
    for rel, path in spark_jobs_files(root).items():
        up.put(scripts_bucket, f"{scripts_prefix}/{rel}", path.read_bytes())
    up.put(scripts_bucket, f"{scripts_prefix}/{JOBS_ARCHIVE}", jobs_archive(root / SPARK_JOBS_DIR.name))


def deploy(
    environment: str,
    scripts_uri: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    dry_run: bool = False,
    root: Path = ROOT,
    wait: timedelta = timedelta(minutes=30),
    poll_seconds: float = 30,
) -> DeployReport:
    session = boto3.session.Session(region_name=region)
    # With an endpoint override (the local stack) MWAA's "api." host prefix must not be added.
    mwaa = session.client("mwaa", endpoint_url=endpoint_url, config=Config(inject_host_prefix=endpoint_url is None))
    s3 = session.client("s3", endpoint_url=endpoint_url)
    try:
        env = ready_environment(mwaa, environment, wait, poll_seconds)
    except mwaa.exceptions.ResourceNotFoundException as err:
        raise DeployError(f"MWAA environment {environment!r} not found in {session.region_name}") from err
    bucket = env["SourceBucketArn"].rsplit(":", 1)[-1]
    dags_prefix = env.get("DagS3Path", "dags").strip("/")
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if versioning != "Enabled":
        raise DeployError(f"bucket {bucket} must have versioning enabled for MWAA (it is {versioning or 'off'})")
    report = DeployReport(environment, bucket)
    up = Uploader(s3, report, dry_run)

    bundle = dags_bundle(root)
    for rel, path in bundle.items():
        up.put(bucket, f"{dags_prefix}/{rel}", path.read_bytes())
    wanted = {f"{dags_prefix}/{rel}" for rel in bundle}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{dags_prefix}/"):
        for obj in page.get("Contents", []):
            if obj["Key"] not in wanted:
                report.deleted.append(obj["Key"])
                if not dry_run:
                    s3.delete_object(Bucket=bucket, Key=obj["Key"])

    put_spark_jobs(up, scripts_uri or f"s3://{bucket}/spark_jobs", root)

    plugins_version = up.put(bucket, PLUGINS_KEY, plugins_zip(root))
    requirements_version = up.put(bucket, REQUIREMENTS_KEY, (root / "requirements.txt").read_bytes())
    report.versions = {
        PLUGINS_KEY: plugins_version or "(dry run)",
        REQUIREMENTS_KEY: requirements_version or "(dry run)",
    }
    changed = (
        env.get("PluginsS3ObjectVersion") != plugins_version
        or env.get("RequirementsS3ObjectVersion") != requirements_version
        or env.get("PluginsS3Path") != PLUGINS_KEY
        or env.get("RequirementsS3Path") != REQUIREMENTS_KEY
    )
    if changed and not dry_run:
        mwaa.update_environment(
            Name=environment,
            DagS3Path=dags_prefix,
            PluginsS3Path=PLUGINS_KEY,
            PluginsS3ObjectVersion=plugins_version,
            RequirementsS3Path=REQUIREMENTS_KEY,
            RequirementsS3ObjectVersion=requirements_version,
        )
        report.environment_updated = True
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy.mwaa", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--environment", required=True, help="MWAA environment name")
    parser.add_argument("--scripts-uri", help="s3://bucket/prefix for spark_jobs/ (default: <env bucket>/spark_jobs)")
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url", help="AWS endpoint override (the local stack)")
    parser.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    parser.add_argument("--wait-minutes", type=float, default=30,
                        help="how long to wait for an UPDATING (or otherwise busy) environment (default 30)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        report = deploy(args.environment, args.scripts_uri, args.region, args.endpoint_url, args.dry_run,
                        wait=timedelta(minutes=args.wait_minutes))  # fmt: skip
    except DeployError as err:
        print(f"deploy failed: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
