"""One typed `Settings`, built once: command-line option > environment variable > anvil.yaml > default.

The CLI builds it (click has already resolved each option against its `ANVIL_DEV_*` variable),
hands it to the host and the engine, and the engine hands it to the zygote as one JSON argument,
so that every process of `anvil-dev serve` sees the same settings. Nothing else reads
configuration from `os.environ`: the few settings without an option are read here, once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET_ENV_PREFIX = "ANVIL_DEV_SECRET_"
KEY_ENV_PREFIX = "ANVIL_DEV_ENCRYPTION_KEY_"
SMTP_KEYS = ("host", "port", "user", "password", "encryption")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the option and what it needs."""


@dataclass(frozen=True)
class Settings:
    """Everything `anvil-dev serve` (and the commands that read the app's data) is configured with."""

    app_path: str = "."
    host: str = "127.0.0.1"
    port: int = 3030
    persistent: bool = False
    workers: int = 1
    timeout: float | None = 30.0  # None: no limit
    max_response_mb: float = 4.0
    # Resident memory a call's process may use (`--memory-limit`, anvil.yaml's `anvil_dev:
    # {memory_limit_mb: N}`); over it the process is killed as Anvil's out-of-memory killer does. None: no limit.
    memory_limit_mb: float | None = None
    reload: bool = True
    poll: bool = False
    uplink_key: str | None = None
    # The client uplink key (Anvil's `client_...`): uplinks with it get client permissions only.
    client_uplink_key: str | None = None
    scheduled_tasks: bool = True
    spares: int = 2
    # The host's pdb relay (host/debugger.py), when serve runs in a terminal: children's breakpoint() talks to it.
    pdb_socket: str | None = None
    # `serve --show-internal-frames`: tracebacks in the terminal show anvil-dev's and libraries' frames too.
    show_internal_frames: bool = False
    # `serve --debug` / `--debugpy PORT`: an editor attaches with debugpy on 127.0.0.1:PORT and debugs every
    # process that runs a call (engine/attach.py); calls have no timeout. `debugpy_state` is the anchor's
    # state file, set by the host, read by children.
    debugpy_port: int | None = None
    debugpy_state: str | None = None
    # Secret values given here (`--secret`, ANVIL_DEV_SECRET_<NAME>), keyed as the variable's suffix.
    secrets: Mapping[str, str] = field(default_factory=dict)
    # Encryption keys given here (ANVIL_DEV_ENCRYPTION_KEY_<NAME>), keyed likewise.
    encryption_keys: Mapping[str, str] = field(default_factory=dict)
    # SMTP relay settings given here (--smtp-*), keys from SMTP_KEYS; anvil.yaml fills the rest.
    smtp: Mapping[str, str] = field(default_factory=dict)
    # Dependency app id -> its directory (--dep), before the ones found beside the app.
    deps: Mapping[str, str] = field(default_factory=dict)
    # Env-only settings, for tests and special set-ups.
    timezone: str = "UTC"  # ANVIL_DEV_TZ: workers' TZ (Anvil's servers run in UTC)
    lockout_seconds: float = 300.0  # ANVIL_DEV_LOCKOUT_SECONDS: how long a locked account stays locked
    schedule_speedup: float = 1.0  # ANVIL_DEV_SCHEDULE_SPEEDUP: scheduled tasks' clock runs this much faster
    # The app's local data (database, keys, media) somewhere other than its .anvil-dev/: the pytest
    # plugin points every process of a test server at a throwaway directory.
    data_dir: str | None = None
    # Where users, sessions, cookies, tasks and mail live (`--database`, ANVIL_DEV_DATABASE, anvil.yaml's
    # `anvil_dev: {database: ...}`): a postgresql:// URL that several hosts share, or None for the
    # SQLite files in the data directory.
    database: str | None = None
    # `serve --production`: no reload, no console unless `console` (gunicorn serves).
    production: bool = False
    console: bool = True
    # The app's address as its users reach it (`--origin https://app.example.com` behind a reverse proxy).
    public_origin: str | None = None

    @property
    def max_response_bytes(self) -> int:
        return int(self.max_response_mb * (1 << 20))

    @property
    def origin(self) -> str:
        """The app's origin as its pages see it (`anvil.server.get_app_origin()`)."""
        if self.public_origin:
            return self.public_origin.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}"

    def secret(self, name: str) -> str | None:
        """A secret's value given here: exact name first, then upper case, so `--secret api_key=...`
        and `ANVIL_DEV_SECRET_API_KEY` both work."""
        return _lookup(self.secrets, name)

    def encryption_key(self, name: str) -> str | None:
        """An encryption key's text given here, looked up as `secret` looks up secrets."""
        return _lookup(self.encryption_keys, name)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        for key in ("secrets", "encryption_keys", "smtp", "deps"):
            data[key] = dict(data[key])
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def secret_key_for(name: str) -> str:
    """How secret `name` is keyed in `Settings.secrets` (the env variable's suffix)."""
    return re.sub(r"\W", "_", name)


