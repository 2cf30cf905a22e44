"""Background tasks in server code: launching them, Task objects, and task_state inside a task.

A launch is a nested call to the host (`anvil.private.background_tasks.launch`): a worker has
threads and must not fork, so the host asks the zygote for a fresh child to run the task. A Task
reads the task's record from the database, so any process can poll it, and task_state writes go
straight to that record, so other calls see them while the task runs.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import sys
import threading
from collections.abc import Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from anvil import Media, _context
from anvil._errors import exception_from_error
from anvil._registry import REGISTRY, RuntimeRegistry
from anvil_dev import wire

if TYPE_CHECKING:
    from anvil_dev.services.tasks import Tasks

LAUNCH = "anvil.private.background_tasks.launch"
TYPE_NAME = "anvil.server.Task"
# How often a running task's state is checked for changes no __setitem__ saw (in-place edits, or
# `anvil.server.task_state = {...}`).
STATE_CHECK_S = 0.25
STATE_MEDIA_MESSAGE = "Cannot use BlobMedia objects in task state."
RESULT_MEDIA_MESSAGE = (
    "Background tasks cannot return Media objects: store them in a data table and return the row instead."
)
OUTSIDE_MESSAGE = "Cannot access anvil.server.task_state outside a background task"


def _svc() -> Tasks:
    from anvil_dev import services

    return services.current().tasks


def _server() -> Any:
    from anvil import server

    return server


class _NoMediaRegistry(RuntimeRegistry):
    """The runtime's portable types, but Media refused with Anvil's message (task state, results)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.classes = REGISTRY.classes
        self.names = REGISTRY.names
        self.message = message

    def encode_other(self, obj: Any, path: list[Any]) -> dict[str, Any] | None:
        if isinstance(obj, Media):
            raise self.error_class(self.message)
        return super().encode_other(obj, path)


_STATE_REGISTRY = _NoMediaRegistry(STATE_MEDIA_MESSAGE)
_RESULT_REGISTRY = _NoMediaRegistry(RESULT_MEDIA_MESSAGE)


# ---------------------------------------------------------------------------------------------
# Task objects


class Task:
    """A background task: its status, task_state and result, read from its record. Portable."""

    def __init__(self, task_id: str, name: str | None = None) -> None:
        self._id = task_id
        self._name = name

    def __serialize__(self, info: Any) -> dict[str, Any]:
        return {"id": self._id, "name": self._name}

    def __deserialize__(self, data: Any, info: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise REGISTRY.error_class(f"Malformed {TYPE_NAME}: {data!r:.100}")
        self._id = data["id"]
        self._name = data.get("name")

    def _record(self) -> dict[str, Any]:
        record = _svc().get(self._id)
        if record is None:
            raise _server().BackgroundTaskNotFound(f"Background Task not found: {self._id}")
        return record

    def get_id(self) -> str:
        return self._id

    def get_task_name(self) -> str:
        if self._name is None:
            self._name = self._record()["name"]
        return self._name

    def get_start_time(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self._record()["start_time"], tz=_dt.timezone.utc)

    def is_running(self) -> bool:
        return self._record()["status"] == "running"

    def get_termination_status(self) -> str | None:
        """None while running, else "completed", "failed", "killed" or "missing"."""
        status = self._record()["status"]
        return None if status == "running" else status

    def is_completed(self) -> bool:
        """False while running, True once completed; raises how the task ended otherwise."""
        record = self._record()
        status = record["status"]
        if status == "running":
            return False
        if status == "completed":
            return True
        self._raise_ending(record)
        return False  # not reached

    def _raise_ending(self, record: dict[str, Any]) -> None:
        server = _server()
        if record["status"] == "killed":
            raise server.BackgroundTaskKilled("The background task was killed.")
        if record["status"] == "failed" and record["error"]:
            raise exception_from_error(record["error"])
        raise server.InternalError("The background task failed (mia).")

    def get_state(self) -> dict[str, Any]:
        """The task's task_state: live while it runs, as it was left once it ended."""
        msg = self._record()["state_wire"]
        return wire.decode(msg, REGISTRY).get("state") or {}

    def get_return_value(self) -> Any:
        """The task's return value (None until it completes); re-raises the task's error if it failed."""
        record = self._record()
        if record["status"] == "failed" and record["error"]:
            raise exception_from_error(record["error"])
        if record["status"] != "completed" or not record["result_wire"]:
            return None
        return wire.decode(record["result_wire"], REGISTRY).get("response")

    def get_error(self) -> None:
        """Raises the task's error if it failed (as Anvil does); None otherwise."""
        record = self._record()
        if record["status"] == "failed" and record["error"]:
            raise exception_from_error(record["error"])

    def kill(self) -> None:
        """Stop the task now (its process is killed); its termination status becomes "killed"."""
        _svc().kill_task(self._id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"<anvil.server.Task {self._name or '?'} {self._id}>"


Task.__module__ = "anvil.server"
REGISTRY.register(Task, TYPE_NAME)


def launch_background_task(fn_name: str, *args: Any, **kwargs: Any) -> Task:
    """Run the @background_task `fn_name` in its own process; returns its Task at once."""
    from anvil import _engine_hooks

    if not isinstance(fn_name, str):
        raise TypeError("launch_background_task() needs the task's name as its first argument")
    if _engine_hooks.outbound is None:
        raise _server().BackgroundTaskError(
            "Background tasks can only be launched by server code that anvil-dev serve runs"
        )
    task = _engine_hooks.nested_call(LAUNCH, (fn_name, *args), kwargs)
    if not isinstance(task, Task):
        raise _server().InternalError(f"Launching a background task gave {task!r:.100}, not a Task")
    return task


def get_background_task(id: str) -> Task:  # Anvil's parameter name (get_background_task(id=...))
    record = _svc().get(id) if isinstance(id, str) else None
    if record is None:
        raise _server().BackgroundTaskNotFound(f"Background Task not found: {id}")
    return Task(record["id"], record["name"])


def list_background_tasks(all_environments: bool = False) -> list[Task]:
    """The app's background tasks, newest first (running ones and the most recent finished ones)."""
    return [Task(r["id"], r["name"]) for r in _svc().list_tasks(limit=1000)]


# ---------------------------------------------------------------------------------------------
# Inside a task: anvil.server.task_state


class _Running:
    """The task this process runs (a task has a process of its own), and its state."""

    def __init__(self) -> None:
        self.task_id: str | None = None
        self.data: dict[str, Any] = {}
        self.written: str | None = None
        self.lock = threading.Lock()
        self.stop = threading.Event()


_running = _Running()


class _TaskState(MutableMapping[str, Any]):
    """anvil.server.task_state: a dict whose changes are saved to the task's record as they happen."""

    def _data(self) -> dict[str, Any]:
        if _running.task_id is None:
            raise Exception(OUTSIDE_MESSAGE)
        return _running.data

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        data = self._data()
        # Encode first: a value that cannot be stored fails here, where the user wrote it.
        candidate = dict(data)
        candidate[key] = value
        _encode_state(candidate)
        data[key] = value
        _save()

    def __delitem__(self, key: str) -> None:
        del self._data()[key]
        _save()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data()))

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        if _running.task_id is None:
            return "<anvil.server.task_state (not in a background task)>"
        return repr(_running.data)


