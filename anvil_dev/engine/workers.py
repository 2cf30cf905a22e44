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

from anvil_dev.engine import direct
from anvil_dev.engine.direct import DirectResponse
from anvil_dev.engine.forker import Child
from anvil_dev.engine.frames import Channel, Frame, FrameTimeout, to_reply
from anvil_dev.protocol import Caller, ErrorInfo, FrameKind, Reply, terminated_error, timeout_error

log = logging.getLogger("anvil_dev")

# How long an interrupted persistent call may take to stop before its worker is retired.
INTERRUPT_GRACE_S = 0.3
# A PersistentWorker's reader when no caller reads: its own thread (`PersistentWorker._drain`).
_DRAINER = object()


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
    """A call waiting for its reply, and the one thread waiting for it (its caller).

    The caller is woken, through a bare lock held until then, when its reply is set or when it is
    handed the reading of the worker's socket (`promote`). The flags change with the worker's lock
    held. A bare lock rather than a threading.Event, whose Condition costs a lock made per wait.
    """

    __slots__ = ("_arrived", "_woken", "done", "lead", "reply", "timed_out")

    def __init__(self) -> None:
        self._arrived = _thread.allocate_lock()
        self._arrived.acquire()
        self._woken = False
        self.done = False
        self.lead = False  # handed the reading, and not yet reading
        self.reply: Reply | None = None
        self.timed_out = False  # its caller has gone

    def set(self, reply: Reply) -> None:
        self.reply = reply
        self.done = True
        self._wake()

    def promote(self) -> None:
        self.lead = True
        self._wake()

    def _wake(self) -> None:
        if not self._woken:
            self._woken = True
            self._arrived.release()

    def wait(self, timeout: float | None) -> None:
        """Until woken, or for `timeout` seconds (None: no limit); then `rearm`, with the lock held."""
        self._arrived.acquire(timeout=-1 if timeout is None else timeout)

    def rearm(self) -> None:
        """After `wait`: the next wake releases the lock again."""
        if self._woken:
            self._woken = False
            self._arrived.acquire(blocking=False)  # it was released after our wait gave up


