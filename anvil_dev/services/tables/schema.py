"""The tables' schema: anvil.yaml `db_schema` (both forms), the metadata tables, and their sync.

Each data table is one SQL table (`"app_<name>"`, rowid column `_anvil_id`) with one SQL column
per data column. Two metadata tables say which tables and columns exist, their Anvil types,
link targets and the SQL names they are stored under:

- `anvil_tables(id, name, title, sql_name, client, server, source, visible)`
- `anvil_columns(table_id, name, type, target, sql_name, position, source, visible)`

The yaml is the source of truth for tables; columns can also be created at run time
(`source='auto'`). A table or column that leaves the yaml is hidden, never dropped, so no data
is lost by editing anvil.yaml.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from anvil_dev.services.db import postgres_ddl
from anvil_dev.services.tables import dialect
from anvil_dev.services.tables.values import Column, canonical_type

ROW_ID = "_anvil_id"

META_SQL = """
CREATE TABLE IF NOT EXISTS anvil_tables (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, title TEXT, sql_name TEXT NOT NULL UNIQUE,
    client TEXT NOT NULL DEFAULT 'none', server TEXT NOT NULL DEFAULT 'full',
    source TEXT NOT NULL DEFAULT 'yaml', visible INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS anvil_columns (
    table_id INTEGER NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, target INTEGER,
    sql_name TEXT NOT NULL, position INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT 'yaml',
    visible INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (table_id, name));
CREATE TABLE IF NOT EXISTS anvil_media (
    id INTEGER PRIMARY KEY AUTOINCREMENT, content_type TEXT, name TEXT, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS anvil_tables_state (key TEXT PRIMARY KEY, value TEXT);
"""


def meta_sql(d: dialect.Dialect) -> str:
    """The metadata tables' script for a backend (its media table has the dialect's name)."""
    return META_SQL.replace("anvil_media", d.media_table)


def quote(name: str) -> str:
    """An SQL identifier, quoted: column names like 'Lic. #' or 'a "b"' are fine."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class TableInfo:
    id: int
    name: str
    title: str | None
    sql_name: str
    client: str = "none"
    server: str = "full"
    columns: dict[str, Column] = field(default_factory=dict)  # visible ones, in order
    by_sql: dict[str, Column] = field(default_factory=dict)  # all, hidden ones too

    @property
    def q(self) -> str:
        return quote(self.sql_name)


@dataclass
class Schema:
    version: int
    by_name: dict[str, TableInfo]
    by_id: dict[int, TableInfo]


# --------------------------------------------------------------------------------------------
# Reading anvil.yaml


@dataclass
class _ColumnSpec:
    name: str
    type: str
    target_id: int | None = None
    target_name: str | None = None
    client_hidden: bool = False  # kept from client code (tables/schema.clj:16-19)


@dataclass
class _TableSpec:
    name: str
    title: str | None
    yaml_id: int | None
    client: str
    server: str
    columns: list[_ColumnSpec]


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _python_name(text: str) -> str:
    name = re.sub(r"\W+", "_", text.strip().lower()).strip("_")
    return name or "table"


def _column_specs(columns: Any, where: str) -> list[_ColumnSpec]:
    items = list(columns.values()) if isinstance(columns, dict) else list(columns or [])
    out = []
    for c in items:
        if not isinstance(c, dict) or not c.get("name"):
            continue
        t = canonical_type(c.get("type"))
        if t is None:
            raise ValueError(
                f"anvil.yaml db_schema, table {where}: column {c.get('name')!r} has unknown type {c.get('type')!r}"
            )
        target = c.get("target")
        out.append(
            _ColumnSpec(
                str(c["name"]),
                t,
                _as_int(c.get("table_id")),
                str(target) if target is not None else None,
                bool(c.get("client_hidden")),
            )
        )
    return out


def parse_db_schema(config: dict[str, Any]) -> list[_TableSpec]:
    """The tables anvil.yaml declares, from either the list form or the map form."""
    raw = config.get("db_schema") or []
    specs = []
    if isinstance(raw, dict):
        for name, t in raw.items():
            t = t if isinstance(t, dict) else {}
            specs.append(
                _TableSpec(
                    str(name),
                    t.get("title") or str(name),
                    _as_int(t.get("id")),
                    str(t.get("client") or "none"),
                    str(t.get("server") or "full"),
                    _column_specs(t.get("columns"), str(name)),
                )
            )
    else:
        for t in raw:
            if not isinstance(t, dict):
                continue
            access: dict[str, Any] = t["access"] if isinstance(t.get("access"), dict) else {}
            name = t.get("python_name") or access.get("python_name") or _python_name(str(t.get("name") or ""))
            yaml_id = _as_int(t.get("id"))
            if yaml_id is None:
                yaml_id = _as_int(access.get("table_id"))
            specs.append(
                _TableSpec(
                    str(name),
                    t.get("name") or str(name),
                    yaml_id,
                    str(access.get("client") or t.get("client") or "none"),
                    str(access.get("server") or t.get("server") or "full"),
                    _column_specs(t.get("columns"), str(name)),
                )
            )
    return specs


def fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config.get("db_schema"), sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Loading and changing the metadata (callers hold the write lock for changes)


def load(conn: Any) -> Schema:
    version = dialect.of(conn).schema_version(conn)
    by_id: dict[int, TableInfo] = {}
    by_name: dict[str, TableInfo] = {}
    for tid, name, title, sql_name, client, server, visible in conn.execute(
        "SELECT id, name, title, sql_name, client, server, visible FROM anvil_tables ORDER BY id"
    ):
        info = TableInfo(tid, name, title, sql_name, client, server)
        by_id[tid] = info
        if visible and name not in by_name:
            by_name[name] = info
    for tid, name, typ, target, sql_name, visible in conn.execute(
        "SELECT table_id, name, type, target, sql_name, visible FROM anvil_columns ORDER BY table_id, position, name"
    ):
        owner = by_id.get(tid)
        if owner is None:
            continue
        col = Column(name, typ, sql_name, target)
        owner.by_sql[sql_name] = col
        if visible:
            owner.columns[name] = col
    return Schema(version, by_name, by_id)


def create_table(
    conn: Any,
    name: str,
    title: str | None,
    table_id: int | None,
    client: str = "none",
    server: str = "full",
    source: str = "yaml",
) -> int:
    taken = {r[0] for r in conn.execute("SELECT sql_name FROM anvil_tables")}
    sql_name = f"app_{name}"
    if sql_name in taken or sql_name.lower() in {t.lower() for t in taken}:
        sql_name = f"app_{name}_{table_id or len(taken) + 1}"
    if table_id is None or conn.execute("SELECT 1 FROM anvil_tables WHERE id=?", (table_id,)).fetchone():
        table_id = (conn.execute("SELECT max(id) FROM anvil_tables").fetchone()[0] or 0) + 1
    d = dialect.of(conn)
    create = f"CREATE TABLE IF NOT EXISTS {quote(sql_name)} ({quote(ROW_ID)} INTEGER PRIMARY KEY AUTOINCREMENT)"
    conn.execute(postgres_ddl(create) if d is dialect.POSTGRES else create)
    d.bump_version(conn)
    conn.execute(
        "INSERT INTO anvil_tables (id, name, title, sql_name, client, server, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (table_id, name, title, sql_name, client, server, source),
    )
    return table_id


def add_column(conn: Any, table_id: int, name: str, typ: str, target: int | None, source: str) -> None:
    """Add (or bring back into view) a column; its SQL name is unique even ignoring case.

    On PostgreSQL, whose columns are typed, a column whose type changes gets a new SQL column: the
    old values stay where they were (never lost), and the column reads as empty.
    """
    d = dialect.of(conn)
    d.bump_version(conn)
    row = conn.execute(
        "SELECT sql_name, type FROM anvil_columns WHERE table_id=? AND name=?", (table_id, name)
    ).fetchone()
    position = conn.execute(
        "SELECT coalesce(max(position), -1) + 1 FROM anvil_columns WHERE table_id=?", (table_id,)
    ).fetchone()[0]
    sql_table = conn.execute("SELECT sql_name FROM anvil_tables WHERE id=?", (table_id,)).fetchone()[0]
    if row is not None and d.column_type(row[1]) == d.column_type(typ):
        conn.execute(
            "UPDATE anvil_columns SET type=?, target=?, source=?, visible=1 WHERE table_id=? AND name=?",
            (typ, target, source, table_id, name),
        )
        sql_name = row[0]
    else:
        # SQLite identifiers ignore case, but Anvil's "Name" and "name" are two columns.
        taken = {
            r[0].lower() for r in conn.execute("SELECT sql_name FROM anvil_columns WHERE table_id=?", (table_id,))
        } | {ROW_ID}
        sql_name, n = name, 1
        while sql_name.lower() in taken:
            n += 1
            sql_name = f"{name}~{n}"
        conn.execute(f"ALTER TABLE {quote(sql_table)} ADD COLUMN {quote(sql_name)} {d.column_type(typ)}".rstrip())
        if row is not None:
            conn.execute(
                "UPDATE anvil_columns SET type=?, target=?, sql_name=?, source=?, visible=1 "
                "WHERE table_id=? AND name=?",
                (typ, target, sql_name, source, table_id, name),
            )
        else:
            conn.execute(
                "INSERT INTO anvil_columns (table_id, name, type, target, sql_name, position, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (table_id, name, typ, target, sql_name, position, source),
            )
    if typ == "link_single":
        # Searching by a linked row (search(owner=user)) is the commonest query of all.
        ensure_index(conn, sql_table, sql_name)


def index_name(sql_table: str, sql_col: str) -> str:
    return f"ix_{sql_table}_{sql_col}"


def ensure_index(conn: Any, sql_table: str, sql_col: str) -> None:
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(index_name(sql_table, sql_col))} ON {quote(sql_table)} ({quote(sql_col)})"
    )


