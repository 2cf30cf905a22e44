"""Data tables from client code: the built-in functions `anvil.private.tables.client.*`.

The browser client (anvil.js), the Python client and client-key uplinks reach tables only through
these, and every rule is checked here, on the server, as Anvil's tables service checks it
(server/core/src/anvil/runtime/tables/rpc.clj:34-74, `ensure-table-access-ok`):

- a whole table is searched from client code when its `client` permission is `search` or `full`,
  and written (add, update, delete) only when it is `full`; `none` refuses both;
- a view that server code made (`client_readable`, `client_writable`, `client_writable_cascade`)
  travels with a MAC over its table, permission and constraint: a forged or altered one is refused
  when it is decoded; it reads only rows matching its constraint, and a writable one writes only
  those rows and cannot move a row out of its constraint;
- a row reference the server handed out (MAC'd) can be read, and its linked rows loaded later;
- `client_hidden` columns are never sent to client code, and naming one (to read, search, sort or
  write) is the error a missing column gives.

Trusted callers (server code, server-key uplinks) get full access, as on Anvil.
"""

from __future__ import annotations

import contextlib
from typing import Any

from anvil import _context, server
from anvil.tables._model import _unbuffered
from anvil.tables._row import Row
from anvil.tables._table import Table
from anvil_dev import services
from anvil_dev.services.tables import NoSuchColumnError, TableError
from anvil_dev.services.tables.errors import column_not_created
from anvil_dev.services.tables.query import QUERY_CLASSES, OfQuery, fetch_only, only_cols, order_by

PREFIX = "anvil.private.tables.client."
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _trusted() -> bool:
    state = _context.current()
    return state is None or bool(state.remote_trusted)


def _denied(op: str, table_name: str) -> Exception:
    # Anvil's wording (tables/rpc.clj:67-71).
    return server.PermissionDenied(f"Permission denied: Cannot {op} in table '{table_name}' from client code.")


def _table_arg(table: Any) -> Table:
    if not isinstance(table, Table):
        raise TypeError(f"Expected a data table (or a view of one), not {type(table).__name__}")
    return table


def _check(table: Table, op: str) -> None:
    """May the caller `op` ('search' or 'write') through this table or view?"""
    if _trusted():
        return
    if table._perm is not None:  # a view the server made: its MAC was checked when it arrived
        if op == "search" or table._perm in ("rw", "rwc"):
            return
        raise _denied(op, table._name)
    access = services.current().tables.client_access(table._name)
    if access == "full" or (access == "search" and op == "search"):
        return
    raise _denied(op, table._name)


def _hidden(table_name: str) -> frozenset[str]:
    return frozenset() if _trusted() else services.current().tables.hidden(table_name)


def _no_such(name: Any) -> NoSuchColumnError:
    return NoSuchColumnError(f"No such column '{name}'")


def _check_names(hidden: frozenset[str], args: Any, kwargs: dict[str, Any]) -> None:
    """Refuse a query that names a hidden column anywhere (a filter, a sort, a column list)."""
    for name in kwargs:
        if name in hidden:
            raise _no_such(name)
    for a in args:
        if isinstance(a, OfQuery):
            _check_names(hidden, a.args, a.kwargs)
        elif isinstance(a, order_by):
            if a.column_name in hidden:
                raise _no_such(a.column_name)
        elif isinstance(a, only_cols):
            for c in a.cols:
                if c in hidden:
                    raise _no_such(c)
        elif isinstance(a, fetch_only):
            for c in a.spec:
                if c in hidden:
                    raise _no_such(c)
        elif not isinstance(a, QUERY_CLASSES):
            raise TypeError(f"search() takes query operators and order_by(...), not {type(a).__name__}")


def _page_size(value: Any) -> int:
    if value is None:
        return DEFAULT_PAGE
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"page size must be a positive integer, not {value!r:.40}")
    return min(value, MAX_PAGE)


