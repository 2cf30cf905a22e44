"""HTTP keep-alive on a real `anvil-dev serve`: calls share a connection when it is safe, and a
request whose body was left unread closes its connection, so no next request is misread. A plain
call's response is written by the worker itself, with the same head the host writes."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import ServerProcess, write_module

ECHO = """
    import anvil.server

    @anvil.server.callable
    def echo(x):
        return x
"""


WAITS = """
    import os, time
    import anvil.server

    @anvil.server.callable
    def when_released(path, fail, size=0):
        # Says it has arrived, then waits for the test to create `path`.
        open(path + ".arrived", "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.005)
        if fail:
            raise ValueError("failed as asked")
        return "x" * size if size else "released"
"""


def _body(x: object, command: str = "echo") -> str:
    args = x if isinstance(x, list) else [x]
    return json.dumps({"command": command, "args": args, "kwargs": {}, "objects": []})


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


@contextlib.contextmanager
def _host_stopped(srv: ServerProcess) -> Iterator[None]:
    """The host process stopped (SIGSTOP): only its workers can answer meanwhile."""
    os.kill(srv.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(srv.proc.pid, signal.SIGCONT)


def _wait_arrived(release: Path) -> None:
    deadline = time.monotonic() + 30
    while not release.with_name(release.name + ".arrived").exists():
        assert time.monotonic() < deadline, "the call never reached the worker"
        time.sleep(0.01)


def _new_session(srv: ServerProcess, tmp_path: Path) -> tuple[http.client.HTTPConnection, str]:
    """A kept-alive connection and its session's cookie (a new session's cookie is the host's to set)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    (tmp_path / "open").touch()
    first = _post(conn, _body([str(tmp_path / "open"), False], "when_released"))
    cookie = first.getheader("Set-Cookie", "").split(";")[0]
    assert first.status == 200 and cookie
    return conn, cookie


@pytest.mark.parametrize("flag", ["--fresh", "--keep-server-running"])
def test_the_worker_writes_a_plain_response_itself_and_leaves_a_failure_to_the_host(
    app_dir: Path, server_factory: Callable[..., ServerProcess], tmp_path: Path, flag: str
) -> None:
    """Shown with the host stopped as the call finishes: a success still reaches the client, from
    the worker; a failure's response waits for the host, which prints and records it."""
    write_module(app_dir, "Waits", WAITS)
    srv = server_factory(app_dir, flag)
    conn, cookie = _new_session(srv, tmp_path)
    for fail in (False, True):
        release = tmp_path / f"release-{fail}"
        conn.request(
            "POST",
            "/_/call",
            _body([str(release), fail], "when_released"),
            {"Content-Type": "application/json", "Cookie": cookie},
        )
        _wait_arrived(release)
        assert conn.sock is not None
        with _host_stopped(srv):
            release.touch()
            if not fail:
                conn.sock.settimeout(10)
                resp = conn.getresponse()
                assert resp.status == 200 and json.loads(resp.read())["response"] == "released"
            else:
                conn.sock.settimeout(1.0)
                with pytest.raises(TimeoutError):
                    conn.sock.recv(1, socket.MSG_PEEK)
        if fail:
            conn.sock.settimeout(30)
            resp = conn.getresponse()
            failure = json.loads(resp.read())
            assert resp.status == 500 and failure["error"]["type"] == "ValueError"
    srv.wait_for_output("when_released failed")
    assert json.loads(_post_read(conn, _body("after")))["response"] == "after"


@pytest.mark.parametrize("flag", ["--fresh", "--keep-server-running"])
def test_the_worker_writes_a_response_many_times_the_connections_buffers(
    app_dir: Path, server_factory: Callable[..., ServerProcess], tmp_path: Path, flag: str
) -> None:
    """3 MB, read while the host is stopped: the worker's write waits on the client as it reads."""
    write_module(app_dir, "Waits", WAITS)
    srv = server_factory(app_dir, flag)
    conn, cookie = _new_session(srv, tmp_path)
    release = tmp_path / "release"
    size = 3 << 20
    conn.request(
        "POST",
        "/_/call",
        _body([str(release), False, size], "when_released"),
        {"Content-Type": "application/json", "Cookie": cookie},
    )
    _wait_arrived(release)
    assert conn.sock is not None
    with _host_stopped(srv):
        release.touch()
        conn.sock.settimeout(20)
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["response"] == "x" * size
    assert json.loads(_post_read(conn, _body("after")))["response"] == "after"


def test_the_response_a_worker_writes_is_the_one_the_host_writes(
    app_dir: Path, server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """One call over HTTP/1.0, whose response is the host's (its connection closes), and over a
    kept-alive connection with the host stopped, so the worker's: the same status line, headers
    (but for the date and the connection) and body."""
    write_module(app_dir, "Waits", WAITS)
    srv = server_factory(app_dir, "--keep-server-running")
    _, cookie = _new_session(srv, tmp_path)

    def call(s: socket.socket, version: str, release: Path) -> None:
        body = _body([str(release), False], "when_released")
        s.sendall(
            f"POST /_/call {version}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Cookie: {cookie}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
        )

    def response(s: socket.socket) -> tuple[list[str], bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536) or pytest.fail(f"the connection ended after {data!r}")
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        length = int(next(line for line in lines if line.startswith("Content-Length:")).split(":")[1])
        while len(body) < length:
            body += s.recv(65536) or pytest.fail("the connection ended inside the body")
        return [line for line in lines if not line.startswith(("Date:", "Connection:"))], body

    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        call(s, "HTTP/1.0", tmp_path / "open")
        host_lines, host_body = response(s)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        release = tmp_path / "release"
        call(s, "HTTP/1.1", release)
        _wait_arrived(release)
        with _host_stopped(srv):
            release.touch()
            s.settimeout(10)
            worker_lines, worker_body = response(s)
    assert worker_lines == host_lines and worker_body == host_body
    assert worker_lines[0] == "HTTP/1.1 200 OK" and json.loads(worker_body)["response"] == "released"
