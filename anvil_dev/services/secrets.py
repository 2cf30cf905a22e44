"""App secrets and encryption keys: from the environment, then .anvil-dev/secrets.json (0600).

Secrets come from `ANVIL_DEV_SECRET_<NAME>` (what `serve --secret NAME=VALUE` sets) or the file
(`anvil-dev secrets set NAME`). Encryption keys come from `ANVIL_DEV_ENCRYPTION_KEY_<NAME>` (base64
of 16, 24 or 32 bytes, like the App Server's `--encryption-key`) or the file; a key that anvil.yaml
declares (`secrets: {name: {type: key}}`) but nobody set is made on first use and kept in the file,
so encrypt/decrypt round-trips work in development. Values are never logged or put in messages.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets as _random
from collections.abc import Iterator
from typing import Any

from anvil_dev.appdir import AppDir

SECRET_ENV_PREFIX = "ANVIL_DEV_SECRET_"
KEY_ENV_PREFIX = "ANVIL_DEV_ENCRYPTION_KEY_"
FILE_NAME = "secrets.json"
_IV_BYTES = 12


class SecretError(Exception):
    """A secret or key is missing or unusable; the runtime re-raises it as anvil.secrets.SecretError."""


# ---------------------------------------------------------------------------------------------
# Names and sources


def env_var_name(name: str, prefix: str = SECRET_ENV_PREFIX) -> str:
    """The environment variable that holds secret `name` (non-word characters become `_`)."""
    return prefix + re.sub(r"\W", "_", name)


def _from_env(name: str, prefix: str) -> str | None:
    if prefix == SECRET_ENV_PREFIX:
        from anvil_dev import services

        if services.is_open():
            given = services.current().settings.secret(name)
            if given is not None:
                return given
    # Exact name first, then upper case, so `--secret api_key=...` and `ANVIL_DEV_SECRET_API_KEY` both work.
    var = env_var_name(name, prefix)
    value = os.environ.get(var)
    if value is None:
        value = os.environ.get(var.upper())
    return value


def _path(app_dir: AppDir) -> Any:
    return app_dir.data_dir / FILE_NAME


def _read_file(app_dir: AppDir) -> dict[str, dict[str, str]]:
    try:
        with open(_path(app_dir), encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {"secrets": {}, "keys": {}}
    except (OSError, ValueError) as e:
        raise SecretError(f"Cannot read {app_dir.relpath(_path(app_dir))}: {type(e).__name__} "
                          "(fix or delete the file, then set the secrets again)") from None
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
# Secrets


def lookup_secret(app_dir: AppDir, name: str) -> str | None:
    value = _from_env(name, SECRET_ENV_PREFIX)
    if value is not None:
        return value
    return _read_file(app_dir)["secrets"].get(name)


def get_secret(name: str, app_dir: AppDir | None = None) -> str:
    """The secret's value, or SecretError "No such secret 'name'"."""
    if not isinstance(name, str):
        raise TypeError(f"secret name must be a string, not {type(name).__name__}")
    value = lookup_secret(app_dir or _app_dir(), name)
    if value is None:
        raise SecretError(f"No such secret '{name}'")
    return value


def set_secret(app_dir: AppDir, name: str, value: str) -> None:
    """Store a secret in .anvil-dev/secrets.json (an environment variable still wins over it)."""
    _check_name(name)
    with _locked(app_dir):
        data = _read_file(app_dir)
        data["secrets"][name] = value
        _write_file(app_dir, data)


def delete_secret(app_dir: AppDir, name: str) -> bool:
    """Remove a stored secret; False if it was not stored."""
    with _locked(app_dir):
        data = _read_file(app_dir)
        if data["secrets"].pop(name, None) is None:
            return False
        _write_file(app_dir, data)
        return True


def list_secret_names(app_dir: AppDir) -> list[str]:
    """Every secret name that has a value (file or environment), sorted; never the values."""
    names = set(_read_file(app_dir)["secrets"])
    names.update(k[len(SECRET_ENV_PREFIX):] for k in os.environ if k.startswith(SECRET_ENV_PREFIX))
    names.update(n for n, kind in declared(app_dir).items()
                 if kind == "secret" and _from_env(n, SECRET_ENV_PREFIX) is not None)
    return sorted(names)


