"""The host's handles on long-lived children: persistent workers, and background tasks' children.

A `PersistentWorker` runs many calls at once in threads of its child, its frames told apart by
call id; a `TaskRun` runs one background task. Both answer their child's nested calls through
the engine (`NestedCalls`); a worker tells its `Supervisor` when it must be retired or is gone.
"""

from __future__ import annotations

import _thread
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from anvil_dev.engine.forker import Child
from anvil_dev.engine.frames import Channel, Frame, FrameTimeout, to_reply
from anvil_dev.protocol import Caller, ErrorInfo, FrameKind, Reply, terminated_error, timeout_error

log = logging.getLogger("anvil_dev")

# How long an interrupted persistent call may take to stop before its worker is retired.
INTERRUPT_GRACE_S = 0.3


class NestedCalls(Protocol):
    def answer_nested(self, chan: Channel, frame: Frame) -> None:
        """Answer a CALL frame a child sent up (a function it does not have), on `chan`."""


class Supervisor(NestedCalls, Protocol):
    def retire(self, worker: PersistentWorker) -> None:
        """Route no new calls to `worker`; kill it once the calls in flight have finished."""

    def reap(self, worker: PersistentWorker) -> None:
        """`worker`'s process is gone: forget it, start a replacement."""


class DebugClock(Protocol):
    """How long a process has been stopped at a breakpoint (the host's PdbRelay)."""

    def stopped_seconds(self, pid: int) -> float: ...

    def is_stopped(self, pid: int) -> bool: ...


def call_deadline(debugger: DebugClock | None, pid: int | None, started: float, timeout: float | None) -> float | None:
    """A call's deadline with the time its process spent stopped in pdb left out; None for no limit.

    While the process is stopped the deadline keeps moving a little ahead, so the call never times
    out at a prompt; asked again at each deadline, it is exact once the process runs on.
    """
    if timeout is None:
        return None
    deadline = started + timeout
    if debugger is None or pid is None:
        return deadline
    deadline += debugger.stopped_seconds(pid)
    if debugger.is_stopped(pid):
        deadline = max(deadline, time.monotonic() + 0.25)
    return deadline


def call_frame(call: Mapping[str, Any], call_id: str, caller: Caller, with_args: bool = True) -> dict[str, Any]:
    """The header of a CALL frame: the call as the client sent it, its id and its caller.

    Without `with_args` the header names the command only, and the frame's payload carries the
    client's JSON (args, kwargs, objects) as it came (`call_from_frame` reads either).
    """
    head = {"type": FrameKind.CALL.value, "id": call_id, "command": call.get("command"), "caller": caller.to_json()}
    if with_args:
        head.update(args=call.get("args", []), kwargs=call.get("kwargs", {}), objects=call.get("objects", []))
    return head


class _Pending:
    """A call waiting for its reply: one waiter (the caller), set once by the reader.

    A bare lock, held until the reply comes, rather than a threading.Event, whose Condition costs
    a lock made per wait and Python-level bookkeeping on each side of the hand-off.
    """

    __slots__ = ("_arrived", "done", "reply", "timed_out")

    def __init__(self) -> None:
        self._arrived = _thread.allocate_lock()
        self._arrived.acquire()
        self.done = False
        self.reply: Reply | None = None
        self.timed_out = False

    def set(self) -> None:
        if not self.done:
            self.done = True
            self._arrived.release()

    def wait(self, timeout: float | None) -> bool:
        """True once the reply has come; False if `timeout` seconds (None: no limit) pass first."""
        if self.done:
            return True
        if self._arrived.acquire(timeout=-1 if timeout is None else timeout):
            self._arrived.release()  # a later wait returns at once
        return self.done