def _lookup(given: Mapping[str, str], name: str) -> str | None:
    key = secret_key_for(name)
    value = given.get(key)
    return given.get(key.upper()) if value is None else value


def build(
    app_path: str | os.PathLike[str] = ".",
    *,
    yaml_persist: bool | None = None,
    persistent: bool | None = None,
    timeout: float | None = None,
    secrets: Iterable[str] = (),
    smtp: Mapping[str, Any] | None = None,
    deps: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    yaml_database: str | None = None,
    yaml_memory_limit: object = None,
    **options: Any,
) -> Settings:
    """Settings from what the command line gave (None where it gave nothing), anvil.yaml's
    `server_persist` (`yaml_persist`) and the environment.

    `secrets` are NAME=VALUE items and `deps` APP_ID=PATH items, as typed; options left None take
    their default. Raises SettingsError naming the option for an item it cannot use.
    """
    env = os.environ if environ is None else environ
    given = {k: v for k, v in options.items() if v is not None}
    unknown = set(given) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    if persistent is None:
        persistent = bool(yaml_persist)
    database = given.pop("database", None) or env.get("ANVIL_DEV_DATABASE") or yaml_database or None
    if database is not None and not str(database).startswith(("postgresql://", "postgres://")):
        raise SettingsError(
            f"--database {database!r} is not a postgresql:// URL (leave it out to keep the app's "
            "data in SQLite under .anvil-dev/)"
        )
    memory = given.pop("memory_limit_mb", None)
    if memory is None and yaml_memory_limit is not None:
        memory = _yaml_memory_limit(yaml_memory_limit)
    limit = 30.0 if timeout is None else (float(timeout) if timeout > 0 else None)  # 0: no limit
    if given.get("debugpy_port"):
        limit = None  # a call stopped in the editor must not be killed at its deadline
    return Settings(
        app_path=str(Path(app_path).resolve()),
        persistent=persistent,
        timeout=limit,
        secrets=_secrets(secrets, env),
        encryption_keys={k[len(KEY_ENV_PREFIX) :]: v for k, v in env.items() if k.startswith(KEY_ENV_PREFIX)},
        smtp=_smtp(smtp or {}, env),
        deps=_deps(deps),
        timezone=env.get("ANVIL_DEV_TZ") or "UTC",
        lockout_seconds=_positive(env, "ANVIL_DEV_LOCKOUT_SECONDS", 300.0),
        schedule_speedup=_positive(env, "ANVIL_DEV_SCHEDULE_SPEEDUP", 1.0),
        database=database,
        memory_limit_mb=float(memory) if memory else None,  # 0: no limit
        **given,
    )


def _yaml_memory_limit(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SettingsError(
            f"anvil.yaml's anvil_dev.memory_limit_mb is {value!r}: it needs a number of megabytes (0 for no limit)"
        )
    return float(value)


def _secrets(items: Iterable[str], env: Mapping[str, str]) -> dict[str, str]:
    found = {k[len(SECRET_ENV_PREFIX) :]: v for k, v in env.items() if k.startswith(SECRET_ENV_PREFIX)}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SettingsError(f"--secret {item!r} is not NAME=VALUE")
        found[secret_key_for(name)] = value
    return found


def _smtp(given: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    # ANVIL_DEV_SMTP_<KEY> as well as the options: processes that inherit the environment of
    # `serve --smtp-*` (and commands run with the variables set) see the same relay.
    found = {k: env[f"ANVIL_DEV_SMTP_{k.upper()}"] for k in SMTP_KEYS if env.get(f"ANVIL_DEV_SMTP_{k.upper()}")}
    found.update((k, str(v)) for k, v in given.items() if k in SMTP_KEYS and v not in (None, ""))
    return found


def _deps(items: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        app_id, sep, path = item.partition("=")
        if not sep or not app_id or not path:
            raise SettingsError(f"--dep {item!r} is not APP_ID=PATH")
        found[app_id] = str(Path(path).resolve())
    return found


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name}={raw!r} is not a positive number")
    return value


def yaml_setting(app_config: Mapping[str, Any], name: str) -> Any:
    """anvil.yaml's `anvil_dev: {NAME: ...}`, or None."""
    section = app_config.get("anvil_dev")
    return section.get(name) if isinstance(section, Mapping) else None


def yaml_database(app_config: Mapping[str, Any]) -> str | None:
    """anvil.yaml's `anvil_dev: {database: postgresql://...}`, if it names one. (A password is better
    kept out of the file: libpq reads PGPASSWORD and ~/.pgpass.)"""
    section = app_config.get("anvil_dev")
    value = section.get("database") if isinstance(section, Mapping) else None
    return str(value) if value else None