task_state = _TaskState()


def _encode_state(data: Any) -> str:
    return json.dumps(
        wire.encode({"state": data}, _STATE_REGISTRY, error_prefix="Cannot use this in task state: "),
        separators=(",", ":"),
    )


def _current_state() -> Any:
    # `anvil.server.task_state = {...}` replaces the module attribute: that dict is the state then.
    value = getattr(sys.modules.get("anvil.server"), "task_state", task_state)
    return _running.data if value is task_state else value


def _save() -> None:
    """Write the state to the record if it changed."""
    task_id = _running.task_id
    if task_id is None:
        return
    with _running.lock:
        text = _encode_state(_current_state())
        if text != _running.written:
            _svc().save_state(task_id, text)
            _running.written = text


def _watch() -> None:
    warned = False
    while not _running.stop.wait(STATE_CHECK_S):
        try:
            _save()
        except Exception as e:  # noqa: BLE001 - a bad value is reported once, the task goes on
            if not warned:
                print(f"anvil.server.task_state was not saved: {e}", file=sys.__stderr__)
                warned = True


class _NoOutput(list):
    """A task's print() goes to the serve terminal only: a task may print for hours."""

    def append(self, item: Any) -> None:
        pass


def entry(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What @background_task registers: runs fn, as the task when this process was started for one."""

    @functools.wraps(fn)
    def run_task(*args: Any, **kwargs: Any) -> Any:
        state = _context.current()
        if not state.background_task_id or state.depth != 0 or _running.task_id is not None:
            return fn(*args, **kwargs)  # an ordinary call of a task function
        _running.task_id = state.background_task_id
        state.output = _NoOutput()
        watcher = threading.Thread(target=_watch, name="task-state", daemon=True)
        watcher.start()
        try:
            result = fn(*args, **kwargs)
            wire.encode(
                {"response": result},
                _RESULT_REGISTRY,
                error_prefix="Cannot serialize return value from background task. ",
            )
            return result
        finally:
            _running.stop.set()
            watcher.join()
            try:
                _save()
            except Exception as e:  # noqa: BLE001 - the task's own outcome matters more
                print(f"anvil.server.task_state was not saved at the end of the task: {e}", file=sys.__stderr__)

    return run_task
