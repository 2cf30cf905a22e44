"""`anvil-dev serve --production`: the host under gunicorn, with no reloader and no console unless asked.

gunicorn's arbiter binds the address and keeps `processes` worker processes alive; each worker is a
whole host (one engine with its zygote, the uplink hub, the scheduler, the heartbeat), made after
gunicorn forks it, serving requests on `threads` threads (gthread: an uplink's or event stream's
websocket holds one thread for as long as it is open). The default is one worker per machine: a
host's in-memory parts (uplink connections, the console's event stream) are its own, and one
engine already runs calls in as many processes as it is given (--workers). Several processes, or
several machines, share what lives in the database: users, sessions, cookies, tasks and mail, and
on PostgreSQL the signing key and the schedule.

gunicorn's own settings can be added with GUNICORN_CMD_ARGS (say, "--access-logfile -").
"""

from __future__ import annotations

import sys
from typing import Any

import click

from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings


def serve_production(app_dir: AppDir, settings: Settings, processes: int = 1, threads: int = 32) -> None:
    """Run gunicorn in this process until SIGTERM or SIGINT (it stops its workers, each its host)."""
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise click.ClickException(
            "serve --production runs under gunicorn: pip install 'anvil-dev[production]'"
        ) from None

    class _App(BaseApplication):
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"[{settings.host}]:{settings.port}"
                if ":" in settings.host
                else f"{settings.host}:{settings.port}",
                "workers": processes,
                "worker_class": "gthread",
                "threads": threads,
                # A call may run as long as --timeout lets it; gunicorn's timeout only watches that
                # a worker's main thread is alive, which threads' long calls do not block.
                "timeout": 60,
                "graceful_timeout": 10,
                "keepalive": 5,
                "proc_name": f"anvil-dev {app_dir.path.name}",
                "post_worker_init": _post_worker_init,
                "worker_exit": _worker_exit,
                # Several hosts may share a machine: no control socket in a shared place.
                "control_socket_disable": True,
            }
            for key, value in options.items():
                self.cfg.set(key, value)
            env_args = self.cfg.get_cmd_args_from_env()
            if env_args:
                parsed = self.cfg.parser().parse_args(env_args)
                for key, value in vars(parsed).items():
                    if value is not None and key in self.cfg.settings and key != "args":
                        self.cfg.set(key.lower(), value)

        def load(self) -> Any:
            # In the worker, after gunicorn forked it: a host of its own (engine threads must not cross a fork).
            from anvil_dev.host.server import _Server

            server = _Server(app_dir, settings)
            _hosts.append(server)
            try:
                server.start(listen_here=False)
            except BaseException:
                server.shutdown()
                raise
            return server.flask_app

    _App().run()


_hosts: list[Any] = []


def _post_worker_init(worker: Any) -> None:
    server = _hosts[-1] if _hosts else None
    if server is None:
        return
    settings = server.opts
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
    desc = server.engine.describe()
    funcs = [
        f["name"] for f in desc.get("functions", []) if ":" not in f["name"] and not f["name"].startswith("anvil.")
    ]
    where = _safe(settings.database) if settings.database else "SQLite under " + str(server.app_dir.data_dir)
    click.echo(
        f"anvil-dev {server.app_dir.path.name} (production, pid {worker.pid}): {len(funcs)} server functions, "
        f"records in {where}"
    )
    if desc.get("import_error"):
        e = desc["import_error"]
        click.secho(f"  server modules failed to import - {e.get('type')}: {e.get('message')}", fg="red")
    click.echo(f"Serving on http://{host}:{settings.port} (production, under gunicorn)")
    sys.stdout.flush()


def _worker_exit(_arbiter: Any, _worker: Any) -> None:
    while _hosts:
        _hosts.pop().shutdown()


def _safe(url: str) -> str:
    from anvil_dev.services.db import PostgresDatabase

    return PostgresDatabase(url).name
