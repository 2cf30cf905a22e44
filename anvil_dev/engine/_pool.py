"""The host side of the engine: fresh children from spares, persistent workers, timeouts, reloads."""

from __future__ import annotations

import collections
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anvil_dev
from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.engine import _loader
from anvil_dev.engine._frames import FrameTimeout
from anvil_dev.engine._zygote_handle import Child, ZygoteHandle
from anvil_dev.protocol import Caller, Message, error

log = logging.getLogger("anvil_dev")

TIMEOUT_MESSAGE = "Server code took too long"
# How long an interrupted persistent call may take to stop before its worker is retired.
INTERRUPT_GRACE_S = 0.3


def terminated_error(code: int | None) -> Message:
    ref = secrets.token_hex(5)
    if code == -9:
        msg = ("Server code execution process was killed. This is usually caused by running out of memory. "
               f"({ref})")
    elif code is not None and code < 0:
        msg = f"Server code execution process was killed with signal {-code}. ({ref})"
    else:
        msg = f"Server code exited unexpectedly: {ref} (exit code {code})"
    return error("anvil.server.ExecutionTerminatedError", msg)


def timeout_error() -> Message:
    return error("anvil.server.TimeoutError", TIMEOUT_MESSAGE)


class _Pending:
    __slots__ = ("event", "reply", "timed_out")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: Message | None = None
        self.timed_out = False


class _PersistentWorker:
    """A long-lived child running calls in threads; frames are multiplexed by call id."""

    def __init__(self, engine: Engine, child: Child) -> None:
        self.engine = engine
        self.child = child
        self.ready = threading.Event()
        self.import_error: dict[str, Any] | None = None
        self.pending: dict[str, _Pending] = {}
        self.lock = threading.Lock()
        self.retired = False
        self.dead = False
        self.claims = 0  # calls routed here that may not have sent their frame yet
        threading.Thread(target=self._read_loop, name="worker-reader", daemon=True).start()

    @property
    def load(self) -> int:
        return len(self.pending)

    def _read_loop(self) -> None:
        chan = self.child.chan
        while True:
            try:
                frame = chan.recv()
            except (OSError, ValueError):
                frame = None
            if frame is None:
                break
            kind = frame.get("type")
            if kind == "READY":
                self.import_error = frame.get("import_error")
                self.ready.set()
            elif kind == "REPLY":
                with self.lock:
                    p = self.pending.pop(frame.get("id"), None)
                if p is not None:
                    p.reply = frame
                    p.event.set()
                self._maybe_finish_retire()
            elif kind == "CALL":
                threading.Thread(target=self.engine._answer_outbound, args=(chan, frame), daemon=True).start()
        self.dead = True
        self.ready.set()
        code = self.child.wait_exit(2.0)
        err = terminated_error(code)
        with self.lock:
            pending, self.pending = self.pending, {}
        for p in pending.values():
            p.reply = err
            p.event.set()
        self.engine._worker_gone(self)

    def call(self, frame: Message, timeout: float | None) -> Message:
        p = _Pending()
        call_id = frame["id"]
        with self.lock:
            if self.dead:
                return terminated_error(self.child.exit_code)
            self.pending[call_id] = p
        try:
            self.child.chan.send(frame)
        except OSError:
            pass
        if p.event.wait(timeout):
            return p.reply or terminated_error(None)
        p.timed_out = True
        try:
            self.child.chan.send({"type": "INTERRUPT", "id": call_id})
        except OSError:
            pass
        timer = threading.Timer(INTERRUPT_GRACE_S, self._check_interrupted, args=(call_id,))
        timer.daemon = True
        timer.start()
        return timeout_error()

    def _check_interrupted(self, call_id: str) -> None:
        with self.lock:
            stuck = call_id in self.pending
        if stuck:
            # The thread did not stop (e.g. blocked in C code): new calls go elsewhere, the
            # others in flight finish, then the process goes.
            log.warning("a timed-out call did not stop; retiring worker pid %s", self.child.pid)
            self.engine._retire(self)

    def claim(self) -> None:
        with self.lock:
            self.claims += 1

    def unclaim(self) -> None:
        with self.lock:
            self.claims -= 1
        self._maybe_finish_retire()

    def _maybe_finish_retire(self) -> None:
        if not self.retired:
            return
        with self.lock:
            busy = self.claims or any(not p.timed_out for p in self.pending.values())
        if not busy:
            self.child.kill()

    def stop(self) -> None:
        self.retired = True
        self.child.chan.close()
        self.child.kill()


