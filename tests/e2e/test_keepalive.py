"""HTTP keep-alive on a real `anvil-dev serve`: calls share a connection when it is safe, and a
request whose body was left unread closes its connection, so no next request is misread."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable
from pathlib import Path

from helpers import ServerProcess, write_module

ECHO = """
    import anvil.server

    @anvil.server.callable
    def echo(x):
        return x
"""


def _body(x: object) -> str:
    return json.dumps({"command": "echo", "args": [x], "kwargs": {}, "objects": []})


def _post(conn: http.client.HTTPConnection, body: str, path: str = "/_/call") -> http.client.HTTPResponse:
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp


def test_calls_share_one_connection_and_refusals_keep_it(
    app_dir: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    write_module(app_dir, "Echo", ECHO)
    srv = server_factory(app_dir)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    first = _post(conn, _body(1))
    assert first.status == 200 and first.getheader("Connection") is None
    assert conn.sock is not None
    local = conn.sock.getsockname()
    bad = _post(conn, "{not json")  # refused, but its body was read: the connection stays
    assert bad.status == 400 and bad.getheader("Connection") is None
    for i in range(3):
        conn.request("POST", "/_/call", _body(i), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert json.loads(resp.read())["response"] == i
    assert conn.sock is not None and conn.sock.getsockname() == local  # never reconnected


def test_a_request_whose_body_was_not_read_closes_its_connection(
    app_dir: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    write_module(app_dir, "Echo", ECHO)
    srv = server_factory(app_dir)
    # A body declared too large is refused before it is read; a second request is sent behind it
    # on the same connection, inside what the server could mistake for the first one's body.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        follow = (
            "POST /_/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(_body(7))}\r\n\r\n{_body(7)}"
        )
        s.sendall(
            b"POST /_/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 999999999\r\n\r\n" + follow.encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 413") and "Connection: close" in head
    assert data.count(b"HTTP/1.1 ") == 1  # the bytes behind it were not taken for a request
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    assert json.loads(_post_read(conn, _body("still serving")))["response"] == "still serving"


def _post_read(conn: http.client.HTTPConnection, body: str) -> bytes:
    conn.request("POST", "/_/call", body, {"Content-Type": "application/json"})
    return conn.getresponse().read()
