"""The SQL that differs between the two backends of data tables: SQLite (the default) and PostgreSQL.

The store, the schema and the query compiler write one SQL for both where they can (`RETURNING`,
`ON CONFLICT`, `TRUE`/`FALSE`, `NULLS FIRST`, `?` placeholders that `services.db` translates);
what is left is here, as two small classes with the same methods. `of(conn)` gives a connection's.

PostgreSQL stores each Anvil type in a column of its own SQL type (SQLite's columns have none):

    string TEXT (the database's collation orders it, as on Anvil)   number NUMERIC (ints stay ints)
    bool BOOLEAN   date, datetime TEXT COLLATE "C" (fixed-width ISO text, as on SQLite)
    simpleObject, link_multiple JSONB (searched with @>, as Anvil does)   media, link_single BIGINT

and searches the way Anvil's own tables do (server/core/src/anvil/runtime/tables/v2/query.clj):
`to_tsvector('english', col) @@ plainto_tsquery('english', ?)` for full_text_match, ILIKE,
SERIALIZABLE transactions (REPEATABLE READ when relaxed) whose serialization failures (SQLSTATE
40001) and deadlocks (40P01) are Anvil's TransactionConflict.
"""

from __future__ import annotations

import decimal
import json
import sqlite3
from typing import Any

from anvil_dev.services.tables import text
from anvil_dev.services.tables.values import Column

# What a query's value becomes when it cannot equal any value of the column's type: no match.
NO_MATCH = object()
# Counts a schema change in both dialects (on SQLite beside PRAGMA schema_version, which counts
# only DDL); PostgreSQL casts the bigint back to the text column on assignment.
_BUMP_VERSION = (
    "INSERT INTO anvil_tables_state (key, value) VALUES ('version', '1') "
    "ON CONFLICT (key) DO UPDATE SET value = CAST(anvil_tables_state.value AS BIGINT) + 1"
)
# The PostgreSQL advisory lock a schema sync holds, and every write holds shared (hold_schema).
_SCHEMA_LOCK = "hashtext('anvil_dev tables schema')"


