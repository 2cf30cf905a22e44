"""Whether this system can run the engine, which forks its workers and talks to them over SOCK_SEQPACKET."""

from __future__ import annotations

import os
import socket
import sys


def unsupported_reason() -> str | None:
    """Why `serve` cannot run on this system, in one line a user can act on, or None when it can."""
    if not hasattr(os, "fork"):
        missing = "os.fork"
    elif not _has_seqpacket():
        missing = "Unix-domain SOCK_SEQPACKET sockets"
    else:
        return None
    # Windows has no fork; macOS has fork but refuses SOCK_SEQPACKET on Unix-domain sockets (EPROTONOSUPPORT).
    return (
        f"anvil-dev serve needs {missing}, which this system ({sys.platform}) lacks: "
        "run it on Linux (WSL 2, a container or a VM will do)"
    )


def _has_seqpacket() -> bool:
    # The constant alone is not enough: some systems define it but refuse it for AF_UNIX.
    if not hasattr(socket, "AF_UNIX") or not hasattr(socket, "SOCK_SEQPACKET"):
        return False
    try:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError:
        return False
    a.close()
    b.close()
    return True
