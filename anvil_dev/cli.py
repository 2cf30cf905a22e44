"""The `anvil-dev` command: parses options and delegates; no logic of its own."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from anvil_dev import __version__
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


@click.group()
@click.version_option(__version__, prog_name="anvil-dev")
@click.option("--app", "app_path", envvar="ANVIL_DEV_APP", type=click.Path(file_okay=False),
              help="The app directory (default: the current directory).")
@click.pass_context
def cli(ctx: click.Context, app_path: str | None) -> None:
    """Run Anvil apps' Server Modules on your own machine."""
    ctx.obj = AppInfo(app_path)


@cli.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--name", help="The app's name (default: the directory's name).")
def init_command(directory: str, name: str | None) -> None:
    """Create a new app in Anvil's layout in DIRECTORY."""
    from anvil_dev.scaffold import ScaffoldError, scaffold

    try:
        target = scaffold(Path(directory), name)
    except ScaffoldError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"Created {target.name} in {target}")
    click.echo(f"Next: cd {directory} && anvil-dev serve")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="ANVIL_DEV_HOST",
              help="Interface to listen on (loopback unless you say otherwise).")
@click.option("--port", default=3030, show_default=True, type=int, envvar="ANVIL_DEV_PORT")
@click.option("--keep-server-running/--fresh", "persistent", default=None, envvar="ANVIL_DEV_KEEP_SERVER_RUNNING",
              help="Run calls in a warm worker (default: anvil.yaml's server_persist, else fresh).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), envvar="ANVIL_DEV_WORKERS",
              help="Persistent workers to run.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0), envvar="ANVIL_DEV_TIMEOUT",
              help="Seconds a call may run (0 for no limit).")
@click.option("--max-response-mb", default=4.0, show_default=True, type=click.FloatRange(0.001),
              envvar="ANVIL_DEV_MAX_RESPONSE_MB", help="Largest return value, excluding Media.")
@click.option("--reload/--no-reload", default=True, envvar="ANVIL_DEV_RELOAD", help="Reload code on save.")
@click.option("--poll", is_flag=True, envvar="ANVIL_DEV_POLL", help="Poll for changes (where file events don't work).")
@click.option("--uplink-key", envvar="ANVIL_DEV_UPLINK_KEY",
              help="The uplink key (default: generated, kept in .anvil-dev/).")
@click.option("--secret", "secrets", multiple=True, metavar="NAME=VALUE", help="An app secret (repeatable).")
@click.option("--smtp-host", envvar="ANVIL_DEV_SMTP_HOST", help="Relay email through this SMTP server.")
@click.option("--smtp-port", type=int, envvar="ANVIL_DEV_SMTP_PORT")
@click.option("--smtp-user", envvar="ANVIL_DEV_SMTP_USER")
@click.option("--smtp-password", envvar="ANVIL_DEV_SMTP_PASSWORD")
@click.option("--smtp-encryption", type=click.Choice(["none", "ssl", "starttls"]), envvar="ANVIL_DEV_SMTP_ENCRYPTION")
@click.option("--dep", "deps", multiple=True, metavar="APP_ID=PATH",
              help="Where a dependency of anvil.yaml lives (repeatable; default: beside the app, by package name).")
@click.option("--no-scheduled-tasks", is_flag=True, envvar="ANVIL_DEV_NO_SCHEDULED_TASKS",
              help="Do not run anvil.yaml's scheduled tasks.")
