"""The one definition of a call: what it carries, who makes it, what comes back, and Anvil's errors.

Every layer speaks these types: the host builds a `Call` from a request, the engine sends it to a
child as a frame, the runtime runs it and answers with a `Reply`, and the host writes the reply's
`body` to the client without parsing it again. Imports nothing of the project, like `wire.py`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypedDict

Message = dict[str, Any]


class FrameKind(str, Enum):
    """What a frame between the host and a child holds."""

    CALL = "CALL"  # a call to run (host -> child), or a nested call the child cannot run (child -> host)
    REPLY = "REPLY"  # the answer to a CALL, either way
    READY = "READY"  # a persistent worker has imported the app
    INTERRUPT = "INTERRUPT"  # a persistent call's time is up
    DESCRIBE = "DESCRIBE"  # the app's registered functions
    WARM = "WARM"  # a spare fresh child may warm its call path before its call (host -> child)


class ChildMode(str, Enum):
    """What a process forked by the zygote is for."""

    FRESH = "fresh"  # one call, then exit
    FRESH_IMPORT_ON_CALL = "fresh_import_on_call"  # one call, importing the app when it arrives
    PERSISTENT = "persistent"  # many calls in threads (server_persist, background tasks)
    DESCRIBE = "describe"  # report the app's functions, then exit
    TEMPLATE = "template"  # import the app, then fork fresh children of this generation


class ErrorInfo(TypedDict, total=False):
    """An error as Anvil sends it: `{"type", "message", "trace"}`; trace is `[[file, line], ...]`."""

    type: str
    message: str
    trace: list[Any]
    moduleLoadFailed: bool


class CallMessage(TypedDict, total=False):
    """A call as a client sends it (Anvil's shape): values in wire form, media and portable objects
    in `objects`."""

    command: str
    args: list[Any]
    kwargs: dict[str, Any]
    objects: list[dict[str, Any]]
    call_depth: int


@dataclass
class Caller:
    """Who is calling: travels with a call into workers and uplinks.

    `call_stack` is a list of frames `{"type": "browser"|"server_module"|"uplink"|"http"|...}`,
    outermost first; `trusted` is False for browsers and HTTP clients (their row references must
    carry a valid MAC, and they cannot call names with ':').
    """

    client_type: str = "browser"
    ip: str | None = None
    session_id: str | None = None
    trusted: bool = False
    call_stack: list[dict[str, Any]] = field(default_factory=list)
    user_email_override: str | None = None
    background_task_id: str | None = None
    # What the dev console's log shows as the caller ("cli", "python"), when not its client_type.
    via: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "client_type": self.client_type,
            "ip": self.ip,
            "session_id": self.session_id,
            "trusted": self.trusted,
            "call_stack": self.call_stack,
            "user_email_override": self.user_email_override,
            "background_task_id": self.background_task_id,
            "via": self.via,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Caller:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def nested(self, frame_type: str) -> Caller:
        """The caller of a call made from inside this one (server code, an uplink): always trusted."""
        return Caller(
            client_type=self.client_type,
            ip=self.ip,
            session_id=self.session_id,
            trusted=True,
            call_stack=[*self.call_stack, {"type": frame_type}],
            user_email_override=self.user_email_override,
            background_task_id=self.background_task_id,
            via=self.via,
        )


@dataclass
class Reply:
    """The answer to a call.

    `body` is the JSON a client gets (`{"response", "objects", "output"}` or `{"error", "objects",
    "output"}`), encoded once where the call ran; the host writes it out as it is. The other fields
    are for the host only and never reach a client: the error (for the status code, the terminal
    and the console), a new session id after a login, the user the call ran as (for the console),
    and whether `objects` holds media (then the host adds download URLs). `frames` is a failed call's
    traceback with function names and source lines (`anvil_dev.tracebacks`), for the serve terminal,
    the console and `anvil-dev call`; clients get Anvil's `[file, line]` trace in `error` only.

    `written`: the process that ran the call has written the HTTP response itself
    (`anvil_dev.engine.direct`), so the host writes nothing. `connection_broken`: that process took
    the writing and died before saying it had finished, so what reached the client is not known and
    the host closes the connection without writing.
    """

    body: bytes
    error: ErrorInfo | None = None
    session_id: str | None = None
    user: str | None = None
    has_media: bool = False
    frames: list[dict[str, Any]] | None = None
    written: bool = False
    connection_broken: bool = False
    _message: Message | None = field(default=None, repr=False)

    @classmethod
    def from_message(cls, message: Message, *, session_id: str | None = None, user: str | None = None) -> Reply:
        """A reply built from a message in this process (native handlers, uplinks, errors of ours)."""
        error = message.get("error")
        return cls(
            body=json.dumps(message).encode(),
            error=error,
            session_id=session_id,
            user=user,
            has_media=has_media(message),
            _message=message,
        )

    @property
    def ok(self) -> bool:
        return self.error is None

    def message(self) -> Message:
        """The body as a dict (parsed once, on demand: most replies are only forwarded)."""
        if self._message is None:
            self._message = json.loads(self.body)
        return self._message

    def replace_message(self, message: Message) -> None:
        """Change what the client gets (the host adds media URLs)."""
        self._message = message
        self.body = json.dumps(message).encode()


def has_media(message: Message) -> bool:
    return any(isinstance(e, dict) and e.get("type") == ["DataMedia"] for e in message.get("objects") or ())


# -- Anvil's errors, each written once ------------------------------------------------------------


def error(type_name: str, message: str, trace: list[Any] | None = None) -> Message:
    """An error reply message, in Anvil's shape."""
    return {"error": {"type": type_name, "message": message, "trace": trace or []}, "objects": []}


def error_reply(type_name: str, message: str) -> Reply:
    return Reply.from_message(error(type_name, message))


TIMEOUT_MESSAGE = "Server code took too long"
TOO_MUCH_DATA_MESSAGE = (
    "Tried to pass too much data to a server function - please use Media objects to transfer large amounts of data."
)
RETURNED_TOO_MUCH_MESSAGE = (
    "This function returned too much data - please use Media objects to transfer large amounts of data."
)
STACK_OVERFLOW_MESSAGE = "Too many nested anvil.server.call()s"
MAX_CALL_DEPTH = 10


def no_such_function(name: str) -> Message:
    return error("anvil.server.NoServerFunctionError", f'No server function matching "{name}" has been registered')


def timeout_error() -> Message:
    return error("anvil.server.TimeoutError", TIMEOUT_MESSAGE)


def terminated_error(code: int | None) -> Message:
    """Anvil's message for a process that ended without answering (`code` as Popen gives it)."""
    ref = secrets.token_hex(5)
    if code == -9:
        msg = f"Server code execution process was killed. This is usually caused by running out of memory. ({ref})"
    elif code is not None and code < 0:
        msg = f"Server code execution process was killed with signal {-code}. ({ref})"
    else:
        msg = f"Server code exited unexpectedly: {ref} (exit code {code})"
    return error("anvil.server.ExecutionTerminatedError", msg)


def unavailable(message: str) -> Message:
    return error("anvil.server.RuntimeUnavailableError", message)


# The HTTP status each error type gets from /_/call; the rest are 500 (or 400 for anvil.users errors).
HTTP_STATUS = {
    "anvil.server.NoServerFunctionError": 404,
    "anvil.server.PermissionDenied": 403,
    "anvil.users.AuthenticationFailed": 401,
    "anvil.server.SerializationError": 400,
    "anvil.server.TimeoutError": 504,
    "anvil.server.StackOverflow": 400,
    "anvil.server.UplinkDisconnectedError": 502,
    "anvil.server.RuntimeUnavailableError": 503,
}


def http_status(err: ErrorInfo | None) -> int:
    if err is None:
        return 200
    type_name = str(err.get("type") or "")
    if type_name in HTTP_STATUS:
        return HTTP_STATUS[type_name]
    return 400 if type_name.startswith("anvil.users.") else 500
