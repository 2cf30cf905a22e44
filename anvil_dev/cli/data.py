"""`anvil-dev tables | outbox | secrets | email | reset`: look at, feed and clear the app's local data."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from anvil_dev.cli._context import AppInfo, app_option, pass_info, server_request


@click.group("tables", invoke_without_command=True)
@app_option
@click.pass_context
def tables_command(ctx: click.Context) -> None:
    """Show the data tables: columns and row counts."""
    if ctx.invoked_subcommand is not None:
        return
    from anvil_dev import services

    tables = services.open(ctx.ensure_object(AppInfo).app).tables.describe()
    if not tables:
        click.echo("no data tables (add them under db_schema in anvil.yaml)")
    for t in tables:
        cols = ", ".join(f"{c['name']} ({c['type']})" for c in t.get("columns", []))
        click.echo(f"{t['name']}: {t.get('rows', t.get('row_count', 0))} rows; {cols}")


@tables_command.command("export")
@click.argument("table")
@click.option("--csv", "as_csv", is_flag=True, default=True, help="CSV (the only format so far).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File (default: stdout).")
@pass_info
def tables_export_command(info: AppInfo, table: str, as_csv: bool, output: str | None) -> None:
    """Export TABLE's rows as CSV."""
    from anvil_dev import services
    from anvil_dev.services.tables.errors import TableError

    tables = services.open(info.app).tables
    try:
        if output:
            with open(output, "w", newline="", encoding="utf-8") as f:
                tables.export_csv(table, f)
            click.echo(f"wrote {output}", err=True)
        else:
            tables.export_csv(table, sys.stdout)
    except TableError as e:
        raise click.ClickException(f"{e.message} - `anvil-dev tables` lists them with their columns") from None
    except (KeyError, LookupError, ValueError) as e:
        raise click.ClickException(str(e).strip("'\"")) from None


@tables_command.command("copy")
@click.option("--to", "to_url", metavar="postgresql://...", help="Copy the app's SQLite tables into this database.")
@click.option(
    "--from",
    "from_url",
    metavar="postgresql://...",
    help="Copy this database's tables into the app's SQLite file.",
)
@pass_info
def tables_copy_command(info: AppInfo, to_url: str | None, from_url: str | None) -> None:
    """Copy every data table's rows (ids, links, media, simpleObjects) between the app's SQLite file
    and a PostgreSQL database, into empty tables, all or nothing."""
    from anvil_dev import services
    from anvil_dev.services.db import Database, DatabaseError, PostgresDatabase, is_postgres
    from anvil_dev.services.tables import TableError, TablesStore
    from anvil_dev.services.tables import copy as tables_copy

    if (to_url is None) == (from_url is None):
        raise click.UsageError("give one of --to postgresql://... (SQLite to Postgres) or --from postgresql://...")
    url = str(to_url or from_url)
    if not is_postgres(url):
        raise click.UsageError(f"{url!r} is not a postgresql:// URL")
    ctx = services.open(info.app)
    local = TablesStore(Database(ctx.app_dir.db_path), ctx.app_dir, ctx.secret_key)
    remote = TablesStore(PostgresDatabase(url), ctx.app_dir, ctx.secret_key)
    source, dest = (local, remote) if to_url else (remote, local)
    try:
        total = tables_copy.plan(source, dest).rows
        with click.progressbar(length=total, label=f"copying {total} rows", file=sys.stderr) as bar:
            done = tables_copy.copy(source, dest, bar.update)
    except (TableError, DatabaseError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"copied {done.rows} rows in {len(done.tables)} tables from {source.db.name} to {dest.db.name}")


