"""Background task records: name, status, times, pid, task_state, and the return value or error.

One row per task in the app database, shared by every process: the host records a launch and how
the task ended, the task's own process writes its task_state (so other calls read it live), and
server code, the CLI and the console read the rows. Values are stored wire-encoded (Anvil's JSON
plus "objects"), so portable types survive.

Statuses are Anvil's termination statuses plus "running". A task whose process died without a
reply, or that was running when its server stopped, reads "missing", never "running" forever.

On a shared database (PostgreSQL, several hosts) a task belongs to the host that launched it (its
`host_id`). Hosts say they are alive in `anvil_hosts` every few seconds; the tasks of a host that
stopped saying so are claimed by one of the others with `SELECT ... FOR UPDATE SKIP LOCKED` and
marked "missing", each exactly once. A kill asked for on any host marks the task "killed"; its
own host, seeing that, ends the process. Scheduled runs are claimed in `anvil_schedule_runs`,
one row per job and due time, so each runs once across hosts (under an advisory lock on Postgres).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import time
from pathlib import Path
from typing import Any

from anvil_dev.services.db import AnyDatabase, PostgresDatabase, ensure_schema

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
CREATE TABLE IF NOT EXISTS anvil_task_hosts (
    task_id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS anvil_hosts (
    id TEXT PRIMARY KEY,
    seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS anvil_schedule_runs (
    job TEXT NOT NULL,
    due TEXT NOT NULL,
    host_id TEXT NOT NULL,
    task_id TEXT,
    PRIMARY KEY (job, due)
);
"""
# A host beats every HEARTBEAT_S; one silent for HOST_TIMEOUT_S is taken for gone.
HEARTBEAT_S = 1.0
HOST_TIMEOUT_S = 5.0

_COLUMNS = "id, name, status, start_time, end_time, pid, host_pid, session_id, state, result, error"


class TaskNotFound(LookupError):
    """No task has this id (or id prefix)."""


