"""The host side of background tasks: launch requests, one fresh child per task, how each ends.

Server code launches a task with a nested call, `anvil.private.background_tasks.launch`, which
the host answers here (a worker has threads and must not fork). The task's child comes from the
engine (`Engine.spawn_task_child`), and the launch returns once the child has imported the code:
a task keeps the code of its launch across reloads. There is no timeout: a thread waits for the
child's REPLY, answering its nested calls meanwhile, and records how the task ended in the database.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

import click

from anvil_dev import services
from anvil_dev.engine.workers import TaskRun
from anvil_dev.protocol import Caller, Message, error, no_such_function, terminated_error
from anvil_dev.services import tasks

LAUNCH = "anvil.private.background_tasks.launch"
TASK_TYPE = "anvil.server.Task"
UPLINK_STATE_POLL_S = 0.5
READY_TIMEOUT_S = 60.0


class TaskEngine(Protocol):
    """What the launcher needs of the engine."""

    @property
    def stopping(self) -> bool: ...

    def describe(self) -> dict[str, Any]: ...

    def spawn_task_child(self) -> TaskRun: ...


class TaskUplinks(Protocol):
    """What the launcher needs of the uplink hub: tasks an uplink registered run there."""

    def match(self, command: str) -> str | None: ...

    def launch_background(self, task_id: str, msg: Message, caller: Caller) -> Message: ...

    def get_task_state(self, task_id: str) -> Message: ...

    def kill_task(self, task_id: str) -> bool: ...


class TaskLauncher:
    """The Dispatcher's native handler for LAUNCH: records the task, starts it, replies with its Task."""

    def __init__(self, engine: TaskEngine, uplink: TaskUplinks | None = None) -> None:
        self.engine = engine
        # The host's uplink hub, when there is one: tasks an uplink registered run there.
        self.uplink = uplink

    def __call__(self, msg: Message, caller: Caller) -> Message:
        if not caller.trusted:
            return error("anvil.server.BackgroundTaskError", "Can't launch background tasks from the client.")
        args = list(msg.get("args") or [])
        if not args or not isinstance(args[0], str):
            return error(
                "anvil.server.BackgroundTaskError",
                "launch_background_task() needs the name of a @anvil.server.background_task function",
            )
        name = args[0]
        command = "task:" + name
        on_uplink = self.uplink is not None and self.uplink.match(command) == "live"
        if not on_uplink and not self._registered(command):
            return no_such_function(command)
        call = {
            "command": command,
            "args": args[1:],
            "kwargs": msg.get("kwargs") or {},
            "objects": _without_first_arg(msg.get("objects") or []),
        }
        task_id = services.current().tasks.create(name, session_id=caller.session_id)
        task_caller = Caller(
            client_type="background_task",
            ip=caller.ip,
            session_id=caller.session_id,
            trusted=True,
            call_stack=[{"type": "background_task"}],
            user_email_override=caller.user_email_override,
            background_task_id=task_id,
        )
        if on_uplink:
            threading.Thread(
                target=self._run_on_uplink, args=(task_id, name, call, task_caller), name=f"task-{task_id}", daemon=True
            ).start()
        else:
            run = self._start_child(task_id, name)
            if run is not None:
                threading.Thread(
                    target=self._run_in_child,
                    args=(task_id, name, call, task_caller, run),
                    name=f"task-{task_id}",
                    daemon=True,
                ).start()
        return {
            "response": {"id": task_id, "name": name},
            "objects": [{"path": ["response"], "type": ["ValueType"], "typeName": TASK_TYPE}],
        }

    def _registered(self, command: str) -> bool:
        desc = self.engine.describe()
        if desc.get("import_error"):
            return True  # the task's own process will report the import error as the task's failure
        return any(f.get("name") == command for f in desc.get("functions", []))

    # -- a task in a fresh child ----------------------------------------------------------------

    def _start_child(self, task_id: str, name: str) -> TaskRun | None:
        """A child for the task that has imported the code: the code of the launch, whatever is saved next."""
        try:
            run = self.engine.spawn_task_child()
        except RuntimeError:
            _ended(task_id, name, tasks.MISSING, "the server is stopping")
            return None
        pid = run.wait_ready(READY_TIMEOUT_S)
        if pid is None:
            run.kill()
            _ended(task_id, name, tasks.MISSING, "its process did not start")
            return None
        if services.current().tasks.set_pid(task_id, pid) != tasks.RUNNING:
            run.kill()  # killed already
            return None
        return run

    def _run_in_child(self, task_id: str, name: str, call: Message, caller: Caller, run: TaskRun) -> None:
        reply = run.run(call, task_id, caller)
        if reply is not None:
            _record_reply(task_id, name, reply.message())
            return
        code = run.exit_code()
        if self.engine.stopping:
            services.current().tasks.finish(task_id, tasks.MISSING)
            return
        if run.out_of_memory:  # the task fails as a call does (Anvil's out-of-memory message)
            _record_reply(task_id, name, terminated_error(-9))
            return
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        _ended(task_id, name, tasks.MISSING, f"its process ended without finishing ({how})")

    # -- a task an uplink registered ------------------------------------------------------------

    def _run_on_uplink(self, task_id: str, name: str, call: Message, caller: Caller) -> None:
        assert self.uplink is not None
        done = threading.Event()
        threading.Thread(target=self._poll_uplink_task, args=(task_id, done), daemon=True).start()
        try:
            reply = self.uplink.launch_background(task_id, call, caller)
        finally:
            done.set()
        objects = reply.get("objects") or []
        if "taskState" in reply:
            state_objects = [dict(o, path=["state", *o["path"][1:]]) for o in objects if o["path"][:1] == ["taskState"]]
            state = json.dumps({"state": reply["taskState"], "objects": state_objects})
            services.current().tasks.save_state(task_id, state)
        reply = dict(reply, objects=[o for o in objects if o["path"][:1] != ["taskState"]])
        _record_reply(task_id, name, reply)

    def _poll_uplink_task(self, task_id: str, done: threading.Event) -> None:
        """Copy a running uplink task's state to its record, and pass a kill on to the uplink."""
        assert self.uplink is not None
        while not done.wait(UPLINK_STATE_POLL_S):
            record = services.current().tasks.get(task_id)
            if record is None or record["status"] != tasks.RUNNING:
                self.uplink.kill_task(task_id)
                return
            got = self.uplink.get_task_state(task_id)
            if "response" in got:
                objects = [dict(o, path=["state", *o["path"][1:]]) for o in got.get("objects") or []]
                services.current().tasks.save_state(task_id, json.dumps({"state": got["response"], "objects": objects}))