def get_app_tables() -> dict[str, Table]:
    """The tables client code may see, by name (those whose `client` permission is not `none`)."""
    st = services.current().tables
    out = {}
    for name in st.table_names():
        if _trusted() or st.client_access(name) != "none":
            info = st.table(name)
            if info is not None:
                out[name] = Table(info.id, info.name)
    return out


def search(
    table: Any,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    offset: int = 0,
    page_size: int | None = None,
) -> dict[str, Any]:
    """One page of a search: {"rows": [...], "more": bool}. The client asks for the next page with a
    larger offset when it gets there (ties in the order are broken by row id, so pages never
    overlap)."""
    table = _table_arg(table)
    _check(table, "search")
    args, kwargs = list(args or []), dict(kwargs or {})
    _check_names(_hidden(table._name), args, kwargs)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, not {offset!r:.40}")
    size = _page_size(page_size)
    st = services.current().tables
    compiled = table._compile(tuple(args), kwargs)
    rows = st.select(table._id, compiled, limit=size + 1, offset=offset)
    return {"rows": [Row._make(table._id, rid, data) for rid, data in rows[:size]], "more": len(rows) > size}


def next_page(cursor: Any, offset: int) -> dict[str, Any]:
    """A further page of a search a server function returned to client code: {"rows", "more"}.

    The cursor is the one the server signed when it sent the search's first page, so a client
    reads exactly the rows of that search, however it got it (tables/rpc.clj:300-310 pages v1's
    searches the same way, by a cursor the server made)."""
    from anvil.tables._search import SearchIterator

    search = SearchIterator.from_cursor(cursor)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, not {offset!r:.40}")
    st = services.current().tables
    rows = st.select(search._table_id, search._compiled, limit=search._page + 1, offset=offset, cols=search._cols)
    out = [Row._make(search._table_id, rid, data, search._compiled.only) for rid, data in rows[: search._page]]
    return {"rows": out, "more": len(rows) > search._page}


def cursor_length(cursor: Any) -> int:
    from anvil.tables._search import SearchIterator

    return len(SearchIterator.from_cursor(cursor))


