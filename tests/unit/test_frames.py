"""Frames between the host and its children: a REPLY carries the client's body as raw bytes."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from anvil_dev.engine.frames import (
    Channel,
    FrameTimeout,
    encode,
    encode_message,
    printed_output,
    to_reply,
    with_output,
)
from anvil_dev.protocol import Reply, error


@pytest.mark.parametrize("output", ["", "hello\n", 'say ,"output":"no"}\n', "\u00e9\x00"])
@pytest.mark.parametrize(
    "message",
    [
        {"response": {"output": "not this one", "x": [1, ',"output":"x"}']}, "objects": []},
        error("anvil.server.TimeoutError", "Server code took too long"),
        {},
    ],
)
def test_the_body_is_the_message_with_its_output_and_the_console_reads_only_the_output(message, output) -> None:
    body = with_output(encode_message(message), output)
    assert json.loads(body) == dict(message, output=output)
    assert printed_output(Reply(body)) == output


def test_a_reply_crosses_a_socket_as_header_and_payload() -> None:
    a, b = socket.socketpair()
    host, child = Channel(a), Channel(b)
    message = {"response": None, "objects": [{"path": ["response"], "type": ["DataMedia"], "id": "m1"}]}
    sent = Reply(with_output(encode_message(message), "hi"), session_id="s2", user="u@example.com", has_media=True)
    child.send_reply("c1", sent)
    frame = host.recv()
    assert frame is not None and frame.kind == "REPLY" and frame.head["id"] == "c1"
    got = to_reply(frame)
    assert (got.body, got.error, got.session_id, got.user, got.has_media) == (
        sent.body,
        None,
        "s2",
        "u@example.com",
        True,
    )
    failed = Reply.from_message(error("anvil.server.InternalError", "no"))
    child.send_reply("c2", failed)
    frame = host.recv()
    assert frame is not None and to_reply(frame).error == failed.error
    child.close()
    assert host.recv() is None
    host.close()


_FRAMES = [
    ({"type": "CALL", "id": "c1"}, b"p1"),
    ({"type": "REPLY", "id": "c2"}, b""),
    ({"type": "CALL", "id": "c3"}, b"x" * 300),
]
_BYTES = b"".join(encode(head, payload) for head, payload in _FRAMES)
_ONE = len(encode(*_FRAMES[0]))


@pytest.mark.parametrize(
    "cuts",
    [
        [_ONE, len(_BYTES) - len(encode(*_FRAMES[2]))],  # a frame a receive: read straight from it
        [],  # all three in one receive
        [3, 10, _ONE + 4, _ONE + 9, len(_BYTES) - 1],  # lengths, headers and payloads split
    ],
    ids=["one-a-receive", "all-at-once", "split"],
)
def test_frames_come_whole_however_their_bytes_arrive(cuts: list[int]) -> None:
    a, b = socket.socketpair()
    child = Channel(b)
    pieces = [_BYTES[i:j] for i, j in zip([0, *cuts], [*cuts, len(_BYTES)], strict=True)]

    def send() -> None:
        for piece in pieces:
            a.sendall(piece)
            time.sleep(0.005)  # each piece a receive of its own, most likely: either way the same frames

    sender = threading.Thread(target=send)
    sender.start()
    got = [child.recv(time.monotonic() + 10) for _ in _FRAMES]
    sender.join(10)
    assert [(f.head, f.payload) for f in got if f] == _FRAMES
    a.close()
    assert child.recv() is None
    child.close()


def test_a_frame_cut_short_by_its_deadline_is_read_whole_later() -> None:
    a, b = socket.socketpair()
    child = Channel(b)
    a.sendall(_BYTES[:5])
    with pytest.raises(FrameTimeout):
        child.recv(time.monotonic() + 0.05)
    a.sendall(_BYTES[5:])
    got = [child.recv(time.monotonic() + 10) for _ in _FRAMES]
    assert [(f.head, f.payload) for f in got if f] == _FRAMES
    a.close()
    child.close()


def test_descriptors_arrive_with_their_own_frame_in_order() -> None:
    """A CALL may carry the client's socket and the claim on its response: each frame gets the
    descriptors sent with it, whatever frames without any come between, and a large payload."""
    a, b = socket.socketpair()
    host, child = Channel(a), Channel(b, takes_fds=True)
    pipes = [os.pipe() for _ in range(3)]

    def send() -> None:  # from a thread: the frames need not fit in the socket's buffer
        host.send({"type": "CALL", "id": "c1"}, b"x" * 200_000, fds=(pipes[0][1], pipes[1][1]))
        host.send({"type": "INTERRUPT", "id": "c0"})
        host.send({"type": "CALL", "id": "c2"}, fds=(pipes[2][1],))

    sender = threading.Thread(target=send)
    sender.start()
    frames = [child.recv(time.monotonic() + 10) for _ in range(3)]
    sender.join(10)
    assert [(f.head["id"], len(f.payload), len(f.fds)) for f in frames if f] == [
        ("c1", 200_000, 2),
        ("c0", 0, 0),
        ("c2", 0, 1),
    ]
    # Each is a copy of the descriptor sent: what goes in at it comes out of its pipe.
    for (read_end, _), fd in zip(pipes, [*frames[0].fds, *frames[2].fds], strict=True):
        os.write(fd, b"ok")
        assert os.read(read_end, 2) == b"ok"
        os.close(fd)
    for r, w in pipes:
        os.close(r)
        os.close(w)
    host.close()
    child.close()


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to list open descriptors")
def test_a_frame_whose_descriptors_the_kernel_dropped_gets_none_and_the_next_frame_its_own() -> None:
    """More descriptors than a receive has room for: the kernel passes some and drops the rest
    (MSG_CTRUNC). That frame gets none, those passed are closed, and the next frame still gets
    the descriptor sent with it, not a leftover of the one before."""
    a, b = socket.socketpair()
    host, child = Channel(a), Channel(b, takes_fds=True)
    too_many = [os.pipe() for _ in range(12)]
    read_end, write_end = os.pipe()
    before = _open_fds()
    host.send({"type": "CALL", "id": "c1"}, fds=tuple(w for _, w in too_many))
    host.send({"type": "CALL", "id": "c2"}, fds=(write_end,))
    first = child.recv(time.monotonic() + 10)
    second = child.recv(time.monotonic() + 10)
    assert first is not None and second is not None
    assert (first.head["id"], first.fds) == ("c1", ())
    assert second.head["id"] == "c2" and len(second.fds) == 1
    os.write(second.fds[0], b"ok")
    assert os.read(read_end, 2) == b"ok"
    os.close(second.fds[0])
    assert _open_fds() == before  # the copies the truncated receive did get were closed
    for r, w in [*too_many, (read_end, write_end)]:
        os.close(r)
        os.close(w)
    host.close()
    child.close()


def test_has_pending_looks_without_taking_a_frame_or_its_descriptors() -> None:
    """A persistent worker's thread looks for a frame after it puts its reading down: the look
    must say what is there (nothing, a frame, EOF) and leave the frame, descriptors and all, to
    the reader, and never leave a peeked descriptor open in this process."""
    a, b = socket.socketpair()
    host, child = Channel(a), Channel(b, takes_fds=True)
    assert child.has_pending() is False
    read_end, write_end = os.pipe()
    host.send({"type": "CALL", "id": "c1"}, b"payload", fds=(write_end,))
    before = _open_fds()
    assert child.has_pending() is True
    assert child.has_pending() is True  # still there: a look takes nothing
    assert _open_fds() == before  # the peek's copy of the descriptor was not kept
    frame = child.recv(time.monotonic() + 5)
    assert frame is not None and frame.head["id"] == "c1" and frame.payload == b"payload"
    [fd] = frame.fds
    os.write(fd, b"ok")
    assert os.read(read_end, 2) == b"ok"
    assert child.has_pending() is False
    host.close()
    assert child.has_pending() is True  # EOF: the reader's next recv returns None
    assert child.recv(time.monotonic() + 5) is None
    for d in (fd, read_end, write_end):
        os.close(d)
    child.close()
