"""The services' SQLite database in-process: schemas made inside a write transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from anvil_dev.services.db import Database, ensure_schema


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
