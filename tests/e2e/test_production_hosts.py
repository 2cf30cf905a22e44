"""Two `anvil-dev serve --production` hosts (gunicorn) on one real PostgreSQL: shared sessions and signing
key, background tasks run exactly once and visible from either host, a dead host's task reported, a
scheduled task once per schedule across both, and no committed row lost to SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from anvil_dev.client import Connection

from helpers import ServerProcess, every_minute, set_schedule, wait_until, write_module

MODULE = """
    import os
    import time

    import anvil
    import anvil.email
    import anvil.server
    import anvil.users
    from anvil.tables import app_tables

    @anvil.server.callable
    def bump():
        anvil.server.session["n"] = anvil.server.session.get("n", 0) + 1
        return anvil.server.session["n"]

    @anvil.server.background_task
    def record(n, path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, ("%d\\n" % n).encode())
        os.close(fd)
        return n

    @anvil.server.background_task
    def forever():
        anvil.server.task_state["pid"] = os.getpid()
        while True:
            time.sleep(0.05)

    @anvil.server.background_task
    def tick():
        return "tick"

    @anvil.server.callable
    def launch(name, *args):
        return anvil.server.launch_background_task(name, *args).get_id()

    @anvil.server.callable
    def poll(task_id):
        task = anvil.server.get_background_task(task_id)
        return {"status": task.get_termination_status(), "state": task.get_state(), "start": task.get_start_time(),
                "name": task.get_task_name()}

    @anvil.server.callable
    def kill(task_id):
        anvil.server.get_background_task(task_id).kill()

    @anvil.server.callable
    def all_tasks():
        return [[t.get_id(), t.get_task_name(), t.get_termination_status(), t.get_start_time()]
                for t in anvil.server.list_background_tasks()]

    @anvil.server.callable
    def origin():
        return anvil.server.get_app_origin()

    @anvil.server.callable
    def make_media(text):
        return anvil.BlobMedia("text/plain", text.encode(), name="note.txt")

    @anvil.server.callable(require_user=True)
    def whoami():
        me = anvil.users.get_user()
        return [me["email"], len(app_tables.users.search())]

    @anvil.server.callable
    def mail(n):
        anvil.email.send(to="someone@example.org", subject="row %d" % n, text="x")
        return n
"""


@pytest.fixture
def two_apps(app_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The same app in two directories: each host has its own .anvil-dev/, as on two machines."""
    write_module(app_dir, "Hosts", MODULE)
    other = tmp_path / "second" / app_dir.name
    shutil.copytree(app_dir, other)
    return app_dir, other


def production(
    server_factory: Callable[..., ServerProcess], app: Path, url: str, *extra: str, env: dict[str, str] | None = None
) -> ServerProcess:
    return server_factory(app, "--production", "--database", url, *extra, env=env)


def on(server: ServerProcess, like: Connection | None = None) -> Connection:
    """A client of `server`; with `like`, the same browser (its cookies) talking to another host."""
    conn = server.client()
    if like is not None:
        conn.http.cookies = like.http.cookies
    return conn


def test_a_session_made_on_one_host_is_the_same_session_on_the_other(
    two_apps: tuple[Path, Path], postgres_url: str, server_factory: Callable[..., ServerProcess]
) -> None:
    a = production(server_factory, two_apps[0], postgres_url)
    b = production(server_factory, two_apps[1], postgres_url)
    browser = on(a)
    assert [browser.call("bump"), browser.call("bump")] == [1, 2]
    assert on(b, like=browser).call("bump") == 3  # B accepts A's signed cookie and finds its session
    assert on(a, like=browser).call("bump") == 4
    assert on(b).call("bump") == 1  # a new browser is a new session on either host
    # A media made on A downloads from B (its bytes are in the database; its URL is signed with the shared key).
    media = browser.call("make_media", "made on A")
    assert media.url.startswith("/_/media/")
    got = on(b, like=browser).http.request("GET", media.url, timeout=10)
    assert (got.status_code, got.content) == (200, b"made on A")
    # Each host made its own key in its own .anvil-dev/; the database's (the first host's) is used by both.
    assert (two_apps[0] / ".anvil-dev" / "secret.key").read_bytes() != (
        two_apps[1] / ".anvil-dev" / "secret.key"
    ).read_bytes()


