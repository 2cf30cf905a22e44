"""pdb for server code, in the `anvil-dev serve` terminal: the host owns the terminal, children borrow it.

Server code runs in children that have no terminal. A child that reaches `breakpoint()` or
`pdb.set_trace()` connects to this relay's Unix socket (its path travels in Settings.pdb_socket);
the relay gives the terminal to one session at a time (the others wait their turn, still stopped),
copies pdb's output to the terminal and the terminal's lines to pdb, and keeps count of how long
each process has been stopped, so that the engine can leave that time out of the call's timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import socket
import tempfile
import threading
import time
from typing import BinaryIO

from anvil_dev.engine.breakpoints import QUIT_LINE

SOCKET_NAME = "pdb.sock"
_QUIT = QUIT_LINE.encode()


class PdbRelay:
    """The serve terminal, lent to one pdb session of server code at a time."""

    def __init__(self, terminal_in: BinaryIO, terminal_out: BinaryIO) -> None:
        self._in = terminal_in
        self._out = terminal_out
        # A private directory in /tmp: the app's own path may be too long for a socket address.
        self._dir = tempfile.mkdtemp(prefix="anvil-dev-pdb-")
        self.path = os.path.join(self._dir, SOCKET_NAME)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(16)
        self._terminal = threading.Lock()
        self._lock = threading.Lock()
        self._since: dict[int, float] = {}  # pid -> when its current stop began
        self._stopped: dict[int, float] = {}  # pid -> seconds stopped in sessions that have ended
        self._closed = False
        threading.Thread(target=self._accept, name="anvil-dev-pdb", daemon=True).start()

    # ------------------------------------------------------------------ what the engine asks

    def stopped_seconds(self, pid: int) -> float:
        """How long process `pid` has been stopped in pdb so far (waiting for the terminal included)."""
        with self._lock:
            since = self._since.get(pid)
            return self._stopped.get(pid, 0.0) + (time.monotonic() - since if since is not None else 0.0)

    def is_stopped(self, pid: int) -> bool:
        with self._lock:
            return pid in self._since

    def forget(self, pid: int) -> None:
        """The process is gone (its call is over): drop its count."""
        with self._lock:
            self._stopped.pop(pid, None)

    # ------------------------------------------------------------------ sessions

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        pid = 0
        try:
            header = json.loads(_read_line(conn) or b"{}")
            pid = int(header.get("pid") or 0)
            with self._lock:
                self._since[pid] = time.monotonic()
            with self._terminal:
                self._write(
                    f"\n-- pdb: {header.get('where', 'server code')} (pid {pid}). Other calls are still "
                    "served; this call's timeout waits. c continues, q fails the call. --\n".encode()
                )
                conn.sendall(b"go\n")
                quitted = self._relay(conn)
                # Counted before the terminal says so: the call is running again from here on.
                self._session_over(pid)
                if not quitted:  # pdb's own last line said how a quit session ended
                    self._write(b"-- pdb: session over, the call runs on --\n")
        except (OSError, ValueError):
            pass
        finally:
            conn.close()
            self._session_over(pid)

    def _session_over(self, pid: int) -> None:
        """Add the time `pid` was stopped to its total (once, whichever way the session ended)."""
        with self._lock:
            since = self._since.pop(pid, None)
            if since is not None:
                self._stopped[pid] = self._stopped.get(pid, 0.0) + time.monotonic() - since

    def _relay(self, conn: socket.socket) -> bool:
        """Copy pdb's output to the terminal and the terminal's input to pdb until pdb hangs up;
        True if `q` ended the session."""
        term = self._in.fileno()
        tail = b""
        while True:
            ready, _, _ = select.select([conn.fileno(), term], [], [])
            if conn.fileno() in ready:
                data = conn.recv(65536)
                if not data:
                    return tail.endswith(_QUIT)
                tail = (tail + data)[-len(_QUIT) :]
                self._write(data)
            if term in ready:
                line = os.read(term, 65536)
                if not line:  # the terminal is gone: let pdb finish the call
                    conn.sendall(b"c\n")
                    continue
                conn.sendall(line)

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._out.flush()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
