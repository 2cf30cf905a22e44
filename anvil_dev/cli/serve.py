"""`anvil-dev serve`: collect the options, build one Settings and hand the app to the host."""

from __future__ import annotations

import contextlib

import click

from anvil_dev.cli._context import AppInfo, pass_info

DEBUGPY_PORT = 5678  # debugpy's own default, and what VS Code's launch.json examples use


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="ANVIL_DEV_HOST",
    help="Interface to listen on (loopback unless you say otherwise).",
)
@click.option("--port", default=3030, show_default=True, type=click.IntRange(0, 65535), envvar="ANVIL_DEV_PORT")
@click.option(
    "--keep-server-running/--fresh",
    "persistent",
    default=None,
    envvar="ANVIL_DEV_KEEP_SERVER_RUNNING",
    help="Run calls in a warm worker (default: anvil.yaml's server_persist, else fresh).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="ANVIL_DEV_WORKERS",
    help="Persistent workers to run.",
)
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    envvar="ANVIL_DEV_TIMEOUT",
    help="Seconds a call may run (0 for no limit).",
)
@click.option(
    "--max-response-mb",
    default=4.0,
    show_default=True,
    type=click.FloatRange(0.001),
    envvar="ANVIL_DEV_MAX_RESPONSE_MB",
    help="Largest return value, excluding Media.",
)
@click.option(
    "--memory-limit",
    "memory_limit_mb",
    type=click.FloatRange(0),
    envvar="ANVIL_DEV_MEMORY_LIMIT",
    metavar="MB",
    help="Memory (RSS) a call's process may use before it is killed, as Anvil's out-of-memory killer "
    "does; also background tasks and each persistent worker (default: anvil.yaml's "
    "anvil_dev.memory_limit_mb, else no limit).",
)
@click.option("--reload/--no-reload", default=True, envvar="ANVIL_DEV_RELOAD", help="Reload code on save.")
@click.option("--poll", is_flag=True, envvar="ANVIL_DEV_POLL", help="Poll for changes (where file events don't work).")
@click.option(
    "--uplink-key", envvar="ANVIL_DEV_UPLINK_KEY", help="The uplink key (default: generated, kept in .anvil-dev/)."
)
@click.option(
    "--client-uplink-key",
    envvar="ANVIL_DEV_CLIENT_UPLINK_KEY",
    help="The client uplink key, for uplinks held to client permissions (default: generated, kept in .anvil-dev/).",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="NAME=VALUE",
    help="An app secret (repeatable; ANVIL_DEV_SECRET_<NAME> sets one too).",
)
@click.option("--smtp-host", envvar="ANVIL_DEV_SMTP_HOST", help="Relay email through this SMTP server.")
@click.option("--smtp-port", type=int, envvar="ANVIL_DEV_SMTP_PORT")
@click.option("--smtp-user", envvar="ANVIL_DEV_SMTP_USER")
@click.option("--smtp-password", envvar="ANVIL_DEV_SMTP_PASSWORD")
@click.option("--smtp-encryption", type=click.Choice(["none", "ssl", "starttls"]), envvar="ANVIL_DEV_SMTP_ENCRYPTION")
@click.option(
    "--dep",
    "deps",
    multiple=True,
    metavar="APP_ID=PATH",
    help="Where a dependency of anvil.yaml lives (repeatable; default: beside the app, by package name).",
)
@click.option(
    "--no-scheduled-tasks",
    is_flag=True,
    envvar="ANVIL_DEV_NO_SCHEDULED_TASKS",
    help="Do not run anvil.yaml's scheduled tasks.",
)
@click.option(
    "--database",
    envvar="ANVIL_DEV_DATABASE",
    metavar="postgresql://...",
    help="Keep users, sessions, tasks and mail in PostgreSQL, shared by every host given the same URL "
    "(default: anvil.yaml's anvil_dev.database, else SQLite under .anvil-dev/).",
)
@click.option(
    "--production",
    is_flag=True,
    envvar="ANVIL_DEV_PRODUCTION",
    help="Serve under gunicorn: no reload, no console unless --console, bound where --host says.",
)
@click.option(
    "--console/--no-console",
    default=None,
    envvar="ANVIL_DEV_CONSOLE",
    help="Serve the dev console at /_/console (default: yes, but not with --production).",
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="ANVIL_DEV_PROCESSES",
    help="With --production: gunicorn worker processes, each a host with its own engine.",
)
@click.option(
    "--threads",
    default=32,
    show_default=True,
    type=click.IntRange(2, 1024),
    envvar="ANVIL_DEV_THREADS",
    help="With --production: request threads per process (an open websocket holds one).",
)
@click.option(
    "--origin",
    "public_origin",
    envvar="ANVIL_DEV_ORIGIN",
    metavar="https://...",
    help="The app's address as users reach it, behind a reverse proxy (anvil.server.get_app_origin()).",
)
@click.option(
    "--show-internal-frames",
    is_flag=True,
    envvar="ANVIL_DEV_SHOW_INTERNAL_FRAMES",
    help="Failed calls' tracebacks in this terminal show anvil-dev's and libraries' frames too, not only the app's.",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="ANVIL_DEV_DEBUG",
    help=f"Let VS Code (or another DAP editor) attach with debugpy on 127.0.0.1:{DEBUGPY_PORT} (see --debugpy).",
)
@click.option(
    "--debugpy",
    "debugpy_port",
    type=click.IntRange(1, 65535),
    envvar="ANVIL_DEV_DEBUGPY",
    metavar="PORT",
    help="Listen for an editor with debugpy on 127.0.0.1:PORT: every process that runs server code, fresh "
    "children included, is debugged; calls have no timeout. Needs `pip install 'anvil-dev[debug]'`.",
)
@pass_info
def serve_command(
    info: AppInfo,
    host: str,
    port: int,
    persistent: bool | None,
    workers: int,
    timeout: float,
    max_response_mb: float,
    memory_limit_mb: float | None,
    reload: bool,
    poll: bool,
    uplink_key: str | None,
    client_uplink_key: str | None,
    secrets: tuple[str, ...],
    smtp_host: str | None,
    smtp_port: int | None,
    smtp_user: str | None,
    smtp_password: str | None,
    smtp_encryption: str | None,
    deps: tuple[str, ...],
    no_scheduled_tasks: bool,
    database: str | None,
    production: bool,
    console: bool | None,
    processes: int,
    threads: int,
    public_origin: str | None,
    show_internal_frames: bool,
    debug: bool,
    debugpy_port: int | None,
) -> None:
    """Serve the app, reloading server code on save."""
    from anvil_dev import config
    from anvil_dev._platform import unsupported_reason
    from anvil_dev.appdir import AppDir, AppDirError

    # Refuse before anything starts: without these the engine would fail half-way up, with a traceback.
    reason = unsupported_reason()
    if reason is not None:
        raise click.ClickException(reason)
    from anvil_dev.host.server import serve

    if debug and debugpy_port is None:
        debugpy_port = DEBUGPY_PORT
    if debugpy_port is not None:
        _check_debugpy(debugpy_port, production)
    app = info.app
    smtp = {
        "host": smtp_host,
        "port": smtp_port,
        "user": smtp_user,
        "password": smtp_password,
        "encryption": smtp_encryption,
    }
    try:
        settings = config.build(
            app.path,
            yaml_persist=app.runtime_options.get("server_persist"),
            persistent=persistent,
            timeout=timeout,
            secrets=secrets,
            smtp=smtp,
            deps=deps,
            host=host,
            port=port,
            workers=workers,
            max_response_mb=max_response_mb,
            memory_limit_mb=memory_limit_mb,
            yaml_memory_limit=config.yaml_setting(app.config, "memory_limit_mb"),
            reload=reload and not production,
            poll=poll,
            uplink_key=uplink_key,
            client_uplink_key=client_uplink_key,
            scheduled_tasks=not no_scheduled_tasks,
            database=database,
            yaml_database=config.yaml_database(app.config),
            production=production,
            console=(not production) if console is None else console,
            public_origin=public_origin,
            show_internal_frames=show_internal_frames,
            debugpy_port=debugpy_port,
        )
    except config.SettingsError as e:
        raise click.UsageError(str(e)) from None
    if settings.database:
        _check_database(settings.database)
    with contextlib.ExitStack() as stack:
        try:
            # The lock sits with the data (--data-dir may put it elsewhere): that is what two servers would share.
            data = app if settings.data_dir is None else AppDir(app.path, data_dir=settings.data_dir)
            stack.enter_context(data.serving(settings.origin))
        except AppDirError as e:
            raise click.ClickException(str(e)) from None
        if production:
            from anvil_dev.host.production import serve_production

            serve_production(app, settings, processes=processes, threads=threads)
            return
        serve(app, settings)


def _check_debugpy(port: int, production: bool) -> None:
    """Refuse `--debug` where it cannot work, with what to do (not a failure inside the zygote)."""
    import importlib.util
    import socket

    if production:
        raise click.UsageError("--debug / --debugpy is for development: leave it out with --production")
    if importlib.util.find_spec("debugpy") is None:
        raise click.ClickException(
            "--debug needs debugpy, which is not installed in the Python that runs anvil-dev: "
            "`pip install 'anvil-dev[debug]'` (or `pip install debugpy`) there"
        )
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise click.ClickException(
                f"port {port} for debugpy is already in use (another `serve --debug`, or an editor's "
                "debug session?) - choose another with --debugpy PORT or ANVIL_DEV_DEBUGPY=PORT"
            ) from None


def _check_database(url: str) -> None:
    """Fail now, with what to do, if the database cannot be reached (not half-way up, with a traceback)."""
    from anvil_dev.services.db import DatabaseError, PostgresDatabase

    db = PostgresDatabase(url)
    try:
        db.connection()
    except DatabaseError as e:
        raise click.ClickException(str(e)) from None
    finally:
        db.close()
