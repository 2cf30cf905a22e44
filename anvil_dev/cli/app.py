"""`anvil-dev init | uplink-key | users`: create an app, and what it knows of who may reach it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from anvil_dev.cli._context import AppInfo, app_option, pass_info


@click.command("init")
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
    # Quoted as the shell needs it: `anvil-dev init "my app"` must not suggest `cd my app`.
    click.echo(f"Next: cd {shlex.quote(directory)} && anvil-dev serve")


@click.command("uplink-key")
@click.option("--client", is_flag=True, help="The client uplink key (client permissions only).")
@pass_info
def uplink_key_command(info: AppInfo, client: bool) -> None:
    """Print the app's uplink key (or, with --client, its client uplink key)."""
    click.echo(info.app.client_uplink_key() if client else info.app.uplink_key())


@click.group("users")
@app_option
def users_command() -> None:
    """Add and list the app's users (its Users service table)."""


@users_command.command("add")
@click.argument("email")
@click.option(
    "--password",
    help="Their password (prompted for when omitted on a terminal; "
    "without one they can only be used with `call --as`).",
)
@click.option("--admin", is_flag=True, help="Set the user's admin column to True.")
@pass_info
def users_add_command(info: AppInfo, email: str, password: str | None, admin: bool) -> None:
    """Add a user who can log in at once, or enable, confirm and update an existing one."""
    from anvil_dev import services
    from anvil_dev.services.users import UsersError

    if password is None and sys.stdin.isatty():
        password = (
            click.prompt("Password", hide_input=True, confirmation_prompt=True, default="", show_default=False) or None
        )
    try:
        user = services.open(info.app).users.add_user(email, password, admin)
    except UsersError as e:
        raise click.ClickException(e.message) from None
    click.echo(
        f"{'added' if user['created'] else 'updated'} {user['email']} {user['id']}"
        + (" (admin)" if admin else "")
        + ("" if password else " (no password)")
    )


@users_command.command("list")
@pass_info
def users_list_command(info: AppInfo) -> None:
    """List the users: email, enabled, admin, last login."""
    from anvil_dev import services
    from anvil_dev.services.users import UsersError

    try:
        users = services.open(info.app).users.list_users()
    except UsersError as e:
        raise click.ClickException(e.message) from None
    if not users:
        click.echo("no users yet (add one: anvil-dev users add EMAIL)")
        return
    from tabulate import tabulate

    rows = []
    for u in users:
        flags = [
            f
            for f, on in (
                ("enabled", u.get("enabled")),
                ("admin", u.get("admin")),
                ("no password", not u["has_password"]),
            )
            if on
        ]
        last = u.get("last_login")
        rows.append(
            [u["id"], u["email"] or "-", ", ".join(flags) or "-", last.strftime("%Y-%m-%d %H:%M") if last else "never"]
        )
    click.echo(tabulate(rows, headers=["ID", "EMAIL", "FLAGS", "LAST LOGIN"], tablefmt="plain", disable_numparse=True))
