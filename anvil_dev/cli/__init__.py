"""The `anvil-dev` command: one click group; each command parses its options and delegates.

The commands live in modules named for what they work on: serve.py, call.py, data.py (tables, outbox,
secrets, email, reset), tasks.py and app.py (init, uplink-key, users).
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import click

from anvil_dev import __version__
from anvil_dev.cli._context import CONTEXT_SETTINGS, AppInfo
from anvil_dev.cli.app import init_command, uplink_key_command, users_command
from anvil_dev.cli.call import call_command
from anvil_dev.cli.data import email_command, outbox_command, reset_command, secrets_command, tables_command
from anvil_dev.cli.serve import serve_command
from anvil_dev.cli.shell import functions_command, shell_command, stubs_command
from anvil_dev.cli.tasks import tasks_command


class InternalError(click.ClickException):
    """An exception from anvil-dev's own code that no command turned into a message: one line, not a traceback."""

    def __init__(self, exc: BaseException) -> None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "anvil_dev" in Path(f.filename).parts]
        where = ""
        if frames:
            f = frames[-1]
            parts = Path(f.filename).parts
            where = f" (in {'/'.join(parts[parts.index('anvil_dev') :])} line {f.lineno}, {f.name})"
        super().__init__(
            f"anvil-dev failed: {type(exc).__name__}: {exc}{where} - this is a bug in anvil-dev; "
            "please report it with the output of the same command run with --traceback"
        )


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            if isinstance(ctx.obj, AppInfo) and ctx.obj.traceback:
                raise
            raise InternalError(e) from None


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="anvil-dev")
@click.option(
    "--app",
    "app_path",
    envvar="ANVIL_DEV_APP",
    type=click.Path(file_okay=False),
    help="The app directory (default: the current directory).",
)
@click.option(
    "--traceback",
    "show_traceback",
    is_flag=True,
    envvar="ANVIL_DEV_TRACEBACK",
    help="Show Python's traceback when anvil-dev itself fails (for bug reports).",
)
@click.pass_context
def cli(ctx: click.Context, app_path: str | None, show_traceback: bool) -> None:
    """Run Anvil apps' Server Modules on your own machine."""
    ctx.obj = AppInfo(app_path)
    ctx.obj.traceback = show_traceback


for _command in (
    init_command,
    serve_command,
    call_command,
    uplink_key_command,
    reset_command,
    tables_command,
    outbox_command,
    secrets_command,
    email_command,
    tasks_command,
    users_command,
    shell_command,
    functions_command,
    stubs_command,
):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="anvil-dev")
