"""The per-process memory limit (`serve --memory-limit MB`): a child over it is SIGKILLed, as the
out-of-memory killer ends an Anvil server process, so its call fails with Anvil's message for that
(`protocol.terminated_error(-9)`).

The limit is on each process's resident memory (RSS, as `ps` shows it, pages shared with the
template included), not on its address space: RLIMIT_AS would make allocations fail with a
MemoryError the code could catch, count memory never touched, and in a persistent worker fail
whichever call happened to allocate next. The host samples /proc/PID/statm from a thread of its
own, so a child busy in one long C call that holds its GIL (`b"x" * 10**10`) is stopped as it
grows, which a thread in the child could not do.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("anvil_dev")

INTERVAL_S = 0.005  # how far past the limit a process can get is what it allocates in this time


class HasPid(Protocol):
    pid: int | None


class MemoryMonitor:
    """Watches processes (each until unwatched or dead) and kills any whose RSS passes the limit."""

    def __init__(self, limit_mb: float) -> None:
        self.limit_mb = limit_mb
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.limit_pages = int(limit_mb * (1 << 20)) // self._page
        self._watched: dict[int, tuple[HasPid, Callable[[], None] | None]] = {}
        self._fds: dict[int, tuple[int, int]] = {}  # watch id -> (pid, fd of its statm)
        self._ids = iter(range(1 << 62))
        self._killed: set[int] = set()  # watch ids of processes killed for passing the limit
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def watch(self, proc: HasPid, before_kill: Callable[[], None] | None = None) -> int:
        """Watch `proc` (its pid may come later); `before_kill` runs just before it is killed.
        Returns the id to unwatch it with."""
        with self._lock:
            key = next(self._ids)
            self._watched[key] = (proc, before_kill)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="memory-monitor", daemon=True)
                self._thread.start()
            self._wake.notify()
        return key

    def killed(self, key: int) -> bool:
        """Whether the process watched as `key` was killed for passing the limit (its exit may not be reported yet)."""
        with self._lock:
            return key in self._killed

    def unwatch(self, key: int) -> None:
        with self._lock:
            self._watched.pop(key, None)
            self._killed.discard(key)
            pid_fd = self._fds.pop(key, None)
        if pid_fd is not None:
            os.close(pid_fd[1])

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._watched:
                    self._wake.wait()
                watched = list(self._watched.items())
            for key, (proc, before_kill) in watched:
                resident = self._resident(key, proc)
                if resident is not None and resident > self.limit_pages:
                    self._kill(key, proc, resident, before_kill)
            time.sleep(INTERVAL_S)

    def _resident(self, key: int, proc: HasPid) -> int | None:
        pid = proc.pid
        if pid is None:
            return None
        with self._lock:
            if key not in self._watched:
                return None
            pid_fd = self._fds.get(key)
            if pid_fd is None or pid_fd[0] != pid:
                try:
                    # Held open: a process that ends leaves this fd reading nothing, never another's figures.
                    pid_fd = (pid, os.open(f"/proc/{pid}/statm", os.O_RDONLY))
                except OSError:
                    del self._watched[key]  # gone already
                    return None
                self._fds[key] = pid_fd
        try:
            return int(os.pread(pid_fd[1], 64, 0).split()[1])
        except (OSError, IndexError, ValueError):
            self.unwatch(key)
            return None

    def _kill(self, key: int, proc: HasPid, resident: int, before_kill: Callable[[], None] | None) -> None:
        pid = proc.pid
        self.unwatch(key)
        if pid is None:
            return
        with self._lock:
            self._killed.add(key)
        log.warning(
            "pid %s used %d MB, over --memory-limit %g MB: killed", pid, resident * self._page >> 20, self.limit_mb
        )
        try:
            if before_kill is not None:
                before_kill()
        finally:
            try:
                os.killpg(pid, signal.SIGKILL)  # each child leads a group: with whatever it forked
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def monitor(limit_mb: float | None) -> MemoryMonitor | None:
    """A monitor when a limit is set and the system has /proc (Linux), else None."""
    if not limit_mb or not os.path.isdir("/proc/self"):
        return None
    return MemoryMonitor(limit_mb)
