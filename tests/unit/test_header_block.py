"""The host's header parse (`keepalive.read_headers`) against http.client's, which it stands in for
on every request: the same headers, in the same order, for any block; the same limits."""

from __future__ import annotations

import http.client
import io
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.serving import WSGIRequestHandler, make_server

from anvil_dev.host.keepalive import KeepAliveRequestHandler, read_headers

TYPICAL = (
    b"Host: 127.0.0.1:8000\r\nUser-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\n"
    b"Accept: */*\r\nConnection: keep-alive\r\nCookie: anvil-dev-session=eyJ.abc.def\r\n"
    b"Content-Length: 46\r\nContent-Type: application/json\r\n\r\n"
)


def both(block: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    ours = read_headers(io.BytesIO(block), http.client.HTTPMessage)
    theirs = http.client.parse_headers(io.BytesIO(block), _class=http.client.HTTPMessage)
    assert type(ours) is type(theirs)
    return ours.items(), theirs.items()


@pytest.mark.parametrize(
    "block",
    [
        TYPICAL,
        b"\r\n",
        b"",
        b"Host: a\nX-Bare-Newline: b\n\n",
        b"Host: a\r\nX-Trailing:  spaced  \t \r\n\r\n",
        b"Host: a\r\nX-Empty:\r\nX-Blank: \t\r\n\r\n",
        b"Host: a\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n",
        b"Host: a\r\nX-Latin: caf\xe9\r\n\r\n",
        b"Host: a\r\nX-Folded: one\r\n  two\r\n\r\n",  # obsolete line folding
        b"Host: a\r\n: no name\r\nAfter: x\r\n\r\n",
        b"Host: a\r\nno colon here\r\nAfter: x\r\n\r\n",  # the email package takes the rest as the body
        b"Host: a\r\nX-Cr: one\rtwo\r\nAfter: x\r\n\r\n",
        b"Host: a\r\nX-Ff: one\x0ctwo\r\nAfter: x\r\n\r\n",
        b"Host: a\r\nX-Nel: one\x85two\r\nAfter: x\r\n\r\n",
        b"Host: a\r\nX-Cr-Cr: one\r\r\nAfter: x\r\n\r\n",
        b"From me\r\nHost: a\r\n\r\n",
        b"Host: a\r\nX-Eof: no line end",
        b"Host : spaced name\r\n\r\n",
        b"Host: a\r\nX-Two:colons:here\r\n\r\n",
    ],
)
def test_the_same_headers_as_http_client(block: bytes) -> None:
    ours, theirs = both(block)
    assert ours == theirs


# Lines made of the characters that matter to a header parse, and plain ones.
_LINE_CHARS = st.sampled_from(list(b"Ab-_:; \t\r\x0b\x0c\x1c\x85\xe9\x00\x7f"))
_LINES = st.lists(
    st.one_of(
        st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")),
        st.lists(_LINE_CHARS, max_size=12).map(bytes),
        st.sampled_from([b"Host: a", b"X-A:b", b"From x", b" folded", b"\tfolded", b": v"]),
    ).flatmap(lambda body: st.sampled_from([body + b"\r\n", body + b"\n"])),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(lines=_LINES, end=st.sampled_from([b"\r\n", b"\n", b""]))
def test_any_block_parses_as_http_client_parses_it(lines: list[bytes], end: bytes) -> None:
    block = b"".join(lines) + end
    ours, theirs = both(block)
    assert ours == theirs, block


def test_the_limits_are_http_clients() -> None:
    # http.client counts the block's end as a line: 99 headers are the most it takes.
    for count, fails in ((99, False), (100, True)):
        block = b"".join(b"X-%d: v\r\n" % i for i in range(count)) + b"\r\n"
        for parse in (read_headers, http.client.parse_headers):
            if fails:
                with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
                    parse(io.BytesIO(block), http.client.HTTPMessage)
            else:
                assert len(parse(io.BytesIO(block), http.client.HTTPMessage)) == count
    longest = b"X-Long: " + b"v" * (65536 - 10) + b"\r\n"  # a line of 65,536 bytes, its end in them
    ours, theirs = both(longest + b"\r\n")
    assert ours == theirs and len(ours[0][1]) == 65536 - 10
    for parse in (read_headers, http.client.parse_headers):
        with pytest.raises(http.client.LineTooLong):
            parse(io.BytesIO(b"X" + longest + b"\r\n"), http.client.HTTPMessage)


@pytest.mark.parametrize("tail", [b"\rx", b"\x0b", b"\x85"])
def test_a_long_run_of_blanks_is_parsed_in_one_pass(tail: bytes) -> None:
    """A value of 65,000 blanks and then a line break where none may be: the regex must not try each
    way of splitting the blanks (this took minutes when it did)."""
    ours, theirs = both(b"X-Blanks:" + b" \t" * 32_500 + tail + b"\r\nAfter: x\r\n\r\n")
    assert ours == theirs


def test_the_limits_are_read_where_http_client_keeps_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps raise http.client's header limit to take more headers: the host's parse honours it."""
    monkeypatch.setattr(http.client, "_MAXHEADERS", 200, raising=False)
    many = b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n"
    assert len(read_headers(io.BytesIO(many), http.client.HTTPMessage)) == 150


def test_what_follows_the_block_is_left_unread() -> None:
    stream = io.BytesIO(TYPICAL + b'{"command": "add"}')
    read_headers(stream, http.client.HTTPMessage)
    assert stream.read() == b'{"command": "add"}'


def _echo_app(environ: dict, start_response: Any) -> list[bytes]:
    """The request as the app sees it: its method, path, URI, protocol and headers."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    seen = [environ[k] for k in ("REQUEST_METHOD", "PATH_INFO", "RAW_URI", "SERVER_PROTOCOL")]
    seen += sorted(f"{k}={v}" for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_")))
    body = "\n".join(seen).encode("utf-8", "surrogateescape")
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture(scope="module")
def two_servers() -> Iterator[tuple[int, int]]:
    """werkzeug's server with its own handler, and with ours."""
    servers = [
        make_server("127.0.0.1", 0, _echo_app, threaded=True, request_handler=handler)
        for handler in (WSGIRequestHandler, KeepAliveRequestHandler)
    ]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield servers[0].server_port, servers[1].server_port
    for s in servers:
        s.shutdown()
        s.server_close()


def _exchange(port: int, request: bytes) -> bytes:
    """What the server answers to `request` before it closes the connection or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    # The Date header differs between two answers; werkzeug's handler also says "Connection: close"
    # on every response, which ours leaves out where the connection could be kept.
    lines = [line for line in answer.split(b"\r\n") if not line.startswith((b"Date:", b"Connection:", b"Server:"))]
    return b"\r\n".join(lines)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /plain HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n",
        b"POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi",
        b"GET /folded HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
        b"GET /latin HTTP/1.1\r\nHost: a\r\nX-Latin: caf\xe9\r\n\r\n",
        b"GET //twice HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /old HTTP/1.0\r\nHost: a\r\n\r\n",
        b"GET /nine\r\n",
        b"POST /nine\r\n",
        b"GET /bad HTTP/1.x\r\nHost: a\r\n\r\n",
        b"GET /two HTTP/2.0\r\nHost: a\r\n\r\n",
        b"GET /words and more HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /four words HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /expect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
        b"GET /close HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET /many HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
        b"GET /long HTTP/1.1\r\nX-Long: " + b"v" * 70000 + b"\r\n\r\n",
        b"\r\n",
    ],
)
def test_the_server_answers_as_werkzeugs_own_handler(two_servers: tuple[int, int], request_bytes: bytes) -> None:
    theirs, ours = (_exchange(port, request_bytes) for port in two_servers)
    assert ours == theirs


@pytest.mark.parametrize("connection", ["close", "Close"])
def test_connection_close_is_honoured(two_servers: tuple[int, int], connection: str) -> None:
    """A client that asks for the connection to close has it closed after the response, which says so."""
    request = f"GET /close HTTP/1.1\r\nHost: a\r\nConnection: {connection}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", two_servers[1]), timeout=5) as sock:
        sock.sendall(request)  # the write side left open: only the server can end this
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in answer


@pytest.mark.parametrize("version", [b"HTTP/+1.1", b"HTTP/1.1_0", b"HTTP/1.-1", b"HTTP/00000000001.1", b"HTTP/1.1.1"])
def test_a_version_that_is_not_plain_digits_is_refused(two_servers: tuple[int, int], version: bytes) -> None:
    """As Python 3.12 (and later 3.11 releases) refuse them; int() alone takes "+1" and "1_0"."""
    answer = _exchange(two_servers[1], b"GET / " + version + b"\r\nHost: a\r\n\r\n")
    assert b"Error code: 400" in answer and b"Bad request version" in answer
