"""Background tasks through a real server: launching, task_state read live, failures, kills, reloads."""

from __future__ import annotations

import datetime
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anvil_dev.client import Connection, Media, ServerError
from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, run_cli, wait_until, write_module

TASKS_MODULE = """
    import os
    import time

    import anvil
    import anvil.server

    def wait_for(path, timeout=30):
        deadline = time.time() + timeout
        while not os.path.exists(path):
            if time.time() > deadline:
                raise RuntimeError("gave up waiting for " + path)
            time.sleep(0.02)

    @anvil.server.background_task
    def progress(go_file):
        anvil.server.task_state["step"] = 1
        print("working on step 1")
        wait_for(go_file)
        anvil.server.task_state["step"] = 2
        c = anvil.server.context
        return {"steps": 2, "client": c.client.type, "task_id": c.background_task_id}

    @anvil.server.background_task
    def fail():
        raise ValueError("the task went wrong")

    @anvil.server.background_task
    def forever():
        anvil.server.task_state["pid"] = os.getpid()
        while True:
            time.sleep(0.05)

    @anvil.server.background_task("measure")
    def measure_media(media):
        try:
            anvil.server.task_state["media"] = media
        except Exception as e:
            anvil.server.task_state["refused"] = str(e)
        return [media.length, media.get_bytes().decode(), media.content_type]

    @anvil.server.background_task
    def returns_media():
        return anvil.BlobMedia("text/plain", b"no")

    @anvil.server.callable
    def launch(name, *args):
        return anvil.server.launch_background_task(name, *args)

    @anvil.server.callable
    def poll(task):
        out = {"id": task.get_id(), "name": task.get_task_name(), "running": task.is_running(),
               "status": task.get_termination_status(), "state": task.get_state(), "start": task.get_start_time()}
        for method in ("is_completed", "get_return_value", "get_error"):
            try:
                out[method] = getattr(task, method)()
            except Exception as e:
                out[method] = "raised %s: %s" % (getattr(e, "error_obj", {}).get("type", type(e).__name__), e)
        return out

    @anvil.server.callable
    def kill(task):
        task.kill()

    @anvil.server.callable
    def find(task_id):
        task = anvil.server.get_background_task(task_id)
        return [task.get_task_name(), task_id in [t.get_id() for t in anvil.server.list_background_tasks()]]

    @anvil.server.callable
    def find_missing():
        try:
            anvil.server.get_background_task("0123456789abcdef")
        except Exception as e:
            return [e.error_obj["type"], str(e)]

    @anvil.server.callable
    def state_outside_a_task():
        try:
            anvil.server.task_state["x"] = 1
        except Exception as e:
            return str(e)
"""


@pytest.fixture(scope="module")
def tasks_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = scaffold(tmp_path_factory.mktemp("tasks") / "TasksApp")
    write_module(app, "Tasks", TASKS_MODULE)
    return app


@pytest.fixture(scope="module")
def tasks_server(tasks_app: Path) -> Iterator[ServerProcess]:
    # One server for the tests that only launch tasks: each test uses tasks of its own.
    s = ServerProcess(tasks_app)
    yield s
    s.stop()


@pytest.fixture
def tasks_client(tasks_server: ServerProcess) -> Connection:
    return tasks_server.client()


def poll_until_status(client: Connection, task: Any, status: str | None) -> dict[str, Any]:
    """A poll made once the task has `status`: `poll` reads the task's record once per method, so
    the poll that first sees the status may have read `running` just before the task ended."""
    wait_until(lambda: client.call("poll", task)["status"] == status, what=f"status {status}")
    return client.call("poll", task)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_task_reports_progress_through_task_state_read_live(
    tasks_client: Connection, tasks_server: ServerProcess, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    task = tasks_client.call("launch", "progress", str(go))
    # The client holds a Task it can pass back to a server function to poll it.
    assert task.type_name == "anvil.server.Task"
    running = wait_until(lambda: (p := tasks_client.call("poll", task))["state"] == {"step": 1} and p, what="step 1")
    assert (running["name"], running["running"], running["status"]) == ("progress", True, None)
    assert running["is_completed"] is False and running["get_return_value"] is None
    started = running["start"]
    assert isinstance(started, datetime.datetime)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()) < 60
    tasks_server.wait_for_output(f"[task progress {running['id']}] working on step 1")

    go.write_text("go")
    done = poll_until_status(tasks_client, task, "completed")
    assert done["running"] is False and done["is_completed"] is True and done["get_error"] is None
    assert done["state"] == {"step": 2}  # kept when the task ends
    assert done["get_return_value"] == {"steps": 2, "client": "background_task", "task_id": done["id"]}
    assert tasks_client.call("find", done["id"]) == ["progress", True]


