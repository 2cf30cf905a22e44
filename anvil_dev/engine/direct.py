"""A call's HTTP response written by the process that ran the call, straight to the client.

Over the host's own HTTP server, a JSON call's CALL frame carries the client's socket and the
start of its response (the status line, 200, and the Server header, as the host writes them).
When the call succeeds plainly (no error, no media, no new session: nothing the host must add),
the child writes the response itself and its REPLY says so; the host then records the call as
ever but writes nothing.
That takes the reply's hop back through the host, and the host's work on it, off the time the
client waits: measured A/B, persistent calls back to back -13 to -23%, paced -6 to -10%; fresh
calls paced -1 to -18%, back to back unchanged (bound by the CPU of their fork and exit).

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
import select
import time
from dataclasses import dataclass

from anvil_dev.protocol import Reply

# Bodies up to this size are written by the child: they fit in a fresh connection's send buffer,
# so the write does not wait on the client. Larger ones take the host's path, as do all others.
MAX_BODY = 16 << 10
# How long the host waits for the REPLY of a child that has taken the writing of the response.
WRITE_GRACE_S = 10.0
_WRITE_TIMEOUT_MS = 5000


@dataclass
class DirectResponse:
    """The host's offer of one call's response to the child that runs it."""

    client_fd: int
    head: str  # the status line and the Server header, as the host writes them, each ending in CRLF
    claim: int  # an eventfd holding 1 until one side takes it
    host_has_it: bool = False

    @classmethod
    def offer(cls, client_fd: int, head: str) -> DirectResponse | None:
        """An offer for the client on `client_fd`; None where there are no eventfds (not Linux)."""
        try:
            claim = os.eventfd(1, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except (AttributeError, OSError):
            return None
        return cls(client_fd, head, claim)

    @property
    def fds(self) -> tuple[int, int]:
        return (self.client_fd, self.claim)

    def take_for_host(self) -> bool:
        """The host will write this response: False when the child has taken it already."""
        if not self.host_has_it:
            self.host_has_it = _take(self.claim)
        return self.host_has_it

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


def write_response(client_fd: int, claim: int, head: str, body: bytes) -> bool:
    """In the child: take the claim and write the whole response; False (nothing written) when the
    host took the claim first. Raises OSError when the write fails part way."""
    if not _take(claim):
        return False
    data = b"%sDate: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        head.encode("latin-1"),
        email.utils.formatdate(usegmt=True).encode(),  # as http.server's date_time_string
        len(body),
        body,
    )
    # os.write, not a socket object: one made from the descriptor would switch the connection the
    # host shares to non-blocking if server code has set socket.setdefaulttimeout. The poll bounds
    # the wait for room to write; a client that stops reading part way through its response can
    # still hold the write, until the host's grace runs out and it shuts the connection down.
    poll = select.poll()
    poll.register(client_fd, select.POLLOUT)
    deadline = time.monotonic() + _WRITE_TIMEOUT_MS / 1000
    view = memoryview(data)
    while view:
        if not poll.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            raise TimeoutError("the client did not read its response")
        view = view[os.write(client_fd, view) :]
    return True


def _take(claim: int) -> bool:
    try:
        os.eventfd_read(claim)
    except BlockingIOError:
        return False
    return True
