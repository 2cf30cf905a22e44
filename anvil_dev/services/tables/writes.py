"""The store's writes: add, update and delete rows, with their media, and columns created on
demand (a mixin of `TablesStore`; every write runs in `TablesStore._write`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from anvil_dev.services.tables import schema as schema_mod
from anvil_dev.services.tables.errors import NoSuchColumnError, RowDeleted, TableError, column_not_created
from anvil_dev.services.tables.query import current_query
from anvil_dev.services.tables.schema import ROW_ID, TableInfo, quote
from anvil_dev.services.tables.values import Column, from_sql, infer_type, to_sql

if TYPE_CHECKING:
    import threading
    from contextlib import AbstractContextManager

    from anvil_dev.services.tables.dialect import Dialect
    from anvil_dev.services.tables.query import Compiled
    from anvil_dev.services.tables.schema import Schema

_CHUNK = 500  # ids per `IN (...)` query


class WritesMixin:
    if TYPE_CHECKING:
        d: Dialect
        _local: threading.local

        def _write(self, conn: Any = None) -> AbstractContextManager[Any]: ...

        def schema(self, conn: Any = None, exact: bool = False) -> Schema: ...

        def _reload(self, conn: Any) -> Schema: ...

        def _in_txn(self) -> bool: ...

        @property
        def auto_create(self) -> bool: ...

        @property
        def v2(self) -> bool: ...

    def _table_for_write(self, conn: Any, table_id: int) -> TableInfo:
        """The table as the write's own lock sees it: never a schema another process has changed
        since a read of this call (`schema`'s `exact`), or is changing now (`hold_schema`)."""
        self.d.hold_schema(conn, self._in_txn())
        info = self.schema(conn, exact=True).by_id.get(table_id) or self._reload(conn).by_id.get(table_id)
        if info is None:
            raise TableError(f"No table with id {table_id} in this app")
        return info

    @contextlib.contextmanager
    def columns_fixed(self) -> Iterator[None]:
        """Writes on this thread inside never create a column, whatever auto_create_missing_columns
        says: client code's (tables/rpc.clj:362-366). Its own check of the names went by a schema
        up to CALL_SCHEMA_S old, so a column removed since would otherwise come back."""
        before = getattr(self._local, "columns_fixed", False)
        self._local.columns_fixed = True
        try:
            yield
        finally:
            self._local.columns_fixed = before

    def _columns_for(self, conn: Any, table_id: int, values: dict[str, Any]) -> tuple[TableInfo, dict[str, Any]]:
        """The table and the values to write, creating missing columns when the app allows it."""
        info = self._table_for_write(conn, table_id)
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
        fixed = getattr(self._local, "columns_fixed", False)  # client code's write
        if fixed or not self.auto_create:
            if self.v2 and not fixed:
                raise NoSuchColumnError(f"No such column '{missing[0]}'")  # tables/v2/updates.clj:56
            raise column_not_created(missing[0])
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

    def _put_media(self, conn: Any, media: Any) -> int:
        data = media.get_bytes()
        cur = conn.execute(
            f"INSERT INTO {self.d.media_table} (content_type, name, data) VALUES (?, ?, ?) RETURNING id",
            (media.content_type, getattr(media, "name", None), bytes(data)),
        )
        return int(cur.fetchone()[0])

    def _stored(self, conn: Any, info: TableInfo, values: dict[str, Any]) -> tuple[list[Column], list[Any]]:
        cols = [info.columns[n] for n in values]
        return cols, [to_sql(c, values[c.name], info.name, lambda m: self._put_media(conn, m)) for c in cols]

    def _to_db(self, cols: list[Column], stored: list[Any]) -> list[Any]:
        to_db = self.d.to_db
        return [to_db(c, v) for c, v in zip(cols, stored, strict=True)]

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
                row_id = int(conn.execute(f"{sql} RETURNING {quote(ROW_ID)}", self._to_db(cols, stored)).fetchone()[0])
                data = dict.fromkeys(info.columns)
                data.update((c.name, from_sql(c, v)) for c, v in zip(cols, stored, strict=True))
                out.append((row_id, data))
        return out

    def add_row(self, table_id: int, values: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self.add_rows(table_id, [values])[0]

    def _media_ids(
        self, conn: Any, info: TableInfo, where: str, params: list[Any], cols: Iterable[Column] | None = None
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

    def _drop_media(self, conn: Any, ids: list[int]) -> None:
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            conn.execute(f"DELETE FROM {self.d.media_table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk)

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
            cur = conn.execute(
                f"UPDATE {info.q} SET {sets} WHERE {quote(ROW_ID)}=?", [*self._to_db(cols, stored), row_id]
            )
            if cur.rowcount == 0:
                raise RowDeleted("This row has been deleted")
            self._drop_media(conn, old_media)
            return {c.name: from_sql(c, v) for c, v in zip(cols, stored, strict=True)}

    def delete_row(self, table_id: int, row_id: int) -> None:
        with self._write() as conn:
            info = self._table_for_write(conn, table_id)
            media = self._media_ids(conn, info, f"{quote(ROW_ID)}=?", [row_id])
            cur = conn.execute(f"DELETE FROM {info.q} WHERE {quote(ROW_ID)}=?", (row_id,))
            if cur.rowcount == 0:
                raise RowDeleted("This row has been deleted")
            self._drop_media(conn, media)

    def delete_where(
        self, table_id: int, compiled: Compiled | None = None, recompile: Callable[[], Compiled] | None = None
    ) -> int:
        """Delete every row a search matches (all rows when `compiled` is None); returns how many.

        A search compiled before a column it uses was retyped or removed is compiled again from its
        arguments (`recompile`), as Anvil runs the search's query when its rows are deleted; one
        that cannot be (a client's cursor) is refused rather than run on what its columns were.
        """
        with self._write() as conn:
            info = self._table_for_write(conn, table_id)
            if compiled is not None:
                compiled = current_query(compiled, info, recompile, for_write=True)  # by the schema the write holds
            where, params = (compiled.where, compiled.params) if compiled else ("TRUE", [])
            self._drop_media(conn, self._media_ids(conn, info, where, params))
            return int(conn.execute(f"DELETE FROM {info.q} WHERE {where}", params).rowcount)
