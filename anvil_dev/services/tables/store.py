"""Data tables over the app's SQLite database: storage, search, transactions, row MACs.

Plain Python, no `anvil` imports: the runtime's `anvil.tables` is a face over the context's
`services.current().tables`, and the host and the CLI use the same object's `describe`,
`export_csv` and `client_access`. Storage design: docs/architecture.md ("Data tables"); schema:
`schema.py`; values: `values.py`; queries: `query.py`; CSV and descriptions: `export.py`.

Concurrency, as Anvil's SERIALIZABLE transactions behave: a transaction is a deferred SQLite
transaction in WAL mode, so it reads one snapshot and never blocks or is blocked by readers. Its
first write upgrades it to a writer; when another transaction has committed since its snapshot
(SQLITE_BUSY_SNAPSHOT) or is writing now (SQLITE_BUSY, which SQLite reports at once to a reader
that wants to write), the write raises TransactionConflict with Anvil's message, and
`in_transaction` retries it with Anvil's back-off. A write outside a transaction is one
`BEGIN IMMEDIATE` of its own, which waits for the lock (busy timeout) and never conflicts.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from anvil_dev.appdir import AppDir
from anvil_dev.services.db import Database, ensure_schema
from anvil_dev.services.tables import export
from anvil_dev.services.tables import schema as schema_mod
from anvil_dev.services.tables.errors import (
    CONFLICT_MESSAGE,
    NESTED_MESSAGE,
    NoSuchColumnError,
    RowDeleted,
    TableError,
    TransactionConflict,
)
from anvil_dev.services.tables.query import Compiled, compile_search, register_functions
from anvil_dev.services.tables.schema import ROW_ID, Schema, TableInfo, quote
from anvil_dev.services.tables.values import Column, from_sql, infer_type, to_sql

__all__ = ["AUTO_INDEX_MIN_ROWS", "TABLES_SERVICE", "TablesStore"]

TABLES_SERVICE = "/runtime/services/tables.yml"
# A column filtered or sorted on in a table of at least this many rows gets an index.
AUTO_INDEX_MIN_ROWS = 1000
_CHUNK = 500  # ids per `IN (...)` query


def _is_busy(e: sqlite3.OperationalError) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(e).lower()
    return "locked" in text or "busy" in text


def _conflict(e: sqlite3.OperationalError) -> TransactionConflict:
    return TransactionConflict(f"The database stayed locked by another transaction ({e}); try again")


def _txn_conflict() -> TransactionConflict:
    return TransactionConflict(CONFLICT_MESSAGE)


class TablesStore:
    """The data tables of one app database. Thread-safe; one per process and app."""

    def __init__(self, db: Database, app_dir: AppDir, secret_key: bytes) -> None:
        self.db = db
        self.app_dir = app_dir
        self.secret_key = secret_key
        # Schemas by PRAGMA schema_version: a thread inside a transaction that added a column
        # sees a version the other threads' connections do not, and each gets its own.
        self._schemas: dict[int, Schema] = {}
        self._ready = False
        self._lock = threading.RLock()
        self._local = threading.local()
        self._index_checked: dict[tuple[str, str], float] = {}
        self._v2: bool | None = None
        self._hidden: dict[str, frozenset[str]] | None = None

    # ---------------------------------------------------------------- connection and schema

    def conn(self) -> sqlite3.Connection:
        conn = self.db.connection()
        register_functions(conn)
        if not self._ready:
            self._prepare(conn)
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if self._ready:
                return
            if conn.in_transaction:
                # Another connection would wait for the lock this thread holds: use this one.
                for stmt in schema_mod.META_SQL.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
            else:
                ensure_schema(self.db, "tables", schema_mod.META_SQL)
            config = self.app_dir.config
            want = schema_mod.fingerprint(config)
            row = conn.execute("SELECT value FROM anvil_tables_state WHERE key='yaml'").fetchone()
            if row is None or row[0] != want:
                with self._write(conn):
                    schema_mod.sync(conn, config)
                    conn.execute("INSERT OR REPLACE INTO anvil_tables_state VALUES ('yaml', ?)", (want,))
            self._remember(schema_mod.load(conn))
            self._ready = True

    def schema(self, conn: sqlite3.Connection | None = None) -> Schema:
        """The schema as this thread's connection sees it (checked once per operation, or once
        per transaction); re-read when another process or thread changed it."""
        conn = conn or self.conn()
        marker = getattr(self._local, "txn", None)
        mine: Schema | None = getattr(self._local, "schema", None)
        if mine is not None and marker is not None and getattr(self._local, "checked", None) is marker:
            return mine
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        s = self._schemas.get(version)
        if s is None:
            s = self._remember(schema_mod.load(conn))
        self._local.schema = s
        if marker is not None:
            self._local.checked = marker
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

    def _reload(self, conn: sqlite3.Connection) -> Schema:
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

    @property
    def auto_create(self) -> bool:
        svc = self.app_dir.service_config(TABLES_SERVICE) or {}
        return bool((svc.get("server_config") or {}).get("auto_create_missing_columns", False))

    @property
    def v2(self) -> bool:
        """Accelerated Tables (v2) or the original ones (v1): the tables service's
        `client_config.enable_v2`, as Anvil chooses (services/anvil/tables/__init__.py:60)."""
        if self._v2 is None:
            svc = self.app_dir.service_config(TABLES_SERVICE) or {}
            self._v2 = bool((svc.get("client_config") or {}).get("enable_v2", False))
        return self._v2

    @property
    def auto_index(self) -> bool:
        svc = self.app_dir.service_config(TABLES_SERVICE) or {}
        return bool((svc.get("server_config") or {}).get("auto_index", True))

    # ---------------------------------------------------------------- transactions

    @contextlib.contextmanager
    def _write(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """A write transaction of its own, or a savepoint in the one already open on this thread.

        Either way one operation is all or nothing: a failed add_row inside a Transaction leaves
        no half-written row (or orphaned media) behind in it.
        """
        conn = conn or self.conn()
        if conn.in_transaction:
            conn.execute("SAVEPOINT anvil_tables_op")
            try:
                yield conn
            except sqlite3.OperationalError as e:
                conn.execute("ROLLBACK TO anvil_tables_op")
                conn.execute("RELEASE anvil_tables_op")
                self._forget()
                if _is_busy(e) and getattr(self._local, "txn", None) is not None:
                    # This transaction's snapshot is stale, or another one is writing: the upgrade
                    # to a writer failed, which is Anvil's serialization failure.
                    raise _txn_conflict() from None
                raise
            except BaseException:
                conn.execute("ROLLBACK TO anvil_tables_op")
                conn.execute("RELEASE anvil_tables_op")
                self._forget()
                raise
            conn.execute("RELEASE anvil_tables_op")
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise _conflict(e) from None
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # SQLite has already rolled back after a full disk
                conn.execute("ROLLBACK")
            self._forget()
            raise
        conn.execute("COMMIT")

    def begin(self) -> None:
        """Open this thread's transaction: deferred, so it reads a snapshot and takes the write
        lock only at its first write (see the module's docstring)."""
        conn = self.conn()
        if conn.in_transaction:
            raise TableError(NESTED_MESSAGE)  # tables/util.clj:484-485
        conn.execute("BEGIN")
        self._local.txn = object()

    def commit(self) -> None:
        self._local.txn = None
        conn = self.db.connection()
        if conn.in_transaction:
            conn.execute("COMMIT")

    def rollback(self) -> None:
        self._local.txn = None
        conn = self.db.existing_connection()
        if conn is not None and conn.in_transaction:
            conn.execute("ROLLBACK")
            self._forget()

    def in_transaction(self) -> bool:
        return self.db.connection().in_transaction

    # ---------------------------------------------------------------- writes

    def _columns_for(
        self, conn: sqlite3.Connection, table_id: int, values: dict[str, Any]
    ) -> tuple[TableInfo, dict[str, Any]]:
        """The table and the values to write, creating missing columns when the app allows it."""
        info = self.schema(conn).by_id.get(table_id) or self._reload(conn).by_id.get(table_id)
        if info is None:
            raise TableError(f"No table with id {table_id} in this app")
        missing = [n for n in values if n not in info.columns]
        if not missing:
            return info, values
        info = self._reload(conn).by_id[table_id]
        missing = [n for n in values if n not in info.columns]
        if not missing:
            return info, values
        for name in missing:
            if not isinstance(name, str):
                raise TypeError(f"Column names are strings, not {type(name).__name__}")
        if not self.auto_create:
            if self.v2:
                raise NoSuchColumnError(f"No such column '{missing[0]}'")  # tables/v2/updates.clj:56
            raise NoSuchColumnError(
                f"Row update failed: Column '{missing[0]}' does not exist and automatic column creation is disabled."
            )  # tables/rpc.clj:362-363
        values = dict(values)
        for name in missing:
            inferred = infer_type(values[name])
            if inferred is None:
                if values[name] is None:
                    del values[name]  # None is what a missing column reads as anyway
                    continue
                raise TableError(
                    f"Cannot create column '{name}' in table '{info.name}' for {type(values[name]).__name__} values"
                )
            schema_mod.add_column(conn, table_id, name, inferred[0], inferred[1], "auto")
        return self._reload(conn).by_id[table_id], values

    def _put_media(self, conn: sqlite3.Connection, media: Any) -> int:
        data = media.get_bytes()
        cur = conn.execute(
            "INSERT INTO anvil_media (content_type, name, data) VALUES (?, ?, ?)",
            (media.content_type, getattr(media, "name", None), bytes(data)),
        )
        return int(cur.lastrowid or 0)

    def _stored(
        self, conn: sqlite3.Connection, info: TableInfo, values: dict[str, Any]
    ) -> tuple[list[Column], list[Any]]:
        cols = [info.columns[n] for n in values]
        return cols, [to_sql(c, values[c.name], info.name, lambda m: self._put_media(conn, m)) for c in cols]

    def add_rows(self, table_id: int, rows: Iterable[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        """Insert rows; returns (row id, the values as they now read) for each."""
        out = []
        with self._write() as conn:
            for values in rows:
                info, values = self._columns_for(conn, table_id, values)
                cols, stored = self._stored(conn, info, values)
                if cols:
                    names = ", ".join(quote(c.sql_name) for c in cols)
                    sql = f"INSERT INTO {info.q} ({names}) VALUES ({', '.join('?' * len(cols))})"
                else:
                    sql = f"INSERT INTO {info.q} DEFAULT VALUES"
                row_id = int(conn.execute(sql, stored).lastrowid or 0)
                data = dict.fromkeys(info.columns)
                data.update((c.name, from_sql(c, v)) for c, v in zip(cols, stored, strict=True))
                out.append((row_id, data))
        return out

    def add_row(self, table_id: int, values: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self.add_rows(table_id, [values])[0]

    def _media_ids(
        self,
        conn: sqlite3.Connection,
        info: TableInfo,
        where: str,
        params: list[Any],
        cols: Iterable[Column] | None = None,
    ) -> list[int]:
        media_cols = [c for c in (cols if cols is not None else info.by_sql.values()) if c.type == "media"]
        ids: list[int] = []
        for c in media_cols:
            ids += [
                r[0]
                for r in conn.execute(f"SELECT {quote(c.sql_name)} FROM {info.q} WHERE {where}", params)
                if isinstance(r[0], int)
            ]
        return ids

    def _drop_media(self, conn: sqlite3.Connection, ids: list[int]) -> None:
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            conn.execute(f"DELETE FROM anvil_media WHERE id IN ({', '.join('?' * len(chunk))})", chunk)

    def update_row(self, table_id: int, row_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """Write some columns of a row; returns them as they now read. RowDeleted if it is gone."""
        with self._write() as conn:
            info, values = self._columns_for(conn, table_id, values)
            if not values:
                if not conn.execute(f"SELECT 1 FROM {info.q} WHERE {quote(ROW_ID)}=?", (row_id,)).fetchone():
                    raise RowDeleted("This row has been deleted")
                return {}
            cols = [info.columns[n] for n in values]
            old_media = self._media_ids(conn, info, f"{quote(ROW_ID)}=?", [row_id], cols)
            cols, stored = self._stored(conn, info, values)
            sets = ", ".join(f"{quote(c.sql_name)}=?" for c in cols)
            cur = conn.execute(f"UPDATE {info.q} SET {sets} WHERE {quote(ROW_ID)}=?", [*stored, row_id])
            if cur.rowcount == 0:
                raise RowDeleted("This row has been deleted")
            self._drop_media(conn, old_media)
            return {c.name: from_sql(c, v) for c, v in zip(cols, stored, strict=True)}

    def delete_row(self, table_id: int, row_id: int) -> None:
        with self._write() as conn:
            info = self.table_by_id(table_id)
            media = self._media_ids(conn, info, f"{quote(ROW_ID)}=?", [row_id])
            cur = conn.execute(f"DELETE FROM {info.q} WHERE {quote(ROW_ID)}=?", (row_id,))
            if cur.rowcount == 0:
                raise RowDeleted("This row has been deleted")
            self._drop_media(conn, media)

    def delete_where(self, table_id: int, compiled: Compiled | None = None) -> int:
        """Delete every row a search matches (all rows when `compiled` is None); returns how many."""
        with self._write() as conn:
            info = self.table_by_id(table_id)
            where, params = (compiled.where, compiled.params) if compiled else ("1", [])
            self._drop_media(conn, self._media_ids(conn, info, where, params))
            return int(conn.execute(f"DELETE FROM {info.q} WHERE {where}", params).rowcount)

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

        compiled = compile_search(info, args, kwargs, lookup, self.v2)
        if compiled.used and self.auto_index:
            self._maybe_index(info, compiled.used)
        return compiled

    def _maybe_index(self, info: TableInfo, sql_cols: set[str]) -> None:
        """Index the columns a search uses, once the table is big enough for that to pay."""
        now = time.monotonic()
        todo = [
            c
            for c in sql_cols
            if now >= self._index_checked.get((info.sql_name, c), 0.0)
            and info.by_sql.get(c) is not None
            and info.by_sql[c].type not in ("simpleObject", "media", "link_multiple")
        ]
        if not todo:
            return
        conn = self.conn()
        size = conn.execute(f"SELECT max({quote(ROW_ID)}) FROM {info.q}").fetchone()[0] or 0
        if size < AUTO_INDEX_MIN_ROWS:
            for c in todo:
                self._index_checked[(info.sql_name, c)] = now + 5.0  # look again in a while
            return
        for c in todo:
            name = schema_mod.index_name(info.sql_name, c)
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (name,)).fetchone():
                self._index_checked[(info.sql_name, c)] = float("inf")
                continue
            if conn.in_transaction:
                schema_mod.ensure_index(conn, info.sql_name, c)  # part of the caller's transaction
                continue
            try:
                # Do not make a reader wait for the write lock just to build an index.
                conn.execute("PRAGMA busy_timeout=200")
                with self._write(conn):
                    schema_mod.ensure_index(conn, info.sql_name, c)
                self._index_checked[(info.sql_name, c)] = float("inf")
            except TransactionConflict:
                self._index_checked[(info.sql_name, c)] = now + 1.0
            finally:
                conn.execute("PRAGMA busy_timeout=30000")

    def _select_cols(self, info: TableInfo, cols: Iterable[str] | None) -> list[Column]:
        if cols is None:
            return list(info.columns.values())
        return [info.columns[c] for c in cols if c in info.columns]

    def _rows(
        self, info: TableInfo, cur: Iterable[tuple[Any, ...]], cols: list[Column]
    ) -> list[tuple[int, dict[str, Any]]]:
        return [(r[0], {c.name: from_sql(c, v) for c, v in zip(cols, r[1:], strict=True)}) for r in cur]

    def select(
        self,
        table_id: int,
        compiled: Compiled,
        limit: int | None = None,
        offset: int = 0,
        cols: Iterable[str] | None = None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Matching rows in order, as (row id, {column: value}); `cols` limits the columns read."""
        conn = self.conn()
        info = self.table_by_id(table_id)
        columns = self._select_cols(info, cols)
        names = "".join(", " + quote(c.sql_name) for c in columns)
        sql = f"SELECT {quote(ROW_ID)}{names} FROM {info.q} WHERE {compiled.where} ORDER BY {compiled.order}"
        params = list(compiled.params)
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else limit, offset]
        return self._rows(info, conn.execute(sql, params), columns)

    def select_ids(self, table_id: int, compiled: Compiled) -> list[int]:
        info = self.table_by_id(table_id)
        sql = f"SELECT {quote(ROW_ID)} FROM {info.q} WHERE {compiled.where} ORDER BY {compiled.order}"
        return [r[0] for r in self.conn().execute(sql, compiled.params)]

    def count(self, table_id: int, compiled: Compiled | None = None) -> int:
        info = self.table_by_id(table_id)
        where, params = (compiled.where, compiled.params) if compiled else ("1", [])
        return int(self.conn().execute(f"SELECT count(*) FROM {info.q} WHERE {where}", params).fetchone()[0])

    def load_rows(self, table_id: int, ids: list[int], cols: Iterable[str] | None = None) -> dict[int, dict[str, Any]]:
        """The rows with these ids that still exist, by id."""
        conn = self.conn()
        info = self.table_by_id(table_id)
        columns = self._select_cols(info, cols)
        names = "".join(", " + quote(c.sql_name) for c in columns)
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            cur = conn.execute(
                f"SELECT {quote(ROW_ID)}{names} FROM {info.q} WHERE {quote(ROW_ID)} IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            out.update(self._rows(info, cur, columns))
        return out

    def load_row(self, table_id: int, row_id: int, cols: Iterable[str] | None = None) -> dict[str, Any] | None:
        return self.load_rows(table_id, [row_id], cols).get(row_id)

    def has_row(self, table_id: int, row_id: int, compiled: Compiled | None = None) -> bool:
        info = self.table_by_id(table_id)
        where, params = (compiled.where, compiled.params) if compiled else ("1", [])
        sql = f"SELECT 1 FROM {info.q} WHERE {quote(ROW_ID)}=? AND ({where})"
        return self.conn().execute(sql, [row_id, *params]).fetchone() is not None

    def load_media(self, media_id: int) -> tuple[str | None, str | None, bytes] | None:
        row = self.conn().execute("SELECT content_type, name, data FROM anvil_media WHERE id=?", (media_id,)).fetchone()
        return (row[0], row[1], bytes(row[2])) if row else None

    # ---------------------------------------------------------------- MACs, access, export

    def mac(self, kind: str, *parts: Any) -> str:
        msg = ":".join([kind, *map(str, parts)]).encode()
        return hmac.new(self.secret_key, msg, hashlib.sha256).hexdigest()[:32]

    def check_mac(self, given: Any, kind: str, *parts: Any) -> bool:
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a refusal).
        return isinstance(given, str) and hmac.compare_digest(
            given.encode("utf-8", "surrogatepass"), self.mac(kind, *parts).encode()
        )

    def hidden(self, table_name: str) -> frozenset[str]:
        """The table's `client_hidden` columns (anvil.yaml): client code never sees or names them."""
        if self._hidden is None:
            self._hidden = {
                t.name: frozenset(c.name for c in t.columns if c.client_hidden)
                for t in schema_mod.parse_db_schema(self.app_dir.config)
            }
        return self._hidden.get(table_name, frozenset())

    def seal(self, value: Any) -> str:
        """`value` (JSON) encrypted and authenticated with the app's secret key: what a client may
        hold but neither read nor change (a search's cursor carries server code's query values)."""
        return self._fernet().encrypt(json.dumps(value, default=str).encode()).decode()

    def unseal(self, token: Any) -> Any:
        """What seal() sealed, or None for anything else (altered, or from another app)."""
        from cryptography.fernet import InvalidToken

        if not isinstance(token, str):
            return None
        try:
            return json.loads(self._fernet().decrypt(token.encode()))
        except (InvalidToken, ValueError):
            return None

    def _fernet(self) -> Any:
        import base64

        from cryptography.fernet import Fernet

        key = hmac.new(self.secret_key, b"anvil-dev tables cursor", hashlib.sha256).digest()
        return Fernet(base64.urlsafe_b64encode(key))

    def client_access(self, table_name: str) -> str:
        """'none', 'search' or 'full': what client code may do with a table (anvil.yaml `client`)."""
        info = self.table(table_name)
        return info.client if info is not None else "none"

    def write_csv(
        self, table_id: int, out: TextIO, ids: list[int] | None = None, escape_for_excel: bool = False
    ) -> None:
        """Rows (these ids in this order, else all) as CSV: an ID column, then the table's columns."""
        export.write_csv(self, table_id, out, ids, escape_for_excel)

    def export_csv(self, table_name: str, out: TextIO) -> None:
        """Write one table, by name, as CSV to a text stream; TableError naming the tables if none."""
        info = self.table(table_name)
        if info is None:
            names = ", ".join(self.table_names()) or "none"
            raise TableError(f"No table '{table_name}' in this app (tables: {names})")
        self.write_csv(info.id, out)

    def describe(self) -> list[dict[str, Any]]:
        """Each table: name, title, id, client/server access, columns (name, type, target), rows."""
        return export.describe(self)

    # ---------------------------------------------------------------- this process

    def end_call(self) -> None:
        """Roll back a transaction that a call left open on this thread (after each call)."""
        self.rollback()

    def warm(self) -> None:
        """Sync the schema and cache it, then close the connection: for a zygote, before it forks.

        Fresh children then skip that work (about 2 ms a call), and no open database connection
        crosses the fork.
        """
        self.conn()
        self.db.close()
