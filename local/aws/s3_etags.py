"""ETags of SSE-KMS objects are not the MD5 of their data, as on S3; moto's always are.

S3 (Amazon S3 API Reference, Common Response Headers, ``ETag``; User Guide, "Checking object
integrity"): an object encrypted with SSE-KMS (or DSSE-KMS, or SSE-C) has an ETag that is not
an MD5 digest of its data. Buckets with a KMS default encryption are a common MWAA setup, and
code that decides "unchanged" by comparing an ETag with the file's MD5 re-uploads everything
there, every time. moto applies the bucket's default encryption but still reports the MD5, so
such code looks right locally. Here an SSE-KMS object's ETag is an opaque value of the same
shape, different for each write (conditional requests with it work as on S3).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
_original: dict[str, Any] = {}


def apply() -> None:
    """Opaque ETags for KMS-encrypted objects in moto's S3 (idempotent; :func:`undo` restores)."""
    from moto.s3.models import FakeKey

    if _original:
        return
    _original["etag"] = FakeKey.etag

    def etag(self: Any) -> str:
        plain = _original["etag"].fget(self)
        if self.encryption not in KMS_ALGORITHMS or "-" in plain:  # multipart ETags are no MD5 anyway
            return plain
        salt = self.__dict__.setdefault("_local_kms_etag_salt", uuid.uuid4().bytes)
        return f'"{hashlib.md5(plain.encode() + salt).hexdigest()}"'

    FakeKey.etag = property(etag)


def undo() -> None:
    from moto.s3.models import FakeKey

    if _original:
        FakeKey.etag = _original.pop("etag")
