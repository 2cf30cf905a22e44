"""The app's one SQLite database: per-thread connections, WAL, explicit transactions."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

_schemas_done: set[tuple[str, str]] = set()
_schema_lock = threading.Lock()


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open the database the way every process here must: WAL, 30 s busy wait, autocommit mode."""
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable against process crashes (what SIGKILL does); only power loss can
    # lose the last transactions, never corrupt the file.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Database:
    """One database file; `connection()` gives each thread its own connection."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._pid = os.getpid()

    def connection(self) -> sqlite3.Connection:
        # A connection must never cross a fork: a child opens its own.
        if os.getpid() != self._pid:
            self._local = threading.local()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
        return conn

    def existing_connection(self) -> sqlite3.Connection | None:
        """This thread's connection if it has opened one, else None (opening one just to check is slow)."""
        if os.getpid() != self._pid:
            return None
        return getattr(self._local, "conn", None)

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction (BEGIN IMMEDIATE), unless one is already open on this thread."""
        conn = self.connection()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # SQLite has already rolled back after a full disk
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def ensure_schema(db: Database, name: str, sql: str) -> None:
    """Run a service's CREATE ... IF NOT EXISTS script once per process and database."""
    key = (str(db.path), name)
    if key in _schemas_done:
        return
    own = db.existing_connection()
    if own is not None and own.in_transaction:
        # This thread holds the write lock (a data tables transaction): a second connection would
        # wait for it until the busy timeout. Create the tables in that transaction instead, and
        # not mark them done, as a rollback takes them away again.
        for statement in _statements(sql):
            own.execute(statement)
        return
    with _schema_lock:
        if key in _schemas_done:
            return
        # A separate connection: executescript would commit a transaction open on this thread's.
        conn = connect(db.path)
        try:
            conn.executescript(sql)
        finally:
            conn.close()
        _schemas_done.add(key)


def _statements(sql: str) -> list[str]:
    """The SQL statements of a script, one each (sqlite3's execute() takes only one)."""
    out: list[str] = []
    current = ""
    for part in sql.split(";"):
        current += part + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n\t;"):
                out.append(current.strip())
            current = ""
    return out


def storage_problem(error: BaseException, path: str | os.PathLike[str]) -> str | None:
    """What a failed write means for the user when the disk under `path` is full or read-only, or None.

    SQLite reports these as OperationalError ("database or disk is full", "attempt to write a
    readonly database"); media and other files as OSError (ENOSPC, EROFS, EDQUOT).
    """
    where = Path(path)
    if isinstance(error, sqlite3.Error):
        text = str(error).lower()  # only here: an app's exception may fail to print
        full = "disk is full" in text
        read_only = "readonly" in text or "read-only" in text
    elif isinstance(error, OSError):
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        read_only = error.errno == errno.EROFS
    else:
        return None
    if full:
        return (f"Cannot write: the disk holding {where} is full. Nothing committed is lost; free some "
                "space and writes work again at once")
    if read_only:
        return (f"Cannot write: {where} is read-only. Nothing committed is lost; make it writable and "
                "writes work again at once")
    return None
