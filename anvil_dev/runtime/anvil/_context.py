"""The state of the server call running on this thread (session, caller, depth)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from anvil_dev.protocol import Caller


@dataclass
class CallState:
    """One call as server code sees it: its `Caller`'s fields (the session id can change, at a
    login), its depth, and per-call caches."""

    call_id: str | None = None
    command: str | None = None
    session_id: str | None = None
    client_type: str | None = None
    client_ip: str | None = None
    remote_trusted: bool = True
    call_stack: list[dict[str, Any]] = field(default_factory=list)
    depth: int = 0
    user_email_override: str | None = None
    background_task_id: str | None = None
    via: str | None = None
    http_request: Any = None
    output: list[str] = field(default_factory=list)
    # Per-call caches that services may fill (e.g. the session record, the user row).
    cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_call(cls, caller: Caller, call_id: str, command: str) -> CallState:
        return cls(
            call_id=call_id,
            command=command,
            session_id=caller.session_id,
            client_type=caller.client_type,
            client_ip=caller.ip,
            remote_trusted=caller.trusted,
            call_stack=list(caller.call_stack),
            user_email_override=caller.user_email_override,
            background_task_id=caller.background_task_id,
            via=caller.via,
        )

    def caller(self) -> Caller:
        """Who is making this call, as it is now (after a login, with the new session id)."""
        return Caller(
            client_type=self.client_type or "browser",
            ip=self.client_ip,
            session_id=self.session_id,
            trusted=self.remote_trusted,
            call_stack=list(self.call_stack),
            user_email_override=self.user_email_override,
            background_task_id=self.background_task_id,
            via=self.via,
        )


_OUTSIDE = CallState()
_local = threading.local()


def current() -> CallState:
    """The running call's state; outside any call, a default with no session or user."""
    return getattr(_local, "state", None) or _OUTSIDE


def in_call() -> bool:
    return getattr(_local, "state", None) is not None


def push(state: CallState) -> CallState | None:
    prev = getattr(_local, "state", None)
    _local.state = state
    return prev


def pop(prev: CallState | None) -> None:
    _local.state = prev