class SqliteDialect:
    name = "sqlite"
    media_table = "anvil_media"
    begin_write = "BEGIN IMMEDIATE"
    no_limit: Any = -1

    def begin(self, relaxed: bool) -> str:
        # Deferred: it reads one snapshot (WAL) and takes the write lock at its first write.
        return "BEGIN"

    def column_type(self, typ: str) -> str:
        return ""  # untyped: SQLite keeps each value exactly as bound

    def schema_version(self, conn: Any) -> int:
        """SQLite counts its own schema changes (DDL) in `PRAGMA schema_version`; a change of only
        the metadata (a column hidden, a table's access, a retype: the columns are untyped) is
        counted by `bump_version` beside it."""
        ddl, ours = conn.execute(
            "SELECT (SELECT schema_version FROM pragma_schema_version), "
            "(SELECT value FROM anvil_tables_state WHERE key='version')"
        ).fetchone()
        return int(ddl) << 32 | int(ours or 0)

    def bump_version(self, conn: Any) -> None:
        conn.execute(_BUMP_VERSION)

    def lock_schema(self, conn: Any) -> None:
        """Nothing: BEGIN IMMEDIATE already keeps other writers out."""

    def hold_schema(self, conn: Any, in_transaction: bool) -> None:
        """Nothing: a write holds the one write lock, so no schema change is under way beside it,
        and a transaction whose snapshot a change has passed fails to become a writer."""

    def has_index(self, conn: Any, name: str) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (name,)).fetchone() is not None

    def set_lock_wait(self, conn: Any, ms: int) -> None:
        conn.execute(f"PRAGMA busy_timeout={int(ms)}")

    def is_conflict(self, e: BaseException) -> bool:
        """A failed write that means another transaction got there first."""
        if not isinstance(e, sqlite3.OperationalError):
            return False
        code = getattr(e, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        text = str(e).lower()
        return "locked" in text or "busy" in text

    def is_db_error(self, e: BaseException) -> bool:
        return isinstance(e, sqlite3.Error)

    def prepare(self, conn: Any) -> None:
        """Define the SQL functions the compiled queries call, once per connection."""
        register_functions(conn)

    # ---------------------------------------------------------------- values

    def to_db(self, col: Column, stored: Any) -> Any:
        return stored

    def param(self, col: Column, value: Any) -> Any:
        return value

    # ---------------------------------------------------------------- query fragments

    def like(self, col: Column, qc: str, pattern: str, params: list[Any]) -> str:
        params.append(text.like_to_glob(pattern))
        return f"typeof({qc}) = 'text' AND {qc} GLOB ?"

    def ilike(self, col: Column, qc: str, pattern: str, params: list[Any]) -> str:
        params.append(pattern)
        if pattern.isascii():
            # SQLite's own LIKE folds ASCII case only; non-ASCII patterns go to our function.
            return f"typeof({qc}) = 'text' AND {qc} LIKE ? ESCAPE '\\'"
        return f"anvil_ilike({qc}, ?)"

    def full_text(self, col: Column, qc: str, query: str, raw: bool, params: list[Any]) -> str:
        # SQLite's LIKE first: it rules out most rows before our (slower) word matcher sees them.
        fragments = [] if raw else text.required_fragments(query)
        for frag in fragments:
            params.append("%" + frag.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        params.extend([query, 1 if raw else 0])
        return "".join(f"{qc} LIKE ? ESCAPE '\\' AND " for _ in fragments) + f"anvil_fts({qc}, ?, ?)"

    def json_contains(self, qc: str, wanted: str, params: list[Any]) -> str:
        params.append(wanted)
        return f"anvil_json_contains({qc}, ?)"

    def links_to(self, qc: str, row_id: int, params: list[Any]) -> str:
        params.append(row_id)
        return f"EXISTS (SELECT 1 FROM json_each({qc}) WHERE value = ?)"

    def full_text_index(self, conn: Any, sql_table: str, sql_col: str) -> bool:
        return False  # nothing to build: SQLite matches words in Python


# --------------------------------------------------------------------------------------------
# SQL functions the compiled queries call on SQLite


def _json_contains(stored: Any, wanted: str) -> int:
    if not isinstance(stored, str):
        return 0
    try:
        return int(_contains(json.loads(stored), json.loads(wanted)))
    except ValueError:
        return 0


def _scalar_eq(a: Any, b: Any) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and type(a) is not dict and a == b


def _contains(a: Any, b: Any) -> bool:
    """Postgres's jsonb `a @> b`, which Anvil's simple-object search is."""
    if isinstance(b, dict):
        return isinstance(a, dict) and all(k in a and _contains(a[k], v) for k, v in b.items())
    if isinstance(b, list):
        return isinstance(a, list) and all(any(_contains(x, y) for x in a) for y in b)
    if isinstance(a, list):
        return any(_scalar_eq(x, b) for x in a)
    return _scalar_eq(a, b)


_registered: dict[int, sqlite3.Connection] = {}


def register_functions(conn: sqlite3.Connection) -> None:
    """Define the SQL functions on a connection, once."""
    if _registered.get(id(conn)) is conn:
        return
    conn.create_function("anvil_ilike", 2, text.ilike_match, deterministic=True)
    conn.create_function("anvil_json_contains", 2, _json_contains, deterministic=True)
    conn.create_function("anvil_fts", 3, text.fts_match, deterministic=True)
    _registered[id(conn)] = conn


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_PG_TYPES = {
    "string": "TEXT",
    "number": "NUMERIC",
    "bool": "BOOLEAN",
    "date": 'TEXT COLLATE "C"',
    "datetime": 'TEXT COLLATE "C"',
    "simpleObject": "JSONB",
    "link_multiple": "JSONB",
    "media": "BIGINT",
    "link_single": "BIGINT",
}
_TEXT_TYPES = ("string", "date", "datetime")


_prepared: dict[int, Any] = {}


def _loaders() -> tuple[type, type]:
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        """NUMERIC as Anvil's numbers: without a decimal point an int, else a float."""

        def load(self, data: Any) -> Any:
            text = bytes(data).decode()
            if text.lstrip("-").isdigit():
                return int(text)
            return float(text.replace("Infinity", "inf"))

    class JsonTextLoader(Loader):
        """JSONB as its text: values.from_sql parses it, as it does SQLite's."""

        def load(self, data: Any) -> Any:
            return bytes(data).decode()

    return NumberLoader, JsonTextLoader


class PostgresDialect:
    name = "postgresql"
    # The media store has its own `anvil_media` in a shared database: the tables' media live beside it.
    media_table = "anvil_table_media"
    begin_write = "BEGIN"  # READ COMMITTED: one operation, which waits for row locks, never conflicts
    no_limit: Any = None

    def begin(self, relaxed: bool) -> str:
        # As Anvil does (tables/util.clj:489-491): SERIALIZABLE, REPEATABLE READ when relaxed.
        return "BEGIN ISOLATION LEVEL " + ("REPEATABLE READ" if relaxed else "SERIALIZABLE")

    def column_type(self, typ: str) -> str:
        return _PG_TYPES.get(typ, "TEXT")

    def schema_version(self, conn: Any) -> int:
        row = conn.execute("SELECT value FROM anvil_tables_state WHERE key='version'").fetchone()
        return int(row[0]) if row else 0

    def bump_version(self, conn: Any) -> None:
        """Count a schema change (PostgreSQL has no PRAGMA schema_version): every host re-reads the
        schema when it sees a new number. Two transactions that change it conflict, as they should."""
        conn.execute(_BUMP_VERSION)

    def lock_schema(self, conn: Any) -> None:
        # Two hosts starting on one database sync anvil.yaml one at a time.
        conn.execute(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")

    def hold_schema(self, conn: Any, in_transaction: bool) -> None:
        """Before a write reads the schema's version: wait for a sync under way (it holds
        lock_schema's lock; READ COMMITTED would read the version from before it, and the write
        go to a column it moved), and keep the next sync out until this write commits. In a
        user's transaction, which read the version at its snapshot, locking the version row fails
        it (40001, a TransactionConflict) if a change has committed since."""
        conn.execute(f"SELECT pg_advisory_xact_lock_shared({_SCHEMA_LOCK})")
        if in_transaction:
            conn.execute("SELECT 1 FROM anvil_tables_state WHERE key='version' FOR SHARE")

    def has_index(self, conn: Any, name: str) -> bool:
        short = name.encode()[:63].decode(errors="ignore")  # PostgreSQL truncates identifiers
        return conn.execute("SELECT 1 FROM pg_indexes WHERE indexname=?", (short,)).fetchone() is not None

    def set_lock_wait(self, conn: Any, ms: int) -> None:
        conn.execute(f"SET lock_timeout = {int(ms) if ms < 30000 else 0}")

    def is_conflict(self, e: BaseException) -> bool:
        # 40001 serialization failure, 40P01 deadlock, 55P03 lock not available (lock_timeout).
        return getattr(e, "sqlstate", None) in ("40001", "40P01", "55P03")

    def is_db_error(self, e: BaseException) -> bool:
        import psycopg

        return isinstance(e, psycopg.Error)

    def prepare(self, conn: Any) -> None:
        """Read NUMERIC and JSONB as the store expects them, once per connection."""
        raw = conn.raw
        if _prepared.get(id(raw)) is raw:
            return
        number, json_text = _loaders()
        raw.adapters.register_loader("numeric", number)
        raw.adapters.register_loader("jsonb", json_text)
        _prepared[id(raw)] = raw

    # ---------------------------------------------------------------- values

    def to_db(self, col: Column, stored: Any) -> Any:
        if stored is None:
            return None
        if col.type == "number" and isinstance(stored, float):
            return _pg_float(stored)
        if col.type == "bool":
            return bool(stored)
        return stored

    def param(self, col: Column, value: Any) -> Any:
        """A query's value as the column's SQL type; NO_MATCH when no value of that type equals it
        (PostgreSQL refuses to compare NUMERIC with text, where SQLite just finds nothing)."""
        t = col.type
        if value is None:
            return None
        if t in _TEXT_TYPES:
            return value if isinstance(value, str) else NO_MATCH
        if t == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return NO_MATCH
            return _pg_float(value) if isinstance(value, float) else value
        if t == "bool":
            return bool(value) if isinstance(value, (bool, int)) and value in (0, 1) else NO_MATCH
        if t in ("link_single", "media"):
            return value if isinstance(value, int) and not isinstance(value, bool) else NO_MATCH
        return NO_MATCH  # JSONB columns are searched with json_contains and links_to, never compared

    # ---------------------------------------------------------------- query fragments

    def like(self, col: Column, qc: str, pattern: str, params: list[Any]) -> str:
        if col.type not in _TEXT_TYPES:
            return "FALSE"
        params.append(pattern)
        return f"{qc} LIKE ?"

    def ilike(self, col: Column, qc: str, pattern: str, params: list[Any]) -> str:
        if col.type not in _TEXT_TYPES:
            return "FALSE"
        params.append(pattern)
        return f"{qc} ILIKE ?"

    def full_text(self, col: Column, qc: str, query: str, raw: bool, params: list[Any]) -> str:
        if col.type != "string":
            return "FALSE"
        params.append(query)
        func = "to_tsquery" if raw else "plainto_tsquery"
        return f"to_tsvector('english', {qc}) @@ {func}('english', ?)"

    def json_contains(self, qc: str, wanted: str, params: list[Any]) -> str:
        params.append(wanted)
        return f"{qc} @> ?::jsonb"

    def links_to(self, qc: str, row_id: int, params: list[Any]) -> str:
        params.append(json.dumps([row_id]))
        return f"{qc} @> ?::jsonb"

    def full_text_index(self, conn: Any, sql_table: str, sql_col: str) -> bool:
        """A GIN index for full_text_match on a column, as Anvil makes one (tables/manager.clj:339)."""
        name = f"fts_{sql_table}_{sql_col}"
        if self.has_index(conn, name):
            return False
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {_quote(name)} ON {_quote(sql_table)} "
            f"USING gin (to_tsvector('english', {_quote(sql_col)}))"
        )
        return True


def _pg_float(value: float) -> Any:
    """A float as a NUMERIC that reads back as a float: its shortest repr, with a decimal point kept."""
    if value != value or value in (float("inf"), float("-inf")):
        return decimal.Decimal(repr(value).replace("inf", "Infinity"))
    d = decimal.Decimal(repr(value))
    exp = d.as_tuple().exponent
    if isinstance(exp, int) and exp >= 0:
        d = decimal.Decimal(f"{d:f}.0")
    return d


Dialect = SqliteDialect | PostgresDialect
SQLITE = SqliteDialect()
POSTGRES = PostgresDialect()


def of(conn: Any) -> Dialect:
    """The dialect of a connection (sqlite3's, or services.db's PostgresConnection)."""
    return SQLITE if isinstance(conn, sqlite3.Connection) else POSTGRES


def for_db(db: Any) -> Dialect:
    return POSTGRES if getattr(db, "dialect", "sqlite") == "postgresql" else SQLITE
