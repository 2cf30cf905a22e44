"""`serve --memory-limit MB` through a real server: a call or task over it fails with Anvil's
out-of-memory message, and nothing else is disturbed."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from anvil_dev.client import ServerError

from helpers import ServerProcess, wait_until, write_module

OOM = "Server code execution process was killed. This is usually caused by running out of memory."

MODULE = """
    import os
    import time

    import anvil.server

    def _hog(mb):
        held = b"x" * (mb << 20)  # every page touched: resident
        time.sleep(0.5)
        return len(held) >> 20

    @anvil.server.callable
    def hog(mb):
        return _hog(mb)

    @anvil.server.callable
    def gulp(mb):
        return len(b"x" * (mb << 20)) >> 20  # one C call, holding the GIL throughout

    @anvil.server.callable
    def pid():
        return os.getpid()

    @anvil.server.callable
    def slow(seconds):
        time.sleep(seconds)
        return "done"

    @anvil.server.background_task
    def hog_task(mb):
        return _hog(mb)

    @anvil.server.callable
    def launch(mb):
        return anvil.server.launch_background_task("hog_task", mb).get_id()

    @anvil.server.callable
    def outcome(task_id):
        task = anvil.server.get_background_task(task_id)
        if task.is_running():
            return None
        try:
            return ["value", task.get_return_value()]
        except Exception as e:
            return ["error", e.error_obj["type"], str(e)]
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "MemoryApp"
    (app / "server_code").mkdir(parents=True)
    (app / "client_code").mkdir()
    (app / "anvil.yaml").write_text("name: MemoryApp\npackage_name: MemoryApp\n")
    write_module(app, "Hogs", MODULE)
    return app


def assert_out_of_memory(call, *args) -> None:
    with pytest.raises(ServerError) as raised:
        call(*args)
    assert raised.value.type == "anvil.server.ExecutionTerminatedError"
    assert f"ExecutionTerminatedError: {OOM} (" in str(raised.value), str(raised.value)


@pytest.mark.parametrize("mode", ["--fresh", "--keep-server-running"])
def test_a_call_over_the_memory_limit_fails_as_on_anvil_and_the_rest_go_on(app, server_factory, mode) -> None:
    srv: ServerProcess = server_factory(app, mode, "--memory-limit", "150")
    c = srv.client()
    assert c.call("hog", 40) == 40  # under the limit
    if mode == "--fresh":
        # A call running beside the one that goes over is not touched (in persistent mode it shares
        # the worker, which is killed as a whole, as Anvil's out-of-memory killer kills a server).
        beside: list[object] = []
        t = threading.Thread(target=lambda: beside.append(srv.client().call("slow", 1.5)))
        t.start()
    assert_out_of_memory(c.call, "hog", 400)
    srv.wait_for_output("over --memory-limit 150 MB: killed")
    if mode == "--fresh":
        t.join(30)
        assert beside == ["done"]
    assert c.call("hog", 40) == 40  # the next calls are fine
    assert isinstance(c.call("pid"), int)


def test_a_call_is_stopped_as_it_grows_even_inside_one_long_c_call(app, server_factory) -> None:
    srv: ServerProcess = server_factory(app, "--memory-limit", "150")
    c = srv.client()
    try:
        assert_out_of_memory(c.call, "gulp", 2048)
    except BaseException:
        print("\n".join(srv.lines[-20:]))  # what the server said, for the failure report
        raise
    line = srv.wait_for_output("over --memory-limit 150 MB: killed")
    used = int(re.findall(r"used (\d+) MB, over --memory-limit", line)[-1])
    assert 150 <= used < 2048, line  # killed on the way, not once the 2 GiB were all there
    assert c.call("gulp", 10) == 10


def test_a_background_task_over_the_memory_limit_fails_with_the_out_of_memory_error(app, server_factory) -> None:
    srv: ServerProcess = server_factory(app, "--memory-limit", "150")
    c = srv.client()
    big, small = c.call("launch", 400), c.call("launch", 40)
    done = wait_until(lambda: c.call("outcome", big), what="the big task to end")
    assert done[:2] == ["error", "anvil.server.ExecutionTerminatedError"] and OOM in done[2], done
    assert wait_until(lambda: c.call("outcome", small), what="the small task to end") == ["value", 40]


def test_without_a_limit_the_same_call_succeeds(app, server_factory) -> None:
    assert server_factory(app).client().call("hog", 400) == 400
