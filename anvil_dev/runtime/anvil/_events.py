"""The client-session API of anvil.server (downlink/python/anvil/_server.py lines 1715-1746, served by
the platform's anvil.private.* handlers in server/core/src/anvil/dispatcher/native_rpc_handlers/core.clj
lines 214-285): channels a session subscribes to, the app's sessions, another session's data.

What anvil-dev cannot do is push an event into a browser: there is no channel from server to page.
raise_event says so, naming itself, rather than dropping the event silently.
"""

from __future__ import annotations

import json
from typing import Any

from anvil import _context


def _session_id(what: str) -> str:
    sid = _context.current().session_id
    if not sid or not _context.in_call():
        raise RuntimeError(f"Cannot {what} outside a call from a client session")
    return sid


def _sessions() -> Any:
    from anvil_dev import services

    return services.current().sessions


def subscribe(channel: str) -> None:
    """Subscribe this session to the named channel's events."""
    _sessions().subscribe(_session_id("subscribe to a channel"), str(channel))


def unsubscribe(channel: str) -> None:
    """Stop this session receiving the named channel's events."""
    _sessions().unsubscribe(_session_id("unsubscribe from a channel"), str(channel))


def get_subscriptions() -> list[str]:
    """The channels this session is subscribed to."""
    return _sessions().subscriptions(_session_id("get subscriptions"))


def list_client_sessions(user: Any = None) -> list[str]:
    """The ids of the app's sessions, or only those where `user` (a users row) is logged in."""
    user_id = None
    if user is not None:
        get_id = getattr(user, "get_id", None)
        if get_id is None:
            raise TypeError(f"list_client_sessions(user=...) takes a row of the users table, not {type(user).__name__}")
        user_id = get_id()  # sessions record their user by row id, as anvil.users logs them in
    return [
        s["id"]
        for s in _sessions().list_sessions(limit=100000)
        if user is None or (s["user_id"] is not None and str(s["user_id"]) == str(user_id))
    ]


def get_client_session(session_id: str) -> dict[str, Any]:
    """What `anvil.server.session` holds for another session of this app."""
    from anvil._registry import REGISTRY
    from anvil_dev import wire

    record = _sessions().load(str(session_id))
    if record is None:
        return {}
    msg = json.loads(record["data"] or "{}")
    return (wire.decode(msg, REGISTRY).get("session") or {}) if "session" in msg else {}


def raise_event(
    name: str, payload: Any = None, session_id: Any = None, session_ids: Any = None, channel: Any = None
) -> None:
    """Anvil delivers the event to client sessions; anvil-dev has no way to reach a page, so it refuses."""
    raise NotImplementedError(
        f"anvil.server.raise_event({name!r}): anvil-dev cannot deliver server events to client sessions "
        "(there is no push channel to the browser); poll from the client instead"
    )
