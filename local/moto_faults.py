"""Fault injection for the local stack: what moto cannot be told through AWS APIs.

``POST /_local/zone-state`` with ``{"zone": "us-east-1b", "state": "impaired"}`` sets the
state DescribeAvailabilityZones reports for that zone (``available`` puts it back). AWS
has no API to impair a zone, so tests and benchmarks use this to show the operators
avoid one. Served by the local moto server only, as a WSGI middleware.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

ZONE_STATE_PATH = "/_local/zone-state"


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
        if environ.get("PATH_INFO") != ZONE_STATE_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        ok = set_zone_state(str(body.get("zone")), str(body.get("state", "available")))
        start_response("200 OK" if ok else "404 Not Found", [("Content-Type", "application/json")])
        return [json.dumps({"zone": body.get("zone"), "found": ok}).encode()]


def post_zone_state(endpoint_url: str, zone: str, state: str) -> None:
    """Client side, for tests and benchmarks."""
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint_url}{ZONE_STATE_PATH}", data=json.dumps({"zone": zone, "state": state}).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()
