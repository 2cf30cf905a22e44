"""`anvil-dev shell | functions | stubs`: the app's server code in this process, no server needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from anvil_dev.cli._context import AppInfo, pass_info


def _load(info: AppInfo) -> Any:
    """Open the app's services (its own .anvil-dev/ data) and import its server modules here."""
    from anvil_dev import inprocess, services

    app = services.open(info.app).app_dir
    try:
        inprocess.import_app(app)
    except inprocess.ImportFailed as e:
        raise click.ClickException(str(e)) from None
    return app


@click.command("shell")
@click.option("--plain", is_flag=True, help="The standard Python REPL even when IPython is installed.")
@pass_info
def shell_command(info: AppInfo, plain: bool) -> None:
    """A Python shell inside the app's server context: app_tables, anvil.users.force_login(...),
    the server functions callable by name, the app's modules imported (as `flask shell`)."""
    from anvil_dev import shell

    app = _load(info)
    namespace, banner = shell.namespace(app)
    shell.run(namespace, banner, plain=plain)


@click.command("functions")
@pass_info
def functions_command(info: AppInfo) -> None:
    """List the app's server functions, background tasks, HTTP endpoints and routes, with file and line."""
    from anvil_dev import inprocess

    app = _load(info)
    found = inprocess.functions(app)
    if not found:
        click.echo("no server functions yet (decorate one with @anvil.server.callable)")
        return
    width = max(len(f.name) + len(f.signature) for f in found)
    for f in found:
        who = "" if f.require_user in (None, False) else "  (require_user)"
        click.echo(f"{f.kind:<13} {(f.name + f.signature):<{width}}  {f.file}:{f.line}{who}")


@click.command("stubs")
@click.option("--out", type=click.Path(file_okay=False), help="Where to write them (default: typings/ in the app).")
@pass_info
def stubs_command(info: AppInfo, out: str | None) -> None:
    """Write type stubs for editors and type checkers: the runtime's anvil package, app_tables typed from anvil.yaml."""
    from anvil_dev import stubs

    target = stubs.write(info.app, Path(out) if out else None)
    click.echo(f"wrote type stubs to {target}")
    click.echo(
        "  pyright/Pylance read typings/ by default; for mypy set mypy_path = typings "
        "(serve keeps them up to date when anvil.yaml changes)"
    )
