"""`anvil-dev tables copy`: every data table's rows from one backend to another (SQLite <->
PostgreSQL), with the row ids kept, so links, and row references held elsewhere, stay right;
media are copied with their bytes, simpleObjects as they are. All or nothing: one transaction on
the receiving side, which must hold no rows yet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anvil_dev.services.tables import dialect as dialect_mod
from anvil_dev.services.tables import schema as schema_mod
from anvil_dev.services.tables.errors import TableError
from anvil_dev.services.tables.query import Compiled
from anvil_dev.services.tables.schema import ROW_ID, TableInfo, quote
from anvil_dev.services.tables.store import TablesStore
from anvil_dev.services.tables.values import MediaRef, RowRef

_CHUNK = 500


@dataclass
class _Media:
    """A media read from the source, as to_sql takes one."""

    content_type: str | None
    name: str | None
    data: bytes

    def get_bytes(self) -> bytes:
        return self.data


@dataclass
class CopyPlan:
    tables: list[tuple[TableInfo, TableInfo, int]]  # source, destination, rows

    @property
    def rows(self) -> int:
        return sum(n for _s, _d, n in self.tables)


def plan(source: TablesStore, dest: TablesStore) -> CopyPlan:
    """Match the tables by name (creating the source's auto-created columns at the destination);
    TableError when the destination already has rows."""
    out = []
    dest_schema = dest.schema()
    for info in source.schema().by_name.values():
        target = dest_schema.by_name.get(info.name)
        if target is None:
            raise TableError(f"table '{info.name}' is not in the destination (do both use this app's anvil.yaml?)")
        if dest.count(target.id):
            raise TableError(
                f"the destination's table '{info.name}' already has {dest.count(target.id)} rows: "
                "copy into empty tables only (nothing was copied)"
            )
        out.append((info, target, source.count(info.id)))
    return CopyPlan(out)


def copy(source: TablesStore, dest: TablesStore, progress: Callable[[int], None] = lambda n: None) -> CopyPlan:
    """Copy every table's rows; `progress(n)` after each `n` rows. Returns what was copied."""
    the_plan = plan(source, dest)
    ids = {s.id: d.id for s, d, _n in the_plan.tables}
    with dest._write() as conn:
        for s_info, d_info, _n in the_plan.tables:
            for col in s_info.columns.values():
                if col.name not in d_info.columns:
                    target = ids.get(col.target) if col.target is not None else None
                    schema_mod.add_column(conn, d_info.id, col.name, col.type, target, "auto")
        dest_schema = dest._reload(conn)
        for s_info, d_info, _n in the_plan.tables:
            _copy_table(source, dest, conn, s_info, dest_schema.by_id[d_info.id], ids, progress)
    return the_plan


def _copy_table(
    source: TablesStore,
    dest: TablesStore,
    conn: Any,
    s_info: TableInfo,
    d_info: TableInfo,
    ids: dict[int, int],
    progress: Callable[[int], None],
) -> None:
    row_ids = source.select_ids(s_info.id, Compiled(order=f"{quote(ROW_ID)} ASC"))
    for i in range(0, len(row_ids), _CHUNK):
        chunk = row_ids[i : i + _CHUNK]
        rows = source.load_rows(s_info.id, chunk)
        for rid in chunk:
            values = {k: _moved(source, v, ids) for k, v in rows[rid].items() if v is not None}
            cols, stored = dest._stored(conn, d_info, values)
            names = "".join(", " + quote(c.sql_name) for c in cols)
            marks = ", ?" * len(cols)
            conn.execute(
                f"INSERT INTO {d_info.q} ({quote(ROW_ID)}{names}) VALUES (?{marks})",
                [rid, *dest._to_db(cols, stored)],
            )
        progress(len(chunk))
    if dest.d is dialect_mod.POSTGRES and row_ids:
        # Rows inserted with their ids leave the identity behind: the next add_row must not reuse one.
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?), (SELECT max({quote(ROW_ID)}) FROM {d_info.q}))",
            (d_info.q, ROW_ID),
        )


def _moved(source: TablesStore, value: Any, ids: dict[int, int]) -> Any:
    """A value as the destination takes it: links to the destination's table ids, media with bytes."""
    if isinstance(value, RowRef):
        return RowRef(ids.get(value.table_id, value.table_id), value.row_id)
    if isinstance(value, list) and value and all(isinstance(v, RowRef) for v in value):
        return [RowRef(ids.get(v.table_id, v.table_id), v.row_id) for v in value]
    if isinstance(value, MediaRef):
        got = source.load_media(value.media_id)
        if got is None:
            return None
        return _Media(*got)
    return value
