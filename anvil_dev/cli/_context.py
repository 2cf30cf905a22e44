"""What every command is given: the app it works on, found lazily."""

from __future__ import annotations

import click

from anvil_dev.appdir import AppDir, AppDirError


class AppInfo:
    """The app a command works on, found lazily (commands like `init` never need one)."""

    def __init__(self, app_path: str | None = None) -> None:
        self.app_path = app_path or "."
        self._app: AppDir | None = None

    @property
    def app(self) -> AppDir:
        if self._app is None:
            app = AppDir(self.app_path)
            try:
                app.check()
            except AppDirError as e:
                raise click.UsageError(str(e)) from None
            self._app = app
        return self._app


pass_info = click.make_pass_decorator(AppInfo)
