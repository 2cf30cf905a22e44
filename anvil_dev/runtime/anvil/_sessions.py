"""The running call's anvil.server.session: loaded on first touch, saved when the call ends if changed."""

from __future__ import annotations

import json
from typing import Any

from anvil import Media, _context
from anvil._registry import REGISTRY
from anvil_dev import wire


def current_data() -> dict[str, Any]:
    state = _context.current()
    data = state.cache.get("session_data")
    if data is not None:
        return data
    data, original = {}, None
    if state.session_id and _context.in_call():
        from anvil_dev import services

        record = services.current().sessions.load(state.session_id)
        if record is not None:
            original = record["data"]
            msg = json.loads(original or "{}")
            if "session" in msg:
                data = wire.decode(msg, REGISTRY).get("session") or {}
        session_id = state.session_id

        # Saved at the end of the call, and only if it changed: values may be mutated in
        # place (session["cart"].append(x)), which no __setitem__ sees.
        def encoded() -> str:
            # Anvil's message (downlink/python/anvil/_threaded_server.py line 297).
            return json.dumps(
                wire.encode(
                    {"session": data}, REGISTRY, error_prefix="Tried to store illegal value in a anvil.server.session. "
                )
            )

        def flush() -> None:
            text = encoded()
            if text != original and not (original is None and not data):
                # A login during the call may have moved the session to a new id (anvil.users).
                services.current().sessions.save(state.cache.get("session_rotated_to") or session_id, data=text)

        state.cache["session_check"] = encoded
        state.cache["session_flush"] = flush
    state.cache["session_data"] = data
    return data


def mark_dirty() -> None:
    """Kept for callers that change the session through its mapping methods; the flush compares anyway."""


def check_storable(value: Any, _depth: int = 0) -> None:
    """Refuse what Anvil refuses in a session (Media); other values must be portable."""
    if isinstance(value, Media):
        # Anvil's wording, whatever the Media class: all of them travel as DataMedia.
        raise REGISTRY.error_class("Cannot save DataMedia objects in anvil.server.session")
    if _depth > 50:
        return
    if isinstance(value, dict):
        for v in value.values():
            check_storable(v, _depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            check_storable(v, _depth + 1)