class PersistentWorker:
    """A long-lived child running calls in threads; frames are multiplexed by call id."""

    def __init__(self, supervisor: Supervisor, child: Child) -> None:
        self.supervisor = supervisor
        self.child = child
        self.ready = threading.Event()
        self.import_error: ErrorInfo | None = None
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
            kind = frame.kind
            if kind == FrameKind.READY:
                self.import_error = frame.head.get("import_error")
                self.ready.set()
            elif kind == FrameKind.REPLY:
                with self.lock:
                    p = self.pending.pop(str(frame.head.get("id")), None)
                if p is not None:
                    p.reply = to_reply(frame)
                    p.set()
                self.kill_when_idle()
            elif kind == FrameKind.CALL:
                threading.Thread(target=self.supervisor.answer_nested, args=(chan, frame), daemon=True).start()
        self.dead = True
        self.ready.set()
        err = Reply.from_message(terminated_error(self.child.wait_exit(2.0)))
        with self.lock:
            pending, self.pending = self.pending, {}
        for p in pending.values():
            p.reply = err
            p.set()
        self.supervisor.reap(self)

    def call(
        self, head: dict[str, Any], timeout: float | None, debugger: DebugClock | None = None, payload: bytes = b""
    ) -> Reply:
        """Send the CALL frame `head` (and `payload`) and wait for its reply; at the timeout (less any
        time the worker spent stopped at a breakpoint), interrupt the call."""
        p = _Pending()
        call_id = head["id"]
        with self.lock:
            if self.dead:
                return Reply.from_message(terminated_error(self.child.exit_code))
            self.pending[call_id] = p
        try:
            self.child.chan.send(head, payload)
        except OSError:
            pass
        started = time.monotonic()
        deadline = call_deadline(debugger, self.child.pid, started, timeout)
        while not p.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
            deadline = call_deadline(debugger, self.child.pid, started, timeout)
            if deadline is not None and deadline <= time.monotonic():
                break
        if p.done:
            return p.reply or Reply.from_message(terminated_error(None))
        p.timed_out = True
        try:
            self.child.chan.send({"type": FrameKind.INTERRUPT.value, "id": call_id})
        except OSError:
            pass
        timer = threading.Timer(INTERRUPT_GRACE_S, self._check_interrupted, args=(call_id,))
        timer.daemon = True
        timer.start()
        return Reply.from_message(timeout_error())

    def _check_interrupted(self, call_id: str) -> None:
        with self.lock:
            stuck = call_id in self.pending
        if stuck:
            # The thread did not stop (e.g. blocked in C code): new calls go elsewhere, the
            # others in flight finish, then the process goes.
            log.warning("a timed-out call did not stop; retiring worker pid %s", self.child.pid)
            self.supervisor.retire(self)

    def claim(self) -> None:
        with self.lock:
            self.claims += 1

    def unclaim(self) -> None:
        with self.lock:
            self.claims -= 1
        self.kill_when_idle()

    def kill_when_idle(self) -> None:
        """A retired worker goes once nothing but timed-out calls is left on it."""
        if not self.retired:
            return
        with self.lock:
            busy = self.claims or any(not p.timed_out for p in self.pending.values())
        if not busy:
            self.child.kill()

    def stop(self) -> None:
        self.retired = True
        self.child.close()
        self.child.kill()


class TaskRun:
    """A background task's child: it has imported the code of the launch, and runs one call."""

    def __init__(self, nested: NestedCalls, child: Child) -> None:
        self.nested = nested
        self.child = child
        self.out_of_memory = False  # killed for passing --memory-limit

    def over_memory_limit(self) -> None:
        self.out_of_memory = True

    def wait_ready(self, timeout: float) -> int | None:
        """The child's pid once it has imported the app; None if it did not start."""
        try:
            ready = self.child.chan.recv(time.monotonic() + timeout)
        except (FrameTimeout, OSError, ValueError):
            ready = None
        if ready is None or ready.kind != FrameKind.READY:
            return None
        pid = ready.head.get("pid")
        return pid if isinstance(pid, int) else self.child.pid

    def run(self, call: Mapping[str, Any], call_id: str, caller: Caller) -> Reply | None:
        """Run the task's call, answering its nested calls, with no timeout; None if the process
        ended without a reply."""
        chan = self.child.chan
        try:
            chan.send(call_frame(call, call_id, caller))
            while True:
                frame = chan.recv()
                if frame is None:
                    return None
                if frame.kind == FrameKind.REPLY:
                    return to_reply(frame)
                if frame.kind == FrameKind.CALL:
                    threading.Thread(target=self.nested.answer_nested, args=(chan, frame), daemon=True).start()
        except OSError:
            return None
        finally:
            chan.close()

    def exit_code(self, timeout: float = 2.0) -> int | None:
        return self.child.wait_exit(timeout)

    def kill(self) -> None:
        """End the child now (and close its socket)."""
        self.child.kill()
        self.child.close()
