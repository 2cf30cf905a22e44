"""The exceptions of `anvil.users`, registered under Anvil's names ("anvil.users.<Name>")."""

from __future__ import annotations

from anvil._errors import AnvilWrappedError, register_exception_type

__all__ = [
    "AccountIsNotEnabled",
    "AuthenticationFailed",
    "EmailNotConfirmed",
    "MFAException",
    "MFARequired",
    "PasswordNotAcceptable",
    "PasswordResetRequested",
    "TooManyPasswordFailures",
    "UserExists",
]


class AuthenticationFailed(AnvilWrappedError):
    """Wrong email or password, or a function with require_user called by nobody."""


class UserExists(AnvilWrappedError):
    pass


class EmailNotConfirmed(AuthenticationFailed):
    pass


class AccountIsNotEnabled(AuthenticationFailed):
    pass


class TooManyPasswordFailures(AuthenticationFailed):
    pass


class PasswordNotAcceptable(AnvilWrappedError):
    pass


class MFARequired(AuthenticationFailed):
    pass


class PasswordResetRequested(AnvilWrappedError):
    pass


class MFAException(AuthenticationFailed):
    pass


for _cls in (
    AuthenticationFailed,
    UserExists,
    EmailNotConfirmed,
    AccountIsNotEnabled,
    TooManyPasswordFailures,
    PasswordNotAcceptable,
    MFARequired,
    PasswordResetRequested,
    MFAException,
):
    _cls.__module__ = "anvil.users"
    register_exception_type(f"anvil.users.{_cls.__name__}", _cls)