def _without_first_arg(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The launch's objects as the task's own call sees them: its args lose the task name."""
    out = []
    for entry in objects:
        path = entry.get("path") or []
        if len(path) >= 2 and path[0] == "args" and isinstance(path[1], int):
            entry = dict(entry, path=["args", path[1] - 1, *path[2:]])
        out.append(entry)
    return out


def _record_reply(task_id: str, name: str, reply: Message) -> None:
    if "error" in reply:
        err = reply["error"] or {}
        _ended(task_id, name, tasks.FAILED, f"failed: {err.get('type')}: {err.get('message')}", error=err)
    else:
        result = json.dumps({"response": reply.get("response"), "objects": reply.get("objects") or []})
        services.current().tasks.finish(task_id, tasks.COMPLETED, result=result)


def _ended(task_id: str, name: str, status: str, how: str, error: dict[str, Any] | None = None) -> None:
    """Record an ending that is not a success, and say so in the serve terminal."""
    if services.current().tasks.finish(task_id, status, error=error):
        click.secho(f"[task {name} {task_id}] {how}", fg="yellow", err=True)
    else:
        record = services.current().tasks.get(task_id)
        if record is not None and record["status"] == tasks.KILLED:
            click.secho(f"[task {name} {task_id}] killed", fg="yellow", err=True)
