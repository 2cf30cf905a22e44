"""Email and password: login, signup, password changes and the account emails."""

from __future__ import annotations

import secrets
from typing import Any

from anvil import _context, server
from anvil.users._login import _set_login, get_user
from anvil.users._service import _ensure_columns, _find_by_email, _from_client, _now, _settings, _table, _write
from anvil.users.exceptions import (
    AccountIsNotEnabled,
    AuthenticationFailed,
    EmailNotConfirmed,
    PasswordNotAcceptable,
    TooManyPasswordFailures,
    UserExists,
)
from anvil_dev import services
from anvil_dev.services import users as _svc

_BAD_LOGIN = "Incorrect email address or password"
_LOCKED = "You have entered an incorrect password too many times. Please reset your password by email."


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
        raise EmailNotConfirmed(
            "You haven't confirmed your email address. Please check your email and click the "
            "confirmation link, or reset your password."
        )
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
    values: dict[str, Any] = {
        "email": email,
        "password_hash": _svc.hash_password(password),
        "enabled": bool(opts.get("enable_automatically")),
        "signed_up": _now(),
    }
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
        _send_account_email(
            email,
            "Confirm your email address",
            "Thanks for registering your account with us. anvil-dev serves no confirmation "
            f"page: confirm this address with `anvil-dev users add {email}` (confirmation key: "
            f"{key}).\n\nThanks,\nThe team",
        )
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
    _send_account_email(
        user["email"],
        "Reset your password",
        f"Hi there,\n\nYou have requested a password reset for your account {user['email']}. "
        "anvil-dev serves no password-reset page: set a new password with "
        f"`anvil-dev users add {user['email']} --password NEW`.",
    )


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
    _send_account_email(
        user["email"],
        "Log in to your account",
        f"Hi there,\n\nYou asked for a link to log in as {user['email']}. anvil-dev serves "
        f"no login-link page: call with `anvil-dev call --as {user['email']} ...` instead.",
    )


def _send_account_email(to: str, subject: str, text: str) -> None:
    from anvil import email as _email

    opts = _settings()
    app_name = ""
    try:
        from anvil_dev import services

        app_name = str(services.current().app_dir.config.get("name") or "")
    except Exception:  # noqa: BLE001 - the name only decorates the sender
        pass
    _email.send(
        to=to,
        subject=subject,
        text=text,
        from_address=opts.get("email_from_address") or "accounts",
        from_name=f"{app_name} Accounts".strip(),
    )