def test_a_login_on_one_host_calls_as_that_user_on_the_other(
    two_apps: tuple[Path, Path], postgres_url: str, server_factory: Callable[..., ServerProcess]
) -> None:
    a = production(server_factory, two_apps[0], postgres_url)
    b = production(server_factory, two_apps[1], postgres_url)
    browser = on(a)
    browser.signup("ann@example.org", "a long enough password")
    # The session is the database's and the user row is in the shared users table: B knows her.
    assert on(b, like=browser).call("whoami") == ["ann@example.org", 1]
    with pytest.raises(Exception, match="You must be logged in"):
        on(b).call("whoami")  # another browser is nobody on B
    other = on(b)
    other.login("ann@example.org", "a long enough password")  # the password A stored checks out on B
    assert other.call("whoami") == ["ann@example.org", 1]
    with pytest.raises(Exception, match="Incorrect email address or password"):
        on(a).login("ann@example.org", "not her password")


def test_production_has_no_console_or_reload_unless_asked(
    two_apps: tuple[Path, Path], postgres_url: str, server_factory: Callable[..., ServerProcess]
) -> None:
    a = production(server_factory, two_apps[0], postgres_url)
    assert requests.get(a.url + "/_/console", timeout=10).status_code == 404
    write_module(
        two_apps[0],
        "Late",
        """
        import anvil.server
        @anvil.server.callable
        def late():
            return 1
    """,
    )
    with pytest.raises(Exception, match='No server function matching "late"'):
        a.client().call("late")
    b = production(server_factory, two_apps[1], postgres_url, "--console", "--origin", "https://app.example.org/")
    assert requests.get(b.url + "/_/console", timeout=10).status_code == 200
    assert b.client().call("origin") == "https://app.example.org"
    assert "gunicorn" in a.output


