"""`anvil.users`: users in the app's users data table, logged in per session, and require_user.

The logged-in user is kept in the caller's session record (`anvil_dev.services.sessions`,
column user_id, as "[table_id,row_id]"), so a login holds across calls in fresh and persistent
mode alike. `anvil-dev call --as EMAIL` sets the call's `user_email_override`, and get_user()
then returns that user. Outside a call (at import time) get_user() returns None and never raises.

Clients log in through the built-in functions `anvil.private.users.*` registered here; the user
rows they get back leave out the secret columns (password_hash, email_confirmation_key).
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable
from typing import Any

from anvil import _context, _engine_hooks, server
from anvil.users.exceptions import (
    AccountIsNotEnabled,
    AuthenticationFailed,
    EmailNotConfirmed,
    MFAException,
    MFARequired,
    PasswordNotAcceptable,
    PasswordResetRequested,
    TooManyPasswordFailures,
    UserExists,
)
from anvil_dev import services
from anvil_dev.services import users as _svc

__all__ = ["AccountIsNotEnabled", "AuthenticationFailed", "EmailNotConfirmed", "MFAException", "MFARequired",
           "PasswordNotAcceptable", "PasswordResetRequested", "TooManyPasswordFailures", "UserExists",
           "force_login", "get_user", "login_with_email", "logout", "reset_password",
           "send_password_reset_email", "send_token_login_email", "signup_with_email", "get_client_config"]

# As Anvil's anvil.users does `from anvil import *` (services/anvil/users/__init__.py), so do we.
from anvil import (
    BlobMedia,  # noqa: F401
    DataMedia,  # noqa: F401
    LiveObject,  # noqa: F401
    Media,  # noqa: F401
    URLMedia,  # noqa: F401
    app,  # noqa: F401
    create_lazy_media,  # noqa: F401
    is_server_side,  # noqa: F401
    plot_image,  # noqa: F401
)

_CACHE_KEY = "anvil.users.user"
_UNSET = object()
_BAD_LOGIN = "Incorrect email address or password"
_LOCKED = "You have entered an incorrect password too many times. Please reset your password by email."


# ------------------------------------------------------------------------------ the service and its table


def _settings() -> dict[str, Any]:
    opts = services.current().users.options()
    if opts is None:
        raise server.ServiceNotAdded("Add the Users service to your app before calling this function")
    return opts


def _table() -> Any:
    """The users data table named by the service's server_config user_table."""
    from anvil.tables import TableError, app_tables
    from anvil.tables._table import table_by_id

    name = _settings()["user_table"]
    try:
        return table_by_id(name) if isinstance(name, int) else app_tables[str(name)]
    except (KeyError, TableError):
        raise TableError(f"The users table '{name}' does not exist: add it to db_schema in anvil.yaml, or "
                         "point the Users service's server_config user_table at your table") from None


def _find_by_email(table: Any, email: Any) -> Any:
    """The user with this email: lower-cased first (how signups store it), then exactly as given."""
    if not isinstance(email, str) or not email.strip():
        return None
    _ensure_columns(table._id, ["email"])
    for candidate in dict.fromkeys([email.strip().lower(), email.strip()]):
        user = table.get(email=candidate)
        if user is not None:
            return user
    return None


def _ensure_columns(table_id: int, names: Any) -> None:
    """Create the service's columns among `names` that the users table lacks, as Anvil's Users
    service does (users/v2/util.clj lines 241-306), whatever auto_create_missing_columns says."""
    services.current().users.ensure_columns(table_id, names)


def _write(user: Any, **values: Any) -> None:
    """Update the service's columns of a user's row, creating those the table lacks."""
    _ensure_columns(user._table_id, values)
    user.update(**values)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


# ------------------------------------------------------------------------------ who is logged in


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
                f"`anvil-dev users add {state.user_email_override}`")
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
    return (bool(stack) and stack[0].get("type") == "browser"
            and all(f.get("type") == "server_module" for f in stack[1:]))


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


# ------------------------------------------------------------------------------ email and password


