"""What the host's routes share (`HostState`), and the small interfaces of its collaborators.

The routes reach it as `current()`; the collaborators are typed by what the host uses of them, so a
test can hand in a stub engine without starting a process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import current_app

from anvil_dev import services
from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.host.dispatch import CallEngine, Dispatcher
from anvil_dev.host.media_links import MediaLinks
from anvil_dev.host.security import SessionCookies
from anvil_dev.services.mediastore import MediaStore

CONFIG_KEY = "ANVIL_DEV"
# Whether the dev console is served (`serve --production` leaves it out unless --console).
CONSOLE_KEY = "ANVIL_DEV_CONSOLE"


class EngineLike(CallEngine, Protocol):
    """What the host asks of the engine: calls (through the Dispatcher), its description, reloads."""

    def describe(self) -> dict[str, Any]: ...

    def reload(self, paths: list[str] | None = None) -> None: ...

    def hold_replacements(self) -> Callable[[], None]:
        """Fresh calls on this thread leave their spare's replacement until the returned function is called."""


class BusLike(Protocol):
    """The event bus the console streams (`host/events.py` EventBus)."""

    boot: str  # names this bus's run in event ids ("boot-seq")

    def publish(self, kind: str, data: dict[str, Any] | None = None) -> Any: ...

    def parse_last_id(self, value: str | None) -> int: ...

    def sse(self, after: int = 0, **kwargs: Any) -> Iterator[str]: ...

    def close(self) -> None: ...

    def history(self, after: int = 0) -> list[Any]: ...


class UplinkLike(Protocol):
    """Where a command goes among the uplinks: "live", "stale" (only a disconnected uplink had it) or None."""

    def match(self, command: str) -> str | None: ...


@dataclass
class HostState:
    """What the routes need: reachable as `current()` (current_app.config["ANVIL_DEV"])."""

    app_dir: AppDir
    engine: EngineLike
    dispatcher: Dispatcher
    bus: BusLike
    cookies: SessionCookies
    media: MediaLinks
    cli_token: str
    syntax_error: dict[str, Any] | None = None
    uplink: UplinkLike | None = None
    uplink_key: str | None = None
    # Dependency app id -> directory (--dep): the browser imports their client code too.
    deps: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return self.engine.describe()


def current() -> HostState:
    """The HostState of the app serving this request."""
    state: HostState = current_app.config[CONFIG_KEY]
    return state


def build_state(app_dir: AppDir, engine: EngineLike, bus: BusLike, settings: Settings) -> HostState:
    # On a shared database every host signs with the database's key (a cookie from one is good on all).
    secret = services.current().secret_key if services.is_open() else app_dir.secret_key()
    store = services.current().media if services.is_open() else MediaStore(app_dir.media_dir)
    dispatcher = Dispatcher(engine, bus, settings.origin, show_internal_frames=settings.show_internal_frames)
    return HostState(
        app_dir=app_dir,
        engine=engine,
        dispatcher=dispatcher,
        bus=bus,
        cookies=SessionCookies(secret),
        media=MediaLinks(store, secret),
        cli_token=app_dir.cli_token(),
        deps=settings.deps,
    )
