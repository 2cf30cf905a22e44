"""Background task records: name, status, times, pid, task_state, and the return value or error.

One row per task in the app database, shared by every process: the host records a launch and how
the task ended, the task's own process writes its task_state (so other calls read it live), and
server code, the CLI and the console read the rows. Values are stored wire-encoded (Anvil's JSON
plus "objects"), so portable types survive.

Statuses are Anvil's termination statuses plus "running". A task whose process died without a
reply, or that was running when its server stopped, reads "missing", never "running" forever.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

from anvil_dev.services.db import Database, ensure_schema

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
KILLED = "killed"
MISSING = "missing"

# As on Anvil: the newest finished tasks are kept, older ones go.
KEEP_FINISHED = 1000
EMPTY_STATE = '{"state":{},"objects":[]}'

SCHEMA = """
CREATE TABLE IF NOT EXISTS anvil_background_tasks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL,
    pid INTEGER,
    host_pid INTEGER,
    session_id TEXT,
    state TEXT NOT NULL DEFAULT '{"state":{},"objects":[]}',
    result TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS anvil_background_tasks_start ON anvil_background_tasks (start_time);
"""

_COLUMNS = "id, name, status, start_time, end_time, pid, host_pid, session_id, state, result, error"


class TaskNotFound(LookupError):
    """No task has this id (or id prefix)."""


class Tasks:
    """The app's background task records (`services.current().tasks`), in its runtime database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _db(self) -> Database:
        ensure_schema(self.db, "tasks", SCHEMA)
        return self.db

    # ---- written by the host and the task's process ---------------------------------------------

    def create(self, name: str, *, session_id: str | None = None, host_pid: int | None = None) -> str:
        """Record a task that is starting; returns its id."""
        task_id = secrets.token_hex(8)
        with self._db().write() as conn:
            conn.execute("INSERT INTO anvil_background_tasks (id, name, status, start_time, host_pid, session_id, "
                         "state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (task_id, name, RUNNING, time.time(), host_pid or os.getpid(), session_id, EMPTY_STATE))
            conn.execute("DELETE FROM anvil_background_tasks WHERE status != ? AND id NOT IN (SELECT id FROM "
                         "anvil_background_tasks WHERE status != ? ORDER BY start_time DESC LIMIT ?)",
                         (RUNNING, RUNNING, KEEP_FINISHED))
        return task_id

    def set_pid(self, task_id: str, pid: int | None) -> str | None:
        """Record the process running a task; returns the task's status (it may have been killed already)."""
        db = self._db()
        with db.write() as conn:
            conn.execute("UPDATE anvil_background_tasks SET pid = ? WHERE id = ?", (pid, task_id))
            row = conn.execute("SELECT status FROM anvil_background_tasks WHERE id = ?", (task_id,)).fetchone()
        return row[0] if row else None

    def save_state(self, task_id: str, state: str) -> None:
        """Store a task's task_state: `state` is the JSON text of wire.encode({"state": ...})."""
        with self._db().write() as conn:
            conn.execute("UPDATE anvil_background_tasks SET state = ? WHERE id = ?", (state, task_id))

    def finish(self, task_id: str, status: str, *, result: str | None = None,
               error: dict[str, Any] | None = None) -> bool:
        """Record how a running task ended; False if it had ended already (a kill came first, say)."""
        with self._db().write() as conn:
            cur = conn.execute(
                "UPDATE anvil_background_tasks SET status = ?, end_time = ?, result = ?, error = ? "
                "WHERE id = ? AND status = ?",
                (status, time.time(), result, json.dumps(error) if error is not None else None, task_id, RUNNING))
        return cur.rowcount > 0

    def mark_orphans_missing(self) -> int:
        """Tasks "running" under a server that is gone (stopped, crashed) become "missing"; returns how many."""
        db = self._db()
        rows = db.connection().execute(
            "SELECT id, host_pid FROM anvil_background_tasks WHERE status = ?", (RUNNING,)).fetchall()
        gone = [task_id for task_id, host_pid in rows if not _alive(host_pid)]
        for task_id in gone:
            self.finish(task_id, MISSING)
        return len(gone)

    # ---- read by server code, the CLI and the console -------------------------------------------

    def get(self, task_id: str) -> dict[str, Any] | None:
        """A task's record (see `_record`), or None if there is no such task."""
        row = self._db().connection().execute(
            f"SELECT {_COLUMNS} FROM anvil_background_tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            return None
        record = _record(row)
        if record["status"] == RUNNING and not _alive(record["host_pid"]):
            self.finish(task_id, MISSING)
            return self.get(task_id)
        return record

    def list_tasks(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest tasks first, each a record as `get` gives it."""
        self.mark_orphans_missing()
        rows = self._db().connection().execute(
            f"SELECT {_COLUMNS} FROM anvil_background_tasks ORDER BY start_time DESC LIMIT ?", (limit,)).fetchall()
        return [_record(r) for r in rows]

    def resolve(self, task_id: str) -> dict[str, Any]:
        """The task with this id or unique id prefix (people type short ids); TaskNotFound otherwise."""
        record = self.get(task_id)
        if record is not None:
            return record
        ids = [] if not task_id.isalnum() else [r[0] for r in self._db().connection().execute(
            "SELECT id FROM anvil_background_tasks WHERE id LIKE ? LIMIT 2", (task_id + "%",)).fetchall()]
        if len(ids) == 1:
            found = self.get(ids[0])
            if found is not None:
                return found
        if len(ids) > 1:
            raise TaskNotFound(f"more than one background task id starts with {task_id!r}: give more of it")
        raise TaskNotFound(f"Background Task not found: {task_id}")

    def kill_task(self, task_id: str) -> dict[str, Any]:
        """Kill a running task (SIGKILL to its process) and mark it "killed"; returns its record.

        The record's "was_running" says whether there was anything to kill. Marking comes first, so
        the host, seeing the process die, does not record it as "missing".
        """
        record = self.resolve(task_id)
        killed = record["status"] == RUNNING and self.finish(record["id"], KILLED)
        if killed and record["pid"] and _is_task_process(record["pid"]):
            try:
                os.kill(record["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        out = self.get(record["id"]) or record
        out["was_running"] = killed
        return out


# ---- helpers --------------------------------------------------------------------------------


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as a dict: times as epoch seconds, "state" as plain JSON for display, "state_wire",
    "result_wire" (wire messages for decoding) and "error" ({"type","message","trace"})."""
    task_id, name, status, start, end, pid, host_pid, session_id, state, result, err = row
    state_wire = _loads(state) or {"state": {}, "objects": []}
    return {
        "id": task_id, "name": name, "status": status, "start_time": start, "end_time": end,
        "duration": (end if end is not None else time.time()) - start, "pid": pid, "host_pid": host_pid,
        "session_id": session_id, "state": state_wire.get("state"), "state_wire": state_wire,
        "result_wire": _loads(result), "error": _loads(err),
    }


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_task_process(pid: int) -> bool:
    """True unless the pid now belongs to something else (tasks are forks of our zygote)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not os.path.isdir("/proc")  # no procfs (macOS): trust the record
    except OSError:
        return True
    return b"anvil_dev.engine.zygote" in cmdline
