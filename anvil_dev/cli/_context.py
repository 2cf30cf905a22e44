"""What every command is given: the app it works on, found lazily, and `--app` wherever a user types it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from anvil_dev.appdir import AppConfigError, AppDir, AppDirError

if TYPE_CHECKING:
    from anvil_dev.client.transport import Response

F = TypeVar("F", bound=Callable[..., Any])

# `-h` as well as `--help`, on every command (click passes context settings down to subcommands).
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


class AppInfo:
    """The app a command works on, found lazily (commands like `init` never need one)."""

    def __init__(self, app_path: str | None = None) -> None:
        self.app_path = app_path or "."
        self._app: AppDir | None = None
        self.traceback = False  # --traceback: let anvil-dev's own failures show Python's traceback

    def set_path(self, app_path: str) -> None:
        self.app_path = app_path
        self._app = None

    @property
    def app(self) -> AppDir:
        if self._app is None:
            app = AppDir(self.app_path)
            try:
                app.check()
            except AppConfigError as e:
                raise click.ClickException(str(e)) from None
            except AppDirError as e:
                raise click.UsageError(str(e)) from None
            self._app = app
        return self._app


def _set_app(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(AppInfo).set_path(value)


# `anvil-dev serve --app DIR` as well as `anvil-dev --app DIR serve`: users type it after the command too.
app_option = click.option(
    "--app",
    type=click.Path(file_okay=False),
    expose_value=False,
    callback=_set_app,
    help="The app directory (default: the current directory).",
)

_pass_info = click.make_pass_decorator(AppInfo, ensure=True)


def pass_info(f: F) -> F:
    """Give the command the AppInfo, and accept `--app DIR` after the command's name."""
    return app_option(_pass_info(f))  # type: ignore[return-value]


def server_request(url: str, method: str, path: str, *, timeout: float, **kwargs: Any) -> Response | None:
    """A command's own request to the server at `url` (`Transport.request`'s arguments); None, the
    reason said in a line, when no answer came: nothing listening, the server gone, too slow."""
    from anvil_dev.client import failure
    from anvil_dev.client.transport import Dropped, Transport, Unreachable

    try:
        return Transport(url, timeout=timeout).request(method, path, **kwargs)
    except (Unreachable, Dropped) as e:
        click.echo(str(failure(url, e)), err=True)
    except TimeoutError as e:
        click.echo(str(e), err=True)
    return None