def missing_secrets(app_dir: AppDir) -> list[str]:
    """Secrets anvil.yaml lists that have no value here, for serve's one line at start."""
    stored = _read_file(app_dir)["secrets"]
    return [n for n, kind in declared(app_dir).items()
            if kind == "secret" and n not in stored and _from_env(n, SECRET_ENV_PREFIX) is None]


def missing_secrets_message(app_dir: AppDir) -> str | None:
    """The one line serve prints at start when anvil.yaml lists secrets that are not set, else None."""
    missing = missing_secrets(app_dir)
    if not missing:
        return None
    names = ", ".join(missing)
    return (f"anvil.yaml lists secrets with no value here: {names} - get_secret() will raise SecretError "
            f"for them until you run `anvil-dev secrets set NAME` or pass `serve --secret NAME=VALUE`")


def _check_name(name: str) -> None:
    if not name or not isinstance(name, str) or name.strip() != name:
        raise SecretError(f"Invalid secret name {name!r}: use a non-empty name without surrounding spaces")


# ---------------------------------------------------------------------------------------------
# Encryption keys (AES-GCM, 12-byte IV prefix, base64 output, as Anvil's App Server does)


def _decode_key(name: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) not in (16, 24, 32):
        raise SecretError(f"Encryption key '{name}' is not valid: it must be base64 of 16, 24 or 32 bytes")
    return raw


def _key(app_dir: AppDir, name: str) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"key name must be a string, not {type(name).__name__}")
    text = _from_env(name, KEY_ENV_PREFIX)
    if text is None:
        text = _read_file(app_dir)["keys"].get(name)
    if text is None:
        if declared(app_dir).get(name) != "key":
            raise SecretError(f"No such encryption key '{name}'")
        text = _create_key(app_dir, name)
    return _decode_key(name, text)


def _create_key(app_dir: AppDir, name: str) -> str:
    with _locked(app_dir):
        data = _read_file(app_dir)
        if name not in data["keys"]:  # another process may have made it while we waited
            data["keys"][name] = base64.b64encode(_random.token_bytes(16)).decode()
            _write_file(app_dir, data)
        return data["keys"][name]


def set_encryption_key(app_dir: AppDir, name: str, value: str | None = None) -> str:
    """Store key `name` (base64; a new random 128-bit key when value is None); returns it."""
    _check_name(name)
    value = value if value is not None else base64.b64encode(_random.token_bytes(16)).decode()
    _decode_key(name, value)
    with _locked(app_dir):
        data = _read_file(app_dir)
        data["keys"][name] = value
        _write_file(app_dir, data)
    return value


def encrypt_with_key(key_name: str, value: str | bytes, app_dir: AppDir | None = None) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"encrypt_with_key() can only encrypt a string, not {type(value).__name__}")
    key = _key(app_dir or _app_dir(), key_name)
    iv = _random.token_bytes(_IV_BYTES)
    return base64.b64encode(iv + AESGCM(key).encrypt(iv, bytes(value), None)).decode("ascii")


def decrypt_with_key(key_name: str, value: str, app_dir: AppDir | None = None) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not isinstance(value, (str, bytes)):
        raise TypeError(f"decrypt_with_key() needs the base64 string encrypt_with_key() gave, "
                        f"not {type(value).__name__}")
    key = _key(app_dir or _app_dir(), key_name)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"Cannot decrypt with key '{key_name}': the value is not base64") from None
    if len(raw) < _IV_BYTES + 16:
        raise SecretError(f"Cannot decrypt with key '{key_name}': the value is too short to be encrypted data")
    try:
        plain = AESGCM(key).decrypt(raw[:_IV_BYTES], raw[_IV_BYTES:], None)
    except InvalidTag:
        raise SecretError(f"Cannot decrypt with key '{key_name}': the value was encrypted with a "
                          "different key, or has been altered") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"Decrypted value with key '{key_name}' is not UTF-8 text") from None


def _app_dir() -> AppDir:
    from anvil_dev import services

    if not services.is_open():
        raise SecretError("Secrets are only available inside anvil-dev (no app is configured in this process)")
    return services.current().app_dir
