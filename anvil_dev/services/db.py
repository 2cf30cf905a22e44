"""The services' databases: SQLite (one file, the default) or PostgreSQL (`serve --database postgresql://...`).

Both give the same small API: `connection()` (each thread its own, never across a fork),
`write()` (a short write transaction), `ensure_schema()`, and a connection whose
`execute(sql, params)` takes SQLite's `?` placeholders. Services write SQL both engines run
(`INSERT ... ON CONFLICT (...) DO UPDATE`, `RETURNING`); the differences that remain are settled
here alone: placeholders, and the types of a CREATE TABLE script (`AUTOINCREMENT`, `REAL`, `BLOB`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

_schemas_done: set[tuple[str, str]] = set()
_schema_lock = threading.Lock()

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
BUSY_TIMEOUT_S = 30.0  # how long a connection waits for another's lock before "database is locked"


class DatabaseError(RuntimeError):
    """The database given cannot be used; the message says which and what to do."""


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What services use of a connection (sqlite3's, or the Postgres one below)."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, sql: str, rows: Any) -> Any: ...

    def close(self) -> None: ...


def is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith(POSTGRES_SCHEMES)


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open the database the way every process here must: WAL, 30 s busy wait, autocommit mode."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    _use_wal(conn)
    # NORMAL is durable against process crashes (what SIGKILL does); only power loss can
    # lose the last transactions, never corrupt the file.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode. WAL is kept in the file, so this is usually only a read. The
    conversion takes an exclusive lock for which SQLite does not run its busy handler: two
    processes opening a new database at once (gunicorn's workers, say) made one fail to start
    with "database is locked". So it is retried, within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class _PerThread:
    """Each thread its own connection; none survives a fork (a child opens its own)."""

    dialect = "sqlite"

    def __init__(self) -> None:
        self._local = threading.local()
        self._pid = os.getpid()

    def _open(self) -> Any:
        raise NotImplementedError

    def _usable(self, conn: Any) -> bool:
        return True

    def connection(self) -> Any:
        if os.getpid() != self._pid:
            self._local = threading.local()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None or not self._usable(conn):
            conn = self._local.conn = self._open()
        return conn

    def existing_connection(self) -> Any | None:
        """This thread's connection if it has opened one, else None (opening one just to check is slow)."""
        if os.getpid() != self._pid:
            return None
        return getattr(self._local, "conn", None)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class Database(_PerThread):
    """One SQLite database file."""

    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = str(self.path)

    def _open(self) -> sqlite3.Connection:
        return connect(self.path)

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super().connection()
        return conn

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


class PostgresConnection:
    """A psycopg connection (autocommit: transactions are explicit) that takes `?` placeholders."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(placeholders(sql), tuple(params))

    def executemany(self, sql: str, rows: Any) -> Any:
        cur = self.raw.cursor()
        cur.executemany(placeholders(sql), [tuple(r) for r in rows])
        return cur

    def close(self) -> None:
        self.raw.close()


class PostgresDatabase(_PerThread):
    """A PostgreSQL database, shared by every host pointed at it."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.name = _without_password(url)

    def _open(self) -> PostgresConnection:
        try:
            import psycopg
        except ImportError:
            raise DatabaseError(
                "--database postgresql://... needs the psycopg driver: pip install 'anvil-dev[postgres]'"
            ) from None
        try:
            raw = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as e:
            raise DatabaseError(
                f"cannot connect to the database {self.name}: {str(e).strip()} "
                "(is PostgreSQL running, and is the URL right?)"
            ) from None
        return PostgresConnection(raw)

    def _usable(self, conn: Any) -> bool:
        return not (conn.raw.closed or conn.raw.broken)

    def connection(self) -> PostgresConnection:
        conn: PostgresConnection = super().connection()
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[PostgresConnection]:
        """A short write transaction, unless one is already open on this thread."""
        conn = self.connection()
        if conn.in_transaction:
            yield conn
            return
        with conn.raw.transaction():
            yield conn


AnyDatabase = Database | PostgresDatabase


def open_database(where: str | os.PathLike[str]) -> AnyDatabase:
    """A database from a postgresql:// URL or a SQLite file path."""
    if is_postgres(str(where)):
        return PostgresDatabase(str(where))
    return Database(where)


def ensure_schema(db: AnyDatabase, name: str, sql: str) -> None:
    """Run a service's CREATE ... IF NOT EXISTS script once per process and database."""
    key = (db.name, name)
    if key in _schemas_done:
        return
    if isinstance(db, PostgresDatabase):
        _ensure_postgres(db, key, sql)
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


def _ensure_postgres(db: PostgresDatabase, key: tuple[str, str], sql: str) -> None:
    with _schema_lock:
        if key in _schemas_done:
            return
        conn = db._open()  # its own connection: this thread may be inside a transaction
        try:
            with conn.raw.transaction():
                # Two hosts starting at once would race on CREATE TABLE IF NOT EXISTS (a unique
                # violation in the catalogue): one at a time.
                conn.raw.execute("SELECT pg_advisory_xact_lock(hashtext('anvil_dev schema'))")
                for statement in _statements(sql):
                    conn.raw.execute(postgres_ddl(statement))
        finally:
            conn.close()
        _schemas_done.add(key)


@functools.lru_cache(maxsize=1024)
def placeholders(sql: str) -> str:
    """SQLite's `?` as psycopg's `%s` (a literal % doubled); `?` inside quotes is left alone."""
    out = []
    quote = ""
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


_DDL = [
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b", re.I), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
]


def postgres_ddl(statement: str) -> str:
    """A CREATE statement written for SQLite, in PostgreSQL's types."""
    for pattern, replacement in _DDL:
        statement = pattern.sub(replacement, statement)
    return statement


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
        return (
            f"Cannot write: the disk holding {where} is full. Nothing committed is lost; free some "
            "space and writes work again at once"
        )
    if read_only:
        return (
            f"Cannot write: {where} is read-only. Nothing committed is lost; make it writable and "
            "writes work again at once"
        )
    return None


def _without_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
