"""Routes one server call to whoever runs it: a native handler, an uplink, or the engine."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import click

from anvil_dev import tracebacks
from anvil_dev.engine.direct import DirectResponse
from anvil_dev.engine.frames import printed_output
from anvil_dev.host.replay import CallRing, Recorded
from anvil_dev.protocol import (
    MAX_CALL_DEPTH,
    STACK_OVERFLOW_MESSAGE,
    Caller,
    Message,
    Reply,
    error_reply,
)

log = logging.getLogger("anvil_dev")

NativeHandler = Callable[[Message, Caller], Message]


class CallEngine(Protocol):
    def call(
        self, call: Mapping[str, Any], caller: Caller, raw: bytes | None = None, offer: DirectResponse | None = None
    ) -> Reply: ...


class Uplinks(Protocol):
    def match(self, command: str) -> str | None: ...

    def call(self, msg: Message, caller: Caller) -> Message: ...


class EventBus(Protocol):
    def publish(self, kind: str, data: dict[str, Any]) -> object: ...


class Dispatcher:
    """Anvil's dispatch order: native handlers, then uplink registrations, then server modules."""

    def __init__(
        self,
        engine: CallEngine,
        bus: EventBus | None = None,
        origin: str = "",
        recent: CallRing | None = None,
        show_internal_frames: bool = False,
    ) -> None:
        self.engine = engine
        # A failed call's traceback in the terminal: the app's frames, or anvil-dev's and libraries' too.
        self.show_internal_frames = show_internal_frames
        self.bus = bus
        # The calls the console's log shows, kept for replay (host/replay.py).
        self.recent = recent if recent is not None else CallRing()
        self.uplink: Uplinks | None = None
        self.origin = origin
        self.native: dict[str, NativeHandler] = {
            "anvil.private.echo": lambda msg, caller: {"response": (msg.get("args") or [None])[0], "objects": []},
            "anvil.private.get_app_origin": lambda msg, caller: {"response": self.origin, "objects": []},
            "anvil.private.get_api_origin": lambda msg, caller: {"response": self.origin + "/_/api", "objects": []},
        }

    def call(self, msg: Message, caller: Caller, scoped: bool = False, raw: bytes | None = None) -> Reply:
        """Run a call and return its reply; never raises. `scoped` is for the host's own HTTP endpoint
        and route requests, the one way an untrusted caller reaches a name with ':'. `raw` is the JSON
        the client sent, when `msg` is exactly that parsed: the engine forwards it unparsed."""
        return self.call_recorded(msg, caller, scoped, raw=raw)[0]

    def call_recorded(
        self,
        msg: Message,
        caller: Caller,
        scoped: bool = False,
        replay_of: int | None = None,
        raw: bytes | None = None,
        offer: DirectResponse | None = None,
    ) -> tuple[Reply, Recorded | None]:
        """`call`, also giving the call's entry in the recent calls (None for calls the log does not
        show). `offer`: the server code's process may write the HTTP response itself (`Reply.written`)."""
        command = msg.get("command")
        if not isinstance(command, str):
            return error_reply(
                "anvil.server.InternalError", "A call must name a server function ('command' string)"
            ), None
        if len(caller.call_stack) > MAX_CALL_DEPTH or msg.get("call_depth", 0) > MAX_CALL_DEPTH:
            return error_reply("anvil.server.StackOverflow", STACK_OVERFLOW_MESSAGE), None
        if ":" in command and not caller.trusted and not scoped:
            return error_reply(
                "anvil.server.PermissionDenied", f'Cannot call scoped server function "{command}" from client code'
            ), None
        if command.startswith("anvil.private.secrets."):
            who = (
                "Uplink code cannot access secrets for this app."
                if caller.client_type == "uplink"
                else "Client code cannot access app secrets."
            )
            return error_reply("anvil.secrets.SecretError", who), None
        logged = command != "anvil.private.echo"
        entry = self.recent.record(msg, caller, scoped, replay_of, raw=raw) if logged else None
        start = time.perf_counter()
        native = self.native.get(command)
        if native is not None:
            try:
                reply = Reply.from_message(native(msg, caller))
            except Exception as e:  # the caller gets an error, never an HTML 500
                log.exception("native handler %s failed", command)
                reply = error_reply("anvil.server.InternalError", f"{command} failed: {type(e).__name__}: {e}")
        elif self.uplink is not None and self.uplink.match(command) is not None:
            reply = Reply.from_message(self.uplink.call(msg, caller))
        else:
            reply = self.engine.call(msg, caller, raw=raw, offer=offer)
        if reply.error is not None and command != "anvil.private.echo":
            err = reply.error
            # One line, whatever the caller put in the name (which messages may repeat): control
            # characters escaped, so no terminal escape sequences and no fake lines.
            who = caller.via or caller.client_type
            click.secho(
                f"{_printable(command, 200)} failed ({who}): {err.get('type')}: "
                f"{_printable(str(err.get('message')), 2000)}",
                fg="yellow",
                err=True,
            )
            trace = tracebacks.format_lines(
                err, reply.frames, internal=self.show_internal_frames, hint="serve --show-internal-frames shows them"
            )[:-1]  # its last line, the error, is the line above
            if trace:
                click.echo("".join(f"  {_printable(line, 300)}\n" for line in trace), err=True, nl=False)
        if entry is not None:
            self.recent.finish(entry, reply)
            if self.bus is not None:
                self._publish(command, caller, reply, time.perf_counter() - start, entry)
        return reply, entry

    def _publish(self, command: str, caller: Caller, reply: Reply, seconds: float, entry: Recorded) -> None:
        assert self.bus is not None
        err = reply.error or {}
        self.bus.publish(
            "call",
            {
                "id": entry.id,
                "replay_of": entry.replay_of,
                "replayable": entry.replayable,
                "command": command,
                "client_type": caller.via or caller.client_type,
                "user": reply.user or caller.user_email_override,
                "duration_ms": round(seconds * 1000, 2),
                "ok": reply.ok,
                "error_type": err.get("type"),
                "error_message": err.get("message"),
                "frames": reply.frames if reply.error is not None else None,
                "time": time.time(),
            },
        )
        output = printed_output(reply)
        if output:
            self.bus.publish("output", {"command": command, "text": output})


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str, limit: int) -> str:
    """`text` safe to print on a terminal: control characters escaped, at most `limit` characters."""
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)
