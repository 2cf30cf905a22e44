"""The zygote: imports the runtime and the app's third-party modules once, then forks children on request.

Run by the host as `python -m anvil_dev.engine.zygote CTRL_FD SETTINGS_JSON`. It stays single-threaded: a
forked child inherits locks held by other threads, so there must be none. Control messages arrive on a
SOCK_SEQPACKET socket, each `spawn` carrying the child's end of a fresh socketpair as SCM_RIGHTS (a
persistent worker's also the end of its wakes and its reading byte, `ChildServer._lead`).

The messages are short lines of ASCII words, one per packet: `spawn TOKEN MODE` and `exit` from the
host; `ready JSON`, `spawned TOKEN PID` and `exited PID CODE` back. Not JSON for the ones sent at
every call: each fork makes every page of a template copy-on-write again, so whatever the template
touches between two forks is copied again for each, and json's encoder and decoder and
socket.recv_fds touched ~50 of the ~145 pages it wrote a fork (143 -> 90 faults a fork).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module under signal.py: no stubs
import _thread
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from anvil_dev import _platform
from anvil_dev.appdir import AppDir
from anvil_dev.engine.frames import passed_fds
from anvil_dev.protocol import ChildMode

RUNTIME_DIR = str(Path(__file__).resolve().parent.parent / "runtime")
RUNTIME_MODULES = [
    "anvil",
    "anvil.server",
    "anvil._engine_hooks",
    "anvil._sessions",
    "anvil.tables",
    "anvil.tables.query",
    "anvil.users",
    "anvil.media",
    "anvil.email",
    "anvil.secrets",
    "anvil.http",
    "anvil.tz",
    "anvil_dev.engine.child",
    "anvil_dev.services.sessions",
]

# What a child gets when its parent (the zygote or a template) dies: a signal it handles
# (`_on_parent_death`), not SIGKILL, so that a zygote or template killed alone takes no running
# call (and no spare) with it, while nothing outlives serve's host.
PARENT_DIED = signal.SIGRTMIN + 3
_zygote_pid = 0
_host_pid = 0
_watching_host = False


def _preload(names: list[str]) -> tuple[list[str], list[str]]:
    ok, failed = [], []
    for name in names:
        try:
            importlib.import_module(name)
            ok.append(name)
        except BaseException:  # noqa: BLE001 - a failure here surfaces in the call that needs it
            failed.append(name)
    return ok, failed


# Room for the descriptors a `spawn` carries, at most three: the child's socket and, for a persistent
# worker, its wakes and its reading byte. The kernel closes any more sent with it.
_FDS_SPACE = socket.CMSG_LEN(12)


def main() -> None:
    global _zygote_pid, _host_pid
    ctrl_fd, settings_json = int(sys.argv[1]), sys.argv[2]
    _zygote_pid, _host_pid = os.getpid(), os.getppid()
    # Orphans of our descendants come to us, not to init: a template's children outlive it (they
    # may be running calls) and stay tied to us; see `_on_parent_death`.
    _platform.adopt_orphans()
    # `python -m` put the working directory first on sys.path: server code must not import
    # whatever files happen to be where serve was started.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    sys.path.insert(0, RUNTIME_DIR)
    from anvil_dev import services
    from anvil_dev.config import Settings
    from anvil_dev.engine import loader

    # Work every child would repeat is done here once: reading anvil.yaml (the host starts a
    # new zygote when it changes), the app's keys, and the imports.
    settings = Settings.from_json(settings_json)
    from anvil_dev.engine import breakpoints

    # Before any server code is imported, so that `from pdb import set_trace` gets the relayed one too.
    breakpoints.install(settings.pdb_socket)
    app = services.open(settings.app_path, settings).app_dir
    _ = app.config, app.package_name
    ok, failed = _preload(RUNTIME_MODULES)
    extra_ok, extra_failed = _preload(loader.third_party_imports(app))
    try:
        services.current().warm()  # the table schema, synced and cached; no connection stays open across the fork
    except Exception as e:  # noqa: BLE001 - a bad schema is reported by the calls that use it
        failed.append(f"tables: {e}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when we stop
    ctrl = socket.socket(fileno=ctrl_fd)
    _fork_loop(
        ctrl,
        app,
        {"op": "ready", "pid": os.getpid(), "preloaded": extra_ok, "failed": extra_failed + failed},
        preloaded=None,
    )


def _become_template(ctrl: socket.socket, app: AppDir) -> None:
    """A child that imports the app's modules once and then forks fresh children from itself, so
    that they start with the app imported. One template serves one generation of the code."""
    import threading

    from anvil_dev import services
    from anvil_dev.engine import child

    child.track_unseeded_randoms()
    error = child.import_app(app)
    # Children must behave as if each imported the app itself. Two kinds of import cannot be
    # shared that way, and their children import the app themselves instead: one that started
    # threads (forking is only safe from a single thread), and one that read the database (a
    # module-level query would otherwise go stale until the next reload).
    unforkable = None
    preloaded: dict[str, Any] = {"error": error}
    if threading.active_count() > 1:
        unforkable = "threads"
    elif services.current().db.existing_connection() is not None:
        unforkable = "database"
    else:
        try:
            child.warm_call_path(app, error)
        except Exception:  # noqa: BLE001 - a warm-up that fails only leaves the children cold
            pass
        preloaded["fresh_server"] = child.prepare_fresh_server(app, error)
    _fork_loop(
        ctrl,
        app,
        {
            "op": "ready",
            "pid": os.getpid(),
            "forkable": unforkable is None,
            "unforkable": unforkable,
            "import_error": error,
        },
        preloaded=preloaded,
    )


def _fork_loop(ctrl: socket.socket, app: AppDir, ready: dict[str, Any], preloaded: dict[str, Any] | None) -> None:
    """Fork a child for each `spawn` on the control socket, report how each exits; never returns.

    `preloaded` is None in the zygote; in a template it holds the outcome of importing the app,
    which its children inherit instead of importing again.
    """
    # Found once here rather than by each child after its fork, where the import statement and the
    # enum's lookup wrote ~30 shared pages (copy-on-write faults) in every child.
    from anvil_dev.engine.child import child_main

    modes = {mode.value.encode(): mode for mode in ChildMode}
    # Objects that exist now are shared with every child; keep the collector from touching
    # (and so copying) their pages in each child.
    gc.collect()
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    ctrl.send(b"ready " + json.dumps(ready).encode())
    children: set[int] = set()
    exiting = False
    me = os.getpid()
    while True:
        if exiting and not children:
            os._exit(0)
        try:
            readable, _, _ = select.select([ctrl.fileno(), wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in readable:
            os.read(wake_r, 4096)
            _reap(ctrl, children)
        if ctrl.fileno() in readable:
            try:
                data, fds = _recv(ctrl)
            except OSError:
                data, fds = b"", []
            if not data:  # the host is gone: take every child (and what it forked) with us
                for pid in children:
                    _kill_group(pid)
                os._exit(0)
            op, *args = data.split()
            if op == b"spawn":
                token, mode_name = args
                pid = os.fork()
                if pid == 0:
                    # A group of its own: whatever server code forks goes with it (killpg).
                    os.setpgid(0, 0)
                    _die_with_parent(me)
                    ctrl.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    # `_signal`, not `signal`: its enum conversions took ~40 copy-on-write faults here.
                    _signal.set_wakeup_fd(-1)
                    _signal.signal(signal.SIGCHLD, _signal.SIG_DFL)
                    mode = modes[mode_name]
                    if mode is ChildMode.TEMPLATE:
                        _become_template(socket.socket(fileno=fds[0]), app)
                    child_main(fds[0], app, mode, preloaded, *fds[1:3])
                try:
                    os.setpgid(pid, pid)  # as the child does: whichever runs first, no window without it
                except OSError:
                    pass
                for fd in fds:
                    os.close(fd)
                children.add(pid)
                try:
                    ctrl.send(b"spawned %s %d" % (token, pid))
                except OSError:  # the host went away as we forked
                    for child in children:
                        _kill_group(child)
                    os._exit(0)
            elif op == b"exit":
                exiting = True
                for fd in fds:
                    os.close(fd)


def _recv(ctrl: socket.socket) -> tuple[bytes, list[int]]:
    """One control message and the descriptors it carries: socket.recv_fds without its import and
    array at every call."""
    data, ancillary, _flags, _addr = ctrl.recvmsg(4096, _FDS_SPACE)
    return data, passed_fds(ancillary)


def _die_with_parent(parent: int) -> None:
    """In a child just forked: end when serve does, even when all of it is SIGKILLed and nothing
    is left to kill us (a child leads a process group of its own, so killing serve's group misses
    it). Our forks happen on the main thread, the thread a parent-death signal is tied to."""
    _signal.signal(PARENT_DIED, _on_parent_death)
    if not _platform.die_with_parent(PARENT_DIED, parent):
        _on_parent_death()  # it died before the request took effect


def _on_parent_death(*_: object) -> None:
    """Our parent died. While serve's host lives we live on: adopted by the zygote (the subreaper
    of a dead template's children) we are tied to it instead; orphaned to init (the zygote itself
    was killed) we watch the host. Once the host is gone too, we end, with what we forked."""
    while _host_alive():
        if os.getppid() != _zygote_pid:
            _watch_host()
            return
        if _platform.die_with_parent(PARENT_DIED, _zygote_pid):
            return
    _die()


def _host_alive() -> bool:
    try:
        with open(f"/proc/{_host_pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, whether or not its parent has reaped it yet


def _watch_host() -> None:
    """An orphan with no parent-death link left: a bare thread polls the host (only in this rare state)."""
    global _watching_host
    if _watching_host:
        return
    _watching_host = True

    def watch() -> None:
        while _host_alive():
            time.sleep(0.1)
        _die()

    _thread.start_new_thread(watch, ())


def _die() -> None:
    try:
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)  # with whatever server code forked
    finally:
        os.kill(os.getpid(), signal.SIGKILL)
        os._exit(1)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(ctrl: socket.socket, children: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        # Processes server code forked die with the call: they would outlive serve, and hold the
        # call's socket open so that the host never saw the crash.
        _kill_group(pid)
        try:
            ctrl.send(b"exited %d %d" % (pid, os.waitstatus_to_exitcode(status)))
        except OSError:
            pass


if __name__ == "__main__":
    main()
