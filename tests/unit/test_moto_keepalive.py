"""Keep-alive on the local moto server: requests share a connection and never bleed into each other."""

import http.client
import socket
import threading

import pytest
from werkzeug.serving import make_server

from local.aws import keepalive as moto_keepalive
from local.aws.keepalive import KeepAliveRequestHandler


def app(environ, start_response):
    """Paths choose a behaviour; every answer names the request it belongs to."""
    path = environ["PATH_INFO"]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":  # no Content-Length: the framing has to be chunked
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one,", b"", b"two"])
    if path == "/fail":
        raise RuntimeError("boom")
    # Ignores any body: the server has to skip it before the next request.
    text = f"{environ['REQUEST_METHOD']} {path}".encode()
    start_response("200 OK", [("Content-Length", str(len(text)))])
    return [text]


@pytest.fixture()
def server():
    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=KeepAliveRequestHandler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


def _conn(server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)


def _get(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp, resp.read()


def test_requests_share_one_connection(server):
    conn = _conn(server)
    _, first = _get(conn, "GET", "/a")
    sock = conn.sock
    resp, second = _get(conn, "GET", "/b")
    assert (first, second) == (b"GET /a", b"GET /b")
    assert conn.sock is sock  # http.client reconnects (new socket) when the server closes
    assert resp.getheader("Connection") is None


def test_an_unread_body_is_skipped_before_the_next_request(server):
    conn = _conn(server)
    payload = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n" * 50_000  # ~1.7 MB, looks like requests
    _, first = _get(conn, "PUT", "/ignore", body=payload)
    _, second = _get(conn, "GET", "/next")
    _, echoed = _get(conn, "POST", "/echo", body=b"abc")
    assert (first, second, echoed) == (b"PUT /ignore", b"GET /next", b"abc")


def test_the_app_cannot_read_past_its_body(server):
    conn = _conn(server)
    _, echoed = _get(conn, "POST", "/echo", body=b"12345")
    _, after = _get(conn, "GET", "/after")
    assert (echoed, after) == (b"12345", b"GET /after")


def test_responses_without_length_are_chunked_and_head_has_no_body(server):
    conn = _conn(server)
    resp, body = _get(conn, "GET", "/stream")
    assert (resp.getheader("Transfer-Encoding"), body) == ("chunked", b"one,two")
    resp, body = _get(conn, "HEAD", "/x")
    assert (resp.getheader("Content-Length"), body) == ("7", b"")
    _, after = _get(conn, "GET", "/after")
    assert after == b"GET /after"


def test_http10_and_chunked_uploads_get_one_request_per_connection(server):
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as s:
        s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        reply = b"".join(iter(lambda: s.recv(65536), b""))  # ends only when the server closes
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"GET /old")

    conn = _conn(server)
    conn.request("POST", "/echo", body=iter([b"ab", b"cd"]), encode_chunked=True)
    resp = conn.getresponse()
    assert (resp.read(), resp.getheader("Connection")) == (b"abcd", "close")


def test_an_app_error_answers_500_and_closes(server):
    conn = _conn(server)
    resp, body = _get(conn, "GET", "/fail")
    assert (resp.status, body, resp.getheader("Connection")) == (500, b"Internal Server Error", "close")


def test_a_huge_unread_body_closes_instead_of_skipping(server, monkeypatch):
    monkeypatch.setattr(moto_keepalive, "_SKIP_LIMIT", 1000)
    conn = _conn(server)
    resp, body = _get(conn, "PUT", "/ignore", body=b"x" * 5000)
    assert (body, resp.getheader("Connection")) == (b"PUT /ignore", "close")
