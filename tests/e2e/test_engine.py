"""The execution engine through a real server: fresh vs persistent, timeouts, crashes, hot reload."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from anvil_dev.client import ServerError

from helpers import ServerProcess, write_module

ENGINE_MODULE = """
    import os
    import threading
    import time

    import anvil.server

    counter = 0

    @anvil.server.callable
    def bump():
        global counter
        counter += 1
        return counter

    @anvil.server.callable
    def pid():
        return os.getpid()

    @anvil.server.callable
    def slow_pid(seconds):
        time.sleep(seconds)
        return os.getpid()

    @anvil.server.callable
    def when_all_arrived(folder, count):
        # A barrier across calls: every call is in flight before any returns, however slowly a
        # loaded machine delivers them. Returns the worker's pid and how many calls it saw arrive.
        name = "%d-%d-%d" % (os.getpid(), threading.get_ident(), time.monotonic_ns())
        open(os.path.join(folder, name), "w").close()
        deadline = time.monotonic() + 20
        while len(os.listdir(folder)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return [os.getpid(), len(os.listdir(folder))]

    @anvil.server.callable
    def spin():
        while True:
            pass

    @anvil.server.callable
    def sleep(seconds):
        time.sleep(seconds)
        return "slept"

    @anvil.server.callable
    def exit_now(code):
        os._exit(code)

    @anvil.server.callable
    def segfault():
        import ctypes
        ctypes.string_at(0)

    @anvil.server.callable
    def recurse(n):
        return 0 if n == 0 else 1 + anvil.server.call("recurse", n - 1)

    @anvil.server.callable
    def who():
        c = anvil.server.context
        return {"type": c.type, "client": c.client.type, "ip": c.client.ip,
                "remote": c.remote_caller.type, "stack": [f.type for f in c.call_stack],
                "thread": threading.get_ident()}

    @anvil.server.callable
    def who_nested():
        return anvil.server.call("who")
"""


@pytest.fixture
def plain_app(tmp_path: Path) -> Path:
    app = tmp_path / "EngineApp"
    (app / "server_code").mkdir(parents=True)
    (app / "client_code").mkdir()
    (app / "anvil.yaml").write_text("name: EngineApp\npackage_name: EngineApp\nruntime_options: {version: 2}\n")
    write_module(app, "Engine", ENGINE_MODULE)
    return app


@pytest.fixture(params=["fresh", "persistent"])
def mode_server(request, plain_app, server_factory) -> ServerProcess:
    flag = "--fresh" if request.param == "fresh" else "--keep-server-running"
    srv = server_factory(plain_app, flag, "--timeout", "1")
    srv.mode = request.param  # type: ignore[attr-defined]
    return srv


def test_fresh_calls_do_not_share_globals_persistent_calls_do(plain_app, server_factory) -> None:
    fresh_server = server_factory(plain_app)
    fresh = fresh_server.client()
    assert [fresh.call("bump") for _ in range(3)] == [1, 1, 1]
    assert len({fresh.call("pid") for _ in range(3)}) == 3
    fresh_server.stop()  # one `serve` per app directory at a time (a second one refuses)
    warm = server_factory(plain_app, "--keep-server-running").client()
    assert [warm.call("bump") for _ in range(3)] == [1, 2, 3]
    assert len({warm.call("pid") for _ in range(3)}) == 1


def test_server_persist_in_anvil_yaml_turns_on_persistent_mode(plain_app, server_factory) -> None:
    (plain_app / "anvil.yaml").write_text("name: E\npackage_name: EngineApp\nruntime_options: {server_persist: true}\n")
    c = server_factory(plain_app).client()
    assert [c.call("bump") for _ in range(2)] == [1, 2]


@pytest.mark.parametrize("fn, args", [("spin", []), ("sleep", [30])])
def test_timeout_stops_runaway_calls_and_others_keep_working(mode_server, fn, args) -> None:
    c = mode_server.client()
    results: list[object] = []

    def others() -> None:
        for _ in range(5):
            results.append(mode_server.client().call("sleep", 0.05))

    t = threading.Thread(target=others)
    t.start()
    start = time.monotonic()
    with pytest.raises(ServerError) as e:
        c.call(fn, *args)
    elapsed = time.monotonic() - start
    t.join()
    assert e.value.type == "anvil.server.TimeoutError"
    assert e.value.message == "Server code took too long"
    assert 0.9 <= elapsed < 10, elapsed  # at its 1 s timeout, not the call's end (never, or 30 s)
    assert results == ["slept"] * 5
    assert c.call("bump") >= 1


def test_persistent_timeout_in_c_code_retires_the_worker(plain_app, server_factory) -> None:
    srv = server_factory(plain_app, "--keep-server-running", "--timeout", "1")
    c = srv.client()
    first_pid = c.call("pid")
    with pytest.raises(ServerError, match="took too long"):
        c.call("sleep", 30)
    # time.sleep cannot be interrupted in a thread: the worker is retired and replaced.
    deadline = time.monotonic() + 10
    while c.call("pid") == first_pid:
        assert time.monotonic() < deadline, "worker was not replaced"
        time.sleep(0.05)
    srv.wait_for_output("retiring worker")


def test_persistent_timeout_in_python_code_keeps_the_worker(plain_app, server_factory) -> None:
    c = server_factory(plain_app, "--keep-server-running", "--timeout", "1").client()
    pid = c.call("pid")
    assert c.call("bump") == 1
    with pytest.raises(ServerError, match="took too long"):
        c.call("spin")
    time.sleep(0.5)
    assert c.call("pid") == pid
    assert c.call("bump") == 2


@pytest.mark.parametrize(
    "fn, args, message",
    [
        ("exit_now", [3], r"Server code exited unexpectedly: \w+ \(exit code 3\)"),
        ("segfault", [], r"Server code execution process was killed with signal 11\."),
    ],
)
def test_crashes_give_execution_terminated_and_server_keeps_serving(mode_server, fn, args, message) -> None:
    c = mode_server.client()
    with pytest.raises(ServerError, match=message) as e:
        c.call(fn, *args)
    assert e.value.type == "anvil.server.ExecutionTerminatedError"
    assert c.call("sleep", 0) == "slept"


def test_worker_killed_from_outside_is_replaced(plain_app, server_factory) -> None:
    c = server_factory(plain_app, "--keep-server-running", "--timeout", "10").client()
    pid = c.call("pid")
    box: list[BaseException] = []

    def victim() -> None:
        try:
            c.call("sleep", 5)
        except BaseException as e:  # noqa: BLE001
            box.append(e)

    t = threading.Thread(target=victim)
    t.start()
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    t.join()
    assert isinstance(box[0], ServerError)
    assert box[0].type == "anvil.server.ExecutionTerminatedError"
    assert "This is usually caused by running out of memory" in box[0].message
    assert c.call("pid") != pid


def test_nested_calls_deeper_than_ten_are_refused(mode_server) -> None:
    c = mode_server.client()
    assert c.call("recurse", 9) == 9
    with pytest.raises(ServerError) as e:
        c.call("recurse", 12)
    assert "Too many nested anvil.server.call()s" in e.value.message


def test_context_reports_the_caller(mode_server) -> None:
    c = mode_server.client()
    who = c.call("who")
    assert who["type"] == "server_module" and who["client"] == "browser" and who["ip"] == "127.0.0.1"
    assert who["remote"] == "browser" and who["stack"] == ["browser"]
    nested = c.call("who_nested")
    assert nested["stack"] == ["browser", "server_module"] and nested["remote"] == "server_module"


def test_persistent_calls_run_at_once_and_are_read_while_the_workers_threads_are_busy(
    plain_app, server_factory, tmp_path
) -> None:
    # Each call waits until all eight have arrived in the one worker, so they run at once (in
    # threads), and the worker must read each new call while every thread it has is inside a call
    # (the host wakes it for those). Run one after another, each would see fewer than eight.
    srv = server_factory(plain_app, "--keep-server-running", "--timeout", "25")
    arrivals = tmp_path / "arrivals"
    arrivals.mkdir()
    results = _call_at_once(srv, 8, "when_all_arrived", str(arrivals), 8)
    assert len(results) == 8
    assert len({pid for pid, _ in results}) == 1
    assert [seen for _, seen in results] == [8] * 8


def test_several_workers(plain_app, server_factory, tmp_path) -> None:
    srv = server_factory(plain_app, "--keep-server-running", "--workers", "2")
    results = _call_at_once(srv, 6, "when_all_arrived", str(tmp_path), 6)
    assert len(results) == 6 and len({pid for pid, _ in results}) == 2


@pytest.mark.parametrize("flag", ["--fresh", "--keep-server-running"])
def test_hot_reload_syntax_error_then_fix(plain_app, server_factory, flag) -> None:
    srv = server_factory(plain_app, flag)
    c = srv.client()
    assert c.call("bump") == 1
    mark = srv.mark()
    broken = "\n@anvil.server.callable\ndef broken(:\n    pass\n"
    write_module(plain_app, "Engine", textwrap.dedent(ENGINE_MODULE) + broken)
    line = srv.wait_for_output("SyntaxError in server_code/Engine.py line", after=mark)
    assert "calls will fail until it is fixed" in line
    with pytest.raises(ServerError) as e:
        c.call("bump")
    assert e.value.type == "SyntaxError" and "Engine.py" in e.value.message
    mark = srv.mark()
    added = "\n@anvil.server.callable\ndef added():\n    return 'new'\n"
    write_module(plain_app, "Engine", textwrap.dedent(ENGINE_MODULE) + added)
    line = srv.wait_for_output("reloaded server_code/Engine.py in", after=mark)
    assert c.call("added") == "new"


def test_new_and_deleted_modules_are_picked_up(plain_app, server_factory) -> None:
    srv = server_factory(plain_app)
    c = srv.client()
    mark = srv.mark()
    source = "import anvil.server\n\n@anvil.server.callable\ndef extra():\n    return 7\n"
    extra = write_module(plain_app, "Extra", source)
    srv.wait_for_output("reloaded server_code/Extra.py", after=mark)
    assert c.call("extra") == 7
    mark = srv.mark()
    extra.unlink()
    srv.wait_for_output("reloaded server_code/Extra.py", after=mark)
    with pytest.raises(ServerError) as e:
        c.call("extra")
    assert e.value.type == "anvil.server.NoServerFunctionError"


def test_package_submodules_are_imported_before_the_first_call(plain_app, server_factory) -> None:
    pkg = plain_app / "server_code" / "Pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "Sub.py").write_text(
        "import anvil.server\n\n@anvil.server.callable\ndef in_sub():\n"
        "    from .. import Engine\n    return Engine.__name__\n"
    )
    c = server_factory(plain_app).client()
    assert c.call("in_sub") == "EngineApp.Engine"


def test_editor_temporaries_and_caches_do_not_reload(plain_app, server_factory) -> None:
    srv = server_factory(plain_app)
    mark = srv.mark()
    (plain_app / "server_code" / ".Engine.py.swp").write_text("x")
    (plain_app / "server_code" / "Engine.py~").write_text("x")
    (plain_app / "server_code" / "__pycache__").mkdir(exist_ok=True)
    (plain_app / "server_code" / "__pycache__" / "x.pyc").write_text("x")
    (plain_app / ".anvil-dev" / "junk").write_text("x")
    # A real change afterwards is the only reload line we see.
    write_module(plain_app, "Later", "X = 1\n")
    line = srv.wait_for_output("reloaded", after=mark)
    assert "Later.py" in line and "swp" not in line and "~" not in line
    time.sleep(0.3)
    assert sum("reloaded" in ln for ln in srv.lines[mark:]) == 1


def test_no_reload_flag(plain_app, server_factory) -> None:
    srv = server_factory(plain_app, "--no-reload")
    mark = srv.mark()
    write_module(plain_app, "Later", "X = 1\n")
    time.sleep(0.5)
    assert not any("reloaded" in ln for ln in srv.lines[mark:])


def test_stopping_serve_leaves_nothing_running(plain_app, server_factory) -> None:
    srv = server_factory(plain_app, "--keep-server-running")
    worker = srv.client().call("pid")
    srv.stop()
    assert srv.proc.returncode is not None
    deadline = time.monotonic() + 5
    while _alive(worker):
        assert time.monotonic() < deadline, "worker outlived serve"
        time.sleep(0.05)


def test_host_killed_takes_its_workers_with_it(plain_app, server_factory) -> None:
    srv = server_factory(plain_app, "--keep-server-running")
    worker = srv.client().call("pid")
    srv.proc.kill()
    srv.proc.wait()
    deadline = time.monotonic() + 5
    while _alive(worker):
        assert time.monotonic() < deadline, "worker outlived a killed serve"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_reload_resets_persistent_globals(plain_app, server_factory) -> None:
    srv = server_factory(plain_app, "--keep-server-running")
    c = srv.client()
    assert [c.call("bump"), c.call("bump")] == [1, 2]
    mark = srv.mark()
    (plain_app / "server_code" / "Engine.py").write_text(textwrap.dedent(ENGINE_MODULE) + "\n# edited\n")
    srv.wait_for_output("reloaded server_code/Engine.py", after=mark)
    assert c.call("bump") == 1


def test_poll_mode_reloads_too(plain_app, server_factory) -> None:
    srv = server_factory(plain_app, "--poll")
    mark = srv.mark()
    source = "import anvil.server\n\n@anvil.server.callable\ndef polled():\n    return 'seen'\n"
    write_module(plain_app, "Polled", source)
    srv.wait_for_output("reloaded server_code/Polled.py", after=mark)
    assert srv.client().call("polled") == "seen"


def test_a_new_third_party_import_restarts_the_zygote(plain_app, server_factory) -> None:
    from helpers import wait_until

    srv = server_factory(plain_app)

    def zygote_pids() -> set[int]:
        out = set()
        for tid in os.listdir(f"/proc/{srv.proc.pid}/task"):
            try:
                with open(f"/proc/{srv.proc.pid}/task/{tid}/children") as f:
                    out.update(int(p) for p in f.read().split())
            except FileNotFoundError:  # a thread that has just ended
                pass
        zygotes = set()
        for p in out:
            try:
                if b"engine.zygote" in Path(f"/proc/{p}/cmdline").read_bytes():
                    zygotes.add(p)
            except FileNotFoundError:
                pass
        return zygotes

    before = zygote_pids()
    mark = srv.mark()
    write_module(
        plain_app,
        "Fractions",
        "import fractions\nimport anvil.server\n\n@anvil.server.callable\n"
        "def half():\n    return str(fractions.Fraction(1, 2))\n",
    )
    srv.wait_for_output("reloaded server_code/Fractions.py", after=mark)
    assert srv.client().call("half") == "1/2"
    # The new zygote has preloaded `fractions`; the old one retires once its children are gone.
    wait_until(lambda: zygote_pids() and not (zygote_pids() & before), what="the old zygote to retire")


def test_fresh_children_start_from_the_imported_app_and_import_time_threads_are_safe(plain_app, server_factory):
    write_module(
        plain_app,
        "Stamp",
        """
        import os
        import anvil.server

        IMPORTED_IN = os.getpid()

        @anvil.server.callable
        def stamp():
            return [IMPORTED_IN == os.getpid(), os.getpid()]
    """,
    )
    srv = server_factory(plain_app)
    c = srv.client()
    first, second = c.call("stamp"), c.call("stamp")
    # Each call has a process of its own, which did not import the app itself: the template did.
    assert first[1] != second[1] and first[0] is False and second[0] is False
    assert [c.call("bump") for _ in range(2)] == [1, 1]
    mark = srv.mark()
    write_module(
        plain_app,
        "Threads",
        """
        import threading
        import time
        import anvil.server

        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()

        @anvil.server.callable
        def threads_ok():
            return threading.active_count() >= 2
    """,
    )
    srv.wait_for_output("reloaded server_code/Threads.py", after=mark)
    # Forking from a process with threads is unsafe: each call imports the app itself instead.
    assert c.call("threads_ok") is True
    assert c.call("stamp")[0] is True
    assert [c.call("bump") for _ in range(2)] == [1, 1]


def test_killed_template_and_zygote_are_replaced(plain_app, server_factory) -> None:
    from helpers import wait_until

    srv = server_factory(plain_app)
    c = srv.client()
    assert c.call("bump") == 1

    zygote = next(p for p in _children(srv.proc.pid) if b"engine.zygote" in Path(f"/proc/{p}/cmdline").read_bytes())
    # The template is the zygote's child with children of its own (the spares).
    template = next(p for p in _children(zygote) if _children(p))
    os.kill(template, signal.SIGKILL)
    # Calls keep working: from spares already forked, then from the zygote, then a new template.
    for _ in range(6):
        assert c.call("bump") == 1
    os.kill(zygote, signal.SIGKILL)
    wait_until(lambda: _call_ok(c), what="calls to work after the zygote died")
    assert c.call("bump") == 1


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(p) for p in f.read().split()]
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        pass
    return out


def _call_ok(c) -> bool:
    try:
        return c.call("bump") == 1
    except ServerError:
        return False


def _call_at_once(srv: ServerProcess, callers: int, name: str, *args: Any) -> list[Any]:
    """`callers` clients calling `name` at once, each on its own thread; their results, in no order."""
    results: list[Any] = []
    lock = threading.Lock()

    def call() -> None:
        result = srv.client().call(name, *args)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