class Tasks:
    """The app's background task records (`services.current().tasks`), in its runtime database."""

    def __init__(self, db: AnyDatabase) -> None:
        self.db = db
        # Shared by several hosts (Postgres): liveness by heartbeat, not by pid on this machine.
        self.shared = isinstance(db, PostgresDatabase)
        # This process, as a host: the machine, the pid and a nonce (pids repeat across machines).
        self.host_id = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"

    def _db(self) -> AnyDatabase:
        ensure_schema(self.db, "tasks", SCHEMA)
        return self.db

    # ---- written by the host and the task's process ---------------------------------------------

    def create(self, name: str, *, session_id: str | None = None, host_pid: int | None = None) -> str:
        """Record a task that is starting; returns its id."""
        task_id = secrets.token_hex(8)
        with self._db().write() as conn:
            conn.execute(
                "INSERT INTO anvil_background_tasks (id, name, status, start_time, host_pid, session_id, "
                "state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (task_id, name, RUNNING, time.time(), host_pid or os.getpid(), session_id, EMPTY_STATE),
            )
            conn.execute("INSERT INTO anvil_task_hosts (task_id, host_id) VALUES (?, ?)", (task_id, self.host_id))
            conn.execute(
                "DELETE FROM anvil_background_tasks WHERE status != ? AND id NOT IN (SELECT id FROM "
                "anvil_background_tasks WHERE status != ? ORDER BY start_time DESC LIMIT ?)",
                (RUNNING, RUNNING, KEEP_FINISHED),
            )
            conn.execute("DELETE FROM anvil_task_hosts WHERE task_id NOT IN (SELECT id FROM anvil_background_tasks)")
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

    def finish(
        self, task_id: str, status: str, *, result: str | None = None, error: dict[str, Any] | None = None
    ) -> bool:
        """Record how a running task ended; False if it had ended already (a kill came first, say)."""
        with self._db().write() as conn:
            cur = conn.execute(
                "UPDATE anvil_background_tasks SET status = ?, end_time = ?, result = ?, error = ? "
                "WHERE id = ? AND status = ?",
                (status, time.time(), result, json.dumps(error) if error is not None else None, task_id, RUNNING),
            )
        return cur.rowcount > 0

    def mark_orphans_missing(self) -> int:
        """Tasks "running" under a server that is gone (stopped, crashed) become "missing"; returns how many."""
        if self.shared:
            return self._claim_orphans()
        db = self._db()
        rows = (
            db.connection()
            .execute("SELECT id, host_pid FROM anvil_background_tasks WHERE status = ?", (RUNNING,))
            .fetchall()
        )
        gone = [task_id for task_id, host_pid in rows if not _alive(host_pid)]
        for task_id in gone:
            self.finish(task_id, MISSING)
        return len(gone)

    # ---- read by server code, the CLI and the console -------------------------------------------

    def get(self, task_id: str) -> dict[str, Any] | None:
        """A task's record (see `_record`), or None if there is no such task."""
        row = (
            self._db()
            .connection()
            .execute(f"SELECT {_COLUMNS} FROM anvil_background_tasks WHERE id = ?", (task_id,))
            .fetchone()
        )
        if row is None:
            return None
        record = _record(row)
        if record["status"] == RUNNING and not self.shared and not _alive(record["host_pid"]):
            self.finish(task_id, MISSING)
            return self.get(task_id)
        if (
            record["status"] == RUNNING
            and self.shared
            and not self._host_alive(task_id)
            and self._claim_orphans(task_id)
        ):
            return self.get(task_id)
        return record

    def list_tasks(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest tasks first, each a record as `get` gives it."""
        self.mark_orphans_missing()
        rows = (
            self._db()
            .connection()
            .execute(f"SELECT {_COLUMNS} FROM anvil_background_tasks ORDER BY start_time DESC LIMIT ?", (limit,))
            .fetchall()
        )
        return [_record(r) for r in rows]

    def resolve(self, task_id: str) -> dict[str, Any]:
        """The task with this id or unique id prefix (people type short ids); TaskNotFound otherwise."""
        record = self.get(task_id)
        if record is not None:
            return record
        ids = (
            []
            if not task_id.isalnum()
            else [
                r[0]
                for r in self._db()
                .connection()
                .execute("SELECT id FROM anvil_background_tasks WHERE id LIKE ? LIMIT 2", (task_id + "%",))
                .fetchall()
            ]
        )
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
        # A task of another machine's host: that host sees it marked and ends it (`kills_for`).
        if killed and record["pid"] and self._on_this_machine(record["id"]) and _is_task_process(record["pid"]):
            try:
                os.kill(record["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        out = self.get(record["id"]) or record
        out["was_running"] = killed
        return out

    # ---- several hosts on one database ------------------------------------------------------------

    def beat(self) -> None:
        """Say this host is alive (every HEARTBEAT_S)."""
        with self._db().write() as conn:
            conn.execute(
                "INSERT INTO anvil_hosts (id, seen) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET seen = excluded.seen",
                (self.host_id, time.time()),
            )

    def leave(self) -> None:
        """This host stops: it is gone at once, not after HOST_TIMEOUT_S."""
        with self._db().write() as conn:
            conn.execute("DELETE FROM anvil_hosts WHERE id = ?", (self.host_id,))

    def live_hosts(self) -> list[str]:
        rows = (
            self._db()
            .connection()
            .execute("SELECT id FROM anvil_hosts WHERE seen > ? ORDER BY id", (time.time() - HOST_TIMEOUT_S,))
            .fetchall()
        )
        return [r[0] for r in rows]

    def _host_alive(self, task_id: str) -> bool:
        """A plain read (a poll of a running task must not write): is the task's host still beating?"""
        row = (
            self._db()
            .connection()
            .execute(
                "SELECT 1 FROM anvil_task_hosts h JOIN anvil_hosts a ON a.id = h.host_id "
                "WHERE h.task_id = ? AND a.seen > ?",
                (task_id, time.time() - HOST_TIMEOUT_S),
            )
            .fetchone()
        )
        return row is not None

    def _claim_orphans(self, task_id: str | None = None) -> int:
        """Mark "missing" the running tasks whose host stopped beating; each such row is claimed by one
        host alone (SKIP LOCKED), so each orphan is reported once however many hosts look."""
        only = " AND t.id = ?" if task_id is not None else ""
        with self._db().write() as conn:
            rows = conn.execute(
                "SELECT t.id, h.host_id FROM anvil_background_tasks t JOIN anvil_task_hosts h ON h.task_id = t.id "
                "WHERE t.status = ? AND NOT EXISTS (SELECT 1 FROM anvil_hosts a WHERE a.id = h.host_id AND a.seen > ?)"
                + only
                + " FOR UPDATE OF t SKIP LOCKED",
                (RUNNING, time.time() - HOST_TIMEOUT_S, *([task_id] if task_id else [])),
            ).fetchall()
            for orphan, host_id in rows:
                error = {
                    "type": "anvil.server.ExecutionTerminatedError",
                    "message": f"Server instance {host_id} stopped while this task was running",
                    "trace": [],
                }
                conn.execute(
                    "UPDATE anvil_background_tasks SET status = ?, end_time = ?, error = ? WHERE id = ?",
                    (MISSING, time.time(), json.dumps(error), orphan),
                )
        return len(rows)

    def kills_for(self) -> list[int]:
        """Pids of this host's tasks that were killed elsewhere and still run here; each is given once."""
        with self._db().write() as conn:
            rows = conn.execute(
                "SELECT t.id, t.pid FROM anvil_background_tasks t JOIN anvil_task_hosts h ON h.task_id = t.id "
                "WHERE h.host_id = ? AND t.status = ? AND t.pid IS NOT NULL",
                (self.host_id, KILLED),
            ).fetchall()
            for task_id, _pid in rows:
                conn.execute("UPDATE anvil_background_tasks SET pid = NULL WHERE id = ?", (task_id,))
        return [pid for _task_id, pid in rows if _is_task_process(pid)]

    def claim_schedule(self, job: str, due: str) -> tuple[bool, str | None]:
        """Whether this host runs `job`'s run due at `due` (the first host to ask does), and the task
        id of the job's previous run (to skip this one while that still runs)."""
        with self._db().write() as conn:
            if self.shared:
                # One host at a time looks at a job's runs, so "previous run still running" and the
                # claim are decided together.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ("anvil_dev schedule " + job,))
            prev = conn.execute(
                "SELECT task_id FROM anvil_schedule_runs WHERE job = ? AND due < ? "
                "AND task_id IS NOT NULL ORDER BY due DESC LIMIT 1",
                (job, due),
            ).fetchone()
            won = (
                conn.execute(
                    "INSERT INTO anvil_schedule_runs (job, due, host_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (job, due, self.host_id),
                ).rowcount
                == 1
            )
            conn.execute(
                "DELETE FROM anvil_schedule_runs WHERE job = ? AND due < ? AND due NOT IN (SELECT due FROM "
                "anvil_schedule_runs WHERE job = ? ORDER BY due DESC LIMIT 10)",
                (job, due, job),
            )
        return won, prev[0] if prev else None

    def schedule_launched(self, job: str, due: str, task_id: str | None) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE anvil_schedule_runs SET task_id = ? WHERE job = ? AND due = ?", (task_id, job, due))

    def _on_this_machine(self, task_id: str) -> bool:
        row = (
            self._db()
            .connection()
            .execute("SELECT host_id FROM anvil_task_hosts WHERE task_id = ?", (task_id,))
            .fetchone()
        )
        return row is None or str(row[0]).split("/", 1)[0] == socket.gethostname()


# ---- helpers --------------------------------------------------------------------------------


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as a dict: times as epoch seconds, "state" as plain JSON for display, "state_wire",
    "result_wire" (wire messages for decoding) and "error" ({"type","message","trace"})."""
    task_id, name, status, start, end, pid, host_pid, session_id, state, result, err = row
    state_wire = _loads(state) or {"state": {}, "objects": []}
    return {
        "id": task_id,
        "name": name,
        "status": status,
        "start_time": start,
        "end_time": end,
        "duration": (end if end is not None else time.time()) - start,
        "pid": pid,
        "host_pid": host_pid,
        "session_id": session_id,
        "state": state_wire.get("state"),
        "state_wire": state_wire,
        "result_wire": _loads(result),
        "error": _loads(err),
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
