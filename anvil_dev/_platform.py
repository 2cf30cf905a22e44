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


# prctl(2) options (linux/prctl.h).
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_libc: object = None


def _prctl(option: int, value: int) -> bool:
    """prctl(option, value) through libc; False where there is none (not Linux) or it failed."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        import ctypes

        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _libc = False
    prctl = getattr(_libc, "prctl", None)
    return prctl is not None and prctl(option, value, 0, 0, 0) == 0


def die_with_parent(sig: int, parent: int) -> bool:
    """Ask the kernel to send `sig` to this process when its parent exits (Linux; a no-op elsewhere).

    The signal comes when the parent *thread* that forked us ends, so call it in a child forked by
    a process's main thread. Returns False when `parent` had already gone before the request took
    effect (we were reparented in between): the caller must then end itself.
    """
    _prctl(_PR_SET_PDEATHSIG, sig)
    return os.getppid() == parent


def adopt_orphans() -> bool:
    """Make this process the one that inherits its descendants' orphans (Linux), not init."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)