@pass_info
def serve_command(info: AppInfo, host: str, port: int, persistent: bool | None, workers: int, timeout: float,
                  max_response_mb: float, reload: bool, poll: bool, uplink_key: str | None,
                  secrets: tuple[str, ...], smtp_host: str | None, smtp_port: int | None, smtp_user: str | None,
                  smtp_password: str | None, smtp_encryption: str | None, deps: tuple[str, ...],
                  no_scheduled_tasks: bool) -> None:
    """Serve the app, reloading server code on save."""
    import os

    from anvil_dev._platform import unsupported_reason

    # Refuse before anything starts: without these the engine would fail half-way up, with a traceback.
    reason = unsupported_reason()
    if reason is not None:
        raise click.ClickException(reason)
    from anvil_dev.host.server import ServeOptions, serve

    app = info.app
    if persistent is None:
        persistent = bool(app.runtime_options.get("server_persist"))
    for item in secrets:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--secret")
        os.environ[f"ANVIL_DEV_SECRET_{name}"] = value
    # Workers read these from the environment they inherit.
    smtp: dict[str, object] = {"HOST": smtp_host, "PORT": smtp_port, "USER": smtp_user, "PASSWORD": smtp_password,
                               "ENCRYPTION": smtp_encryption}
    for key, setting in smtp.items():
        if setting is not None:
            os.environ[f"ANVIL_DEV_SMTP_{key}"] = str(setting)
    for item in deps:
        app_id, sep, path = item.partition("=")
        if not sep or not app_id or not path:
            raise click.BadParameter(f"{item!r} is not APP_ID=PATH", param_hint="--dep")
    if deps:
        # Workers read it too: they are forked from a process started with this environment.
        os.environ["ANVIL_DEV_DEPS"] = ";".join(
            [f"{a}={Path(p).resolve()}" for a, _, p in (d.partition("=") for d in deps)]
            + list(filter(None, os.environ.get("ANVIL_DEV_DEPS", "").split(";"))))
    serve(app, ServeOptions(host=host, port=port, persistent=persistent, workers=workers, timeout=timeout,
                            max_response_mb=max_response_mb, reload=reload, poll=poll, uplink_key=uplink_key,
                            scheduled_tasks=not no_scheduled_tasks))


def _parse_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
    except RecursionError:
        raise click.BadParameter(f"{text[:40]}... is JSON nested too deeply to send", param_hint="ARGS") from None


@cli.command("call", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--kw", "kwargs", multiple=True, metavar="KEY=VALUE", help="A keyword argument (repeatable).")
@click.option("--url", default="http://127.0.0.1:3030", show_default=True, envvar="ANVIL_DEV_URL")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (wire format).")
@click.option("--as", "as_user", metavar="EMAIL", help="Call as this user (needs access to the app's .anvil-dev/).")
@click.option("--media-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where returned media are written.")
@click.option("--http", "http_method", metavar="METHOD",
              help="Request NAME as a path of the app's HTTP endpoints (/_/api/NAME) with this method; "
                   "ARGS become query parameters KEY=VALUE.")
@pass_info
def call_command(info: AppInfo, name: str, args: tuple[str, ...], kwargs: tuple[str, ...], url: str,
                 as_json: bool, as_user: str | None, media_dir: str, http_method: str | None) -> None:
    """Call server function NAME with ARGS (each parsed as JSON where it is valid JSON, else a string)."""
    from anvil_dev import callcmd

    if http_method is not None:
        sys.exit(callcmd.run_http(url, http_method, name, list(args)))
    if not name.strip():
        raise click.BadParameter("give the name of a server function (`anvil-dev serve` lists them)",
                                 param_hint="NAME")
    kw = {}
    for item in kwargs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--kw")
        kw[key] = _parse_arg(value)
    token = info.app.cli_token() if as_user else None
    code = callcmd.run(url, name, [_parse_arg(a) for a in args], kw, as_json=as_json, as_user=as_user,
                       token=token, media_dir=Path(media_dir))
    sys.exit(code)


@cli.command("uplink-key")
@pass_info
def uplink_key_command(info: AppInfo) -> None:
    """Print the app's uplink key."""
    click.echo(info.app.uplink_key())


@cli.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_info
def reset_command(info: AppInfo, yes: bool) -> None:
    """Delete the app's local data (.anvil-dev/: tables, users, sessions, tasks, keys)."""
    d = info.app.data_dir
    if not d.exists():
        click.echo("nothing to reset")
        return
    if not yes:
        click.confirm(f"Delete {d} and all the data in it?", abort=True)
    shutil.rmtree(d)
    click.echo(f"deleted {d}")


def _register_service_commands() -> None:
    from anvil_dev import _cli_services

    _cli_services.register(cli)


_register_service_commands()


def main() -> None:
    cli(prog_name="anvil-dev")
