"""A minimal Amazon MWAA control-plane API for the local moto server (moto has none).

Only what the deploy step uses: CreateEnvironment, GetEnvironment, UpdateEnvironment and
ListEnvironments (REST-JSON, signing name ``airflow``). It is a WSGI middleware in front
of moto's own app: requests signed for ``airflow`` are answered here, everything else
goes to moto. Like MWAA, UpdateEnvironment checks that the S3 object versions it is given
exist in the environment's bucket (read from moto's S3 backend in the same process).

Like MWAA (User Guide, "Amazon MWAA environment status"), an update is not instant: the
environment reports ``UPDATING`` after UpdateEnvironment, for ``UPDATE_SECONDS``
(``MWAA_LOCAL_UPDATE_SECONDS``, 2 s by default; minutes on AWS), then ``AVAILABLE``; and an
UpdateEnvironment while it is not ``AVAILABLE`` or ``UPDATE_FAILED`` is refused with a
ValidationException naming the status.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"
_PATH = re.compile(r"^/environments(?:/(?P<name>[A-Za-z0-9_-]+))?$")
VERSIONED_PATHS = (
    ("PluginsS3Path", "PluginsS3ObjectVersion"),
    ("RequirementsS3Path", "RequirementsS3ObjectVersion"),
    ("StartupScriptS3Path", "StartupScriptS3ObjectVersion"),
)
UPDATE_SECONDS = float(os.environ.get("MWAA_LOCAL_UPDATE_SECONDS", "2"))
UPDATABLE = ("AVAILABLE", "UPDATE_FAILED")


class MwaaError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _object_version_exists(bucket_arn: str, key: str, version: str) -> bool:
    from moto.s3.models import s3_backends

    bucket_name = bucket_arn.rsplit(":", 1)[-1]
    backend = s3_backends[ACCOUNT]["global"]
    try:
        bucket = backend.get_bucket(bucket_name)
    except Exception:
        return False
    return any(k.name == key and str(k.version_id) == version for k in bucket.keys.getlist(key, []))


class MwaaApi:
    """In-memory environments, keyed by name; thread-safe (moto serves threaded)."""

    def __init__(self) -> None:
        self.environments: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def _validate_versions(self, env: dict[str, Any]) -> None:
        for path_key, version_key in VERSIONED_PATHS:
            if env.get(path_key) and env.get(version_key):
                if not _object_version_exists(env["SourceBucketArn"], env[path_key], env[version_key]):
                    raise MwaaError(
                        400,
                        "ValidationException",
                        f"{version_key} {env[version_key]} of s3 key {env[path_key]} not found in {env['SourceBucketArn']}",
                    )

    def handle(self, method: str, name: str | None, body: dict[str, Any], region: str) -> tuple[int, dict]:
        with self.lock:
            if name is None and method == "GET":
                return 200, {"Environments": sorted(self.environments)}
            if name is None:
                raise MwaaError(404, "ResourceNotFoundException", "unknown path")
            arn = f"arn:aws:airflow:{region}:{ACCOUNT}:environment/{name}"
            now = datetime.now(UTC).isoformat()
            if method == "PUT":
                if name in self.environments:
                    raise MwaaError(400, "ValidationException", f"environment {name} already exists")
                for required in ("SourceBucketArn", "DagS3Path", "ExecutionRoleArn"):
                    if not body.get(required):
                        raise MwaaError(400, "ValidationException", f"{required} is required")
                env = {**body, "Name": name, "Arn": arn, "Status": "AVAILABLE", "CreatedAt": now}
                env.setdefault("AirflowVersion", "3.3.1")
                self._validate_versions(env)
                env["LastUpdate"] = {"Status": "SUCCESS", "CreatedAt": now, "Source": "CREATE"}
                self.environments[name] = env
                return 200, {"Arn": arn}
            env = self.environments.get(name)
            if env is None:
                raise MwaaError(404, "ResourceNotFoundException", f"Environment {name} not found")
            if env["Status"] == "UPDATING" and time.monotonic() >= env.get("_updated_by", 0):
                env["Status"] = "AVAILABLE"
                env["LastUpdate"]["Status"] = "SUCCESS"
            if method == "GET":
                return 200, {"Environment": {k: v for k, v in env.items() if not k.startswith("_")}}
            if method == "PATCH":
                if env["Status"] not in UPDATABLE:
                    raise MwaaError(400, "ValidationException",
                                    f"Environment {name} cannot be updated while its status is {env['Status']}")  # fmt: skip
                updated = {**env, **body}
                self._validate_versions(updated)
                updated["LastUpdate"] = {"Status": "PENDING", "CreatedAt": now, "Source": "UPDATE"}
                updated["UpdateCount"] = env.get("UpdateCount", 0) + 1
                updated["Status"] = "UPDATING"
                updated["_updated_by"] = time.monotonic() + UPDATE_SECONDS
                self.environments[name] = updated
                return 200, {"Arn": arn}
            raise MwaaError(405, "ValidationException", f"{method} not supported")


class MwaaMiddleware:
    """Route requests signed for the ``airflow`` service to :class:`MwaaApi`."""

    def __init__(self, app: Callable, api: MwaaApi | None = None):
        self.app = app
        self.api = api or MwaaApi()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        scope = re.search(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        if not scope or scope.group(2) != "airflow":
            return self.app(environ, start_response)
        match = _PATH.match(environ.get("PATH_INFO", ""))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            if not match:
                raise MwaaError(404, "ResourceNotFoundException", "unknown path")
            status, payload = self.api.handle(
                environ["REQUEST_METHOD"], match.group("name"), json.loads(raw or b"{}"), scope.group(1)
            )
            headers = [("Content-Type", "application/json")]
        except MwaaError as err:
            status, payload = err.status, {"message": err.message}
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", err.code)]
        data = json.dumps(payload, default=str).encode()
        start_response(f"{status} {'OK' if status == 200 else 'Error'}", headers + [("Content-Length", str(len(data)))])
        return [data]
