"""Fault injection for the local stack: what moto cannot be told through AWS APIs.

``POST /_local/zone-state`` with ``{"zone": "us-east-1b", "state": "impaired"}`` sets the
state DescribeAvailabilityZones reports for that zone (``available`` puts it back). AWS
has no API to impair a zone, so tests and benchmarks use this to show the operators
avoid one.

``POST /_local/s3-deny`` with ``{"bucket": "b", "action": "PutObjectTagging", "deny": true}``
makes S3 answer that action on that bucket with 403 AccessDenied, as AWS does for a role
missing the permission (moto does not enforce IAM by default). Only PutObjectTagging is
supported: it is the call Iceberg's S3FileIO makes to mark a file deleted, and whose failure
it only logs.

Served by the local moto server only, as a WSGI middleware.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

ZONE_STATE_PATH = "/_local/zone-state"
S3_DENY_PATH = "/_local/s3-deny"
DENIABLE = ("PutObjectTagging",)
_denied: set[tuple[str, str]] = set()
_ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                  b"<Message>Access Denied (local fault injection)</Message></Error>")  # fmt: skip


def set_zone_state(zone: str, state: str) -> bool:
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    found = False
    for zones in RegionsAndZonesBackend.zones.values():
        for z in zones:
            if z.name == zone:
                z.state = state
                found = True
    return found


class FaultInjection:
    def __init__(self, app: Callable):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if method == "POST" and path in (ZONE_STATE_PATH, S3_DENY_PATH):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if path == ZONE_STATE_PATH:
                ok = set_zone_state(str(body.get("zone")), str(body.get("state", "available")))
                reply = {"zone": body.get("zone"), "found": ok}
            else:
                ok = body.get("action") in DENIABLE and bool(body.get("bucket"))
                key = (str(body.get("bucket")), str(body.get("action")))
                (_denied.add if body.get("deny", True) else _denied.discard)(key)
                reply = {"denied": sorted(map(list, _denied)), "ok": ok}
            start_response("200 OK" if ok else "404 Not Found", [("Content-Type", "application/json")])
            return [json.dumps(reply).encode()]
        if _denied and method == "PUT" and self._is_put_tagging(environ):
            bucket = (path or "/").lstrip("/").split("/", 1)[0]
            if (bucket, "PutObjectTagging") in _denied:
                start_response("403 Forbidden", [("Content-Type", "application/xml")])
                return [_ACCESS_DENIED]
        return self.app(environ, start_response)

    @staticmethod
    def _is_put_tagging(environ: dict[str, Any]) -> bool:
        query = environ.get("QUERY_STRING") or ""
        return any(part.split("=", 1)[0] == "tagging" for part in query.split("&"))


def post_zone_state(endpoint_url: str, zone: str, state: str) -> None:
    """Client side, for tests and benchmarks."""
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint_url}{ZONE_STATE_PATH}", data=json.dumps({"zone": zone, "state": state}).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()


def post_s3_deny(endpoint_url: str, bucket: str, action: str = "PutObjectTagging", deny: bool = True) -> None:
    """Client side: make S3 refuse ``action`` on ``bucket`` (or accept it again)."""
    import urllib.request

    body = json.dumps({"bucket": bucket, "action": action, "deny": deny}).encode()
    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint_url}{S3_DENY_PATH}", data=body, method="POST"), timeout=10
    ).close()
