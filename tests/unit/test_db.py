"""The services' SQLite database in-process: schemas made inside a write transaction, and
processes opening a new database at once."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from anvil_dev.services.db import Database, connect, ensure_schema


def test_a_service_used_first_inside_a_transaction_creates_its_tables_there(tmp_path: Path) -> None:
    db = Database(tmp_path / "data.sqlite3")
    sql = "CREATE TABLE IF NOT EXISTS probe_things (id INTEGER PRIMARY KEY, note TEXT DEFAULT ';');"
    with pytest.raises(RuntimeError):
        with db.write() as conn:  # the thread holds the write lock, as in @anvil.tables.in_transaction
            ensure_schema(db, "probe", sql)  # used to wait 30 s for that lock on a second connection
            conn.execute("INSERT INTO probe_things (note) VALUES ('x')")
            raise RuntimeError("roll back")
    ensure_schema(db, "probe", sql)  # the rollback took the table away: it is made again
    with db.write() as conn:
        conn.execute("INSERT INTO probe_things DEFAULT VALUES")
    assert db.connection().execute("SELECT note FROM probe_things").fetchall() == [(";",)]


def _open_at_once(path: str, barrier: Barrier, results: multiprocessing.Queue[str]) -> None:
    barrier.wait()
    try:
        conn = connect(path)
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        conn.close()
        results.put("ok")
    except Exception as e:  # noqa: BLE001 - what failed is the test's answer
        results.put(repr(e))


def test_processes_opening_a_new_database_at_once_all_open_it(tmp_path: Path) -> None:
    """gunicorn's workers open the same new file at once. Turning it to WAL takes an exclusive lock
    for which SQLite does not wait (its busy timeout does not apply): one worker failed to start
    with "database is locked" (about 1 open in 16 here, six at a time, before the retry)."""
    ctx = multiprocessing.get_context("fork")
    failures = []
    for attempt in range(30):
        path = str(tmp_path / f"new{attempt}.sqlite3")
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(path, barrier, results)) for _ in range(6)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(10)
        failures += [o for o in outcomes if o != "ok"]
    assert failures == []
