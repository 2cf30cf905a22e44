"""Data tables over the app's database (SQLite, or PostgreSQL with `--database postgresql://...`):
the schema and connection, transactions, indexes and reads.

Plain Python, no `anvil` imports: the runtime's `anvil.tables` is a face over the context's
`services.current().tables`, and the host and the CLI use the same object's `describe`,
`export_csv` and `client_access`. Storage design: docs/architecture.md ("Data tables"); schema:
`schema.py`; values: `values.py`; queries: `query.py`; what differs between the backends:
`dialect.py`; writes: `writes.py`; MACs, cursors, CSV: `access.py`.

Concurrency, as Anvil's SERIALIZABLE transactions behave. On SQLite a transaction is a deferred
transaction in WAL mode, so it reads one snapshot and never blocks or is blocked by readers. Its
first write upgrades it to a writer; when another transaction has committed since its snapshot
(SQLITE_BUSY_SNAPSHOT) or is writing now (SQLITE_BUSY, which SQLite reports at once to a reader
that wants to write), the write raises TransactionConflict with Anvil's message, and
`in_transaction` retries it with Anvil's back-off. A write outside a transaction is one
`BEGIN IMMEDIATE` of its own, which waits for the lock (busy timeout) and never conflicts.
On PostgreSQL a transaction is SERIALIZABLE (REPEATABLE READ when relaxed), as on Anvil, and a
serialization failure or deadlock, at any statement or at COMMIT, is the same TransactionConflict.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from anvil_dev.appdir import AppDir
from anvil_dev.services.db import AnyDatabase, ensure_schema
from anvil_dev.services.tables import dialect as dialect_mod
from anvil_dev.services.tables import indexes
from anvil_dev.services.tables import schema as schema_mod
from anvil_dev.services.tables.access import AccessMixin
from anvil_dev.services.tables.errors import (
    CONFLICT_MESSAGE,
    NESTED_MESSAGE,
    NoSuchColumnError,
    TableError,
    TransactionConflict,
)
from anvil_dev.services.tables.query import Compiled, compile_search, current_query
from anvil_dev.services.tables.schema import ROW_ID, Schema, TableInfo, quote
from anvil_dev.services.tables.values import Column, from_sql
from anvil_dev.services.tables.writes import WritesMixin

__all__ = ["AUTO_INDEX_MIN_ROWS", "TABLES_SERVICE", "TablesStore"]

TABLES_SERVICE = "/runtime/services/tables.yml"
AUTO_INDEX_MIN_ROWS = indexes.AUTO_INDEX_MIN_ROWS
_CHUNK = 500  # ids per `IN (...)` query
# How long a server call's reads outside a transaction trust the schema they last checked (see
# TablesStore.schema): a call, or a background task that runs for hours, sees another process's
# change of the schema within this.
CALL_SCHEMA_S = 1.0


def _conflict(e: BaseException) -> TransactionConflict:
    return TransactionConflict(f"The database stayed locked by another transaction ({e}); try again")


def _txn_conflict() -> TransactionConflict:
    return TransactionConflict(CONFLICT_MESSAGE)


class TablesStore(WritesMixin, AccessMixin):
    """The data tables of one app database. Thread-safe; one per process and app."""

    def __init__(self, db: AnyDatabase, app_dir: AppDir, secret_key: bytes) -> None:
        self.db = db
        self.d: dialect_mod.Dialect = dialect_mod.for_db(db)
        self.app_dir = app_dir
        self.secret_key = secret_key
        # Schemas by schema version: a thread inside a transaction that added a column sees a
        # version the other threads' connections do not, and each gets its own.
        self._schemas: dict[int, Schema] = {}
        self._ready = False
        self._lock = threading.RLock()
        self._local = threading.local()
        self._index_checked: dict[tuple[str, str], float] = {}
        self._v2: bool | None = None
        self._hidden: dict[str, frozenset[str]] | None = None

    # ---------------------------------------------------------------- connection and schema

    def conn(self) -> Any:
        conn = self.db.connection()
        self.d.prepare(conn)
        if not self._ready:
            self._prepare(conn)
        return conn

    def _prepare(self, conn: Any) -> None:
        with self._lock:
            if self._ready:
                return
            meta = schema_mod.meta_sql(self.d)
            if conn.in_transaction and self.d is dialect_mod.SQLITE:
                # Another connection would wait for the lock this thread holds: use this one.
                for stmt in meta.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
            else:
                ensure_schema(self.db, "tables", meta)
            config = self.app_dir.config
            want = schema_mod.fingerprint(config)
            row = conn.execute("SELECT value FROM anvil_tables_state WHERE key='yaml'").fetchone()
            if row is None or row[0] != want:
                with self._write(conn):
                    self.d.lock_schema(conn)
                    row = conn.execute("SELECT value FROM anvil_tables_state WHERE key='yaml'").fetchone()
                    if row is None or row[0] != want:  # another host may have synced it meanwhile
                        schema_mod.sync(conn, config)
                        conn.execute(
                            "INSERT INTO anvil_tables_state (key, value) VALUES ('yaml', ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            (want,),
                        )
            self._remember(schema_mod.load(conn))
            self._ready = True

    def schema(self, conn: Any = None, exact: bool = False) -> Schema:
        """The schema as this thread's connection sees it, re-read when another process or thread
        changed it: checked once per transaction (which reads one snapshot); in a server call
        (`begin_call`) outside one, at most once every CALL_SCHEMA_S for its reads; else at
        each operation. `exact`: a write outside a transaction, checked under its write lock, so
        that it never goes to a column another process has since retyped or hidden. A lookup that
        misses (a table or column made since) re-reads it anyway."""
        conn = conn or self.conn()
        local = self._local
        txn = getattr(local, "txn", None)
        call = None if exact else getattr(local, "call", None)
        mine: Schema | None = getattr(local, "schema", None)
        if mine is not None:
            checked = getattr(local, "checked", None)
            if txn is not None:
                if checked is txn:
                    return mine
            elif call is not None and checked is call and time.monotonic() < local.checked_until:
                return mine
        version = self._read(lambda: self.d.schema_version(conn))
        s = self._schemas.get(version)
        if s is None:
            s = self._remember(schema_mod.load(conn))
        local.schema = s
        marker = txn if txn is not None else call
        if marker is not None:
            local.checked = marker
            local.checked_until = time.monotonic() + CALL_SCHEMA_S
        return s

    def _remember(self, s: Schema) -> Schema:
        with self._lock:
            if len(self._schemas) > 16:
                self._schemas.clear()
            self._schemas[s.version] = s
        self._local.schema = s
        return s

    def _forget(self) -> None:
        """After a rollback: cached schemas may hold columns it took away."""
        with self._lock:
            self._schemas.clear()
        self._local.schema = None

    def _reload(self, conn: Any) -> Schema:
        return self._remember(schema_mod.load(conn))

    def table(self, name: str) -> TableInfo | None:
        conn = self.conn()
        info = self.schema(conn).by_name.get(name)
        return info if info is not None else self._reload(conn).by_name.get(name)

    def table_by_id(self, table_id: int) -> TableInfo:
        conn = self.conn()
        info = self.schema(conn).by_id.get(table_id) or self._reload(conn).by_id.get(table_id)
        if info is None:
            raise TableError(f"No table with id {table_id} in this app")
        return info

    def table_names(self) -> list[str]:
        return list(self.schema().by_name)

    def column(self, table_id: int, name: str) -> Column:
        if not isinstance(name, str):
            raise TypeError(f"Row columns are always strings, not {type(name).__name__}")
        info = self.table_by_id(table_id)
        col = info.columns.get(name)
        if col is None:
            info = self._reload(self.conn()).by_id[table_id]
            col = info.columns.get(name)
        if col is None:
            raise NoSuchColumnError(f"No such column '{name}'")
        return col

    def _service(self, part: str) -> dict[str, Any]:
        svc = self.app_dir.service_config(TABLES_SERVICE) or {}
        return svc.get(part) or {}

    @property
    def auto_create(self) -> bool:
        return bool(self._service("server_config").get("auto_create_missing_columns", False))

    @property
    def v2(self) -> bool:
        """Accelerated Tables (v2) or the original ones (v1): the tables service's
        `client_config.enable_v2`, as Anvil chooses (services/anvil/tables/__init__.py:60)."""
        if self._v2 is None:
            self._v2 = bool(self._service("client_config").get("enable_v2", False))
        return self._v2

    @property
    def auto_index(self) -> bool:
        return bool(self._service("server_config").get("auto_index", True))

    # ---------------------------------------------------------------- transactions

    def _in_txn(self) -> bool:
        return getattr(self._local, "txn", None) is not None

    def _read(self, run: Any) -> Any:
        """Run a read; on PostgreSQL a serialization failure inside a transaction is a
        TransactionConflict, and any other database error a TableError that says what it was."""
        if self.d is dialect_mod.SQLITE:
            return run()
        try:
            return run()
        except Exception as e:
            if not self.d.is_db_error(e):
                raise
            if self.d.is_conflict(e):
                raise _txn_conflict() if self._in_txn() else _conflict(e) from None
            raise TableError(f"Internal database error: {str(e).strip()}") from None  # tables/util.clj:89

    @contextlib.contextmanager
    def _write(self, conn: Any = None) -> Iterator[Any]:
        """A write transaction of its own, or a savepoint in the one already open on this thread.

        Either way one operation is all or nothing: a failed add_row inside a Transaction leaves
        no half-written row (or orphaned media) behind in it.
        """
        conn = conn or self.conn()
        d = self.d
        if conn.in_transaction:
            conn.execute("SAVEPOINT anvil_tables_op")
            try:
                yield conn
            except BaseException as e:
                conn.execute("ROLLBACK TO anvil_tables_op")
                conn.execute("RELEASE anvil_tables_op")
                self._forget()
                if d.is_conflict(e) and self._in_txn():
                    # This transaction's snapshot is stale, or another one is writing: Anvil's
                    # serialization failure (SQLite's upgrade to a writer failed; Postgres said 40001).
                    raise _txn_conflict() from None
                if d is dialect_mod.POSTGRES and d.is_db_error(e):
                    raise TableError(f"Internal database error: {str(e).strip()}") from None
                raise
            conn.execute("RELEASE anvil_tables_op")
            return
        try:
            conn.execute(d.begin_write)
        except Exception as e:
            if d.is_db_error(e):
                raise _conflict(e) from None
            raise
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:  # SQLite has already rolled back after a full disk
                conn.execute("ROLLBACK")
            self._forget()
            if d is dialect_mod.POSTGRES and d.is_db_error(e):
                if d.is_conflict(e):
                    raise _conflict(e) from None
                raise TableError(f"Internal database error: {str(e).strip()}") from None
            raise

    def begin(self, relaxed: bool = False) -> None:
        """Open this thread's transaction: on SQLite deferred, so it reads a snapshot and takes the
        write lock only at its first write (see the module's docstring); on PostgreSQL SERIALIZABLE
        (REPEATABLE READ when relaxed)."""
        conn = self.conn()
        if conn.in_transaction:
            raise TableError(NESTED_MESSAGE)  # tables/util.clj:484-485
        conn.execute(self.d.begin(relaxed))
        self._local.txn = object()

    def commit(self) -> None:
        self._local.txn = None
        conn = self.db.connection()
        if not conn.in_transaction:
            return
        try:
            conn.execute("COMMIT")
        except Exception as e:
            if self.d is dialect_mod.SQLITE or not self.d.is_db_error(e):
                raise
            self._forget()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if self.d.is_conflict(e):
                raise _txn_conflict() from None
            raise TableError(f"Internal database error: {str(e).strip()}") from None

    def rollback(self) -> None:
        self._local.txn = None
        conn = self.db.existing_connection()
        if conn is not None and conn.in_transaction:
            conn.execute("ROLLBACK")
            self._forget()

    def in_transaction(self) -> bool:
        return bool(self.db.connection().in_transaction)

    # ---------------------------------------------------------------- reads

    def compile(self, table_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Compiled:
        info = self.table_by_id(table_id)

        def lookup(name: str) -> Column:
            try:
                return self.column(table_id, name)
            except NoSuchColumnError:
                if self.v2:
                    raise  # "No such column 'x'" (tables/v2/query.clj:160)
                # A plain TableError on v1 (tables/rpc.clj:612-617).
                raise TableError(f"No such column '{name}' in table '{info.name}'") from None

        compiled = compile_search(info, args, kwargs, lookup, self.v2, self.d)
        if (compiled.used or compiled.used_fts) and self.auto_index:
            indexes.maybe_index(self, info, compiled.used, compiled.used_fts)
        return compiled

    def _select_cols(self, info: TableInfo, cols: Iterable[str] | None) -> list[Column]:
        if cols is None:
            return list(info.columns.values())
        return [info.columns[c] for c in cols if c in info.columns]

    def _rows(self, sql: str, params: list[Any], cols: list[Column]) -> list[tuple[int, dict[str, Any]]]:
        def run() -> list[tuple[int, dict[str, Any]]]:
            cur = self.conn().execute(sql, params)
            return [(r[0], {c.name: from_sql(c, v) for c, v in zip(cols, r[1:], strict=True)}) for r in cur]

        rows: list[tuple[int, dict[str, Any]]] = self._read(run)
        return rows

    def select(
        self,
        table_id: int,
        compiled: Compiled,
        limit: int | None = None,
        offset: int = 0,
        cols: Iterable[str] | None = None,
        recompile: Callable[[], Compiled] | None = None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Matching rows in order, as (row id, {column: value}); `cols` limits the columns read.
        `recompile` compiles the search again should a column it filters by have changed since."""
        info = self.table_by_id(table_id)
        compiled = current_query(compiled, info, recompile)
        columns = self._select_cols(info, cols)
        names = "".join(", " + quote(c.sql_name) for c in columns)
        sql = f"SELECT {quote(ROW_ID)}{names} FROM {info.q} WHERE {compiled.where} ORDER BY {compiled.order}"
        params = list(compiled.params)
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [self.d.no_limit if limit is None else limit, offset]
        return self._rows(sql, params, columns)

    def select_ids(
        self, table_id: int, compiled: Compiled, recompile: Callable[[], Compiled] | None = None
    ) -> list[int]:
        info = self.table_by_id(table_id)
        compiled = current_query(compiled, info, recompile)
        sql = f"SELECT {quote(ROW_ID)} FROM {info.q} WHERE {compiled.where} ORDER BY {compiled.order}"
        return [r[0] for r in self._rows(sql, list(compiled.params), [])]

    def count(
        self, table_id: int, compiled: Compiled | None = None, recompile: Callable[[], Compiled] | None = None
    ) -> int:
        info = self.table_by_id(table_id)
        if compiled is not None:
            compiled = current_query(compiled, info, recompile)
        where, params = (compiled.where, compiled.params) if compiled else ("TRUE", [])
        sql = f"SELECT count(*) FROM {info.q} WHERE {where}"
        return int(self._read(lambda: self.conn().execute(sql, params).fetchone()[0]))

    def load_rows(self, table_id: int, ids: list[int], cols: Iterable[str] | None = None) -> dict[int, dict[str, Any]]:
        """The rows with these ids that still exist, by id."""
        info = self.table_by_id(table_id)
        columns = self._select_cols(info, cols)
        names = "".join(", " + quote(c.sql_name) for c in columns)
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            sql = (
                f"SELECT {quote(ROW_ID)}{names} FROM {info.q} WHERE {quote(ROW_ID)} IN ({', '.join('?' * len(chunk))})"
            )
            out.update(self._rows(sql, chunk, columns))
        return out

    def load_row(self, table_id: int, row_id: int, cols: Iterable[str] | None = None) -> dict[str, Any] | None:
        return self.load_rows(table_id, [row_id], cols).get(row_id)

    def has_row(self, table_id: int, row_id: int, compiled: Compiled | None = None) -> bool:
        info = self.table_by_id(table_id)
        where, params = (compiled.where, compiled.params) if compiled else ("TRUE", [])
        sql = f"SELECT {quote(ROW_ID)} FROM {info.q} WHERE {quote(ROW_ID)}=? AND ({where})"
        return bool(self._rows(sql, [row_id, *params], []))

    def load_media(self, media_id: int) -> tuple[str | None, str | None, bytes] | None:
        sql = f"SELECT content_type, name, data FROM {self.d.media_table} WHERE id=?"
        row = self._read(lambda: self.conn().execute(sql, (media_id,)).fetchone())
        return (row[0], row[1], bytes(row[2])) if row else None

    # ---------------------------------------------------------------- this process

    def begin_call(self) -> None:
        """Before each server call on this thread: its reads then check the schema once every
        CALL_SCHEMA_S, not at each lookup. Serializing 500 rows looked their table up ~4 times a
        row, and each check was a query (`PRAGMA schema_version`): a third of such a call's time."""
        self._local.call = object()

    def end_call(self) -> None:
        """Roll back a transaction that a call left open on this thread (after each call)."""
        self._local.call = None
        self.rollback()

    def warm(self) -> None:
        """Sync the schema and cache it, then close the connection: for a zygote, before it forks.

        Fresh children then skip that work (about 2 ms a call), and no open database connection
        crosses the fork.
        """
        self.conn()
        self.db.close()
