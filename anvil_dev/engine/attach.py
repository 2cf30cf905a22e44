"""`serve --debug`: VS Code (or another DAP editor) attached with debugpy to every process that runs server code.

Why not `debugpy.listen` in the zygote, and let debugpy follow its forks: measured, that hangs or
breaks in three ways. (1) A process debugpy traces spun for ever at its next function call once
`PyThreadState_SetAsyncExc(id, NULL)` had run in it (CPython 3.11 leaves the eval breaker set; the
child now clears an async exception only after an interrupt). (2) Each fork waits in debugpy's
fork hook for the editor to attach to it, and a fork from a process with debugpy's threads is the
unsafe kind the zygote exists to avoid. (3) Once the editor disconnects, debugpy's adapter exits:
every later fork fails to reach it (os.fork() raises ConnectionRefusedError in the child), and the
process can never be attached again (`listen` works once per process).

So: an anchor process (`python -m anvil_dev.engine.attach PORT STATE`, run by the host) is the one
that calls `debugpy.listen(127.0.0.1:PORT)`; the editor attaches to it. It writes the adapter's
endpoint, and whether an editor is attached, to a state file in a private directory. A child that
starts a call while an editor is attached connects its own debugger to that adapter, naming the
anchor as its parent, so the adapter reports it to the editor as a subprocess; the editor attaches
to it (VS Code does, while launch.json's `subProcess` is true, its default) and gives it its
breakpoints before the call runs. Nothing is traced while no editor is attached, the zygote never
runs debugpy, and when the editor goes the anchor exits and the host starts a new one, so that it
can attach again; before that, the host replaces the persistent workers, so that a process gets a
debugger at most once (`Engine.replace_workers`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("anvil_dev")

STATE_NAME = "debugpy.json"
READY_WAIT_S = 15.0  # how long a call waits for the editor to give its process breakpoints

_connected_to: int | None = None  # the anchor whose adapter this process's debugger is connected to
_lock = threading.Lock()


# -- the anchor process ---------------------------------------------------------------------------


def anchor_main(port: int, state_path: str) -> None:
    """Listen for an editor; keep the state file true; exit when the editor goes (to be restarted)."""
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # frozen stdlib modules: noise only
    import debugpy

    debugpy.configure(subProcess=False)  # children connect themselves (see the module's docstring)
    try:
        debugpy.listen(("127.0.0.1", port))
    except Exception:  # noqa: BLE001 - the old adapter still holds the port: the host starts us again
        sys.exit(2)
    import pydevd  # type: ignore[import-not-found]

    setup = pydevd.SetupHolder.setup or {}
    state = {
        "pid": os.getpid(),
        "host": setup.get("client"),
        "port": setup.get("port"),
        "token": setup.get("access-token"),
        "attached": False,
    }
    _write_state(state_path, state)
    was_attached = False
    while True:
        attached = debugpy.is_client_connected()
        if attached != state["attached"]:
            state["attached"] = attached
            _write_state(state_path, state)
        if was_attached and not attached:
            return  # the adapter ends with the editor's session: a new anchor listens again
        was_attached = was_attached or attached
        time.sleep(0.05)


def _write_state(path: str, state: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


class Anchor:
    """The host's handle on the anchor: started at once, started again whenever it exits.
    `on_editor_gone` runs each time an editor that had attached leaves, before another can attach."""

    def __init__(self, port: int, on_editor_gone: Callable[[], None] | None = None) -> None:
        self.port = port
        self._on_editor_gone = on_editor_gone
        # A private directory: whoever can write the state file chooses where children connect.
        self._dir = tempfile.mkdtemp(prefix="anvil-dev-debugpy-")
        self.state_path = os.path.join(self._dir, STATE_NAME)
        self._stopping = False
        self._proc: subprocess.Popen[bytes] | None = None
        threading.Thread(target=self._keep, name="anvil-dev-debugpy", daemon=True).start()

    def _keep(self) -> None:
        while not self._stopping:
            with contextlib.suppress(OSError):
                os.unlink(self.state_path)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "anvil_dev.engine.attach", str(self.port), self.state_path],
                stdin=subprocess.DEVNULL,
            )
            code = self._proc.wait()
            if self._stopping:
                break
            if code == 0 and self._on_editor_gone is not None:  # 0: an editor came and went
                # Before anyone can attach again: the next editor's calls then find processes
                # that never had a debugger (the persistent workers replaced), not the old ones.
                try:
                    self._on_editor_gone()
                except Exception:  # the anchor must listen again, whatever failed
                    log.exception("anvil-dev: replacing the debugged workers failed")
            time.sleep(0.2)  # the old adapter frees the port as its session ends

    def wait_listening(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.state_path):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stopping = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


# -- in a child that runs server code -------------------------------------------------------------


def debug_this_call(state_path: str) -> None:
    """Before a call: if an editor is attached, have it debug this process (once per anchor)."""
    global _connected_to
    try:
        with open(state_path) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return
    if not state.get("attached") or not state.get("port"):
        return
    if not _reachable(str(state["host"]), int(state["port"])):
        return  # the editor has just gone, its adapter with it: this call runs undebugged
    with _lock:
        if _connected_to == state["pid"]:
            return
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        import debugpy
        from debugpy.server import api

        # isort: split
        import pydevd  # debugpy's own copy: importing debugpy.server put it on sys.path

        if _connected_to is not None:
            # Debugged for an editor that has gone. The host replaces such workers before another
            # editor can attach, so only a call that raced that is here; debugpy set up a second
            # time in one process once stopped a call in this function, so it is not tried.
            sys.stderr.write(
                f"anvil-dev: process {os.getpid()} was debugged by an editor that has gone: "
                "this call runs without breakpoints (the next ones go to a new worker)\n"
            )
            return
        try:
            api._settrace(
                host=state["host"],
                port=int(state["port"]),
                access_token=state["token"],
                ppid=int(state["pid"]),  # the adapter reports this process to the editor as the anchor's child
                suspend=False,
                patch_multiprocessing=False,
                block_until_connected=True,
                wait_for_ready_to_run=False,
                dont_trace_start_patterns=(os.path.dirname(os.path.abspath(debugpy.__file__)),),
            )
        except Exception as e:  # noqa: BLE001 - a call must run, debugged or not
            _disconnect(pydevd)
            sys.stderr.write(f"anvil-dev: could not connect process {os.getpid()} to the editor ({e})\n")
            return
        _connected_to = state["pid"]
        _wait_for_breakpoints(pydevd)


def _disconnect(pydevd: Any) -> None:
    global _connected_to
    _connected_to = None
    try:
        pydevd.stoptrace()
    except Exception:  # noqa: BLE001 - a debugger half set up: tracing is off either way
        pass
    pydevd.SetupHolder.setup = None


def _reachable(host: str, port: int) -> bool:
    """Whether the adapter still listens (pydevd would retry a refused connection for seconds)."""
    import socket

    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _wait_for_breakpoints(pydevd: Any) -> None:
    """Until the editor has attached to this process and said its configuration is done (its
    breakpoints are set), or READY_WAIT_S: an editor that does not attach to subprocesses must not
    hang the call."""
    py_db = pydevd.get_global_debugger()
    if py_db is None or py_db._on_configuration_done_event.wait(READY_WAIT_S):
        return
    sys.stderr.write(
        f"anvil-dev: the editor did not attach to process {os.getpid()} in {READY_WAIT_S:g} s "
        '(launch.json needs "subProcess": true): this call runs without its breakpoints\n'
    )


if __name__ == "__main__":
    anchor_main(int(sys.argv[1]), sys.argv[2])
