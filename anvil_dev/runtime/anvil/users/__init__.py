"""`anvil.users`: users in the app's users data table, logged in per session, and require_user.

The logged-in user is kept in the caller's session record (`anvil_dev.services.sessions`,
column user_id, as "[table_id,row_id]"), so a login holds across calls in fresh and persistent
mode alike. `anvil-dev call --as EMAIL` sets the call's `user_email_override`, and get_user()
then returns that user. Outside a call (at import time) get_user() returns None and never raises.

Clients log in through the built-in functions `anvil.private.users.*` (anvil.users._private); the user
rows they get back leave out the secret columns (password_hash, email_confirmation_key).
anvil.users._login keeps who is logged in, anvil.users._passwords the email and password
functions, anvil.users._service the service's settings and its table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anvil.users import _private  # noqa: F401 - registers the require_user check and the built-ins clients call
from anvil.users._login import force_login, get_user, logout
from anvil.users._passwords import (
    login_with_email,
    reset_password,
    send_password_reset_email,
    send_token_login_email,
    signup_with_email,
)
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
    "force_login",
    "get_user",
    "login_with_email",
    "logout",
    "reset_password",
    "send_password_reset_email",
    "send_token_login_email",
    "signup_with_email",
    "get_client_config",
]

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


def get_client_config() -> dict[str, Any]:
    """The Users service's client_config from anvil.yaml (Anvil's anvil.users.get_client_config)."""
    from anvil_dev.services.users import USERS_SERVICE

    svc = services.current().app_dir.service_config(USERS_SERVICE) or {}
    return dict(svc.get("client_config") or {})


def _not_on_server(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise Exception(f"You can't use {name}() on the server (do it in form code instead)")

    refuse.__name__ = name
    return refuse


for _name in (
    "login_with_google",
    "login_with_facebook",
    "login_with_microsoft",
    "login_with_saml",
    "signup_with_google",
    "signup_with_facebook",
    "signup_with_microsoft",
    "signup_with_saml",
    "login_with_form",
    "signup_with_form",
    "change_password_with_form",
    "configure_account_with_form",
):
    globals()[_name] = _not_on_server(_name)
