"""Processes of serve killed from outside, through a real server: nothing outlives serve, and a
call never fails because a process that was not running it died."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from helpers import ServerProcess, wait_until, write_module

MODULE = """
    import os
    import time

    import anvil.server

    def _write_forever(path):
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\\n")
            f.flush()
            while True:
                f.write("x\\n")
                f.flush()
                time.sleep(0.02)

    @anvil.server.callable
    def writer(path):
        _write_forever(path)

    @anvil.server.background_task
    def writer_task(path):
        _write_forever(path)

    @anvil.server.callable
    def launch_writer(path):
        anvil.server.launch_background_task("writer_task", path)

    @anvil.server.callable
    def nap(n):
        time.sleep(0.01)
        return n
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "FaultApp"
    (app / "server_code").mkdir(parents=True)
    (app / "client_code").mkdir()
    (app / "anvil.yaml").write_text("name: FaultApp\npackage_name: FaultApp\n")
    write_module(app, "Faults", MODULE)
    return app


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it, from /proc (parents before children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                children.setdefault(int(stat[1]), []).append(int(entry))
    tree = [root]
    for pid in tree:
        tree.extend(children.get(pid, []))
    return tree


def _stat(pid: int) -> list[str] | None:
    """(state, ppid, ...) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def gone(pid: int) -> bool:
    stat = _stat(pid)
    return stat is None or stat[0] in ("Z", "X")  # a zombie runs no code


@pytest.mark.parametrize("mode", ["fresh", "persistent", "task"])
def test_a_running_call_dies_when_every_other_process_of_serve_is_killed(app, server_factory, tmp_path, mode) -> None:
    srv: ServerProcess = server_factory(app, "--keep-server-running" if mode == "persistent" else "--fresh")
    out = tmp_path / "written.txt"
    c = srv.client()
    if mode == "task":
        c.call("launch_writer", str(out))
    else:
        threading.Thread(target=_ignore_failure, args=(c.call, "writer", str(out)), daemon=True).start()
    wait_until(lambda: out.exists() and out.read_text().count("x") >= 3, what="the writer to start")
    writer = int(out.read_text().split()[0])
    assert writer in process_tree(srv.proc.pid)
    # As a crash would: the host, the zygote, the template and the spares, all at once; the call's
    # process leads a group of its own, so nothing of serve is left to kill it.
    for pid in process_tree(srv.proc.pid):
        if pid != writer:
            kill(pid)
    srv.proc.wait(10)
    wait_until(lambda: gone(writer), timeout=10, what=f"the writer (pid {writer}) to die with serve")
    size = out.stat().st_size
    time.sleep(0.3)  # it wrote every 20 ms while it lived
    assert out.stat().st_size == size


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # gone already (a spare that died with its template, say)


def _ignore_failure(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - the server is killed under it
        pass
