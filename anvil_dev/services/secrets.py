"""App secrets and encryption keys: from the settings, then .anvil-dev/secrets.json (0600).

Secrets come from `Settings.secrets` (`serve --secret NAME=VALUE`, `ANVIL_DEV_SECRET_<NAME>`) or
the file (`anvil-dev secrets set NAME`). Encryption keys come from `ANVIL_DEV_ENCRYPTION_KEY_<NAME>` (base64
of 16, 24 or 32 bytes, like the App Server's `--encryption-key`) or the file; a key that anvil.yaml
declares (`secrets: {name: {type: key}}`) but nobody set is made on first use and kept in the file,
so encrypt/decrypt round-trips work in development. Values are never logged or put in messages.

Several hosts on one database (`--database postgresql://...`) keep their secrets where one host
does (give them with --secret or the environment on each host), but a key made on first use is
made once, in the database, so that what one host encrypts another decrypts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets as _random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings

if TYPE_CHECKING:
    from anvil_dev.services.db import PostgresDatabase

FILE_NAME = "secrets.json"
_IV_BYTES = 12


class SecretError(Exception):
    """A secret or key is missing or unusable; the runtime re-raises it as anvil.secrets.SecretError."""


# ---------------------------------------------------------------------------------------------
# The file, and what anvil.yaml declares


def _path(app_dir: AppDir) -> Path:
    return app_dir.data_dir / FILE_NAME


def _read_file(app_dir: AppDir) -> dict[str, dict[str, str]]:
    try:
        with open(_path(app_dir), encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {"secrets": {}, "keys": {}}
    except (OSError, ValueError) as e:
        raise SecretError(
            f"Cannot read {app_dir.relpath(_path(app_dir))}: {type(e).__name__} "
            "(fix or delete the file, then set the secrets again)"
        ) from None
    if not isinstance(data, dict):
        data = {}
    return {kind: dict(data.get(kind) or {}) for kind in ("secrets", "keys")}


def _write_file(app_dir: AppDir, data: dict[str, dict[str, str]]) -> None:
    """Replace the file atomically, created 0600 so that no other user can read a value."""
    path = _path(app_dir)
    app_dir.ensure_data_dir()
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(app_dir: AppDir) -> Iterator[None]:
    """Serialise read-modify-write of the file between processes (CLI, workers)."""
    lock_path = app_dir.ensure_data_dir() / f".{FILE_NAME}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: writes are rare enough to go unlocked
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def declared(app_dir: AppDir) -> dict[str, str]:
    """Names anvil.yaml lists under `secrets:`, with their type ("secret" or "key")."""
    raw = app_dir.config.get("secrets") or {}
    out: dict[str, str] = {}
    if isinstance(raw, dict):
        for name, spec in raw.items():
            kind = spec.get("type", "secret") if isinstance(spec, dict) else "secret"
            out[str(name)] = "key" if kind == "key" else "secret"
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and "name" in item:
                out[str(item["name"])] = "key" if item.get("type") == "key" else "secret"
            elif isinstance(item, str):
                out[item] = "secret"
    return out


# ---------------------------------------------------------------------------------------------
# Secrets and keys of one app


class Secrets:
    """One app's secrets and encryption keys (`services.current().secrets`)."""

    def __init__(self, app_dir: AppDir, settings: Settings, shared: PostgresDatabase | None = None) -> None:
        self.app_dir = app_dir
        self.settings = settings
        self.shared = shared

    def lookup_secret(self, name: str) -> str | None:
        value = self.settings.secret(name)
        if value is not None:
            return value
        return _read_file(self.app_dir)["secrets"].get(name)

    def get_secret(self, name: str) -> str:
        """The secret's value, or SecretError "No such secret 'name'"."""
        if not isinstance(name, str):
            raise TypeError(f"secret name must be a string, not {type(name).__name__}")
        value = self.lookup_secret(name)
        if value is None:
            raise SecretError(f"No such secret '{name}'")
        return value

    def set_secret(self, name: str, value: str) -> None:
        """Store a secret in .anvil-dev/secrets.json (a setting still wins over it)."""
        _check_name(name)
        with _locked(self.app_dir):
            data = _read_file(self.app_dir)
            data["secrets"][name] = value
            _write_file(self.app_dir, data)

    def delete_secret(self, name: str) -> bool:
        """Remove a stored secret; False if it was not stored."""
        with _locked(self.app_dir):
            data = _read_file(self.app_dir)
            if data["secrets"].pop(name, None) is None:
                return False
            _write_file(self.app_dir, data)
            return True

    def list_secret_names(self) -> list[str]:
        """Every secret name that has a value (file or settings), sorted; never the values."""
        names = set(_read_file(self.app_dir)["secrets"])
        names.update(self.settings.secrets)
        names.update(
            n for n, kind in declared(self.app_dir).items() if kind == "secret" and self.settings.secret(n) is not None
        )
        return sorted(names)

    def missing_secrets(self) -> list[str]:
        """Secrets anvil.yaml lists that have no value here, for serve's one line at start."""
        stored = _read_file(self.app_dir)["secrets"]
        return [
            n
            for n, kind in declared(self.app_dir).items()
            if kind == "secret" and n not in stored and self.settings.secret(n) is None
        ]

    def missing_secrets_message(self) -> str | None:
        """The one line serve prints at start when anvil.yaml lists secrets that are not set, else None."""
        missing = self.missing_secrets()
        if not missing:
            return None
        names = ", ".join(missing)
        return (
            f"anvil.yaml lists secrets with no value here: {names} - get_secret() will raise SecretError "
            f"for them until you run `anvil-dev secrets set NAME` or pass `serve --secret NAME=VALUE`"
        )

    # ------------------------------------------------------------------ encryption keys
    # AES-GCM, 12-byte IV prefix, base64 output, as Anvil's App Server does.

    def _key(self, name: str) -> bytes:
        if not isinstance(name, str):
            raise TypeError(f"key name must be a string, not {type(name).__name__}")
        text = self.settings.encryption_key(name)
        if text is None:
            text = _read_file(self.app_dir)["keys"].get(name)
        if text is None:
            if declared(self.app_dir).get(name) != "key":
                raise SecretError(f"No such encryption key '{name}'")
            text = self._create_key(name)
        return _decode_key(name, text)

    def _create_key(self, name: str) -> str:
        if self.shared is not None:
            from anvil_dev.services import shared_value

            return shared_value(
                self.shared, "encryption_key:" + name, base64.b64encode(_random.token_bytes(16)).decode()
            )
        with _locked(self.app_dir):
            data = _read_file(self.app_dir)
            if name not in data["keys"]:  # another process may have made it while we waited
                data["keys"][name] = base64.b64encode(_random.token_bytes(16)).decode()
                _write_file(self.app_dir, data)
            return data["keys"][name]

    def set_encryption_key(self, name: str, value: str | None = None) -> str:
        """Store key `name` (base64; a new random 128-bit key when value is None); returns it."""
        _check_name(name)
        value = value if value is not None else base64.b64encode(_random.token_bytes(16)).decode()
        _decode_key(name, value)
        with _locked(self.app_dir):
            data = _read_file(self.app_dir)
            data["keys"][name] = value
            _write_file(self.app_dir, data)
        return value

    def encrypt_with_key(self, key_name: str, value: str | bytes) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if isinstance(value, str):
            value = value.encode("utf-8")
        elif not isinstance(value, (bytes, bytearray)):
            raise TypeError(f"encrypt_with_key() can only encrypt a string, not {type(value).__name__}")
        key = self._key(key_name)
        iv = _random.token_bytes(_IV_BYTES)
        return base64.b64encode(iv + AESGCM(key).encrypt(iv, bytes(value), None)).decode("ascii")

    def decrypt_with_key(self, key_name: str, value: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not isinstance(value, (str, bytes)):
            raise TypeError(
                f"decrypt_with_key() needs the base64 string encrypt_with_key() gave, not {type(value).__name__}"
            )
        key = self._key(key_name)
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise SecretError(f"Cannot decrypt with key '{key_name}': the value is not base64") from None
        if len(raw) < _IV_BYTES + 16:
            raise SecretError(f"Cannot decrypt with key '{key_name}': the value is too short to be encrypted data")
        try:
            plain = AESGCM(key).decrypt(raw[:_IV_BYTES], raw[_IV_BYTES:], None)
        except InvalidTag:
            raise SecretError(
                f"Cannot decrypt with key '{key_name}': the value was encrypted with a "
                "different key, or has been altered"
            ) from None
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"Decrypted value with key '{key_name}' is not UTF-8 text") from None


def _check_name(name: str) -> None:
    if not name or not isinstance(name, str) or name.strip() != name:
        raise SecretError(f"Invalid secret name {name!r}: use a non-empty name without surrounding spaces")


def _decode_key(name: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) not in (16, 24, 32):
        raise SecretError(f"Encryption key '{name}' is not valid: it must be base64 of 16, 24 or 32 bytes")
    return raw
