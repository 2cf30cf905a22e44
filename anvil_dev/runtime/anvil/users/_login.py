"""Who is logged in: get_user, force_login and logout, kept in the caller's session record."""

from __future__ import annotations

import secrets
from typing import Any

from anvil import _context, server
from anvil.users._service import _find_by_email, _now, _table, _write
from anvil.users.exceptions import (
    AuthenticationFailed,
)
from anvil_dev import services

_CACHE_KEY = "anvil.users.user"
_UNSET = object()


def get_user(allow_remembered: bool = True, fetch: Any = None) -> Any:
    """The logged-in user's row, or None. Outside a server call (at import time) always None."""
    if not _context.in_call():
        return None
    state = _context.current()
    cached = state.cache.get(_CACHE_KEY, _UNSET)
    if cached is not _UNSET:
        return cached
    user = _load_user(state)
    state.cache[_CACHE_KEY] = user
    return user


def _load_user(state: _context.CallState) -> Any:
    if state.user_email_override:
        table = _table()
        user = _find_by_email(table, state.user_email_override)
        if user is None:
            raise AuthenticationFailed(
                f"No user with email {state.user_email_override!r} to call as: add one with "
                f"`anvil-dev users add {state.user_email_override}`"
            )
        return user
    if not state.session_id:
        return None
    record = services.current().sessions.load(state.session_id)
    user_id = record and record.get("user_id")
    if not user_id:
        return None
    from anvil.tables import RowDeleted, TableError

    try:
        return _table().get_by_id(user_id)
    except (RowDeleted, TableError):
        return None


def _set_login(user: Any, remember: bool) -> None:
    """Make `user` the logged-in user of this call and of the caller's session."""
    state = _context.current()
    if state.session_id and _context.in_call():
        session_id = _new_session_id(state) if _caller_holds_cookie(state) else state.session_id
        services.current().sessions.save(session_id, user_id=user.get_id(), remember=bool(remember))
    state.cache[_CACHE_KEY] = user
    services.current().users.clear_failures(user.get_id())
    values: dict[str, Any] = {"last_login": _now()}
    if user.get("n_password_failures"):
        values["n_password_failures"] = 0
    _write(user, **values)


def _caller_holds_cookie(state: _context.CallState) -> bool:
    """True when this call's reply goes straight to a client that holds a session cookie: a
    browser-style HTTP call, maybe through server code here, not through an uplink (whose
    connection keeps its own session id)."""
    stack = state.call_stack
    return (
        bool(stack) and stack[0].get("type") == "browser" and all(f.get("type") == "server_module" for f in stack[1:])
    )


def _new_session_id(state: _context.CallState) -> str:
    """Move the caller to a new session id, keeping its data and cookies; returns the new id.

    A login must not stay on an id someone else may already know (session fixation: a page on
    another port of this host can plant its own session cookie in the victim's browser). The
    host sends the caller a cookie for the new id with this call's reply.
    """
    old = str(state.cache.get("session_rotated_to") or state.session_id)
    new = secrets.token_urlsafe(24)
    record = services.current().sessions.load(old)
    services.current().sessions.save(new, data=record["data"] if record else None, client_type=state.client_type)
    services.current().cookies.move(old, new)
    services.current().sessions.delete(old)
    state.cache["session_rotated_to"] = new
    state.session_id = new
    return new


def force_login(user: Any, remember: bool = False, fetch: Any = None) -> Any:
    """Log `user` (a row of the users table) in, without a password; None logs out."""
    if user is None:
        logout()
        return None
    from anvil.tables import Row

    if not isinstance(user, Row) or not _table().has_row(user):
        # Anvil's error carries no type (users/core.clj line 175): a plain AnvilWrappedError.
        raise server.AnvilWrappedError("force_login() must be passed a row from the users table")
    _set_login(user, remember)
    return user


def logout(invalidate_client_objects: bool = False) -> None:
    """Log the current session out (for the rest of this call too, even under `call --as`)."""
    state = _context.current()
    if state.session_id and _context.in_call():
        services.current().sessions.save(_new_session_id(state), user_id=None, remember=False)
    state.cache[_CACHE_KEY] = None
