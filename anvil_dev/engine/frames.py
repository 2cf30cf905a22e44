"""Frames over a stream socket between the host and its children: a JSON header and a raw payload.

A frame is two 4-byte lengths, the header (a small JSON object whose "type" is a `FrameKind`) and
the payload (bytes, usually empty). A REPLY carries the client's reply body as its payload, encoded
once in the child: the host reads the small header (error, new session id, user, has_media) and
writes the body out as it is, without parsing it.

A frame may carry descriptors (SCM_RIGHTS, with its first byte; its header's "fds" says how many):
a CALL whose response the child may write itself carries the client's socket and the claim on
writing it (`anvil_dev.engine.direct`).
"""

from __future__ import annotations

import collections
import json
import os
import select
import socket
import struct
import threading
import time
from typing import Any, NamedTuple

from anvil_dev.protocol import ErrorInfo, FrameKind, Message, Reply

_LENGTHS = struct.Struct("!II")
# Room for the descriptors of one frame (a CALL carries two). The kernel ends a read at a message
# that carries descriptors, so one read never gets two frames' worth.
_FDS_SPACE = socket.CMSG_SPACE(8 * 4)
# Plain ints: `socket`'s own are enum members, whose `&` runs in Python at every receive.
_CTRUNC = int(socket.MSG_CTRUNC)
_CMSG_CLOEXEC = int(socket.MSG_CMSG_CLOEXEC)
MAX_FRAME = 1 << 30
# How a reply body made by `with_output` ends.
_OUTPUT_KEY = b',"output":'
_NO_OUTPUT_TAIL = _OUTPUT_KEY + b'""}'
# json.dumps with any argument of its own builds a JSONEncoder for each call, ~4 us of a frame's
# encoding; one made once encodes the same text (it keeps no state between calls).
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


class FrameTimeout(Exception):
    """The deadline given to `Channel.recv` passed before a whole frame came."""


class Frame(NamedTuple):
    head: dict[str, Any]
    payload: bytes = b""
    fds: tuple[int, ...] = ()  # descriptors that came with it; the receiver owns (and closes) them

    @property
    def kind(self) -> str | None:
        return self.head.get("type")


def encode(head: dict[str, Any], payload: bytes = b"") -> bytes:
    data = _compact_json(head).encode("utf-8")
    return _LENGTHS.pack(len(data), len(payload)) + data + payload


def reply_head(call_id: str | None, reply: Reply) -> dict[str, Any]:
    """The header of a REPLY frame: what the host needs without reading the body."""
    head: dict[str, Any] = {"type": FrameKind.REPLY.value, "id": call_id}
    if reply.error is not None:
        head["error"] = reply.error
    if reply.session_id:
        head["session_id"] = reply.session_id
    if reply.user:
        head["user"] = reply.user
    if reply.has_media:
        head["has_media"] = True
    if reply.frames:
        head["frames"] = reply.frames
    if reply.written:
        head["written"] = True
    return head


def to_reply(frame: Frame) -> Reply:
    """The Reply a REPLY frame carries (its body is not parsed here)."""
    head = frame.head
    error: ErrorInfo | None = head.get("error")
    return Reply(
        body=frame.payload,
        error=error,
        session_id=head.get("session_id"),
        user=head.get("user"),
        has_media=bool(head.get("has_media")),
        frames=head.get("frames"),
        written=bool(head.get("written")),
    )


def call_from_frame(frame: Frame) -> dict[str, Any]:
    """The call a CALL frame carries: its header, with args, kwargs and objects from the payload
    where the host forwarded the client's JSON body there as it came."""
    head = frame.head
    if not frame.payload:
        return head
    body = json.loads(frame.payload)
    call = dict(head)
    call.update(args=body.get("args", []), kwargs=body.get("kwargs", {}), objects=body.get("objects", []))
    return call


def encode_message(message: Message) -> bytes:
    """A reply message as the client gets it, compact; `with_output` then adds what the call printed."""
    return _compact_json(message).encode("utf-8")


def with_output(encoded: bytes, output: str) -> bytes:
    """The client's reply body: the encoded message with the call's printed output as its last key.

    Spliced in rather than encoded with the message, so that the message's own size (the limit is
    on what the function returned, not on what it printed) is known without encoding twice.
    """
    tail = b'"output":' + (json.dumps(output).encode("utf-8") if output else b'""') + b"}"
    return encoded[:-1] + (tail if encoded == b"{}" else b"," + tail)


def printed_output(reply: Reply) -> str:
    """What a reply's call printed, for the dev console, without parsing the rest of the body.

    A body made by `with_output` ends with `,"output":"..."}`; no earlier `,"output":` can match
    once the last is found, as quotes inside JSON strings are escaped. Other bodies (made by
    `Reply.from_message`, with its message at hand) are read whole.
    """
    body = reply.body
    if body.endswith(_NO_OUTPUT_TAIL):
        return ""
    at = body.rfind(_OUTPUT_KEY)
    if at >= 0 and body.endswith(b'"}'):
        output = json.loads(body[at + len(_OUTPUT_KEY) : -1])
    else:
        output = reply.message().get("output")
    return output if isinstance(output, str) else ""


def passed_fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    """The descriptors in a recvmsg's ancillary data (SCM_RIGHTS): socket.recv_fds's parsing,
    without its array module."""
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(data) // 4}i", data[: len(data) // 4 * 4])
    return fds