def login_with_email(email: str, password: str, remember: bool = False, mfa: Any = None, fetch: Any = None) -> Any:
    """Check the password and log the user in; returns their row. Anvil's exceptions on failure."""
    opts = _settings()
    if not opts.get("use_email"):
        # Untyped on Anvil (users/core.clj line 220).
        raise server.AnvilWrappedError("Email/password authentication is not enabled.")
    user = _find_by_email(_table(), email)
    if user is None:
        _svc.check_password(password, None)  # the same time as a wrong password: no hint the email is unknown
        raise AuthenticationFailed(_BAD_LOGIN)
    _check_counted(user, password)
    stored = user.get("password_hash")
    if _svc.needs_rehash(stored):
        # A hash from anvil-dev before bcrypt: replaced by Anvil's kind now the password is known.
        _write(user, password_hash=_svc.hash_password(password))
    if not user.get("enabled"):
        raise AccountIsNotEnabled("This account has not been enabled by an administrator")
    if opts.get("confirm_email") and not user.get("confirmed_email"):
        raise EmailNotConfirmed("You haven't confirmed your email address. Please check your email and click the "
                                "confirmation link, or reset your password.")
    _set_login(user, remember)
    return user


def _check_counted(user: Any, password: Any, message: str = _BAD_LOGIN) -> None:
    """Check `user`'s password, counted against the lockout before it is checked (so a burst of
    simultaneous attempts cannot all be checked); raise Anvil's exceptions when it is wrong or
    the account is locked."""
    limit = int(_settings().get("max_password_failures") or _svc.MAX_PASSWORD_FAILURES)
    users = services.current().users
    attempt = users.claim_attempt(user.get_id(), limit)
    if attempt == 0:
        raise TooManyPasswordFailures(_locked_message())
    if _svc.check_password(password, user.get("password_hash")):
        if not users.accept_password(user.get_id(), attempt, limit):
            raise TooManyPasswordFailures(_locked_message())
        return
    _write(user, n_password_failures=attempt)  # Anvil counts in the row, creating the column (users/util.clj line 311)
    raise (TooManyPasswordFailures if attempt >= limit else AuthenticationFailed)(message)


def _locked_message() -> str:
    minutes = max(1, round(services.current().users.lockout_seconds / 60))
    return f"{_LOCKED} (anvil-dev unlocks the account after {minutes} minute{'s' if minutes != 1 else ''})"


def signup_with_email(email: str, password: str, remember: bool = False, fetch: Any = None) -> Any:
    """Create a user; logs them in when the app enables new users at once (and needs no email check)."""
    return _signup(email, password, remember, from_client=False)


def _signup(email: Any, password: Any, remember: bool, from_client: bool) -> Any:
    from anvil.tables import in_transaction

    opts = _settings()
    # Both untyped on Anvil (users/core.clj lines 357-359).
    if from_client and not opts.get("allow_signup"):
        raise server.AnvilWrappedError("Signups from client code are not enabled.")
    if not opts.get("use_email"):
        raise server.AnvilWrappedError("Email/password authentication is not enabled.")
    if not isinstance(email, str) or "@" not in email:
        raise AuthenticationFailed("Please provide an email address.")
    email = email.strip().lower()
    problem = _svc.password_problem(password, bool(opts.get("require_secure_passwords")))
    if problem:
        raise PasswordNotAcceptable(problem)
    values: dict[str, Any] = {"email": email, "password_hash": _svc.hash_password(password),
                              "enabled": bool(opts.get("enable_automatically")), "signed_up": _now()}
    key = None
    if opts.get("confirm_email"):
        key = secrets.token_urlsafe(10)
        values.update(confirmed_email=False, email_confirmation_key=key)
    table = _table()

    @in_transaction
    def add() -> Any:
        # One transaction: two signups with one email cannot both find it free.
        if _find_by_email(table, email) is not None:
            raise UserExists("This user already exists")
        return _add_user_row(table, values)

    user = add()
    if key is not None:
        _send_account_email(email, "Confirm your email address",
                            "Thanks for registering your account with us. anvil-dev serves no confirmation "
                            f"page: confirm this address with `anvil-dev users add {email}` (confirmation key: "
                            f"{key}).\n\nThanks,\nThe team")
    elif values["enabled"]:
        _set_login(user, remember)
    return user


def _add_user_row(table: Any, values: dict[str, Any]) -> Any:
    _ensure_columns(table._id, values)
    return table.add_row(**values)


def reset_password(old_password: str, new_password: str) -> bool:
    """Change the logged-in user's password; other sessions logged in as them are logged out."""
    user = get_user()
    if user is None:
        raise AuthenticationFailed("You must be logged in to change your password")
    _check_counted(user, old_password, "Incorrect password")
    problem = _svc.password_problem(new_password, bool(_settings().get("require_secure_passwords")))
    if problem:
        raise PasswordNotAcceptable(problem)
    _write(user, password_hash=_svc.hash_password(new_password))
    services.current().users.clear_failures(user.get_id())
    _logout_other_sessions(user.get_id())
    return True


