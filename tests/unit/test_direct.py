"""A response the child writes itself (anvil_dev.engine.direct): which replies it writes, the
claim that makes one writer, and the host's side when what was written is not known."""

from __future__ import annotations

import email.utils
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from anvil_dev.engine import direct
from anvil_dev.engine.child import _write_directly
from anvil_dev.engine.direct import DirectResponse
from anvil_dev.engine.frames import Frame, encode_message, with_output
from anvil_dev.host.keepalive import response_sent
from anvil_dev.protocol import Reply, error

from helpers import already_received

DATE = "Thu, 03 Dec 2026 08:00:00 GMT"
HEAD = f"HTTP/1.1 200 OK\r\nServer: test\r\nDate: {DATE}\r\n"


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    theirs.settimeout(2)
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.fixture
def frame_for() -> Iterator[Callable[..., tuple[Frame, DirectResponse]]]:
    """A CALL frame as the child gets it (copies of the client's socket and of the claim), and
    the host's offer; all closed afterwards, as `ChildServer._run_call` and the route do."""
    made: list[tuple[Frame, DirectResponse]] = []

    def make(ours: socket.socket, at: int | None = None) -> tuple[Frame, DirectResponse]:
        offer = DirectResponse.offer(ours, HEAD, int(time.time()) if at is None else at)
        assert offer is not None
        fds = (os.dup(ours.fileno()), os.dup(offer.claim))
        made.append((Frame({"type": "CALL", "id": "c1", **offer.frame_fields()}, b"", fds), offer))
        return made[-1]

    yield make
    for frame, offer in made:
        for fd in frame.fds:
            os.close(fd)
        offer.close()


def body_of(message: dict[str, Any]) -> bytes:
    return with_output(encode_message(message), "")


@pytest.mark.parametrize("late", [False, True], ids=["in the second offered", "seconds later"])
def test_a_plain_reply_is_written_whole_with_the_head_the_host_writes(connection, frame_for, late) -> None:
    ours, theirs = connection
    frame, offer = frame_for(ours, at=int(time.time()) - 5 if late else None)
    body = body_of({"response": [1, "é"], "objects": []})
    started = time.time()
    assert _write_directly(frame, Reply(body))
    head, got = theirs.recv(65536).split(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[:2] == ["HTTP/1.1 200 OK", "Server: test"]
    assert lines[3:] == ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if late:  # the call ended in a later second than the host's Date: the child dates it
        date = email.utils.parsedate_to_datetime(lines[2].removeprefix("Date: ")).timestamp()
        assert int(started) <= date <= time.time()
    else:
        assert lines[2] == f"Date: {DATE}" or int(time.time()) != int(started)  # a second may turn
    assert got == body and json.loads(got)["response"] == [1, "é"]
    assert not offer.take_for_host()  # the child took the claim


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body_of(error("ValueError", "no")), error=error("ValueError", "no")["error"]),
        Reply(body_of({"response": None, "objects": []}), has_media=True),  # the host adds the URLs
        Reply(body_of({"response": None, "objects": []}), session_id="s2"),  # the host sets the cookie
    ],
    ids=["error", "media", "login"],
)
def test_a_reply_the_host_must_add_to_is_left_to_it(connection, frame_for, reply) -> None:
    ours, theirs = connection
    frame, offer = frame_for(ours)
    assert not _write_directly(frame, reply)
    assert already_received(theirs) == b""
    assert offer.take_for_host()  # the claim is still there for the host


def test_a_body_many_times_the_sockets_buffer_is_written_whole_as_the_client_reads(connection, frame_for) -> None:
    ours, theirs = connection
    frame, _ = frame_for(ours)
    body = body_of({"response": "x" * (4 << 20), "objects": []})  # a socketpair holds ~200 KB
    received = bytearray()

    def read_all() -> None:
        while chunk := theirs.recv(1 << 20):
            received.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    try:
        assert _write_directly(frame, Reply(body))
    finally:
        ours.shutdown(socket.SHUT_WR)  # the reader's EOF
        reader.join(10)
    head, got = bytes(received).split(b"\r\n\r\n", 1)
    assert f"Content-Length: {len(body)}".encode() in head and got == body


@pytest.mark.parametrize("first", [10, 150], ids=["in the head", "in the body"])
def test_a_write_cut_short_goes_on_where_it_stopped(connection, frame_for, monkeypatch, first) -> None:
    """As a blocking send interrupted by a signal: the first writev sends only `first` bytes."""
    ours, theirs = connection
    frame, _ = frame_for(ours)
    body = body_of({"response": "y" * 300, "objects": []})
    real_writev = os.writev
    monkeypatch.setattr(direct.os, "writev", lambda fd, parts: real_writev(fd, [b"".join(parts)[:first]]))
    assert _write_directly(frame, Reply(body))
    ours.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := theirs.recv(65536):
        received += chunk
    head, got = received.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and got == body


