"""`serve --debug`: an editor attaches with the Debug Adapter Protocol (tests/dap.py speaks it as VS Code
does, a child session per process debugpy reports), sets a breakpoint in a server module, and a call stops
there, in the process that runs it, fresh or persistent; its timeout does not fire while it is stopped."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dap import DapClient

from helpers import ServerProcess, free_port, run_cli, wait_until, write_module

if importlib.util.find_spec("debugpy") is None:
    pytest.skip("debugpy is not installed (pip install '.[debug]')", allow_module_level=True)

DEBUGGEE = """
    import anvil.server


    @anvil.server.callable
    def tripled(n):
        result = n * 3
        return result


    @anvil.server.background_task
    def counted(n):
        total = n + 1
        return total


    @anvil.server.callable
    def launch(n):
        return anvil.server.launch_background_task("counted", n)


    @anvil.server.callable
    def outcome(task):
        return task.is_completed() and task.get_return_value()


    @anvil.server.callable
    def worker_pid():
        import os
        return os.getpid()
"""
LINE = next(n for n, text in enumerate(textwrap.dedent(DEBUGGEE).splitlines(), 1) if "result = n * 3" in text)


def in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def attach(port: int) -> DapClient:
    """Attach as an editor does; again if the adapter of an editor that just left answers (it is closing)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return DapClient("127.0.0.1", port)
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop_and_continue(server: ServerProcess, editor: DapClient, path: str, n: int, timeout: float) -> None:
    """A call stops at the breakpoint; its top frame is the line; it waits past its timeout; it returns."""
    t, out = in_background(lambda: server.client().call("tripled", n))
    session, stopped = editor.wait_stopped()
    assert stopped["body"]["reason"] == "breakpoint"
    thread = stopped["body"]["threadId"]
    top = session.request("stackTrace", {"threadId": thread})["body"]["stackFrames"][0]
    assert (top["source"]["path"], top["line"], top["name"]) == (path, LINE, "tripled")
    value = session.request("evaluate", {"expression": "n", "frameId": top["id"], "context": "repl"})
    assert value["body"]["result"] == str(n)
    since = time.monotonic()
    wait_until(lambda: time.monotonic() - since > timeout + 0.5, what="the call's --timeout to go by")
    assert t.is_alive() and not out  # still stopped, not timed out
    session.events.remove(stopped)
    session.request("continue", {"threadId": thread})
    t.join(60)
    assert out == [n * 3]


@pytest.mark.parametrize("mode", ["fresh", "keep-server-running"])
def test_an_editor_attached_with_dap_stops_a_call_at_its_breakpoint(
    app_dir: Path, server_factory: Callable[..., ServerProcess], mode: str
) -> None:
    write_module(app_dir, "Debuggee", DEBUGGEE)
    if mode != "fresh":
        # A worker that takes a while to start: an editor attaching again at once must still
        # find its calls in a process no editor has debugged.
        write_module(app_dir, "SlowToImport", "import time\ntime.sleep(1.0)\n")
    port = free_port()
    extra = ["--keep-server-running"] if mode != "fresh" else []
    server = server_factory(app_dir, "--debugpy", str(port), "--timeout", "1", *extra)
    assert f"debugpy: attach VS Code (or another DAP editor) to 127.0.0.1:{port}" in server.output
    assert server.client().call("tripled", 2) == 6  # no editor yet: calls run as ever
    path = str((app_dir / "server_code" / "Debuggee.py").resolve())

    editor = attach(port)
    try:
        editor.set_breakpoints(path, [LINE])
        stop_and_continue(server, editor, path, 14, timeout=1)
        debugged = server.client().call("worker_pid")
    finally:
        editor.close()
    assert server.client().call("tripled", 5) == 15  # the editor has gone: calls run on, undebugged

    again = attach(port)  # and it can come back, at once
    try:
        again.set_breakpoints(path, [LINE])
        if mode != "fresh":  # the workers the last editor had are replaced before it can attach
            assert server.client().call("worker_pid") != debugged
        stop_and_continue(server, again, path, 7, timeout=1)
    finally:
        again.close()


def test_a_background_task_stops_at_its_breakpoint(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> None:
    write_module(app_dir, "Debuggee", DEBUGGEE)
    port = free_port()
    server = server_factory(app_dir, "--debugpy", str(port))
    path = str((app_dir / "server_code" / "Debuggee.py").resolve())
    task_line = next(n for n, text in enumerate(textwrap.dedent(DEBUGGEE).splitlines(), 1) if "total = n + 1" in text)
    editor = attach(port)
    try:
        editor.set_breakpoints(path, [task_line])
        conn = server.client()
        task = conn.call("launch", 41)
        session, stopped = editor.wait_stopped()
        thread = stopped["body"]["threadId"]
        top = session.request("stackTrace", {"threadId": thread})["body"]["stackFrames"][0]
        assert (top["source"]["path"], top["line"], top["name"]) == (path, task_line, "counted")
        assert conn.call("outcome", task) is False  # stopped, so not completed
        session.request("continue", {"threadId": thread})
        assert wait_until(lambda: conn.call("outcome", task), what="the task to finish") == 42
    finally:
        editor.close()


def test_debug_refuses_a_busy_port_in_one_line(app_dir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--app", str(app_dir), "serve", "--port", str(free_port()), "--debugpy", str(port))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: port {port} for debugpy is already in use (another `serve --debug`, or an editor's debug "
        "session?) - choose another with --debugpy PORT or ANVIL_DEV_DEBUGPY=PORT"
    ]


RACED_WORKER = """
import json, socket, sys
from debugpy.server import api
from anvil_dev.engine import attach

adapter = socket.create_server(("127.0.0.1", 0))  # an adapter listens: the editor looks attached
state = sys.argv[1]
with open(state, "w") as f:
    json.dump({"attached": True, "host": "127.0.0.1", "port": adapter.getsockname()[1], "token": "t", "pid": 222}, f)
api._settrace = lambda **kw: print("settrace", kw["ppid"], flush=True)
attach._connected_to = 111  # this process was debugged for an anchor (an editor) that has gone
attach.debug_this_call(state)
print("ran, connected to", attach._connected_to, flush=True)
"""


def test_a_process_debugged_by_an_editor_that_has_gone_runs_its_call_undebugged(tmp_path: Path) -> None:
    """Only a call that raced the host's replacement of the workers gets here: debugpy is never set
    up twice in one process (it once stopped a call in our own code); the call runs, with a line."""
    done = subprocess.run(
        [sys.executable, "-c", RACED_WORKER, str(tmp_path / "state.json")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ran, connected to 111\n"
    assert "was debugged by an editor that has gone: this call runs without breakpoints" in done.stderr
