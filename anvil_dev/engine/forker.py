"""The forker seam: where the engine's children come from, and the host's handle on each child.

`Forker` is what the engine needs of a process that forks children on request; `ZygoteHandle`
is the real one (the zygote, or a template forked from it). The engine takes a `ForkerFactory`,
so its supervision can be tested in-process with a fake forker (tests/unit).
"""

from __future__ import annotations

import itertools
import json
import logging
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import anvil_dev
from anvil_dev.config import Settings
from anvil_dev.engine.frames import Channel
from anvil_dev.protocol import ChildMode

log = logging.getLogger("anvil_dev")


class Child:
    """A forked process and the host's end of its socket (and, for a persistent worker, of its wakes)."""

    def __init__(
        self,
        chan: Channel,
        mode: ChildMode,
        generation: int,
        wakes: socket.socket | None = None,
        reading: mmap.mmap | None = None,
    ) -> None:
        self.chan = chan
        self._wakes = wakes
        # A persistent worker's byte, shared with it: non-zero while one of its threads reads.
        self._reading = reading
        self.mode = mode
        self.generation = generation
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.spawned = threading.Event()
        self.exited = threading.Event()
        # Its forker reported the exit (`exited` is also set, with no code, when the forker died).
        self.reported = False
        self._on_exit: Callable[[], None] | None = None

    def set_exited(self) -> None:
        """Its forker reported the exit, or can report nothing more (it died)."""
        self.exited.set()
        on_exit = self._on_exit
        if on_exit is not None:
            on_exit()

    def on_exit(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the forker's reader thread) once `exited` is set; at once if it is.
        It may be called twice, and must not block."""
        self._on_exit = callback
        if self.exited.is_set():
            callback()

    def kill(self) -> None:
        """SIGKILL the child and whatever it forked (each child leads a process group of its own)."""
        if self.spawned.wait(5) and self.pid and not self.reported:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    @property
    def never_forked(self) -> bool:
        """The process that was to fork it died before it did (so no pid was ever reported)."""
        return self.spawned.is_set() and self.pid is None

    def wait_exit(self, timeout: float) -> int | None:
        self.exited.wait(timeout)
        return self.exit_code

    def wake(self, unless_reading: bool = False) -> None:
        """Tell a persistent worker that a frame waits for it while all its threads may be running
        calls, none of them reading (`ChildServer._watch_wakes`); with `unless_reading`, only if
        none of them is reading now. Called after the frame was sent: a thread that stops reading
        after this looks for frames waiting, so one that was reading when the byte was read sees the
        frame. A full socket holds a wake already."""
        if self._wakes is None:
            return
        if unless_reading and self._reading is not None and self._reading[0]:
            return
        try:
            self._wakes.send(b"\0")
        except OSError:
            pass

    def close(self) -> None:
        """Close the host's end: an idle child exits when its socket closes."""
        self.chan.close()
        if self._wakes is not None:
            self._wakes.close()
        # The byte's mapping stays: a caller may still read it (it is unmapped with this object).


def _worker_extras() -> tuple[socket.socket, socket.socket, int, mmap.mmap]:
    """A persistent worker's wakes (the host's end, which never blocks, and the worker's) and its
    reading byte (a memfd, and the host's mapping of it); nothing is left open if one fails."""
    wakes, child_wakes = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    reading_fd = -1
    try:
        wakes.setblocking(False)
        reading_fd = os.memfd_create("anvil-dev-reading", os.MFD_CLOEXEC)
        os.ftruncate(reading_fd, 1)
        return wakes, child_wakes, reading_fd, mmap.mmap(reading_fd, 1)
    except BaseException:
        wakes.close()
        child_wakes.close()
        if reading_fd >= 0:
            os.close(reading_fd)
        raise


class Forker(Protocol):
    """A process that forks children on request: the zygote, or a template of one generation."""

    @property
    def alive(self) -> bool: ...

    @property
    def unforkable(self) -> str | None:
        """Why a template's children cannot share its import ("threads", "database"), or None."""

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until it can fork; RuntimeError if it never will."""

    def spawn(self, mode: ChildMode, generation: int = 0) -> Child:
        """A new child; returns at once (the child's socket works before the fork has happened)."""

    def spawn_template(self, generation: int) -> Forker:
        """A template for this generation: a child that imports the app, then forks children itself."""

    def retire(self) -> None:
        """Exit once the children already forked have."""

    def stop(self) -> None:
        """Exit now, and every child with it."""


ForkerFactory = Callable[[Settings], Forker]


def ready_template(
    zygote: Forker, generation: int, requested: Forker | None = None
) -> tuple[Forker | None, bool | None]:
    """A ready template for this generation of the code (`requested` if already asked for), or None
    where forking from one is not safe or failed; and whether fresh calls must then import the app
    themselves (None: the template failed, which says nothing about the app)."""
    try:
        template = requested or zygote.spawn_template(generation)
    except OSError as e:
        log.warning("fresh calls will import the app themselves: %s", e)
        return None, None
    try:
        template.wait_ready(60)
    except RuntimeError as e:
        log.warning("fresh calls will import the app themselves: %s", e)
        template.stop()
        return None, None
    reason = template.unforkable
    if reason is None:
        return template, False
    # Each fresh call then imports the app when it arrives, as on Anvil: an import that reads the
    # database must see the data as it is at the call, not as it was earlier.
    if reason == "threads":
        log.warning("the app starts threads when it is imported: fresh calls import it themselves")
    template.stop()
    return None, True


def start_zygote(settings: Settings) -> ZygoteHandle:
    """The real forker: `python -m anvil_dev.engine.zygote`, with the package on its path."""
    env = dict(os.environ)
    pkg_root = str(Path(anvil_dev.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_root, env.get("PYTHONPATH")]))
    # Anvil's servers run in UTC: datetime.now() and naive datetimes on the wire match them.
    env["TZ"] = settings.timezone
    return ZygoteHandle(settings, env)


class ZygoteHandle:
    """A process that forks children on request: the zygote itself, or a template forked from it.

    A template (`spawn_template`) has imported the app's modules before it forks, so its
    children start with the app imported; it lives for one generation of the code.
    """

    def __init__(
        self,
        settings: Settings,
        env: dict[str, str] | None = None,
        attach: socket.socket | None = None,
        parent: ZygoteHandle | None = None,
    ) -> None:
        self.settings = settings
        # A template's zygote, which adopts the template's children when it dies (they live on).
        self.parent = parent
        self._orphan_exits: dict[int, int] = {}
        if attach is not None:
            host_end, zygote_end = attach, None
        else:
            host_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._ctrl = host_end
        self._send_lock = threading.Lock()
        self._tokens = itertools.count()
        self._by_token: dict[int, Child] = {}
        self._by_pid: dict[int, Child] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self._alive = True
        self.info: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        if zygote_end is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "anvil_dev.engine.zygote", str(zygote_end.fileno()), settings.to_json()],
                pass_fds=(zygote_end.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
            )
            zygote_end.close()
        self._reader = threading.Thread(target=self._read_loop, name="zygote-reader", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def unforkable(self) -> str | None:
        reason = self.info.get("unforkable")
        return reason if isinstance(reason, str) else None

    def wait_ready(self, timeout: float = 60) -> None:
        if not self.ready.wait(timeout):
            raise RuntimeError("the zygote process did not start (see the output above)")
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the zygote process exited with code {self.proc.returncode}")
        if not self.info:
            raise RuntimeError("the zygote process ended before it was ready")

    def spawn_template(self, generation: int) -> ZygoteHandle:
        """Fork a template for this generation of the code; ready when its `info` says so."""
        host_end, template_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._send(b"spawn %d %s" % (next(self._tokens), ChildMode.TEMPLATE.value.encode()), template_end.fileno())
        template_end.close()
        return ZygoteHandle(self.settings, attach=host_end, parent=self)

    def spawn(self, mode: ChildMode, generation: int = 0) -> Child:
        """Ask for a child; returns at once: the socket works before the fork has happened."""
        host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        passed = [child_sock.fileno()]
        wakes = child_wakes = reading = None
        if mode is ChildMode.PERSISTENT:
            try:
                wakes, child_wakes, reading_fd, reading = _worker_extras()
            except OSError:  # out of descriptors or memory: raised as socketpair's would be, with nothing left open
                host_sock.close()
                child_sock.close()
                raise
            passed += [child_wakes.fileno(), reading_fd]
        child = Child(Channel(host_sock), mode, generation, wakes, reading)
        token = next(self._tokens)
        with self._lock:
            self._by_token[token] = child
        try:
            self._send(b"spawn %d %s" % (token, mode.value.encode()), *passed)
        except OSError as e:
            # Never forked (pid None): the engine may give its call to another child.
            with self._lock:
                self._by_token.pop(token, None)
            child.exit_code = -1
            child.spawned.set()
            child.set_exited()
            child.close()
            if self.parent is None:
                log.error("could not reach the zygote: %s", e)
            self._alive = False  # dead, though the reader may not have seen it yet
        finally:
            child_sock.close()
            if child_wakes is not None:
                child_wakes.close()
                os.close(passed[2])
        return child

    def _send(self, data: bytes, *fds: int) -> None:
        """A control message (see engine/zygote.py), with descriptors `fds` passed to the forker."""
        with self._send_lock:
            if not fds:
                self._ctrl.send(data)
            else:
                socket.send_fds(self._ctrl, [data], list(fds))

    def _read_loop(self) -> None:
        while True:
            try:
                data = self._ctrl.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            op, _, rest = data.partition(b" ")
            if op == b"ready":
                self.info = json.loads(rest)
                self.ready.set()
            elif op == b"spawned":
                token, pid = map(int, rest.split())
                with self._lock:
                    child = self._by_token.pop(token, None)
                    if child is not None:
                        child.pid = pid
                        self._by_pid[pid] = child
                if child is not None:
                    child.spawned.set()
            elif op == b"exited":
                pid, code = map(int, rest.split())
                with self._lock:
                    child = self._by_pid.pop(pid, None)
                    if child is None:  # an orphan we adopted, whose template's handle may not have handed it over yet
                        self._orphan_exits[pid] = code
                        if len(self._orphan_exits) > 256:
                            del self._orphan_exits[next(iter(self._orphan_exits))]
                if child is not None:
                    child.exit_code = code
                    child.reported = True
                    child.set_exited()
        # The process is gone: nothing more will be reported; wake anyone waiting, and reap it.
        with self._lock:
            self._alive = False
        self.ready.set()
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        with self._lock:
            unforked = list(self._by_token.values())
            forked = dict(self._by_pid)
            self._by_token.clear()
            self._by_pid.clear()
        if self.parent is not None:
            # A template's children outlive it: the zygote adopted them and reports their exits.
            forked = self.parent._adopt(forked)
        for child in unforked + list(forked.values()):
            child.spawned.set()
            child.set_exited()

    def _adopt(self, children: dict[int, Child]) -> dict[int, Child]:
        """Take over reporting the exits of a dead template's children; returns those it cannot."""
        with self._lock:
            if not self._alive:
                return children
            for pid, child in children.items():
                if pid in self._orphan_exits:
                    child.exit_code = self._orphan_exits.pop(pid)
                    child.reported = True
                    child.set_exited()
                else:
                    self._by_pid[pid] = child
        return {}

    def retire(self) -> None:
        """Stop after the children already forked have exited."""
        try:
            self._send(b"exit")
        except OSError:
            pass

    def stop(self) -> None:
        """Stop now, and every child with it (closing the control socket tells the zygote)."""
        try:
            self._ctrl.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._ctrl.close()
        if self.proc is None:
            return  # a template: its zygote reaps it
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
