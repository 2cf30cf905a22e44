"""`anvil-dev serve`: start the engine, the reloader, the uplink hub, the scheduler and the HTTP server;
stop them all together."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from anvil_dev import services
from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.engine.attach import Anchor
from anvil_dev.engine.engine import Engine
from anvil_dev.host import listen
from anvil_dev.host.debugger import PdbRelay

# Flask, werkzeug, watchdog and the host's routes are imported in `_Server.start`, once the zygote
# has been launched: the zygote's imports then overlap these (about 0.15 s of a cold start).
if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

    from anvil_dev.host import scheduler
    from anvil_dev.host.reload import Reloader
    from anvil_dev.host.state import HostState
    from anvil_dev.host.uplink import UplinkHub

log = logging.getLogger("anvil_dev")


class _Server:
    def __init__(self, app_dir: AppDir, opts: Settings) -> None:
        self.app_dir = app_dir
        self.opts = opts
        self.state: HostState | None = None
        self.engine: Engine | None = None
        self.reloader: Reloader | None = None
        self.http: BaseWSGIServer | None = None
        self.uplink: UplinkHub | None = None
        self.scheduler: scheduler.Scheduler | None = None
        self.pdb: PdbRelay | None = None
        self.debug_anchor: Anchor | None = None  # serve --debug (engine/attach.py)
        self.flask_app: Any = None
        self.hosts: Any = None

    def start(self, listen_here: bool = True) -> None:
        """Start everything; `listen_here=False` leaves the listening to someone else (gunicorn's worker)."""
        # Bind first: a busy port or a wrong --host fails before anything else starts.
        listening = listen.bind(self.opts.host, self.opts.port) if listen_here else None
        if sys.stdin.isatty() and listen_here:
            self.pdb = PdbRelay(sys.stdin.buffer, sys.stdout.buffer)
            self.opts = self.opts.replace(pdb_socket=self.pdb.path)
        if self.opts.debugpy_port:
            self.debug_anchor = Anchor(self.opts.debugpy_port, on_editor_gone=self._editor_gone)
            self.opts = self.opts.replace(debugpy_state=self.debug_anchor.state_path)
            if not self.debug_anchor.wait_listening():
                raise RuntimeError(f"debugpy did not start listening on 127.0.0.1:{self.opts.debugpy_port}")
        opts = self.opts
        # The services' AppDir: it carries Settings.data_dir, which every part of the host must use.
        app_dir = self.app_dir = services.open(self.app_dir, opts).app_dir
        self.engine = Engine(app_dir, opts)
        self.engine.debugger = self.pdb
        # Before the host's own imports, so that the zygote's (and the template's) run beside them.
        self.engine.launch()
        from werkzeug.serving import make_server

        from anvil_dev.host.app import create_app
        from anvil_dev.host.events import EventBus
        from anvil_dev.host.keepalive import KeepAliveRequestHandler
        from anvil_dev.host.reload import Reloader, syntax_error
        from anvil_dev.host.state import build_state

        _tune_switch_interval()
        # One line per request is noise next to our own lines; failed calls are reported by the dispatcher.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        bus = EventBus()
        self.state = build_state(app_dir, self.engine, bus, opts)
        self.engine.outbound = self.state.dispatcher.call
        flask_app = self.flask_app = create_app(self.state, with_console=opts.console)
        self._start_uplink(flask_app)
        self._start_tasks()
        if listening is not None:
            # werkzeug takes a duplicate of the bound socket's descriptor; ours is closed once it has.
            with listening:
                self.http = make_server(
                    opts.host,
                    opts.port,
                    flask_app,
                    threaded=True,
                    fd=listening.fileno(),
                    request_handler=KeepAliveRequestHandler,
                )
        self.engine.start()
        self._start_scheduler()
        self.state.syntax_error = syntax_error(app_dir, app_dir.server_module_files())
        if opts.reload:
            self.reloader = Reloader(self.state, poll=opts.poll, scheduler=self.scheduler)
            self.reloader.start()

    def _start_uplink(self, flask_app: Any) -> None:
        from anvil_dev.host.uplink import UplinkHub

        assert self.state is not None
        key = self.opts.uplink_key or self.app_dir.uplink_key()
        client_key = self.opts.client_uplink_key or self.app_dir.client_uplink_key()
        self.uplink = UplinkHub(self.state.dispatcher, key, self.state.media.store, client_key=client_key)
        self.uplink.init_app(flask_app)
        self.state.uplink = self.uplink
        self.state.dispatcher.uplink = self.uplink
        self.state.uplink_key = key

    def _start_tasks(self) -> None:
        """Background tasks: tasks left "running" by a server that is gone read "missing"; launches
        from server code come to the host, which starts each task in a child of its own."""
        assert self.state is not None and self.engine is not None
        from anvil_dev.host.hosts import HostRegistry
        from anvil_dev.host.tasks import LAUNCH, TaskLauncher

        tasks_service = services.current().tasks
        if tasks_service.shared:
            # Several hosts on one database: each says it is alive, and one of the others reports
            # the tasks of a host that stopped saying so.
            self.hosts = HostRegistry(tasks_service)
            self.hosts.start()
        tasks_service.mark_orphans_missing()
        self.state.dispatcher.native[LAUNCH] = TaskLauncher(self.engine, self.uplink)

    def _start_scheduler(self) -> None:
        """anvil.yaml scheduled_tasks launch their background task on schedule (host/scheduler.py)."""
        assert self.state is not None and self.engine is not None
        from anvil_dev.host import scheduler
        from anvil_dev.host.tasks import LAUNCH

        if not self.opts.scheduled_tasks:
            line = scheduler.disabled_line(self.app_dir)
            if line:
                click.echo(line, err=True)
            return
        ctx = services.current()
        # Several schedulers may share the database: hosts on PostgreSQL, or --production's processes.
        claim = ctx.shared_db is not None or self.opts.production
        epoch = None
        if claim and self.opts.schedule_speedup != 1:
            # A sped-up clock must read alike in every scheduler, and never run back over claimed runs.
            db = ctx.shared_db if ctx.shared_db is not None else ctx.runtime_db
            epoch = float(services.shared_value(db, "schedule_epoch", repr(time.time())))
        self.scheduler = scheduler.Scheduler(
            self.app_dir,
            self.state.dispatcher.native[LAUNCH],
            scheduler.registered_in(self.engine, self.uplink),
            speedup=self.opts.schedule_speedup,
            epoch=epoch,
            claim=claim,
        )
        self.scheduler.start()

    def banner(self) -> None:
        assert self.state is not None and self.engine is not None and self.http is not None
        url = f"http://{_url_host(self.opts.host)}:{self.http.port}"
        desc = self.engine.describe()
        internal = ("anvil.", "task:", "http:", "route:", "email:")
        funcs = [f["name"] for f in desc.get("functions", []) if not f["name"].startswith(internal)]
        mode = "keep server running" if self.opts.persistent else "fresh interpreter per call"
        timeout = f"timeout {self.opts.timeout:g} s" if self.opts.timeout else "no timeout"
        click.echo(f"anvil-dev {self.app_dir.path.name}: {len(funcs)} server functions ({mode}, {timeout})")
        if funcs:
            click.echo("  " + ", ".join(funcs))
        for line in self.app_dir.dependencies(self.opts.deps)[1]:
            click.secho(f"  {line}", fg="yellow")
        missing = services.current().secrets.missing_secrets_message()
        if missing:
            click.secho(f"  {missing}", fg="yellow")
        if desc.get("import_error"):
            e = desc["import_error"]
            click.secho(f"  server modules failed to import - {e.get('type')}: {e.get('message')}", fg="red")
        if self.state.syntax_error:
            e = self.state.syntax_error
            click.secho(f"  SyntaxError in {e['file']} line {e['line']}: {e['message']}", fg="red")
        if funcs:
            click.echo(f"  call one: anvil-dev call {funcs[0]} ...   (or open {url}/_/console)")
        if self.state.uplink_key is not None:
            click.echo(
                f"  uplink: anvil.server.connect({self.state.uplink_key!r}, "
                f'url="ws://{_url_host(self.opts.host)}:{self.http.port}/_/uplink")'
            )
            if self.uplink is not None and self.uplink.client_key:
                click.echo(
                    f"  client uplink (client permissions): anvil.server.connect("
                    f"{self.uplink.client_key!r}, url=...same...)"
                )
        if self.opts.debugpy_port:
            click.echo(
                f"  debugpy: attach VS Code (or another DAP editor) to 127.0.0.1:{self.opts.debugpy_port}; "
                "every process that runs server code is debugged, calls have no timeout"
            )
        click.echo(f"Serving on {url} (Ctrl-C to stop)", err=False)
        sys.stdout.flush()

    def _editor_gone(self) -> None:
        """`serve --debug`: the next calls go to persistent workers no editor has debugged."""
        if self.engine is not None:
            self.engine.replace_workers()

    def serve_forever(self) -> None:
        assert self.http is not None
        self.http.serve_forever()

    def shutdown(self) -> None:
        if self.hosts is not None:
            self.hosts.stop()
        if self.reloader is not None:
            self.reloader.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.state is not None:
            self.state.bus.close()
        if self.uplink is not None:
            self.uplink.close()
        if self.engine is not None:
            self.engine.stop()
        if self.pdb is not None:
            self.pdb.close()
        if self.debug_anchor is not None:
            self.debug_anchor.stop()


def _tune_switch_interval() -> None:
    """Hand the GIL over sooner: a thread back from socket I/O otherwise waits up to 5 ms for it
    while another thread computes, and each call crosses several such hand-offs."""
    sys.setswitchinterval(0.0005)


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


class BackgroundServer:
    """A server running in threads of this process (the pytest plugin's), until `stop()`."""

    def __init__(self, app_dir: AppDir, opts: Settings) -> None:
        self._server = _Server(app_dir, opts)
        try:
            self._server.start()
        except BaseException:
            self._server.shutdown()
            raise
        assert self._server.http is not None and self._server.state is not None
        self.url = f"http://{_url_host(opts.host)}:{self._server.http.port}"
        self.state = self._server.state
        self.app_dir = self._server.app_dir
        self._thread = threading.Thread(target=self._server.serve_forever, name="anvil-dev-http", daemon=True)
        self._thread.start()

    def describe(self) -> dict[str, Any]:
        return self.state.describe()

    def stop(self) -> None:
        if self._server.http is not None:
            self._server.http.shutdown()
        self._thread.join(10)
        self._server.shutdown()


def serve(app_dir: AppDir, opts: Settings) -> None:
    """Run until Ctrl-C or SIGTERM; everything started here stops with it."""
    server = _Server(app_dir, opts)
    try:
        server.start()
    except listen.ListenError as e:
        server.shutdown()
        raise click.ClickException(str(e)) from None
    except OSError as e:
        server.shutdown()
        raise click.ClickException(f"cannot start serving on {opts.host}:{opts.port}: {e.strerror or e}") from None

    def stop(_signum: int, _frame: Any) -> None:
        if server.http is not None:
            threading.Thread(target=server.http.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The banner asks the engine to describe the app (a child forked for it, ~15 ms): it is printed
    # beside the first requests, not before them. The socket listens already; nothing waits for it.
    threading.Thread(target=server.banner, name="anvil-dev-banner", daemon=True).start()
    try:
        server.serve_forever()
    finally:
        server.shutdown()
        click.echo("anvil-dev stopped", err=True)