def test_failed_task_reraises_its_error(tasks_client: Connection) -> None:
    task = tasks_client.call("launch", "fail")
    done = poll_until_status(tasks_client, task, "failed")
    for method in ("is_completed", "get_return_value", "get_error"):
        assert done[method] == "raised ValueError: the task went wrong"


def test_killed_task(tasks_client: Connection, tasks_server: ServerProcess) -> None:
    task = tasks_client.call("launch", "forever")
    pid = wait_until(lambda: tasks_client.call("poll", task)["state"].get("pid"), what="the task's pid")
    tasks_client.call("kill", task)
    done = tasks_client.call("poll", task)
    assert (done["status"], done["running"]) == ("killed", False)
    assert done["is_completed"] == "raised anvil.server.BackgroundTaskKilled: The background task was killed."
    wait_until(lambda: not alive(pid), what="the task's process to go")
    tasks_server.wait_for_output(f"[task forever {done['id']}] killed")


def test_task_whose_process_is_killed_from_outside_reads_missing(tasks_client: Connection) -> None:
    task = tasks_client.call("launch", "forever")
    pid = wait_until(lambda: tasks_client.call("poll", task)["state"].get("pid"), what="the task's pid")
    os.kill(pid, signal.SIGKILL)
    done = poll_until_status(tasks_client, task, "missing")
    assert done["is_completed"] == "raised anvil.server.InternalError: The background task failed (mia)."


def test_cli_lists_tasks_and_kills_one(tasks_client: Connection, tasks_app: Path) -> None:
    task = tasks_client.call("launch", "forever")
    pid = wait_until(lambda: tasks_client.call("poll", task)["state"].get("pid"), what="the task's pid")
    listed = run_cli("--app", str(tasks_app), "tasks")
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith(task.id))
    assert "forever" in line and "running" in line and f'{{"pid":{pid}}}' in line

    killed = run_cli("--app", str(tasks_app), "tasks", "kill", task.id[:8])  # a unique start of the id will do
    assert killed.returncode == 0, killed.stderr
    assert f"killed task {task.id} (forever)" in killed.stdout
    assert tasks_client.call("poll", task)["status"] == "killed"
    wait_until(lambda: not alive(pid), what="the task's process to go")

    again = run_cli("--app", str(tasks_app), "tasks", "kill", task.id)
    assert again.returncode == 1 and "is not running (it is killed)" in again.stderr
    unknown = run_cli("--app", str(tasks_app), "tasks", "kill", "feedfeedfeedfeed")
    assert unknown.returncode == 1 and "Background Task not found: feedfeedfeedfeed" in unknown.stderr


def test_media_argument_and_refusals(tasks_client: Connection) -> None:
    task = tasks_client.call("launch", "measure", Media("text/plain", b"hello", "h.txt"))
    done = poll_until_status(tasks_client, task, "completed")
    assert done["get_return_value"] == [5, "hello", "text/plain"]
    assert done["state"] == {"refused": "Cannot use BlobMedia objects in task state."}

    task = tasks_client.call("launch", "returns_media")
    done = poll_until_status(tasks_client, task, "failed")
    assert "Background tasks cannot return Media objects" in done["get_error"]
    assert (
        tasks_client.call("state_outside_a_task") == "Cannot access anvil.server.task_state outside a background task"
    )