def _logout_other_sessions(user_id: str) -> None:
    mine = _context.current().session_id
    for s in services.current().sessions.list_sessions(limit=1_000_000):
        if s.get("user_id") == user_id and s.get("id") != mine:
            services.current().sessions.save(s["id"], user_id=None)


def send_password_reset_email(email: str) -> None:
    """Email the user how to reset their password (to the outbox: see the console's Outbox)."""
    opts = _settings()
    if not opts.get("use_email"):
        raise AuthenticationFailed("Email/password login is not enabled.")
    if not email:
        raise AuthenticationFailed("Please provide an email address.")
    user = _find_by_email(_table(), email)
    if user is None or not user.get("enabled"):
        # Anvil's message for both (users/core.clj line 526).
        raise AuthenticationFailed("This username does not exist or is disabled.")
    _send_account_email(user["email"], "Reset your password",
                        f"Hi there,\n\nYou have requested a password reset for your account {user['email']}. "
                        "anvil-dev serves no password-reset page: set a new password with "
                        f"`anvil-dev users add {user['email']} --password NEW`.")


def send_token_login_email(email: str) -> None:
    """Email the user a link that logs them in (Anvil's users/core.clj line 432). anvil-dev serves no
    login-link page, so the email says how to log in locally instead; it goes to the outbox."""
    opts = _settings()
    if not opts.get("use_token") and _from_client():
        raise AuthenticationFailed("Token login is not enabled.")
    if not email:
        raise AuthenticationFailed("Please provide an email address.")
    user = _find_by_email(_table(), email)
    if user is None or not user.get("enabled"):
        raise AuthenticationFailed("User disabled, or not found.")
    _send_account_email(user["email"], "Log in to your account",
                        f"Hi there,\n\nYou asked for a link to log in as {user['email']}. anvil-dev serves "
                        f"no login-link page: call with `anvil-dev call --as {user['email']} ...` instead.")


def get_client_config() -> dict[str, Any]:
    """The Users service's client_config from anvil.yaml (Anvil's anvil.users.get_client_config)."""
    from anvil_dev.services.users import USERS_SERVICE

    svc = services.current().app_dir.service_config(USERS_SERVICE) or {}
    return dict(svc.get("client_config") or {})


def _send_account_email(to: str, subject: str, text: str) -> None:
    from anvil import email as _email

    opts = _settings()
    app_name = ""
    try:
        from anvil_dev import services

        app_name = str(services.current().app_dir.config.get("name") or "")
    except Exception:  # noqa: BLE001 - the name only decorates the sender
        pass
    _email.send(to=to, subject=subject, text=text, from_address=opts.get("email_from_address") or "accounts",
                from_name=f"{app_name} Accounts".strip())


def _not_on_server(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise Exception(f"You can't use {name}() on the server (do it in form code instead)")

    refuse.__name__ = name
    return refuse


for _name in ("login_with_google", "login_with_facebook", "login_with_microsoft", "login_with_saml",
              "signup_with_google", "signup_with_facebook", "signup_with_microsoft", "signup_with_saml",
              "login_with_form", "signup_with_form", "change_password_with_form", "configure_account_with_form"):
    globals()[_name] = _not_on_server(_name)


# ------------------------------------------------------------------------------ require_user


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


# ------------------------------------------------------------------------------ built-ins clients call


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


def _from_client() -> bool:
    return not _context.current().remote_trusted


def _p_login_with_email(email: str, password: str, remember: bool = False, mfa: Any = None, fetch: Any = None,
                        **_ignored: Any) -> Any:
    return _for_caller(login_with_email(email, password, remember=remember))


def _p_signup_with_email(email: str, password: str, remember: bool = False, mfa_method: Any = None,
                         fetch: Any = None, **_ignored: Any) -> Any:
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


for _fn, _name in ((_p_send_token_login_email, "send_token_login_email"),
                   (_p_login_with_email, "login_with_email"), (_p_signup_with_email, "signup_with_email"),
                   (_p_logout, "logout"), (_p_get_current_user, "get_current_user"),
                   (_p_get_current_user_email, "get_current_user_email"), (_p_force_login, "force_login"),
                   (_p_reset_password, "reset_password"),
                   (_p_send_password_reset_email, "send_password_reset_email")):
    server.register(_fn, "anvil.private.users." + _name)
