"""The state of the server call running on this thread (session, caller, depth)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CallState:
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
    http_request: Any = None
    output: list[str] = field(default_factory=list)
    # Per-call caches that services may fill (e.g. the session record, the user row).
    cache: dict[str, Any] = field(default_factory=dict)


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