@click.group("outbox", invoke_without_command=True)
@app_option
@click.pass_context
def outbox_command(ctx: click.Context) -> None:
    """List the email the app has sent (kept locally unless --smtp-host relays it)."""
    if ctx.invoked_subcommand is not None:
        return
    from anvil_dev import services

    messages = services.open(ctx.ensure_object(AppInfo).app).outbox.list_messages()
    if not messages:
        click.echo("the outbox is empty")
    for m in messages:
        when = str(m.get("time") or "")[:16]
        click.echo(
            f"{m['id']:>5}  {when}  {m.get('status', ''):<8}  to {', '.join(m.get('to') or [])}: "
            f"{m.get('subject') or '(no subject)'}"
        )


@outbox_command.command("show")
@click.argument("message_id", type=int)
@click.option("--eml", is_flag=True, help="Print the whole message as an .eml file.")
@pass_info
def outbox_show_command(info: AppInfo, message_id: int, eml: bool) -> None:
    """Show one message: headers, text, HTML and attachments."""
    from anvil_dev import services

    outbox = services.open(info.app).outbox
    if eml:
        raw = outbox.message_eml(message_id)
        if raw is None:
            raise click.ClickException(f"no message {message_id} in the outbox")
        sys.stdout.buffer.write(raw)
        return
    m = outbox.get_message(message_id)
    if m is None:
        raise click.ClickException(f"no message {message_id} in the outbox")
    for key in ("from", "to", "cc", "bcc", "subject", "status"):
        value = m.get(key) if key != "from" else m.get("from_address")
        if value:
            click.echo(f"{key.capitalize()}: {', '.join(value) if isinstance(value, list) else value}")
    if m.get("text"):
        click.echo("\n" + m["text"])
    if m.get("html"):
        click.echo("\n--- HTML ---\n" + m["html"])
    for a in m.get("attachments") or []:
        click.echo(f"[attachment] {a.get('name')} ({a.get('content_type')}, {a.get('size')} bytes)")


@click.group("secrets", invoke_without_command=True)
@app_option
@click.pass_context
def secrets_command(ctx: click.Context) -> None:
    """List the app's secrets by name (values are never shown)."""
    if ctx.invoked_subcommand is not None:
        return
    from anvil_dev import services

    secrets = services.open(ctx.ensure_object(AppInfo).app).secrets
    names = secrets.list_secret_names()
    click.echo("\n".join(names) if names else "no secrets set (set one: anvil-dev secrets set NAME)")
    line = secrets.missing_secrets_message()
    if line:
        click.secho(line, fg="yellow")


@secrets_command.command("set")
@click.argument("name")
@click.option("--value", help="The value (prompted for, without echo, when omitted).")
@pass_info
def secrets_set_command(info: AppInfo, name: str, value: str | None) -> None:
    """Set secret NAME, kept in .anvil-dev/secrets.json (mode 0600)."""
    from anvil_dev import services

    if value is None:
        value = click.prompt(f"Value of {name}", hide_input=True)
    services.open(info.app).secrets.set_secret(name, value)
    click.echo(f"secret {name} set")


@click.group("email")
def email_command() -> None:
    """Feed inbound email to the app's @anvil.email.handle_message."""


@email_command.command("deliver")
@click.argument("eml", type=click.Path(exists=True, dir_okay=False))
@click.option("--url", default="http://127.0.0.1:3030", show_default=True, envvar="ANVIL_DEV_URL")
@pass_info
def email_deliver_command(info: AppInfo, eml: str, url: str) -> None:
    """Deliver the message in file EML to the running server's inbound email handler."""
    from anvil_dev.client import check_url

    try:
        url = check_url(url)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--url / ANVIL_DEV_URL") from None
    headers = {"Content-Type": "message/rfc822", "X-Anvil-Dev-Token": info.app.cli_token()}
    resp = server_request(url, "POST", "/_/dev/email", timeout=60, body=Path(eml).read_bytes(), headers=headers)
    if resp is None:
        sys.exit(2)
    body = resp.json()
    if "error" in body:
        err = body["error"]
        raise click.ClickException(f"{err.get('type')}: {err.get('message')}")
    click.echo("delivered")


@click.command("reset")
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
