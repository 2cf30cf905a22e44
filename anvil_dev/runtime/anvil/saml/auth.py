"""`anvil.saml.auth` (services/anvil/saml/auth.py): SAML sign-in happens in the browser against an
identity provider Anvil is configured with; anvil-dev has none, so the calls say so by name."""

from __future__ import annotations

from typing import Any


def login(*a: Any, **k: Any) -> Any:
    raise Exception("anvil.saml.auth.login cannot be called from a server module")


def _no_provider(name: str) -> Exception:
    return NotImplementedError(
        f"anvil.saml.auth.{name}(): anvil-dev has no SAML identity provider; "
        "sign users in with anvil.users (email and password) locally"
    )


def get_user_email() -> str:
    raise _no_provider("get_user_email")


def get_user_attributes() -> dict[str, Any]:
    raise _no_provider("get_user_attributes")