class Engine:
    """Runs server calls for one app. Thread-safe; one instance per `anvil-dev serve`."""

    def __init__(self, app: AppDir, settings: Settings,
                 outbound: Callable[[Message, Caller], Message] | None = None) -> None:
        self.app = app
        self.settings = settings
        self.persistent = settings.persistent
        self.n_workers = max(1, settings.workers)
        self.timeout = settings.timeout
        self.n_spares = max(1, settings.spares)
        self.outbound = outbound
        self.generation = 0
        self._env = dict(os.environ)
        pkg_root = str(Path(anvil_dev.__file__).resolve().parent.parent)
        self._env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_root, self._env.get("PYTHONPATH")]))
        # Anvil's servers run in UTC: datetime.now() and naive datetimes on the wire match them.
        self._env["TZ"] = settings.timezone
        self._lock = threading.Lock()
        self._spares: collections.deque[Child] = collections.deque()
        self._workers: list[_PersistentWorker] = []
        self._retiring: list[_PersistentWorker] = []
        self._preloads: list[str] = []
        self._zygote: ZygoteHandle | None = None
        # Fresh children fork from the template of the current generation, which has imported the
        # app already; None when the app cannot be forked that way (threads at import time).
        self._template: ZygoteHandle | None = None
        self._import_on_call = False
        self._description: dict[str, Any] | None = None
        self._stopping = False

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._preloads = _loader.third_party_imports(self.app)
        self._zygote = ZygoteHandle(self.settings, self._env)
        self._zygote.wait_ready()
        template = self._new_template(self._zygote) if not self.persistent else None
        with self._lock:
            self._template = template
            self._fill()

    def _new_template(self, zygote: ZygoteHandle) -> ZygoteHandle | None:
        """A template for the current code, or None where forking from one is not safe or failed."""
        try:
            template = zygote.spawn_template(self.generation)
        except OSError as e:
            log.warning("fresh calls will import the app themselves: %s", e)
            return None
        try:
            template.wait_ready(60)
        except RuntimeError as e:
            log.warning("fresh calls will import the app themselves: %s", e)
            template.stop()
            return None
        reason = template.info.get("unforkable")
        if reason is not None:
            # Each fresh call then imports the app when it arrives, as on Anvil: an import that
            # reads the database must see the data as it is at the call, not as it was earlier.
            self._import_on_call = True
            if reason == "threads":
                log.warning("the app starts threads when it is imported: fresh calls import it themselves")
            template.stop()
            return None
        self._import_on_call = False
        return template

    def _forker(self) -> ZygoteHandle:
        """Where fresh children come from. Caller holds the lock.

        A template or zygote that died (killed from outside, say) is replaced in the background;
        meanwhile children come from whichever is still there.
        """
        if self._template is not None and not self._template.alive:
            self._template = None
            if not self._stopping:
                threading.Thread(target=self._replace_template, daemon=True).start()
        if self._zygote is not None and not self._zygote.alive and not self._stopping:
            log.warning("the zygote process died; starting a new one")
            self._zygote = ZygoteHandle(self.settings, self._env)
            self._zygote.wait_ready()
        forker = self._template or self._zygote
        assert forker is not None
        return forker

    def _fresh_mode(self) -> str:
        return "fresh_import_on_call" if self._import_on_call and self._template is None else "fresh"

    def _replace_template(self) -> None:
        with self._lock:
            zygote, generation = self._zygote, self.generation
        if zygote is None:
            return
        template = self._new_template(zygote)
        with self._lock:
            if self.generation == generation and self._template is None and not self._stopping:
                self._template = template
                return
        if template is not None:
            template.stop()

    def stop(self) -> None:
        self._stopping = True
        with self._lock:
            workers = self._workers + self._retiring
            self._workers, self._retiring = [], []
            spares, self._spares = list(self._spares), collections.deque()
        for w in workers:
            w.stop()
        for c in spares:
            c.chan.close()
        if self._template is not None:
            self._template.stop()
        if self._zygote is not None:
            self._zygote.stop()

    @property
    def zygote_pid(self) -> int | None:
        return self._zygote.proc.pid if self._zygote and self._zygote.proc else None

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.child.pid for w in self._workers if w.child.pid]

    def _fill(self) -> None:
        """Top up spares (fresh mode) or workers (persistent mode). Caller holds the lock."""
        assert self._zygote is not None
        if self._stopping:
            return
        if self.persistent:
            while len(self._workers) < self.n_workers:
                self._workers.append(_PersistentWorker(self, self._zygote.spawn("persistent", self.generation)))
        else:
            while len(self._spares) < self.n_spares:
                self._spares.append(self._forker().spawn(self._fresh_mode(), self.generation))

    def spawn_child(self, mode: str = "fresh") -> Child:
        """A child of the current code outside the pool: each background task runs in one."""
        with self._lock:
            if self._zygote is None or self._stopping:
                raise RuntimeError("the engine is not running")
            return self._zygote.spawn(mode, self.generation)

    # -- calls ----------------------------------------------------------------------------------

    def call(self, msg: Message, caller: Caller) -> Message:
        """Run one call; always returns a reply ({"response"...} or {"error"...}), never raises."""
        frame = {"type": "CALL", "id": uuid.uuid4().hex[:12], "command": msg.get("command"),
                 "args": msg.get("args", []), "kwargs": msg.get("kwargs", {}), "objects": msg.get("objects", []),
                 "caller": caller.to_json()}
        if self.persistent:
            return self._call_persistent(frame)
        return self._call_fresh(frame)

    def _call_fresh(self, frame: Message) -> Message:
        with self._lock:
            if self._stopping or self._zygote is None:
                return error("anvil.server.RuntimeUnavailableError", "The server is shutting down")
            child = (self._spares.popleft() if self._spares
                     else self._forker().spawn(self._fresh_mode(), self.generation))
            # Replace the spare now only if none is left; otherwise after this call, so that the
            # fork and import of the next child do not compete with this call for the CPU.
            deferred = bool(self._spares)
            if not deferred:
                self._fill()
        deadline = time.monotonic() + self.timeout if self.timeout else None
        chan = child.chan
        try:
            chan.send(frame)
            while True:
                reply = chan.recv(deadline)
                if reply is None:
                    return terminated_error(child.wait_exit(2.0))
                kind = reply.get("type")
                if kind == "REPLY":
                    return reply
                if kind == "CALL":
                    self._answer_outbound(chan, reply)
        except FrameTimeout:
            child.kill()
            return timeout_error()
        except OSError:
            return terminated_error(child.wait_exit(2.0))
        finally:
            chan.close()
            if deferred:
                with self._lock:
                    self._fill()

    def _call_persistent(self, frame: Message) -> Message:
        with self._lock:
            self._fill()
            live = [w for w in self._workers if not w.dead and not w.retired]
            if not live:
                return error("anvil.server.RuntimeUnavailableError", "No server worker is available")
            worker = min(live, key=lambda w: w.load)
            # Claimed while the lock is held: a reload that retires this worker now must let
            # this call finish on it rather than kill it before the call has even been sent.
            worker.claim()
        try:
            # A worker that is still importing the app (a replacement, say) counts against the call's time.
            started = time.monotonic()
            if not worker.ready.wait(self.timeout or 600):
                return timeout_error()
            if worker.dead:
                return terminated_error(worker.child.exit_code)
            if worker.import_error is not None:
                # A worker whose modules failed to import answers once and is replaced, as on Anvil.
                self._retire(worker)
                return {"error": worker.import_error, "objects": []}
            remaining = None if self.timeout is None else max(0.001, self.timeout - (time.monotonic() - started))
            return worker.call(frame, remaining)
        finally:
            worker.unclaim()

    def _answer_outbound(self, chan: Any, frame: Message) -> None:
        """A worker's nested call that it cannot answer itself (an uplink function, say)."""
        caller = Caller.from_json(frame.get("caller") or {})
        if self.outbound is None:
            reply = error("anvil.server.NoServerFunctionError",
                          f'No server function matching "{frame.get("command")}" has been registered')
        else:
            reply = self.outbound(frame, caller)
        out = dict(reply, type="REPLY", id=frame.get("id"))
        try:
            chan.send(out)
        except OSError:
            pass

    def _retire(self, worker: _PersistentWorker) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
                self._retiring.append(worker)
            worker.retired = True
            self._fill()
        worker._maybe_finish_retire()

    def _worker_gone(self, worker: _PersistentWorker) -> None:
        with self._lock:
            for group in (self._workers, self._retiring):
                if worker in group:
                    group.remove(worker)
            self._fill()

    # -- reload ---------------------------------------------------------------------------------

    def reload(self, paths: list[str] | None = None) -> None:
        """New code: the next call sees it. Spares are replaced; persistent workers are replaced by a
        pre-warmed generation while the old one drains. A new zygote starts when what it holds
        changed: the third-party imports, or anvil.yaml (which it has parsed for its children)."""
        preloads = _loader.third_party_imports(self.app)
        yaml_changed = any(os.path.basename(p) == "anvil.yaml" for p in paths or [])
        new_zygote = None
        if preloads != self._preloads or yaml_changed:
            new_zygote = ZygoteHandle(self.settings, self._env)
            new_zygote.wait_ready()
            self._preloads = preloads
        assert self._zygote is not None
        new_template = self._new_template(new_zygote or self._zygote) if not self.persistent else None
        with self._lock:
            self.generation += 1
            self._description = None
            old_zygote = None
            if new_zygote is not None:
                old_zygote, self._zygote = self._zygote, new_zygote
            old_template, self._template = self._template, new_template
            old_spares, self._spares = list(self._spares), collections.deque()
            old_workers = list(self._workers)
            if not self.persistent:
                self._fill()
        for c in old_spares:
            c.chan.close()  # an idle spare exits when its socket closes
        if self.persistent:
            assert self._zygote is not None
            fresh = [_PersistentWorker(self, self._zygote.spawn("persistent", self.generation))
                     for _ in range(self.n_workers)]
            for w in fresh:
                w.ready.wait(30)
            with self._lock:
                self._workers = [w for w in self._workers if w not in old_workers] + fresh
                self._retiring.extend(old_workers)
                for w in old_workers:
                    w.retired = True
            for w in old_workers:
                w._maybe_finish_retire()
        if old_template is not None:
            old_template.retire()  # it exits once the children it forked have
        if old_zygote is not None:
            old_zygote.retire()

    # -- describe -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The registered functions and any import error, from a child that imports the current code.

        Cached per generation: a description that a reload overtook is returned to its caller but
        never cached, and the next caller gets one of the new code.
        """
        for _ in range(3):
            with self._lock:
                if self._description is not None:
                    return self._description
                generation = self.generation
                child = (self._template or self._zygote or self._forker()).spawn("describe", generation)
            desc = self._read_description(child)
            with self._lock:
                if self.generation == generation:
                    self._description = desc
                    return desc
        return desc

    @staticmethod
    def _read_description(child: Child) -> dict[str, Any]:
        try:
            return child.chan.recv(time.monotonic() + 60) or {"functions": [], "import_error": {
                "type": "anvil.server.ExecutionTerminatedError", "message": "loading the app failed"}}
        except FrameTimeout:
            child.kill()
            return {"functions": [], "import_error": {"type": "anvil.server.TimeoutError",
                                                      "message": "Importing the server modules took too long"}}
        finally:
            child.chan.close()