def test_fifty_tasks_from_two_hosts_each_run_exactly_once_and_are_seen_from_both(
    two_apps: tuple[Path, Path], postgres_url: str, server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    a = production(server_factory, two_apps[0], postgres_url)
    b = production(server_factory, two_apps[1], postgres_url)
    out = tmp_path / "runs.txt"
    ids: list[str] = []
    lock = threading.Lock()

    def launch_from(server: ServerProcess, numbers: range) -> None:
        conn = server.client()
        for n in numbers:
            task_id = conn.call("launch", "record", n, str(out))
            with lock:
                ids.append(task_id)

    threads = [
        threading.Thread(target=launch_from, args=(a, range(0, 25))),
        threading.Thread(target=launch_from, args=(b, range(25, 50))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 50
    ca, cb = a.client(), b.client()
    wait_until(
        lambda: all(ca.call("poll", i)["status"] == "completed" for i in ids),
        timeout=120,
        what="all 50 tasks to complete",
    )
    assert sorted(int(line) for line in out.read_text().split()) == list(range(50))  # once each, none twice
    listed_on_b = {row[0]: row[2] for row in cb.call("all_tasks")}
    assert all(listed_on_b.get(i) == "completed" for i in ids)
    # The CLI on B's machine, given the database, lists the tasks launched on A too.
    from helpers import run_cli

    listed = run_cli("--app", str(two_apps[1]), "tasks", "--limit", "100", env={"ANVIL_DEV_DATABASE": postgres_url})
    assert listed.returncode == 0, listed.stderr
    assert all(i[:8] in listed.stdout for i in ids)


def test_a_task_of_a_host_that_dies_reads_missing_on_the_other_and_kills_cross_hosts(
    two_apps: tuple[Path, Path], postgres_url: str, server_factory: Callable[..., ServerProcess]
) -> None:
    a = production(server_factory, two_apps[0], postgres_url)
    b = production(server_factory, two_apps[1], postgres_url)
    ca, cb = a.client(), b.client()
    # Killed on B, running on A: it ends.
    doomed = ca.call("launch", "forever")
    pid = wait_until(lambda: cb.call("poll", doomed)["state"].get("pid"), what="the task's pid")
    cb.call("kill", doomed)
    assert cb.call("poll", doomed)["status"] == "killed"
    wait_until(lambda: not _alive(pid), what="A's task process to end after a kill on B")
    # Running on A when A dies: B reports it.
    orphan = ca.call("launch", "forever")
    pid = wait_until(lambda: cb.call("poll", orphan)["state"].get("pid"), what="the task's pid")
    assert cb.call("poll", orphan)["status"] is None  # running
    os.killpg(a.proc.pid, signal.SIGKILL)
    a.proc.wait()
    wait_until(
        lambda: cb.call("poll", orphan)["status"] == "missing",
        timeout=30,
        what="B to report the dead host's task as missing",
    )
    wait_until(lambda: not _alive(pid), what="the dead host's task process to go")


def test_a_scheduled_task_runs_once_per_schedule_across_both_hosts(
    two_apps: tuple[Path, Path], postgres_url: str, server_factory: Callable[..., ServerProcess]
) -> None:
    for app in two_apps:
        set_schedule(app, [every_minute("tick")])
    fast = {"ANVIL_DEV_SCHEDULE_SPEEDUP": "30"}  # a minute in two seconds
    a = production(server_factory, two_apps[0], postgres_url, env=fast)
    b = production(server_factory, two_apps[1], postgres_url, env=fast)
    cb = b.client()
    ticks = wait_until(
        lambda: (t := [r for r in cb.call("all_tasks") if r[1] == "tick"]) and len(t) >= 5 and t,
        timeout=60,
        what="five scheduled runs",
    )
    with psycopg.connect(postgres_url) as conn:
        epoch = float(conn.execute("SELECT value FROM anvil_shared WHERE name = 'schedule_epoch'").fetchone()[0])
    _assert_one_run_per_minute(ticks, epoch, 30)
    assert "launched task" in a.output + b.output


def test_production_processes_on_sqlite_run_a_scheduled_task_once_per_schedule(
    two_apps: tuple[Path, Path], server_factory: Callable[..., ServerProcess]
) -> None:
    import sqlite3

    app = two_apps[0]
    set_schedule(app, [every_minute("tick")])
    server = server_factory(app, "--production", "--processes", "2", env={"ANVIL_DEV_SCHEDULE_SPEEDUP": "30"})
    server.wait_for_output("Serving on", after=server.mark())  # the second process
    client = server.client()
    ticks = wait_until(
        lambda: (t := [r for r in client.call("all_tasks") if r[1] == "tick"]) and len(t) >= 5 and t,
        timeout=60,
        what="five scheduled runs",
    )
    with sqlite3.connect(app / ".anvil-dev" / "runtime.sqlite3") as conn:
        epoch = float(conn.execute("SELECT value FROM anvil_shared WHERE name = 'schedule_epoch'").fetchone()[0])
    _assert_one_run_per_minute(ticks, epoch, 30)
    assert server.output.count("Serving on") == 2  # two processes, each with a scheduler


def _assert_one_run_per_minute(ticks: list[list[Any]], epoch: float, speedup: float) -> None:
    """Each run in a (sped-up) minute of its own: several schedulers, one run per minute."""
    minutes = [int((epoch + (row[3].timestamp() - epoch) * speedup) // 60) for row in ticks]
    assert len(minutes) == len(set(minutes)), minutes


def test_sigkill_during_writes_loses_no_committed_row(
    two_apps: tuple[Path, Path], postgres_url: str, server_factory: Callable[..., ServerProcess]
) -> None:
    a = production(server_factory, two_apps[0], postgres_url)
    committed: list[int] = []
    stop = threading.Event()

    def write(start: int) -> None:
        conn = a.client()
        n = start
        while not stop.is_set():
            try:
                committed.append(conn.call("mail", n))
            except Exception:  # noqa: BLE001 - the host is killed under us: calls then fail
                return
            n += 1

    writers = [threading.Thread(target=write, args=(k * 100000,)) for k in range(4)]
    for w in writers:
        w.start()
    wait_until(lambda: len(committed) >= 40, timeout=60, what="40 committed writes")
    os.killpg(a.proc.pid, signal.SIGKILL)
    stop.set()
    for w in writers:
        w.join(30)
    with psycopg.connect(postgres_url) as conn:
        stored = {int(r[0].split()[1]) for r in conn.execute("SELECT subject FROM outbox_messages")}
    assert set(committed) <= stored


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_database_that_is_wrong_or_unreachable_is_refused_before_anything_starts(app_dir: Path) -> None:
    from helpers import free_port, run_cli

    done = run_cli("--app", str(app_dir), "serve", "--production", "--database", "mysql://db/app")
    assert done.returncode == 2 and "is not a postgresql:// URL" in done.stderr and "Traceback" not in done.stderr
    url = f"postgresql://app:hunter2@127.0.0.1:{free_port()}/app"
    done = run_cli("--app", str(app_dir), "serve", "--production", "--port", str(free_port()), "--database", url)
    assert done.returncode == 1 and "cannot connect to the database postgresql://app:***@" in done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
