"""`anvil.secrets`: app secrets and encryption keys (values from anvil-dev's secrets service)."""

from __future__ import annotations

from anvil._errors import AnvilWrappedError, register_exception_type
from anvil_dev import services
from anvil_dev.services import secrets as _service

__all__ = ["SecretError", "decrypt_with_key", "encrypt_with_key", "get_secret"]


class SecretError(AnvilWrappedError):
    """A secret or encryption key is missing, or a value cannot be decrypted."""


register_exception_type("anvil.secrets.SecretError", SecretError)


def _secrets() -> _service.Secrets:
    if not services.is_open():
        raise SecretError("Secrets are only available inside anvil-dev (no app is configured in this process)")
    return services.current().secrets


def get_secret(secret_name: str) -> str:
    """The value of app secret `secret_name`; works at import time too, as on Anvil."""
    try:
        return _secrets().get_secret(secret_name)
    except _service.SecretError as e:
        raise SecretError(str(e)) from None


def encrypt_with_key(key_name: str, value: str) -> str:
    """Encrypt `value` with encryption key `key_name`; returns base64 text."""
    try:
        return _secrets().encrypt_with_key(key_name, value)
    except _service.SecretError as e:
        raise SecretError(str(e)) from None


def decrypt_with_key(key_name: str, value: str) -> str:
    """Decrypt what encrypt_with_key() returned, with the same key."""
    try:
        return _secrets().decrypt_with_key(key_name, value)
    except _service.SecretError as e:
        raise SecretError(str(e)) from None