def test_a_client_that_stops_reading_holds_the_write_until_the_host_shuts_the_connection(connection, frame_for) -> None:
    ours, _ = connection
    frame, offer = frame_for(ours)
    results: list[bool] = []
    writer = threading.Thread(
        target=lambda: results.append(_write_directly(frame, Reply(body_of({"response": "x" * (4 << 20)}))))
    )
    writer.start()
    writer.join(0.25)
    assert writer.is_alive()  # the client reads nothing, so 4 MB cannot have left
    ours.shutdown(socket.SHUT_RDWR)  # the host's grace ran out: response_sent(broken=True)
    writer.join(10)
    assert results == [False]  # the write failed part way
    assert not offer.take_for_host()  # and the claim is the child's: the host breaks the connection


def test_a_write_has_progressed_when_the_client_has_acknowledged_enough_more_of_the_connection() -> None:
    """Measured by TCP_INFO's count of bytes the client acknowledged (its kernel acknowledges what
    reaches its buffer): the host's test, past a deadline, of a slow client against a stalled one."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        with client, conn:
            offer = DirectResponse.offer(conn, HEAD, 0)
            assert offer is not None

            def sent_and_acknowledged(n: int) -> None:
                start = direct._bytes_acked(conn)
                assert start is not None
                conn.sendall(b"x" * n)
                deadline = time.monotonic() + 5
                while (direct._bytes_acked(conn) or 0) < start + n:
                    assert time.monotonic() < deadline, f"the client never acknowledged the {n} bytes"
                    time.sleep(0.01)

            try:
                assert offer.write_progressed()  # the first look
                assert not offer.write_progressed()  # nothing sent since
                sent_and_acknowledged(1000)
                assert not offer.write_progressed()  # too little to count: a stalled client's trickle
                sent_and_acknowledged(direct.MIN_PROGRESS_BYTES)
                assert offer.write_progressed()
                assert not offer.write_progressed()
            finally:
                offer.close()


def test_where_tcp_info_cannot_tell_a_write_gets_one_grace(connection) -> None:
    ours, _ = connection  # a socketpair: no TCP_INFO
    offer = DirectResponse.offer(ours, HEAD, 0)
    assert offer is not None
    ours.sendall(b"x")
    assert offer.write_progressed() and not offer.write_progressed()
    offer.close()


def test_a_child_finding_the_claim_taken_writes_nothing(connection, frame_for) -> None:
    ours, theirs = connection
    frame, offer = frame_for(ours)
    assert offer.take_for_host()  # the host answered first (a timeout)
    assert not _write_directly(frame, Reply(body_of({"response": 1, "objects": []})))
    assert already_received(theirs) == b""


def test_settle_leaves_the_hosts_replies_to_it_and_breaks_a_connection_the_child_took(connection) -> None:
    ours, _ = connection
    timeout = Reply.from_message(error("anvil.server.TimeoutError", "late"))
    offer = DirectResponse.offer(ours, HEAD, 0)
    assert offer is not None
    assert not direct.settle(offer, timeout).connection_broken  # nobody took it: the host writes
    other = DirectResponse.offer(ours, HEAD, 0)
    assert other is not None and direct._take(other.claim)  # the child took it, then died
    assert direct.settle(
        other, Reply.from_message(error("anvil.server.ExecutionTerminatedError", "gone"))
    ).connection_broken
    offer.close()
    other.close()


class _Handler:
    """The parts of KeepAliveRequestHandler that response_sent uses."""

    def __init__(self, conn: socket.socket) -> None:
        self.connection = conn
        self.close_connection = False
        self.logged: list[int] = []

    def log_request(self, code: int) -> None:
        self.logged.append(code)


def test_a_response_sent_elsewhere_is_not_written_and_a_broken_one_ends_the_connection(connection) -> None:
    ours, theirs = connection
    handler = _Handler(ours)
    environ: dict[str, Any] = {"anvil_dev.request_handler": handler}
    response_sent(environ)
    assert environ["anvil_dev.response_sent"] and not handler.close_connection and handler.logged == [200]
    response_sent(environ, broken=True)
    assert handler.close_connection
    assert theirs.recv(1) == b""  # shut down for every copy of the socket: the client sees its end
