"""The per-process memory limit (`serve --memory-limit MB`): a child over it is SIGKILLed, as the
out-of-memory killer ends an Anvil server process, so its call fails with Anvil's message for that
(`protocol.terminated_error(-9)`).

The limit is on the process's resident memory (RSS, as `ps` shows it, pages shared with the
template included), not on its address space: RLIMIT_AS would make allocations fail with a
MemoryError the code could catch, count memory never touched, and in a persistent worker fail
whichever call happened to allocate next. A thread samples /proc/self/statm; a fresh child starts
sampling when its call arrives, so idle spares cost nothing.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import time
from collections.abc import Callable

INTERVAL_S = 0.005  # how far past the limit a call can get is what it allocates in this time


class MemoryWatch:
    """Kills this process (and its group, which it leads) once its RSS passes `limit_mb`."""

    def __init__(self, limit_mb: float, last_words: Callable[[], None] | None = None) -> None:
        # Called just before the kill: a worker answers its calls in flight with the reason.
        self.last_words = last_words
        self.limit_pages = int(limit_mb * (1 << 20)) // os.sysconf("SC_PAGE_SIZE")
        self._go = _thread.allocate_lock()
        self._go.acquire()
        # A bare thread: server code's threading.enumerate() and active_count() do not see it.
        _thread.start_new_thread(self._watch, ())

    def start(self) -> None:
        """Begin sampling (idempotent)."""
        if self._go.locked():
            self._go.release()

    def _watch(self) -> None:
        self._go.acquire()
        try:
            statm = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            return  # not Linux: no limit (serve runs only where /proc exists)
        while True:
            resident = int(os.pread(statm, 64, 0).split()[1])
            if resident > self.limit_pages:
                self._kill(resident)
            time.sleep(INTERVAL_S)

    def _kill(self, resident: int) -> None:
        used = resident * os.sysconf("SC_PAGE_SIZE") >> 20
        limit = self.limit_pages * os.sysconf("SC_PAGE_SIZE") >> 20
        try:
            os.write(
                2, f"[anvil-dev] pid {os.getpid()} used {used} MB, over --memory-limit {limit} MB: killed\n".encode()
            )
            if self.last_words is not None:
                self.last_words()
        finally:
            if os.getpgid(0) == os.getpid():
                os.killpg(0, signal.SIGKILL)  # with whatever server code forked
            os.kill(os.getpid(), signal.SIGKILL)


def watch(limit_mb: float | None, start: bool, last_words: Callable[[], None] | None = None) -> MemoryWatch | None:
    """A watch for this process when a limit is set (Linux only); sampling begins now if `start`."""
    if not limit_mb or not sys.platform.startswith("linux"):
        return None
    w = MemoryWatch(limit_mb, last_words)
    if start:
        w.start()
    return w
