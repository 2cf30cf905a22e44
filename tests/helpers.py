"""What the tests share, as plain functions and classes: free ports, real `anvil-dev` subprocesses and
their output, waiting for a condition, the in-process runtime. Fixtures live in conftest.py."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from anvil_dev.client import Connection, connect

# The repository: put on PYTHONPATH so the subprocesses run this checkout's anvil_dev.
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OutputLines:
    """The lines a subprocess prints, collected by a thread as they come, and waited for."""

    def __init__(self, stream: Iterable[str], on_line: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self.eof = False
        self._cond = threading.Condition()
        self._on_line = on_line
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Iterable[str]) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
            if self._on_line is not None:
                self._on_line(line)
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    @property
    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def wait_for(self, text: str, timeout: float, after: int = 0, who: str = "process") -> str:
        """The first line from `after` on that contains `text`; fails once the output ends or time is up."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[after:]:
                    if text in line:
                        return line
                if self.eof:
                    raise AssertionError(f"{who} ended before printing {text!r}:\n" + "\n".join(self.lines))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {text!r} in {who} output after {timeout}s:\n" + "\n".join(self.lines))
                self._cond.wait(min(remaining, 0.2))


_PORT_TRIES = 5


class ServerProcess:
    """A real `anvil-dev serve` in a subprocess; its combined output is collected line by line."""

    def __init__(self, app_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.app_dir = Path(app_dir)
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
        full_env.update(env or {})
        for attempt in range(_PORT_TRIES):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            command = [sys.executable, "-m", "anvil_dev", "--app", str(self.app_dir), "serve", "--port", str(self.port)]
            self.proc = subprocess.Popen(
                [*command, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                env=full_env,
                errors="backslashreplace",  # server code may print bytes that are not UTF-8
                start_new_session=True,
            )
            assert self.proc.stdout is not None
            self._out = OutputLines(self.proc.stdout)
            try:
                self.wait_for_output("Serving on", timeout=60)
                return
            except AssertionError:
                # The port was free when picked, and taken before serve bound it: by a server of
                # the other pytest process, or a connection's own port. Another port, then.
                if attempt + 1 < _PORT_TRIES and f"port {self.port} is already in use" in self.output:
                    self.proc.wait(10)
                    continue
                raise

    @property
    def lines(self) -> list[str]:
        return self._out.lines

    @property
    def output(self) -> str:
        return self._out.text

    def mark(self) -> int:
        """A position in the output; wait_for_output(after=mark) looks only at what comes later."""
        return self._out.mark()

    def wait_for_output(self, text: str, timeout: float = 10, after: int = 0) -> str:
        return self._out.wait_for(text, timeout, after, who="the server")

    def client(self, **kwargs: object) -> Connection:
        return connect(self.url, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Anything the server left behind in its session (it must leave nothing) goes too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def already_received(sock: socket.socket) -> bytes:
    """What has reached `sock` so far (b"" if nothing), without waiting; its timeout is kept."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""
    finally:
        sock.settimeout(timeout)


def write_module(app: Path, name: str, source: str) -> Path:
    """Write server_code/<name>.py (dedented)."""
    path = app / "server_code" / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def set_schedule(app: Path, entries: list[dict[str, Any]]) -> None:
    """Replace anvil.yaml's scheduled_tasks with `entries`."""
    path = app / "anvil.yaml"
    config = yaml.safe_load(path.read_text())
    config["scheduled_tasks"] = entries
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def every_minute(task_name: str, job_id: str = "TICKJOB") -> dict[str, Any]:
    """A scheduled_tasks entry that runs `task_name` every minute."""
    return {"task_name": task_name, "time_spec": {"n": 1, "every": "minute", "at": {}}, "job_id": job_id}


def wait_until(check: Callable[[], object], timeout: float = 30, what: str = "condition") -> object:
    """Poll `check` until it returns something truthy (and return that), or fail saying what never came."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def load_runtime(*names: str) -> types.SimpleNamespace:
    """Import the server-side `anvil` runtime in this process (for in-process unit tests).

    anvil-uplink's own `anvil` package, if a test loaded it, is set aside first.
    """
    runtime = str(ROOT / "anvil_dev" / "runtime")
    if runtime not in sys.path:
        sys.path.insert(0, runtime)
    loaded = sys.modules.get("anvil")
    if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(runtime):
        for name in [n for n in sys.modules if n == "anvil" or n.startswith("anvil.")]:
            del sys.modules[name]
    mods = {n.replace(".", "_"): importlib.import_module(f"anvil.{n}") for n in names}
    return types.SimpleNamespace(anvil=importlib.import_module("anvil"), **mods)


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `anvil-dev` command line in a subprocess."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT))
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "anvil_dev", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def backend_env(database: str | None) -> dict[str, str]:
    """The environment that points `anvil-dev serve` at a test's database (none: the app's SQLite)."""
    return {"ANVIL_DEV_DATABASE": database} if database else {}


def postgres_bin() -> Path | None:
    """The directory of Debian's PostgreSQL server programs (initdb, pg_ctl), or None if not installed."""
    import shutil

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


class PostgresServer:
    """A real PostgreSQL server of its own: `initdb` into a temporary directory, `pg_ctl` on a free
    loopback port, trust authentication on loopback only, stopped (and removed) by `stop()`.

    PostgreSQL refuses to run as root: as root, the cluster belongs to `nobody` and the programs run
    as that user (through `runuser`); otherwise as whoever runs the tests.
    """

    def __init__(self, bindir: Path) -> None:
        import tempfile

        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="anvil-dev-pg-"))
        self.data = self.root / "data"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            import pwd

            nobody = pwd.getpwnam("nobody")
            os.chmod(self.root, 0o755)
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        for attempt in range(_PORT_TRIES):
            # Picked just before the start, and picked again if it was taken meanwhile (by a
            # server of the other pytest process, say), as ServerProcess does.
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.root}' "
                "-c fsync=on -c max_connections=200"
            )
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "start")
                break
            except RuntimeError as e:
                if attempt + 1 == _PORT_TRIES or "Address already in use" not in str(e):
                    raise
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._dbs = 0

    def _run(self, program: str, *args: str) -> None:
        cmd = [str(self.bindir / program), *args]
        if self._as_root:
            cmd = ["runuser", "-u", "nobody", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            log = self.root / "log"
            raise RuntimeError(
                f"{program} failed ({done.returncode}): {done.stderr or done.stdout}"
                + (log.read_text() if log.exists() else "")
            )

    def new_database(self, icu_locale: str | None = None) -> str:
        """A fresh, empty database on this server (collating strings by an ICU locale when given); its URL."""
        import psycopg

        self._dbs += 1
        name = f"test_{os.getpid()}_{self._dbs}"
        collation = f" LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}' TEMPLATE template0" if icu_locale else ""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{collation}')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def reset(self, url: str) -> None:
        """Empty a database made by new_database() for the next test: its other connections ended,
        its schema dropped and made again (much faster than CREATE DATABASE)."""
        import psycopg

        from anvil_dev.services import db as services_db

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        # This process's note of the tables it made there is out of date now.
        name = services_db.PostgresDatabase(url).name
        services_db._schemas_done.difference_update({k for k in services_db._schemas_done if k[0] == name})

    def stop(self) -> None:
        import shutil

        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
