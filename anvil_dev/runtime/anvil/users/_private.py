"""What anvil.users plugs in: the require_user check, and the `anvil.private.users.*` functions clients call."""

from __future__ import annotations

from typing import Any

from anvil import _context, _engine_hooks, server
from anvil.users._login import force_login, get_user, logout
from anvil.users._passwords import (
    _signup,
    login_with_email,
    reset_password,
    send_password_reset_email,
    send_token_login_email,
)
from anvil.users._service import _from_client, _table
from anvil.users.exceptions import (
    AuthenticationFailed,
)
from anvil_dev.services import users as _svc


def _check_require_user(reg: Any) -> None:
    """Called before a function registered with require_user=... runs (see anvil._engine_hooks)."""
    requirement = reg.require_user
    user = get_user()
    if callable(requirement):
        if user is None:
            raise AuthenticationFailed(f"You must be logged in to call server function '{reg.name}'")
        if not requirement(user):
            raise server.PermissionDenied(f"You do not have permission to call server function '{reg.name}'")
    elif requirement and user is None:
        raise AuthenticationFailed("You must be logged in to call this server function")


_engine_hooks.require_user_check = _check_require_user


def _for_caller(user: Any) -> Any:
    """The user row as this caller may see it: untrusted callers (browsers, HTTP clients) get a row
    without the secret columns."""
    if user is None or _context.current().remote_trusted:
        return user
    from anvil.tables import query as q

    table = _table()
    shown = [c["name"] for c in table.list_columns() if c["name"] not in _svc.SECRET_COLUMNS]
    for row in table.search(q.only_cols(*shown), email=user.get("email")):
        if row == user:
            return row
    return None


def _p_login_with_email(
    email: str, password: str, remember: bool = False, mfa: Any = None, fetch: Any = None, **_ignored: Any
) -> Any:
    return _for_caller(login_with_email(email, password, remember=remember))


def _p_signup_with_email(
    email: str, password: str, remember: bool = False, mfa_method: Any = None, fetch: Any = None, **_ignored: Any
) -> Any:
    return _for_caller(_signup(email, password, remember, from_client=_from_client()))


def _p_logout(invalidate_client_objects: bool = False, **_ignored: Any) -> None:
    logout()


def _p_get_current_user(allow_remembered: bool = True, fetch: Any = None, **_ignored: Any) -> Any:
    return _for_caller(get_user(allow_remembered))


def _p_get_current_user_email(**_ignored: Any) -> str | None:
    user = get_user()
    return user.get("email") if user is not None else None


def _p_force_login(user: Any, remember: bool = False, **_ignored: Any) -> Any:
    if _from_client():
        raise server.PermissionDenied("force_login() can only be called from server code")
    return force_login(user, remember=remember)


def _p_reset_password(old_password: str, new_password: str, **_ignored: Any) -> bool:
    return reset_password(old_password, new_password)


def _p_send_password_reset_email(email: str, **_ignored: Any) -> None:
    send_password_reset_email(email)


def _p_send_token_login_email(email: str, **_ignored: Any) -> None:
    send_token_login_email(email)


for _fn, _name in (
    (_p_send_token_login_email, "send_token_login_email"),
    (_p_login_with_email, "login_with_email"),
    (_p_signup_with_email, "signup_with_email"),
    (_p_logout, "logout"),
    (_p_get_current_user, "get_current_user"),
    (_p_get_current_user_email, "get_current_user_email"),
    (_p_force_login, "force_login"),
    (_p_reset_password, "reset_password"),
    (_p_send_password_reset_email, "send_password_reset_email"),
):
    server.register(_fn, "anvil.private.users." + _name)