def test_clients_cannot_launch_tasks(tasks_client: Connection) -> None:
    with pytest.raises(ServerError) as e:
        tasks_client.call("anvil.private.background_tasks.launch", "forever")
    assert (e.value.type, e.value.message) == (
        "anvil.server.BackgroundTaskError",
        "Can't launch background tasks from the client.",
    )
    with pytest.raises(ServerError) as e:
        tasks_client.call("task:forever")
    assert e.value.type == "anvil.server.PermissionDenied"
    with pytest.raises(ServerError) as e:
        tasks_client.call("launch", "no_such_task")
    assert e.value.message == 'No server function matching "task:no_such_task" has been registered'
    assert tasks_client.call("find_missing") == [
        "anvil.server.BackgroundTaskNotFound",
        "Background Task not found: 0123456789abcdef",
    ]


def test_task_keeps_its_code_across_a_reload(
    app_dir: Path, server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    source = """
        import os, time
        import anvil.server

        VERSION = 1

        @anvil.server.background_task
        def slow(go_file):
            while not os.path.exists(go_file):
                time.sleep(0.02)
            return VERSION

        @anvil.server.callable
        def launch(go_file):
            return anvil.server.launch_background_task("slow", go_file)

        @anvil.server.callable
        def version():
            return VERSION

        @anvil.server.callable
        def result(task):
            return [task.get_termination_status(), task.get_return_value()]
    """
    write_module(app_dir, "Slow", source)
    server = server_factory(app_dir)
    client = server.client()
    go = tmp_path / "go"
    task = client.call("launch", str(go))
    mark = server.mark()
    write_module(app_dir, "Slow", source.replace("VERSION = 1", "VERSION = 2"))
    server.wait_for_output("reloaded", after=mark)
    wait_until(lambda: client.call("version") == 2, what="the new code")
    assert client.call("result", task) == [None, None]
    go.write_text("go")
    assert wait_until(lambda: (r := client.call("result", task))[0] and r) == ["completed", 1]


def test_task_running_when_its_server_dies_reads_missing(
    app_dir: Path, server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    write_module(app_dir, "Tasks", TASKS_MODULE)
    server = server_factory(app_dir)
    client = server.client()
    task = client.call("launch", "forever")
    pid = wait_until(lambda: client.call("poll", task)["state"].get("pid"), what="the task's pid")
    # The whole server goes at once (as in a crash): nobody is left to record how the task ended.
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    wait_until(lambda: not alive(pid), what="the task's process to go")
    listed = run_cli("--app", str(app_dir), "tasks")
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith(task.id))
    assert "missing" in line and "running" not in line


UPLINK_SCRIPT = """
import sys
import time

import anvil.server

@anvil.server.background_task
def uplink_count(n):
    for i in range(n):
        anvil.server.task_state["i"] = i
        time.sleep(0.05)
    return "counted on the uplink"

anvil.server.connect(sys.argv[1], url=sys.argv[2], quiet=True)
anvil.server.wait_forever()
"""


def test_task_registered_by_an_uplink(
    tasks_client: Connection, tasks_server: ServerProcess, tasks_app: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from anvil_dev.appdir import AppDir

    script = tmp_path / "uplink_tasks.py"
    script.write_text(UPLINK_SCRIPT)
    mark = tasks_server.mark()
    # The real anvil-uplink client (its own `anvil` package, not the runtime's), from a neutral directory.
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            AppDir(tasks_app).uplink_key(),
            tasks_server.url.replace("http", "ws") + "/_/uplink",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        tasks_server.wait_for_output("uplink connected", after=mark, timeout=30)
        task = wait_until(lambda: _try_launch(tasks_client, "uplink_count", 5), what="the uplink's registration")
        done = poll_until_status(tasks_client, task, "completed")
        assert done["get_return_value"] == "counted on the uplink"
        assert done["state"] == {"i": 4}
    finally:
        proc.kill()
        proc.wait()


def _try_launch(client: Connection, name: str, *args: Any) -> Any:
    try:
        return client.call("launch", name, *args)
    except ServerError as e:
        if e.type == "anvil.server.NoServerFunctionError":
            return None
        raise
