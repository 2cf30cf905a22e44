"""One fresh call's exchange with the child the engine gave it, the nested calls children make,
and a description child's answer.

`run_on_child` sends the call, answers the nested calls the child makes, and waits for the reply
with the call's deadline (paused while the child is stopped at a breakpoint) while the memory
limit, if any, is watched. Which child, and when its spare is replaced, is the engine's business.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from anvil_dev.engine import direct
from anvil_dev.engine.direct import DirectResponse
from anvil_dev.engine.forker import Child
from anvil_dev.engine.frames import Channel, Frame, FrameTimeout, to_reply
from anvil_dev.engine.memory import MemoryMonitor
from anvil_dev.engine.workers import DebugClock, call_deadline
from anvil_dev.protocol import Caller, FrameKind, Message, Reply, no_such_function, terminated_error, timeout_error

DESCRIBE_TIMEOUT_S = 60.0
# Where calls an engine has no function for go (the host's dispatcher): uplinks, native handlers.
Outbound = Callable[[Message, Caller], Reply]


class CallContext(Protocol):
    """What an exchange needs of the engine: its timeout, pdb relay, memory watch, nested calls."""

    timeout: float | None
    debugger: DebugClock | None
    memory: MemoryMonitor | None

    def answer_nested(self, chan: Channel, frame: Frame) -> None: ...


def run_on_child(
    child: Child,
    head: dict[str, Any],
    payload: bytes,
    started: float,
    ctx: CallContext,
    keep_open: bool = False,
    offer: DirectResponse | None = None,
) -> Reply | None:
    """The call's reply from `child`, or None when the child died before the call reached it.
    The child's socket is closed afterwards unless `keep_open` (a held call: see
    `Engine.hold_replacements`). With `offer`, the child may write the response itself
    (`anvil_dev.engine.direct`); at the deadline it is killed only if the host takes the claim."""
    timeout = ctx.timeout
    deadline = started + timeout if timeout else None
    chan = child.chan
    memory = ctx.memory
    watch = None
    try:
        if child.exited.is_set():
            return None
        try:
            chan.send(head, payload, offer.fds if offer is not None else ())
        except OSError:
            return None  # not (wholly) sent: the child cannot have started it
        if memory is not None:
            watch = memory.watch(child)
        while True:
            try:
                frame = chan.recv(deadline)
            except FrameTimeout:
                deadline = call_deadline(ctx.debugger, child.pid, started, timeout)
                if deadline is not None and deadline > time.monotonic():
                    continue
                if offer is None or offer.take_for_host() or not offer.write_progressed():
                    raise
                # The child is writing its response: its REPLY follows the write. Wait a grace, and
                # more while the client takes the response; a write stalled for a grace ends with the
                # child killed, and `direct.settle` has the connection closed.
                started, timeout = time.monotonic(), direct.WRITE_GRACE_S
                deadline = started + timeout
                continue
            if frame is None:
                if watch is not None and memory is not None and memory.killed(watch):
                    return Reply.from_message(terminated_error(-9))  # as the OOM killer's SIGKILL
                code = child.wait_exit(2.0)
                return None if child.never_forked else Reply.from_message(terminated_error(code))
            if frame.kind == FrameKind.REPLY:
                return to_reply(frame)
            if frame.kind == FrameKind.CALL:
                ctx.answer_nested(chan, frame)
    except FrameTimeout:
        child.kill()
        return Reply.from_message(timeout_error())
    except (OSError, ValueError):
        return Reply.from_message(terminated_error(child.wait_exit(2.0)))
    finally:
        if not keep_open:
            chan.close()
        if watch is not None and memory is not None:
            memory.unwatch(watch)


def answer_nested(chan: Channel, frame: Frame, outbound: Outbound | None) -> None:
    """Answer a child's nested call that it cannot answer itself (an uplink function, a native
    handler) through `outbound`, the host's dispatcher; no such function without one."""
    head = frame.head
    caller = Caller.from_json(head.get("caller") or {})
    call: Message = {
        "command": head.get("command"),
        "args": head.get("args") or [],
        "kwargs": head.get("kwargs") or {},
        "objects": head.get("objects") or [],
    }
    if isinstance(head.get("call_depth"), int):
        call["call_depth"] = head["call_depth"]
    reply = (
        Reply.from_message(no_such_function(str(head.get("command")))) if outbound is None else outbound(call, caller)
    )
    try:
        chan.send_reply(head.get("id"), reply)
    except OSError:
        pass


def read_description(child: Child) -> dict[str, Any]:
    """A DESCRIBE child's answer: the registered functions and any import error."""
    try:
        frame = child.chan.recv(time.monotonic() + DESCRIBE_TIMEOUT_S)
    except FrameTimeout:
        child.kill()
        return {
            "functions": [],
            "import_error": {
                "type": "anvil.server.TimeoutError",
                "message": "Importing the server modules took too long",
            },
        }
    finally:
        child.close()
    if frame is None:
        return {
            "functions": [],
            "import_error": {"type": "anvil.server.ExecutionTerminatedError", "message": "loading the app failed"},
        }
    return frame.head
