"""A call's HTTP response written by the process that ran the call, straight to the client.

Over the host's own HTTP server, a JSON call's CALL frame carries the client's socket and the
start of its response (the status line, 200, and the Server and Date headers, as the host writes
them). When the call succeeds plainly (no error, no media, no new session: nothing the host must
add), the child writes the response itself and its REPLY says so; the host then records the call
as ever but writes nothing. That takes the reply's hop back through the host, and the host's work
on it, off the time the client waits (figures in docs/architecture.md, "Responses the child
writes"). A template's warm-up runs this path too, so a fresh child's write takes no first-time
faults.

Exactly one side writes a response. The frame also carries a claim, an eventfd holding 1: whoever
reads the 1 (an atomic read-and-reset in the kernel) writes the response. The child takes it only
just before it writes; the host takes it when it would answer without the child (a timeout, a
death). So a call that times out as it finishes is answered once: by the host (the child, finding
the claim gone, writes nothing), or by the child (the host then waits for its REPLY). If the child
took the claim and died before its REPLY, part of a response may have reached the client: the
host closes the connection without writing (`Reply.connection_broken`).
"""

from __future__ import annotations

import email.utils
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from anvil_dev.protocol import Reply

# How long the host waits, after a call's deadline, for the REPLY of a child that has taken the
# writing of the response: a large body's write waits on the client reading it. The wait goes on a
# grace at a time while the client keeps taking the response (`DirectResponse.write_progressed`).
WRITE_GRACE_S = 10.0
# What a client must take of the response in each grace to be waited for: less (1.6 KB/s) is
# stalled, not slow, and would hold the child without end.
MIN_PROGRESS_BYTES = 16 << 10
# Where Linux's struct tcp_info (TCP_INFO, since 4.2) keeps tcpi_bytes_acked, a u64.
_TCP_INFO_BYTES_ACKED = 120


@dataclass
class DirectResponse:
    """The host's offer of one call's response to the child that runs it."""

    client: socket.socket  # the host's, for TCP_INFO: a socket object of our own made from its
    # descriptor would switch the connection to non-blocking if a default timeout were set
    # The status line, the Server header and last the Date header, as the host writes them, each
    # ending in CRLF; the Date is of the second `at` (time.time()).
    head: str
    at: int
    claim: int  # an eventfd holding 1 until one side takes it
    host_has_it: bool = False
    _acked: int | None = None  # the client's acknowledged bytes at the last look
    _looked: bool = False

    @classmethod
    def offer(cls, client: socket.socket, head: str, at: int) -> DirectResponse | None:
        """An offer for the client connected by `client`; None where there are no eventfds (not Linux)."""
        try:
            claim = os.eventfd(1, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except (AttributeError, OSError):
            return None
        return cls(client, head, at, claim)

    @property
    def fds(self) -> tuple[int, int]:
        return (self.client.fileno(), self.claim)

    def frame_fields(self) -> dict[str, Any]:
        """What the CALL frame's header carries of the offer (its descriptors go beside it)."""
        return {"direct": self.head, "direct_at": self.at}

    def take_for_host(self) -> bool:
        """The host will write this response: False when the child has taken it already."""
        if not self.host_has_it:
            self.host_has_it = _take(self.claim)
        return self.host_has_it

    def write_progressed(self) -> bool:
        """Past the deadline, with the child writing: whether the client has acknowledged at least
        MIN_PROGRESS_BYTES more of the connection since the last look, so the write is going on,
        slowly, rather than stalled. True at the first look; after it False where TCP_INFO cannot
        tell. The count is kept from the last look that found progress."""
        acked = _bytes_acked(self.client)
        if not self._looked:
            self._looked, self._acked = True, acked
            return True
        if acked is None or self._acked is None or acked - self._acked < MIN_PROGRESS_BYTES:
            return False
        self._acked = acked
        return True

    def close(self) -> None:
        """Once the call is settled: its child replied, died, or can no longer take the claim."""
        try:
            os.close(self.claim)
        except OSError:
            pass


def settle(offer: DirectResponse | None, reply: Reply) -> Reply:
    """`reply` as the host must treat it: a reply the child did not write is the host's to write,
    unless the child took the writing (and then died, or its write failed): then the connection
    is closed instead."""
    if offer is None or reply.written or offer.take_for_host():
        return reply
    reply.connection_broken = True
    return reply


def write_response(client_fd: int, claim: int, head: str, body: bytes, at: int | None = None) -> bool:
    """In the child: take the claim and write the whole response; False (nothing written) when the
    host took the claim first. Raises OSError when the write fails part way. `at`: the second of
    the head's Date; a call that ended in a later second dates its response itself."""
    if not _take(claim):
        return False
    now = int(time.time())
    if at is not None and now != at and "\r\nDate: " in head:
        # As http.server's date_time_string. Formatting it costs a fresh child ~30 page faults.
        head = head[: head.index("\r\nDate: ") + 2] + f"Date: {email.utils.formatdate(now, usegmt=True)}\r\n"
    head_bytes = b"%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (head.encode("latin-1"), len(body))
    # One writev: the body, up to the limit on what a call returns, is not copied to join its head
    # (in a fresh child a copy of a large body would fault in new pages). os.writev, not a socket
    # object: one made from the descriptor would switch the connection the host shares to
    # non-blocking if server code has set socket.setdefaulttimeout. A client that stops reading
    # holds the write until the call's deadline and a grace without progress after it have
    # passed; the host then shuts the connection down (or kills a fresh child), and the write fails.
    sent = os.writev(client_fd, (head_bytes, body))
    if sent >= len(head_bytes):
        rest = memoryview(body)[sent - len(head_bytes) :]
    else:  # cut short inside the head (a signal): never seen, as the head is ~150 bytes
        rest = memoryview(head_bytes + body)[sent:]
    while rest:
        rest = rest[os.write(client_fd, rest) :]
    return True


def _bytes_acked(sock: socket.socket) -> int | None:
    """How many bytes the peer of the TCP socket `sock` has acknowledged (None if not known)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES_ACKED + 8)
    except (OSError, AttributeError):  # closed, not TCP, or no TCP_INFO here
        return None
    if len(info) < _TCP_INFO_BYTES_ACKED + 8:
        return None
    acked: int = struct.unpack_from("Q", info, _TCP_INFO_BYTES_ACKED)[0]
    return acked


def _take(claim: int) -> bool:
    try:
        os.eventfd_read(claim)
    except BlockingIOError:
        return False
    return True
