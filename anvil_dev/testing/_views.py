"""What the `outbox`, `background_tasks` and `secrets` fixtures give a test: views of its database's
mail, tasks and secrets."""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anvil_dev.testing._env import TestData


class Outbox:
    """The mail server code sent (`anvil.email.send`, users' emails), oldest first."""

    def __init__(self, data: TestData) -> None:
        self._data = data

    @property
    def messages(self) -> list[dict[str, Any]]:
        out = self._data.ctx.outbox
        return [dict(m, **_bodies(out.get_message(m["id"]))) for m in reversed(out.list_messages())]

    def __len__(self) -> int:
        return len(self._data.ctx.outbox.list_messages())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.messages)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.messages[index]

    @property
    def last(self) -> dict[str, Any] | None:
        found = self.messages
        return found[-1] if found else None

    def to(self, address: str) -> list[dict[str, Any]]:
        """The messages sent to `address` (to, cc or bcc)."""
        return [
            m for m in self.messages if any(address.lower() in str(a).lower() for a in (*m["to"], *m["cc"], *m["bcc"]))
        ]

    def clear(self) -> None:
        self._data.ctx.outbox.clear_messages()


def _bodies(full: dict[str, Any] | None) -> dict[str, Any]:
    full = full or {}
    return {k: full.get(k) for k in ("text", "html") if k in full}


class BackgroundTasks:
    """Background tasks launched during the test: wait for them to finish, read how they ended."""

    def __init__(self, data: TestData) -> None:
        self._data = data

    def _id(self, task: Any) -> str:
        if isinstance(task, str):
            return task
        get_id = getattr(task, "get_id", None)
        if callable(get_id):
            return str(get_id())
        data = getattr(task, "data", None)
        if isinstance(data, dict) and "id" in data:
            return str(data["id"])
        raise TypeError(f"not a background task or task id: {task!r}")

    def record(self, task: Any) -> dict[str, Any]:
        record = self._data.ctx.tasks.get(self._id(task))
        if record is None:
            raise LookupError(f"no background task {self._id(task)} in the test's database")
        return record

    def wait(self, task: Any, timeout: float = 60.0) -> Any:
        """Wait for the task to end; return its return value, or raise the exception it ended with."""
        from anvil_dev.testing._calls import exception_for

        record = self._await(self._id(task), timeout)
        if record["status"] == "completed":
            return self._decode(record["result_wire"])
        err = record.get("error") or {
            "type": "anvil.server.BackgroundTaskError",
            "message": f"the task ended {record['status']}",
        }
        raise exception_for(err, self._data.app_dir.path)

    def wait_all(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until no task of the test is running; returns every task's record, oldest first."""
        deadline = time.monotonic() + timeout
        while True:
            records = self._data.ctx.tasks.list_tasks()
            if not any(r["status"] == "running" for r in records):
                return list(reversed(records))
            if time.monotonic() > deadline:
                running = [r["name"] for r in records if r["status"] == "running"]
                raise TimeoutError(f"background tasks still running after {timeout:g} s: {', '.join(running)}")
            time.sleep(0.01)

    def state(self, task: Any) -> Any:
        return self._decode(self.record(task)["state_wire"], "state")

    def _await(self, task_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            record = self._data.ctx.tasks.get(task_id)
            if record is None:
                raise LookupError(f"no background task {task_id} in the test's database")
            if record["status"] != "running":
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"background task {record['name']} ({task_id}) still running after {timeout:g} s")
            time.sleep(0.01)

    @staticmethod
    def _decode(message: Any, key: str = "response") -> Any:
        import copy

        from anvil._registry import REGISTRY

        from anvil_dev import wire

        if not message:
            return None
        message = copy.deepcopy(message)
        wire.decode(message, REGISTRY, trusted=True)
        return message.get(key)


class Secrets(MutableMapping[str, str]):
    """The app's secrets for this test: `secrets["api_key"] = "test-key"`, read by anvil.secrets."""

    def __init__(self, data: TestData) -> None:
        self._svc = data.ctx.secrets

    def __getitem__(self, name: str) -> str:
        value = self._svc.lookup_secret(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self._svc.set_secret(name, value)

    def __delitem__(self, name: str) -> None:
        if not self._svc.delete_secret(name):
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._svc.list_secret_names())

    def __len__(self) -> int:
        return len(self._svc.list_secret_names())