# A look at a socket's next byte that leaves it there and never waits; a plain int, as the
# socket module's flag enums cost a fresh child page faults to combine.
_PEEK_NOW = int(socket.MSG_PEEK | socket.MSG_DONTWAIT)


class Channel:
    """One end of a socket carrying frames; sends are thread-safe, reads belong to one thread.

    `takes_fds`: frames may arrive with descriptors (a child's end; the host's never does, and
    reads with a plain recv)."""

    def __init__(self, sock: socket.socket, takes_fds: bool = False) -> None:
        self.sock = sock
        self._buf = bytearray()
        self._send_lock = threading.Lock()
        self._poll: select.poll | None = None
        self._takes_fds = takes_fds
        # The descriptors of each message that carried some, in order: one frame's set each.
        self._fds: collections.deque[tuple[int, ...]] = collections.deque()

    def send(self, head: dict[str, Any], payload: bytes = b"", fds: tuple[int, ...] = ()) -> None:
        """Send a frame; `fds` go with its first byte (the receiver gets copies)."""
        if not fds:
            self.send_raw(encode(head, payload))
            return
        data = encode(dict(head, fds=len(fds)), payload)
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))]
        with self._send_lock:
            sent = self.sock.sendmsg([data], rights)
            if sent < len(data):
                self.sock.sendall(data[sent:])

    def send_reply(self, call_id: str | None, reply: Reply) -> None:
        self.send_raw(encode(reply_head(call_id, reply), reply.body))

    def send_raw(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def recv(self, deadline: float | None = None) -> Frame | None:
        """The next frame, None at EOF; FrameTimeout if the monotonic deadline passes first."""
        if not self._buf:
            # Nothing buffered: most often one receive brings exactly one frame (a call, a reply),
            # parsed straight from it. Through the buffer a CALL's receive took ~18 us, not ~16.
            chunk = self._chunk(_LENGTHS.size, deadline)
            if chunk is None:
                return None
            if len(chunk) >= _LENGTHS.size:
                n_head, n_payload = _LENGTHS.unpack_from(chunk)
                if len(chunk) == _LENGTHS.size + n_head + n_payload:
                    return self._frame(chunk[_LENGTHS.size : _LENGTHS.size + n_head], chunk[_LENGTHS.size + n_head :])
            self._buf += chunk
        lengths = self._read(_LENGTHS.size, deadline)
        if lengths is None:
            return None
        n_head, n_payload = _LENGTHS.unpack(lengths)
        if n_head + n_payload > MAX_FRAME:
            raise ValueError(f"frame of {n_head + n_payload} bytes is over the limit")
        data = self._read(n_head + n_payload, deadline)
        if data is None:
            return None
        return self._frame(data[:n_head], data[n_head:])

    def _frame(self, head_bytes: bytes, payload: bytes) -> Frame:
        head = json.loads(head_bytes)
        if not isinstance(head, dict):
            raise ValueError("a frame's header must be a JSON object")
        if head.get("fds") and self._takes_fds and self._fds:
            # They came with the frame's first byte, so they are here; in order, as the frames are.
            return Frame(head, payload, self._fds.popleft())
        return Frame(head, payload)

    def has_pending(self) -> bool:
        """True when a frame (or part of one) is waiting to be read, or the socket is at EOF or
        failed (its reader's recv then returns None). Any thread may ask.

        A peek, not a select: the kernel peeks at a stream socket's queue under the socket's own
        lock, which a send to it takes too, so a persistent worker's look after it has put its
        reading down (`ChildServer._lead`) is ordered against the host's send whatever the CPU. A
        select with no timeout reads the queue with no lock or barrier: on arm64 the worker's "not
        reading" byte could then reach the host after the look, and a frame wait with no wake."""
        if self._buf or self.sock.fileno() < 0:
            return True
        try:
            self.sock.recv(1, _PEEK_NOW)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True

    def _read(self, n: int, deadline: float | None) -> bytes | None:
        while len(self._buf) < n:
            chunk = self._chunk(n - len(self._buf), deadline)
            if chunk is None:
                return None
            self._buf += chunk
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _chunk(self, wanted: int, deadline: float | None) -> bytes | None:
        """One receive of at least 64 KiB's room (or `wanted`); None at EOF or on a failed socket.
        The deadline is kept with poll(), not the socket's timeout: that would apply to the sends
        other threads make on this socket meanwhile (a persistent worker's callers)."""
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._readable(remaining):
                raise FrameTimeout()
        size = max(65536, wanted)
        try:
            chunk = self._recv_with_fds(size) if self._takes_fds else self.sock.recv(size)
        except OSError:
            return None
        return chunk or None

    def _recv_with_fds(self, size: int) -> bytes:
        # Close-on-exec: server code that starts a program must not hand it clients' sockets.
        chunk, ancillary, flags, _addr = self.sock.recvmsg(size, _FDS_SPACE, _CMSG_CLOEXEC)
        fds = passed_fds(ancillary)
        if flags & _CTRUNC:
            # Some were dropped (no room, or out of descriptors): the frame gets none, so no other frame's.
            for fd in fds:
                os.close(fd)
            self._fds.append(())
        elif fds:
            self._fds.append(tuple(fds))
        return chunk

    def _readable(self, seconds: float) -> bool:
        if self.sock.fileno() < 0:
            return True  # closed: its recv fails, and the read returns None
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self.sock, select.POLLIN)
        return bool(self._poll.poll(seconds * 1000))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
