"""A lease (mutual exclusion with expiry) on one S3 object, using conditional writes.

Several Airflow workers (MWAA runs many) may start the same Glue job at once; between
UpdateJob (which connection goes first) and StartJobRun no other task may rewrite the
job. S3's conditional writes give a lock that needs nothing beyond the bucket MWAA
already uses: ``PutObject`` with ``If-None-Match: *`` creates the lease only when no one
holds it, and ``If-Match: <etag>`` takes over an expired lease only if nobody else did
first. A holder that dies leaves a lease that expires after ``ttl``. Release is a
``DeleteObject`` with ``If-Match`` on the holder's ETag, so it never deletes a lease someone
else has taken over.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError


class LeaseTimeout(TimeoutError):
    """The lease stayed with another holder for longer than we were willing to wait."""


def _precondition_failed(err: ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code", "")
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


@dataclass
class S3Lease:
    s3: Any
    bucket: str
    key: str
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    ttl: timedelta = timedelta(minutes=5)
    wait: timedelta = timedelta(minutes=15)
    poll_seconds: float = 0.5
    _etag: str | None = None

    def _body(self) -> bytes:
        expires = datetime.now(UTC) + self.ttl
        return json.dumps({"owner": self.owner, "expires": expires.isoformat()}).encode()

    def _conditional_put(self, **condition: str) -> bool:
        """Write the lease only if ``condition`` (IfNoneMatch / IfMatch) holds; False if not."""
        try:
            self._etag = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(), **condition)["ETag"]
            return True
        except ClientError as err:
            if _precondition_failed(err):
                return False
            raise

    def _try_create(self) -> bool:
        return self._conditional_put(IfNoneMatch="*")

    def _try_take_expired(self) -> bool:
        try:
            current = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return False  # released meanwhile; the next create attempt will tell
            raise
        holder = json.loads(current["Body"].read() or b"{}")
        expires = datetime.fromisoformat(holder.get("expires", "1970-01-01T00:00:00+00:00"))
        if expires > datetime.now(UTC):
            return False
        return self._conditional_put(IfMatch=current["ETag"])

    def acquire(self) -> float:
        """Block until the lease is ours; return the seconds spent waiting."""
        start = time.monotonic()
        deadline = start + self.wait.total_seconds()
        while True:
            if self._try_create() or self._try_take_expired():
                return time.monotonic() - start
            if time.monotonic() > deadline:
                raise LeaseTimeout(
                    f"s3://{self.bucket}/{self.key} stayed locked for {self.wait}; "
                    "another run holds it (it expires by itself after its ttl)"
                )
            time.sleep(self.poll_seconds * (0.5 + random.random()))

    def release(self) -> None:
        """Delete the lease if it is still ours (an expired one may have been taken over).

        One conditional request (``DeleteObject`` with ``If-Match``: S3's conditional deletes):
        a check then an unconditional delete would remove a lease another holder took over
        between the two.
        """
        if self._etag is None:
            return
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self._etag)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if not (_precondition_failed(err) or code in ("NoSuchKey", "404")):
                raise  # taken over or gone: not ours to delete; anything else is a real error
        finally:
            self._etag = None

    def __enter__(self) -> S3Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
