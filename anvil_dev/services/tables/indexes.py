"""Adaptive indexes: a column a search filters or sorts on gets an index once its table is big
enough for that to pay (on PostgreSQL a full_text_match column gets a GIN index, as on Anvil)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anvil_dev.services.tables import schema as schema_mod
from anvil_dev.services.tables.errors import TableError, TransactionConflict
from anvil_dev.services.tables.schema import ROW_ID, TableInfo, quote

if TYPE_CHECKING:
    from anvil_dev.services.tables.store import TablesStore

# A column filtered or sorted on in a table of at least this many rows gets an index.
AUTO_INDEX_MIN_ROWS = 1000
_UNINDEXABLE = ("simpleObject", "media", "link_multiple")


def maybe_index(store: TablesStore, info: TableInfo, sql_cols: set[str], fts_cols: set[str]) -> None:
    """Index the columns a search uses, once the table is big enough for that to pay."""
    checked = store._index_checked
    now = time.monotonic()
    wanted = [(c, "") for c in sql_cols] + [(c, "fts") for c in fts_cols]
    todo = [
        (c, kind)
        for c, kind in wanted
        if now >= checked.get((info.sql_name, kind + c), 0.0)
        and info.by_sql.get(c) is not None
        and (kind == "fts" or info.by_sql[c].type not in _UNINDEXABLE)
    ]
    if not todo:
        return
    d = store.d
    conn = store.conn()
    if conn.in_transaction:
        # Not inside server code's transaction: on SQLite building the index would make a reading
        # transaction a writer (and conflict), on PostgreSQL it would hold the table's writers until
        # the transaction ends. The next search outside one builds it.
        return
    size = store._read(lambda: conn.execute(f"SELECT max({quote(ROW_ID)}) FROM {info.q}").fetchone()[0]) or 0
    if size < AUTO_INDEX_MIN_ROWS:
        for c, kind in todo:
            checked[(info.sql_name, kind + c)] = now + 5.0  # look again in a while
        return
    for c, kind in todo:
        key = (info.sql_name, kind + c)
        build: Callable[[], Any]
        if kind == "fts":
            build = functools.partial(d.full_text_index, conn, info.sql_name, c)
        elif d.has_index(conn, schema_mod.index_name(info.sql_name, c)):
            checked[key] = float("inf")
            continue
        else:
            build = functools.partial(schema_mod.ensure_index, conn, info.sql_name, c)
        try:
            # Do not make a reader wait for the write lock just to build an index.
            d.set_lock_wait(conn, 200)
            with store._write(conn):
                build()
            checked[key] = float("inf")
        except (TransactionConflict, TableError):
            checked[key] = now + 1.0
        finally:
            d.set_lock_wait(conn, 30000)