def length(table: Any, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> int:
    table = _table_arg(table)
    _check(table, "search")
    args, kwargs = list(args or []), dict(kwargs or {})
    _check_names(_hidden(table._name), args, kwargs)
    return len(table.search(*args, **kwargs))


def get(table: Any, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> Row | None:
    table = _table_arg(table)
    _check(table, "search")
    args, kwargs = list(args or []), dict(kwargs or {})
    _check_names(_hidden(table._name), args, kwargs)
    return table.get(*args, **kwargs)


def get_by_id(table: Any, row_id: Any) -> Row | None:
    table = _table_arg(table)
    _check(table, "search")
    return table.get_by_id(row_id)


def list_columns(table: Any) -> list[dict[str, Any]]:
    table = _table_arg(table)
    _check(table, "search")
    hidden = _hidden(table._name)
    return [c for c in table.list_columns() if c["name"] not in hidden]


def _check_values(table_name: str, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise TypeError("Row values must be a dict of column names and values")
    st = services.current().tables
    info = st.table(table_name)
    hidden = _hidden(table_name)
    for name in values:
        # Client code cannot create columns, nor write a hidden one (tables/rpc.clj:362-366).
        if name in hidden or (not _trusted() and info is not None and name not in info.columns):
            raise column_not_created(name)
    return dict(values)


def _no_new_columns() -> contextlib.AbstractContextManager[None]:
    """Client code's writes create no column, even one that `_check_values` saw a moment ago
    and that is gone by the time the write holds its lock."""
    return contextlib.nullcontext() if _trusted() else services.current().tables.columns_fixed()


def add_row(table: Any, values: Any) -> Row:
    table = _table_arg(table)
    _check(table, "write")
    values = _check_values(table._name, values)
    with _no_new_columns():
        return table.add_row(**values)


def _writable_row(table: Any, row: Any) -> Row:
    if not isinstance(row, Row):
        raise TypeError(f"Expected a data table row, not {type(row).__name__}")
    if table is None:
        info = services.current().tables.table_by_id(row._table_id)
        table = Table(info.id, info.name)
    table = _table_arg(table)
    if row._table_id != table._id:
        # Only a client_writable_cascade view writes other tables' rows: those its rows link to
        # (the linked table gets "rwc", tables/v2/basic_ops.clj:112-116).
        if _trusted() or (table._perm == "rwc" and _linked_from(table, row)):
            return row
        raise _denied("write", services.current().tables.table_by_id(row._table_id).name)
    _check(table, "write")
    if table._is_view and not table.has_row(row):
        # A writable view writes only the rows it shows.
        raise server.PermissionDenied("This row is not in the view it was written through")
    return row


def _linked_from(view: Table, row: Row) -> bool:
    """Does a row of this view link to `row` (through any of its link columns)?"""
    info = services.current().tables.table_by_id(view._id)
    for col in info.columns.values():
        if col.target != row._table_id:
            continue
        value: Any = row if col.type == "link_single" else [row] if col.type == "link_multiple" else None
        if value is not None and view._matches_any(**{col.name: value}):
            return True
    return False


def update_row(table: Any, row: Any, values: Any) -> Row:
    """Write columns of a row, through the table or writable view the client holds it by."""
    row = _writable_row(table, row)
    values = _check_values(services.current().tables.table_by_id(row._table_id).name, values)
    if isinstance(table, Table) and table._id != row._table_id:  # a row linked from a cascade view's rows
        _write_through(row, values)
        return row
    if isinstance(table, Table):
        fixed = {k: v for k, v in table._view_kwargs.items() if not isinstance(v, QUERY_CLASSES)}
        for k, v in fixed.items():
            if k in values and values[k] != v:
                raise server.PermissionDenied(f"This view only holds rows whose '{k}' is {v!r:.60}")
    _write_through(row, values)
    if isinstance(table, Table) and table._is_view and not table.has_row(row):
        raise server.PermissionDenied("This update would move the row out of the view it was written through")
    return row


def _write_through(row: Row, values: dict[str, Any]) -> None:
    """Write a client's update now, even to a row of a buffered model class: the client holds no
    buffer to save(), so a buffered update would be lost."""
    if row._buffer is not None:
        row = _unbuffered(row)
    with _no_new_columns():
        row.update(**values)


def delete_row(table: Any, row: Any) -> None:
    _writable_row(table, row).delete()


def get_row(row: Any) -> Row:
    """A row the client holds only by reference (a link deeper than the data sent with it): its data."""
    if not isinstance(row, Row):
        raise TypeError(f"Expected a data table row, not {type(row).__name__}")
    row.refresh()
    return row


def get_client_config(path: str) -> dict[str, Any]:
    """anvil.private.get_client_config: a service's client_config from anvil.yaml, as the anvil-uplink
    client asks for it (`anvil._get_service_client_config`). Uplinks are told the tables are v1:
    they reach them through LiveObjects (host/uplink/tables.py), not Accelerated Tables' caps."""
    svc = services.current().app_dir.service_config(str(path)) or {}
    config = dict(svc.get("client_config") or {})
    state = _context.current()
    if str(path).endswith("/tables.yml") and state is not None and state.client_type in ("uplink", "client_uplink"):
        config["enable_v2"] = False
    return config


server.register(get_client_config, "anvil.private.get_client_config")
server.register(get_app_tables, "anvil.private.tables.get_app_tables")

for _fn in (
    get_app_tables,
    search,
    next_page,
    cursor_length,
    length,
    get,
    get_by_id,
    list_columns,
    add_row,
    update_row,
    delete_row,
    get_row,
):
    server.register(_fn, PREFIX + _fn.__name__)


def strip_hidden(table_name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A row's data as it may go to client code (Row.__serialize__ for an untrusted caller)."""
    hidden = services.current().tables.hidden(table_name)
    if not hidden:
        return data
    return {k: v for k, v in data.items() if k not in hidden}


__all__ = ["PREFIX", "TableError", "strip_hidden"]
