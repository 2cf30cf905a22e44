"""The `anvil-dev` command: one click group; each command parses its options and delegates.

The commands live in modules named for what they work on: serve.py, call.py, data.py (tables, outbox,
secrets, email, reset), tasks.py and app.py (init, uplink-key, users).
"""

from __future__ import annotations

import click

from anvil_dev import __version__
from anvil_dev.cli._context import AppInfo
from anvil_dev.cli.app import init_command, uplink_key_command, users_command
from anvil_dev.cli.call import call_command
from anvil_dev.cli.data import email_command, outbox_command, reset_command, secrets_command, tables_command
from anvil_dev.cli.serve import serve_command
from anvil_dev.cli.shell import functions_command, shell_command, stubs_command
from anvil_dev.cli.tasks import tasks_command


@click.group()
@click.version_option(__version__, prog_name="anvil-dev")
@click.option("--app", "app_path", envvar="ANVIL_DEV_APP", type=click.Path(file_okay=False),
              help="The app directory (default: the current directory).")
@click.pass_context
def cli(ctx: click.Context, app_path: str | None) -> None:
    """Run Anvil apps' Server Modules on your own machine."""
    ctx.obj = AppInfo(app_path)


for _command in (init_command, serve_command, call_command, uplink_key_command, reset_command, tables_command,
                 outbox_command, secrets_command, email_command, tasks_command, users_command, shell_command,
                 functions_command, stubs_command):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="anvil-dev")