class PersistentWorker:
    """A long-lived child running calls in threads; frames are multiplexed by call id.

    Its socket has one reader at a time, and the reader is a caller waiting for its reply
    (leader and followers): the caller that finds nobody reading reads, delivering the other
    callers' replies and starting threads for the worker's nested calls, until its own reply
    comes; then it hands the reading to another waiting caller, if any. A reply so reaches the
    thread that writes the response with no hand-off between threads, which had cost 7-9% of a
    persistent call back to back. A thread of its own (`_drain`) reads only while nobody waits
    but something must still be read: until READY, the replies of calls that timed out, and to
    EOF once the worker's exit was reported (a dead worker is then replaced before the next call).
    """

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
        # Who reads the socket: a caller's _Pending, _DRAINER, or nobody.
        self._reader: _Pending | object | None = _DRAINER
        self._exit_reported = False
        threading.Thread(target=self._drain, name="worker-reader", daemon=True).start()
        child.on_exit(self._on_exit)

    @property
    def load(self) -> int:
        return len(self.pending)

    def call(
        self,
        head: dict[str, Any],
        timeout: float | None,
        debugger: DebugClock | None = None,
        payload: bytes = b"",
        offer: DirectResponse | None = None,
    ) -> Reply:
        """Send the CALL frame `head` (and `payload`) and wait for its reply, reading the socket
        when nobody else is; at the timeout (less any time the worker spent stopped at a
        breakpoint), interrupt the call. With `offer`, the worker may write the response itself
        (`anvil_dev.engine.direct`); at the timeout, if it has taken that, its reply is awaited."""
        p = _Pending()
        call_id = head["id"]
        with self.lock:
            if self.dead:
                return Reply.from_message(terminated_error(self.child.exit_code))
            self.pending[call_id] = p
            reading = self._reader is None
            if reading:
                self._reader = p
        try:
            self.child.chan.send(head, payload, offer.fds if offer is not None else ())
        except OSError:
            pass
        # The worker's threads may all be running other calls, none reading: wake it. Asked after
        # the send: of two calls sent at once, the one sent second then sees the other, whose frame
        # is in the socket by then (asked before, neither might, with both frames sent). A glance
        # at the dict's size needs no lock.
        if len(self.pending) > 1:
            self.child.wake(unless_reading=True)
        started = time.monotonic()
        deadline = call_deadline(debugger, self.child.pid, started, timeout)
        while True:
            if reading:
                self._read(p, deadline)
            else:
                p.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            with self.lock:
                if not reading:
                    p.rearm()
                    reading, p.lead = p.lead, False
                if p.done:
                    return self._answered(p)
            deadline = call_deadline(debugger, self.child.pid, started, timeout)
            if deadline is not None and deadline <= time.monotonic():
                with self.lock:
                    if p.done:
                        return self._answered(p)
                if offer is not None and not offer.take_for_host() and offer.write_progressed():
                    # The worker is writing the response: its REPLY follows the write. Wait a grace,
                    # and more while the client takes the response; after a write stalled for a
                    # grace, `direct.settle` has the connection closed.
                    timeout, started = direct.WRITE_GRACE_S, time.monotonic()
                    deadline = call_deadline(debugger, self.child.pid, started, timeout)
                    continue
                with self.lock:
                    if p.done:
                        return self._answered(p)
                    p.timed_out = True
                    if self._reader is p:
                        self._hand_on_reading(p)
                break
        try:
            self.child.chan.send({"type": FrameKind.INTERRUPT.value, "id": call_id})
        except OSError:
            pass
        self.child.wake()  # the thread that would read it may be the one running the call
        timer = threading.Timer(INTERRUPT_GRACE_S, self._check_interrupted, args=(call_id,))
        timer.daemon = True
        timer.start()
        return Reply.from_message(timeout_error())

    def _answered(self, p: _Pending) -> Reply:
        """`p`'s reply, its caller done with the socket. Caller holds the lock."""
        if self._reader is p:
            self._hand_on_reading(p)
        return p.reply or Reply.from_message(terminated_error(None))

    def _read(self, waiter: _Pending | None, deadline: float | None) -> None:
        """Read and dispatch frames: for `waiter`, until its reply has come or the deadline passes;
        for the drainer (None), until `_drained`. At EOF the worker is dead and every waiter told."""
        chan = self.child.chan
        while True:
            try:
                frame = chan.recv(deadline)
            except FrameTimeout:
                return
            except (OSError, ValueError):
                frame = None
            if frame is None:
                self._died()
                return
            kind = frame.kind
            if kind == FrameKind.REPLY:
                with self.lock:
                    p = self.pending.pop(str(frame.head.get("id")), None)
                    if p is not None:
                        p.set(to_reply(frame))
                self.kill_when_idle()
            elif kind == FrameKind.CALL:
                threading.Thread(target=self.supervisor.answer_nested, args=(chan, frame), daemon=True).start()
            elif kind == FrameKind.READY:
                self.import_error = frame.head.get("import_error")
                self.ready.set()
            if waiter is not None:
                if waiter.done:
                    return
            else:
                with self.lock:
                    if self._drained():
                        self._hand_on_reading(None)
                        return

    def _hand_on_reading(self, me: _Pending | None) -> None:
        """The reader `me` (None: the drainer) stops reading: a waiting caller reads next, else the
        drainer if something must still be read, else nobody. Caller holds the lock."""
        self._reader = None
        if self.dead:
            return
        for p in self.pending.values():
            if p is not me and not p.done and not p.timed_out:
                p.promote()
                self._reader = p
                return
        if not self._drained():
            self._reader = _DRAINER
            if me is not None:  # else the drainer reads on
                threading.Thread(target=self._drain, name="worker-reader", daemon=True).start()

    def _drained(self) -> bool:
        """Nothing is left for the drainer to read, or a caller waits to read. Caller holds the lock."""
        if any(not p.done and not p.timed_out for p in self.pending.values()):
            return True
        return self.ready.is_set() and not self._exit_reported and not self.pending

    def _drain(self) -> None:
        self._read(None, None)

    def _on_exit(self) -> None:
        """The worker's process has ended (or its forker died, and will report nothing more): keep
        a reader on the socket until EOF, so that a worker that dies idle is replaced at once."""
        with self.lock:
            self._exit_reported = True
            if self.dead or self._reader is not None:
                return  # whoever reads sees the EOF
            self._reader = _DRAINER
        threading.Thread(target=self._drain, name="worker-reader", daemon=True).start()

    def _died(self) -> None:
        """EOF on the worker's socket: its calls end with the exit's error, and it is replaced."""
        err = Reply.from_message(terminated_error(self.child.wait_exit(2.0)))
        with self.lock:
            if self.dead:
                return
            self.dead = True
            self._reader = None
            pending, self.pending = self.pending, {}
            for p in pending.values():
                p.set(err)
        self.ready.set()
        self.supervisor.reap(self)

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
            self.child.close()

    def exit_code(self, timeout: float = 2.0) -> int | None:
        return self.child.wait_exit(timeout)

    def kill(self) -> None:
        """End the child now (and close its socket)."""
        self.child.kill()
        self.child.close()