def sync(conn: Any, config: dict[str, Any]) -> None:
    """Make the metadata and SQL tables match anvil.yaml (inside the caller's write transaction)."""
    specs = parse_db_schema(config)
    dialect.of(conn).bump_version(conn)  # visibility and access change without any DDL
    tables = {
        r[0]: {"name": r[1], "source": r[2], "visible": r[3]}
        for r in conn.execute("SELECT id, name, source, visible FROM anvil_tables")
    }
    matched: dict[str, int] = {}
    yaml_ids: dict[int, int] = {}
    # Tables with an explicit yaml id first, so that an auto-assigned id cannot take theirs.
    for spec in sorted(specs, key=lambda s: s.yaml_id is None):
        tid = None
        if spec.yaml_id is not None and spec.yaml_id in tables and tables[spec.yaml_id]["name"] == spec.name:
            tid = spec.yaml_id
        if tid is None:
            same_name = [i for i, t in tables.items() if t["name"] == spec.name and i not in matched.values()]
            same_name.sort(key=lambda i: (not tables[i]["visible"], i))
            tid = same_name[0] if same_name else None
        if tid is None:
            tid = create_table(conn, spec.name, spec.title, spec.yaml_id, spec.client, spec.server)
            tables[tid] = {"name": spec.name, "source": "yaml", "visible": 1}
        else:
            conn.execute(
                "UPDATE anvil_tables SET name=?, title=?, client=?, server=?, source='yaml', visible=1 WHERE id=?",
                (spec.name, spec.title, spec.client, spec.server, tid),
            )
        matched[spec.name] = tid
        if spec.yaml_id is not None:
            yaml_ids[spec.yaml_id] = tid
    for tid, t in tables.items():
        if t["source"] == "yaml" and tid not in matched.values():
            conn.execute("UPDATE anvil_tables SET visible=0 WHERE id=?", (tid,))
    for spec in specs:
        tid = matched[spec.name]
        existing = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT name, type, target, visible, source FROM anvil_columns WHERE table_id=?", (tid,)
            )
        }
        for col in spec.columns:
            target = None
            if col.type in ("link_single", "link_multiple"):
                if col.target_name is not None:
                    target = matched.get(col.target_name)
                elif col.target_id is not None:
                    target = yaml_ids.get(col.target_id, col.target_id)
            old = existing.get(col.name)
            if old is None or old[0] != col.type or old[1] != target or not old[2] or old[3] != "yaml":
                add_column(conn, tid, col.name, col.type, target, "yaml")
        names = {c.name for c in spec.columns}
        for name, (_typ, _target, visible, source) in existing.items():
            if source == "yaml" and visible and name not in names:
                conn.execute("UPDATE anvil_columns SET visible=0 WHERE table_id=? AND name=?", (tid, name))
