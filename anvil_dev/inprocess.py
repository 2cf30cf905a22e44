"""An app's server modules imported in this process, under the runtime, with no server.

Used by the pytest plugin's `anvil_local`, `anvil-dev shell`, `anvil-dev functions` and `anvil-dev
stubs`. Calls run on the caller's own thread (so freezegun, monkeypatch and a debugger reach them);
background tasks launched from them run on a thread of this process and are recorded as the server
records them.
"""

from __future__ import annotations

import inspect
import json
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil_dev import services
from anvil_dev.appdir import AppDir
from anvil_dev.protocol import Caller, Reply

LAUNCH = "anvil.private.background_tasks.launch"
RUNTIME_DIR = str(Path(__file__).resolve().parent / "runtime")


class ImportFailed(Exception):
    """The app's server modules failed to import; `.error` is the error as a call would report it."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        self.error = error
        trace = error.get("trace") or []
        where = f" ({trace[0][0]}, line {trace[0][1]})" if trace else ""
        super().__init__(f"the server modules failed to import - {error.get('type')}: {error.get('message')}{where}")


def use_runtime() -> None:
    """Put anvil-dev's `anvil` package first on sys.path, so that `import anvil` here is the runtime
    server code sees (app_tables, anvil.users, exceptions). An installed anvil-uplink is shadowed."""
    if RUNTIME_DIR not in sys.path:
        sys.path.insert(0, RUNTIME_DIR)
    loaded = sys.modules.get("anvil")
    if loaded is not None and not str(getattr(loaded, "__file__", "") or "").startswith(RUNTIME_DIR):
        raise RuntimeError(
            f"another `anvil` package ({loaded.__file__}) was imported before anvil-dev's "
            "runtime: import it after the anvil_dev fixtures have started"
        )


def import_app(app: AppDir) -> None:
    """Import every server module as a worker does (services must be open); ImportFailed if that fails."""
    use_runtime()
    from anvil import _engine_hooks

    from anvil_dev.engine import child

    error = child.import_app(app)
    if error is not None:
        raise ImportFailed(error)
    _engine_hooks.outbound = _outbound


@dataclass
class FunctionInfo:
    kind: str  # callable, task, http_endpoint, route
    name: str  # as a caller names it: the function name, the task name, the endpoint's path
    file: str  # relative to the app
    line: int  # of the decorator that registered it
    signature: str
    require_user: Any = None


_KINDS = (("task:", "task"), ("http:", "http_endpoint"), ("route:", "route"))


def functions(app: AppDir) -> list[FunctionInfo]:
    """What the imported app registered, with where each is defined; anvil's own names left out."""
    from anvil import server

    out = []
    for name, reg in list(server.registrations.items()):
        if name.startswith(("anvil.", "email:")):
            continue
        kind, shown = "callable", name
        for prefix, what in _KINDS:
            if name.startswith(prefix):
                kind, shown = what, name[len(prefix) :]
        fn = inspect.unwrap(reg.fn)
        signature = server.signature_of(fn)
        endpoint = getattr(reg, "endpoint", None)
        if endpoint is not None:
            methods = ",".join(endpoint.get("methods") or [])
            shown, signature = f"{methods} {endpoint.get('path')}", f" -> {fn.__name__}()"
        try:
            file = app.relpath(inspect.getsourcefile(fn) or "?")
            line = inspect.getsourcelines(fn)[1]
        except (OSError, TypeError):
            file, line = "?", 0
        out.append(FunctionInfo(kind, shown, file, line, signature, reg.require_user))
    return sorted(out, key=lambda f: (f.file, f.line))


def _outbound(msg: dict[str, Any], caller: Caller) -> Reply:
    """The host's part of a nested call, in this process: only launching a background task."""
    return Reply.from_message(_launch(msg, caller))


def _launch(msg: dict[str, Any], caller: Caller) -> dict[str, Any]:
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
    task_id = services.current().tasks.create(name, session_id=caller.session_id)
    call = {"command": command, "args": args[1:], "kwargs": msg.get("kwargs") or {}, "objects": objects}
    task_caller = Caller(
        client_type="background_task",
        trusted=True,
        session_id=caller.session_id,
        call_stack=[{"type": "background_task"}],
        user_email_override=caller.user_email_override,
        background_task_id=task_id,
    )
    threading.Thread(target=_run_task, args=(task_id, call, task_caller), name=f"task-{task_id}", daemon=True).start()
    return {
        "response": {"id": task_id, "name": name},
        "objects": [{"path": ["response"], "type": ["ValueType"], "typeName": "anvil.server.Task"}],
    }


def _run_task(task_id: str, call: dict[str, Any], caller: Caller) -> None:
    from anvil import _engine_hooks

    from anvil_dev.services import tasks

    reply = _engine_hooks.execute(call, caller).message
    if "error" in reply:
        services.current().tasks.finish(task_id, tasks.FAILED, error=reply["error"])
    else:
        result = json.dumps({"response": reply.get("response"), "objects": reply.get("objects") or []})
        services.current().tasks.finish(task_id, tasks.COMPLETED, result=result)
