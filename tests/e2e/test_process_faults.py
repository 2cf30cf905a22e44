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
    def marked_nap(path, seconds):
        with open(path, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(seconds)
        return "done"

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


def test_no_call_fails_while_the_template_is_killed_again_and_again(app, server_factory) -> None:
    srv: ServerProcess = server_factory(app, "--fresh")
    zygote = next(p for p in process_tree(srv.proc.pid)[1:] if b"engine.zygote" in _cmdline(p))
    stop = threading.Event()
    results: list[object] = []

    def caller(n: int) -> None:
        c = srv.client()
        while not stop.is_set():
            try:
                results.append(c.call("nap", n) == n)
            except Exception as e:  # noqa: BLE001 - every failure is counted, whatever its kind
                results.append(e)

    callers = [threading.Thread(target=caller, args=(n,), daemon=True) for n in range(4)]
    for t in callers:
        t.start()
    killed = 0
    for _ in range(8):
        # The template is the zygote's child with children of its own (the spares it forked).
        template = wait_until(lambda: _template_of(zygote), what="a template with spares")
        kill(int(template))
        killed += 1
        wait_until(lambda old=template: _template_of(zygote) not in (None, old), what="a new template")
    stop.set()
    for t in callers:
        t.join(30)
    failures = [r for r in results if r is not True]
    assert killed == 8 and len(results) > 8
    assert failures == [], f"{len(failures)} of {len(results)} calls failed: {failures[:3]}"


def _template_of(zygote: int) -> int | None:
    ppid = {p: int(s[1]) for p in process_tree(zygote)[1:] if (s := _stat(p)) is not None}
    return next((p for p, parent in ppid.items() if parent == zygote and p in ppid.values()), None)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("mode", ["--fresh", "--keep-server-running"])
def test_a_call_running_when_the_zygote_is_killed_alone_finishes(app, server_factory, tmp_path, mode) -> None:
    srv: ServerProcess = server_factory(app, mode)
    zygote = next(p for p in process_tree(srv.proc.pid)[1:] if b"engine.zygote" in _cmdline(p))
    marker = tmp_path / "running"
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(srv.client().call("marked_nap", str(marker), 1.0)))
    t.start()
    wait_until(lambda: marker.exists() and marker.read_text(), what="the call to start")
    kill(zygote)
    t.join(30)
    assert result == ["done"]  # its process was not the one killed
    c = srv.client()
    assert [c.call("nap", n) for n in range(3)] == [0, 1, 2]
    srv.stop()
    assert gone(int(marker.read_text()))
