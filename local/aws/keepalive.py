"""HTTP/1.1 keep-alive for the local moto server.

Werkzeug's development server, which moto's server mode runs on, answers every request
with ``Connection: close``: each AWS call then pays a new TCP connection on both sides
and a new server thread (a fifth of the server's CPU on small EC2 and Glue calls), and
Spark's S3 reads of many small files reconnect for every ranged GET. Werkzeug closes
because ``http.server`` cannot tell where an unread request body ends. This handler
knows: the body is the ``Content-Length`` bytes after the headers, handed to the app
through a reader that stops there, and whatever the app left unread is skipped before
the next request on the connection is parsed. Chunked request bodies (rare from the AWS
SDKs) and HTTP/1.0 clients still get one request per connection.

Everything else (the environ, moto's preserved header names, request logging) is
werkzeug's and moto's own: only the response framing and the body hand-over differ.
"""

from __future__ import annotations

import io
import traceback
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler

_COPY = 1 << 20
# A request body left unread beyond this is not worth skipping: close instead.
_SKIP_LIMIT = 64 << 20


class RequestBody(io.RawIOBase):
    """The request's ``Content-Length`` bytes of ``rfile``, and no more."""

    def __init__(self, rfile: Any, length: int):
        self._rfile = rfile
        self.remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self.remaining <= 0:
            return 0
        view = memoryview(buf)[: min(len(buf), self.remaining)]
        n = self._rfile.readinto(view)
        if not n:  # the client went away mid-body
            raise ConnectionError("request body ended early")
        self.remaining -= n
        return n

    def skip_rest(self) -> None:
        """Read and drop what the app did not read."""
        scratch = bytearray(min(self.remaining, _COPY))
        while self.remaining > 0:
            self.readinto(scratch)


class KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler, keeping the connection open between requests."""

    # Small responses are written as headers then body; without this, Nagle's algorithm
    # holds the body back until the client's delayed ACK of the headers.
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        self.body = None
        if environ.get("wsgi.input_terminated"):  # chunked: framing is werkzeug's, end after
            self.close_connection = True
        else:
            self.body = RequestBody(self.rfile, int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BufferedReader(self.body, 1 << 16)
        response = _Response(self)
        try:
            result = self.server.app(environ, response.start)
            try:
                for data in result:
                    response.write(data)
                response.finish()
            finally:
                if hasattr(result, "close"):
                    result.close()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        except Exception:  # noqa: BLE001 - a failing app must not take the server down
            self.server.log("error", "Error on request:\n%s", traceback.format_exc())
            if response.started:
                self.close_connection = True  # a half-sent response cannot be mended
                return
            response = _Response(self)
            self.close_connection = True
            response.start("500 Internal Server Error", [("Content-Type", "text/plain"), ("Content-Length", "21")])
            response.write(b"Internal Server Error")
            response.finish()
            return
        if not self.close_connection:
            self.body.skip_rest()


class _Response:
    """One response's framing: Content-Length when the app gave one, else chunked (or close)."""

    def __init__(self, handler: KeepAliveRequestHandler):
        self.handler = handler
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.started = False
        self.chunked = False
        self.bodiless = False

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None):
        if exc_info and self.started:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, headers
        return self.write

    def _send_head(self) -> None:
        h = self.handler
        code_text, _, reason = (self.status or "500").partition(" ")
        code = int(code_text)
        h.send_response(code, reason)
        names = set()
        for name, value in self.headers:
            h.send_header(name, value)
            names.add(name.lower())
        self.bodiless = h.command == "HEAD" or 100 <= code < 200 or code in (204, 304)
        if "content-length" not in names and not self.bodiless:
            if h.request_version >= "HTTP/1.1":
                self.chunked = True
                h.send_header("Transfer-Encoding", "chunked")
            else:
                h.close_connection = True
        if h.body is not None and h.body.remaining > _SKIP_LIMIT:
            h.close_connection = True  # cheaper to reconnect than to read that much unasked
        if h.close_connection:
            h.send_header("Connection", "close")
        h.end_headers()
        self.started = True

    def write(self, data: bytes) -> None:
        if not self.started:
            self._send_head()
        if not data or self.bodiless:
            return
        if self.chunked:
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.handler.wfile.write(data)

    def finish(self) -> None:
        if not self.started:
            self._send_head()
        if self.chunked:
            self.handler.wfile.write(b"0\r\n\r\n")
