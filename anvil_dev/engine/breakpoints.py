"""`breakpoint()` and `pdb.set_trace()` in server code: pdb on the call's own frame, in the serve terminal.

Installed in every process that runs server code (before the app is imported, so `from pdb import
set_trace` gets it too). The child has no terminal: pdb talks to the host's PdbRelay over a Unix
socket instead, and the host lends it the serve terminal. Where serve has no terminal, the call fails
at the breakpoint with a line saying how to debug instead.

`q` at the prompt stops the call where it is: it fails with `DebuggerQuit` saying so (pdb's own
BdbQuit, with no message, is what a quit raised before). Quitting pdb ends the program it debugs;
here the program is the call, and the server goes on. DebuggerQuit is a BaseException, as
KeyboardInterrupt is, so that an `except Exception:` around the breakpoint does not swallow it.
"""

from __future__ import annotations

import bdb
import json
import os
import pdb
import socket
import sys
from types import FrameType
from typing import Any

# Frames pdb does not step into: anvil-dev's own and the runtime's, so `n` and `s` stay in app code.
_SKIP = ["anvil_dev.*", "anvil", "anvil.*"]
_NO_TERMINAL = (
    "anvil-dev serve is not running in a terminal, so pdb has nowhere to prompt - run `anvil-dev "
    "serve` in a terminal with its input not redirected, and the prompt opens there"
)

# pdb's last line when `q` ends a session: the relay ends the session with it, not "the call runs on".
QUIT_LINE = "-- pdb: session over, q quit the debugger: the call fails with DebuggerQuit --\n"

_socket_path: str | None = None


class BreakpointUnavailable(RuntimeError):
    """A breakpoint was reached where no debugger can take it."""


class DebuggerQuit(BaseException):
    """`q` at the pdb prompt: the call stops where it was and fails with this."""


class _RelayedPdb(pdb.Pdb):
    """pdb over the relay's socket; it hangs up when pdb lets the code run on with nothing left to stop at."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._file = conn.makefile("rw", encoding="utf-8", errors="replace", newline="\n")
        super().__init__(stdin=self._file, stdout=self._file, skip=_SKIP, nosigint=True, readrc=False)
        self.use_rawinput = False

    def set_continue(self) -> None:
        super().set_continue()
        if not self.breaks:
            self._hang_up()

    def set_quit(self) -> None:
        super().set_quit()
        try:
            self._file.write(QUIT_LINE)
        except (OSError, ValueError):
            pass
        self._hang_up()

    def trace_dispatch(self, frame: FrameType, event: str, arg: Any) -> Any:
        try:
            return super().trace_dispatch(frame, event, arg)
        except bdb.BdbQuit:
            raise DebuggerQuit(
                f"the debugger was quit (q at the pdb prompt) at {_where(frame)}: the call stopped there; "
                "c at the prompt lets a call run on"
            ) from None

    def _hang_up(self) -> None:
        try:
            self._file.flush()
            self._conn.shutdown(socket.SHUT_RDWR)  # the relay sees the end now, whatever still holds the file
        except OSError:
            pass
        self._file.close()
        self._conn.close()


def install(socket_path: str | None) -> None:
    """Route breakpoint() and pdb.set_trace() to the relay at `socket_path` (None: serve has no terminal)."""
    global _socket_path
    _socket_path = socket_path
    sys.breakpointhook = _breakpoint
    pdb.set_trace = _set_trace


def _breakpoint(*_args: Any, **_kwargs: Any) -> None:
    frame = sys._getframe(1)
    _stop(frame)


def _set_trace(*, header: str | None = None) -> None:
    _stop(sys._getframe(1))


def _where(frame: FrameType) -> str:
    return f"{os.path.basename(frame.f_code.co_filename)} line {frame.f_lineno}, in {frame.f_code.co_name}"


def _stop(frame: FrameType) -> None:
    where = _where(frame)
    if _socket_path is None:
        raise BreakpointUnavailable(f"breakpoint() at {where}: {_NO_TERMINAL}")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(_socket_path)
        conn.sendall(json.dumps({"pid": os.getpid(), "where": where}).encode() + b"\n")
        go = conn.recv(3)  # the relay answers once the terminal is this session's
    except OSError as e:
        conn.close()
        raise BreakpointUnavailable(f"breakpoint() at {where}: the serve terminal cannot be reached ({e})") from None
    if go != b"go\n":
        conn.close()
        raise BreakpointUnavailable(f"breakpoint() at {where}: anvil-dev serve is stopping")
    _RelayedPdb(conn).set_trace(frame)
