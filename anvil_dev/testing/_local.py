"""In-process mode: the app's server modules imported here, under the runtime, with no server.

Calls run on the test's own thread (so freezegun, monkeypatch and a debugger all reach them), with
the same serialization round trip a real call has; background tasks they launch run on a thread
of this process and are recorded as the server records them.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from anvil_dev import services
from anvil_dev.appdir import AppDir

LAUNCH = "anvil.private.background_tasks.launch"


def import_app(app: AppDir) -> None:
    """Import every server module as a worker does; raise the import's error as the test's failure."""
    from anvil import _engine_hooks

    from anvil_dev.engine import worker

    error = worker.import_app(app)
    if error is not None:
        from anvil_dev.testing._calls import exception_for

        raise exception_for(error, app.path)
    _engine_hooks.outbound = _outbound


def _outbound(msg: dict[str, Any], caller: dict[str, Any]) -> dict[str, Any]:
    from anvil import _engine_hooks

    if msg.get("command") != LAUNCH:
        return _engine_hooks.no_such_function(str(msg.get("command")))
    args = list(msg.get("args") or [])
    name = args[0]
    command = "task:" + name
    from anvil import server

    if server.lookup(command) is None:
        return _engine_hooks.no_such_function(command)
    objects = []
    for entry in msg.get("objects") or []:
        path = entry.get("path") or []
        if len(path) >= 2 and path[0] == "args" and isinstance(path[1], int):
            entry = dict(entry, path=["args", path[1] - 1, *path[2:]])
        objects.append(entry)
    task_id = services.current().tasks.create(name, session_id=caller.get("session_id"))
    call = {"command": command, "args": args[1:], "kwargs": msg.get("kwargs") or {}, "objects": objects}
    task_caller = {"client_type": "background_task", "trusted": True, "session_id": caller.get("session_id"),
                   "call_stack": [{"type": "background_task"}],
                   "user_email_override": caller.get("user_email_override"), "background_task_id": task_id}
    threading.Thread(target=_run_task, args=(task_id, call, task_caller), name=f"task-{task_id}", daemon=True).start()
    return {"response": {"id": task_id, "name": name},
            "objects": [{"path": ["response"], "type": ["ValueType"], "typeName": "anvil.server.Task"}]}


def _run_task(task_id: str, call: dict[str, Any], caller: dict[str, Any]) -> None:
    from anvil import _engine_hooks

    from anvil_dev.services import tasks

    reply = _engine_hooks.execute(call, caller)
    if "error" in reply:
        services.current().tasks.finish(task_id, tasks.FAILED, error=reply["error"])
    else:
        result = json.dumps({"response": reply.get("response"), "objects": reply.get("objects") or []})
        services.current().tasks.finish(task_id, tasks.COMPLETED, result=result)
