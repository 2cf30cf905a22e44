"""Data tables as a client sees them: rows, searches and tables that load and write through a connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anvil_dev.client.portable import PortableObject

if TYPE_CHECKING:
    from anvil_dev.client.connection import Connection

_TABLES = "anvil.private.tables.client."


class Row(PortableObject):
    """A data table row as a client sees it: its columns, its id, and a reference the server accepts back.

    A row linked from far away arrives as a reference only; its columns are loaded from the server
    the first time one is read. `update()` and `delete()` go through the table or view the row was
    found by (the server checks that permission).
    """

    type_name = "anvil.tables.Row"
    _conn: Connection | None = None
    _via: Any = None  # the Table (or view) this row was found through, if any

    def get_id(self) -> str:
        return self.data.get("id")

    def _columns(self) -> dict[str, Any]:
        if "data" not in self.data and self._conn is not None:
            fresh = self._conn.call(_TABLES + "get_row", self)
            self.data["data"] = fresh.data.get("data") or {}
        return self.data.get("data") or {}

    def __getitem__(self, key: str) -> Any:
        return self._linked(self._columns()[key])

    def get(self, key: str, default: Any = None) -> Any:
        return self._linked(self._columns().get(key, default))

    def _linked(self, value: Any) -> Any:
        # Rows linked from a row of a client_writable_cascade view are written through that view.
        via = self._via
        if via is not None and isinstance(via.data, dict) and via.data.get("perm") == "rwc":
            for r in value if isinstance(value, list) else [value]:
                if isinstance(r, Row) and r._via is None:
                    r._via = via
        return value

    def keys(self) -> Any:
        return self._columns().keys()

    def items(self) -> Any:
        return self._columns().items()

    def __iter__(self) -> Any:
        return iter(self._columns().items())

    def _need_conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("this row was not read through a connection")
        return self._conn

    def update(self, **values: Any) -> None:
        """Write columns (allowed through a client_writable view, or a table with client: full)."""
        fresh = self._need_conn().call(_TABLES + "update_row", self._via, self, values)
        self.data["data"] = fresh.data.get("data") or {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.update(**{key: value})

    def delete(self) -> None:
        self._need_conn().call(_TABLES + "delete_row", self._via, self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and other.get_id() == self.get_id()

    def __hash__(self) -> int:
        return hash(self.get_id())

    def __repr__(self) -> str:
        return f"<Row {self.get_id()} {self.data.get('data')!r}>"


class SearchIterator(PortableObject):
    """A data table search returned by a server function: its rows, iterable and indexable as a list.

    A search of more than one page arrives as its first page and a cursor (`{"rows", "more"}`);
    the further pages are fetched from the server as iteration or indexing reaches them.
    """

    type_name = "anvil.tables.SearchIterator"
    _conn: Connection | None = None

    def _paged(self) -> bool:
        return isinstance(self.data, dict) and "more" in self.data

    def _more(self) -> bool:
        """Fetch the next page into data["rows"]; False at the end."""
        if not self._paged() or self.data.get("done") or self._conn is None:
            return False
        page = self._conn.call(_TABLES + "next_page", self.data["more"], len(self.data["rows"]))
        self.data["rows"] += page["rows"]
        if not page["more"]:
            self.data["done"] = True
        return bool(page["rows"])

    def _rows(self) -> list[Any]:
        return self.data["rows"] if self._paged() else (self.data or [])

    def __iter__(self) -> Any:
        i = 0
        while True:
            rows = self._rows()
            while i >= len(rows):
                if not self._more():
                    return
            yield rows[i]
            i += 1

    def __len__(self) -> int:
        if self._paged() and not self.data.get("done") and self._conn is not None:
            return int(self._conn.call(_TABLES + "cursor_length", self.data["more"]))
        return len(self._rows())

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int) and index >= 0:
            while index >= len(self._rows()) and self._more():
                pass
        elif self._paged():
            while self._more():
                pass
        return self._rows()[index]

    def __serialize__(self, info: Any) -> Any:
        if self._paged():
            return {"rows": self.data["rows"], "more": self.data["more"]}
        return self.data

    def __repr__(self) -> str:
        return f"<SearchIterator {self._rows()!r}{' ...' if self._paged() and not self.data.get('done') else ''}>"


class Table(PortableObject):
    """A data table (or a view of one) that client code may use, as Anvil's client `app_tables` gives.

    Searches load lazily, a page at a time; what is allowed (search or write, which rows, which
    columns) is decided by the server from the table's `client` permission or the view's kind.
    """

    type_name = "anvil.tables.Table"
    _conn: Connection | None = None

    def _call(self, op: str, *args: Any) -> Any:
        if self._conn is None:
            raise RuntimeError("this table was not read through a connection")
        return self._conn.call(_TABLES + op, *args)

    def _rows(self, rows: list[Any]) -> list[Any]:
        for r in rows:
            if isinstance(r, Row):
                r._via = self
        return rows

    def search(self, *args: Any, page_size: int | None = None, **kwargs: Any) -> ClientSearch:
        return ClientSearch(self, list(args), kwargs, page_size)

    def get(self, *args: Any, **kwargs: Any) -> Row | None:
        row = self._call("get", self, list(args), kwargs)
        return self._rows([row])[0] if row is not None else None

    def get_by_id(self, row_id: str) -> Row | None:
        row = self._call("get_by_id", self, row_id)
        return self._rows([row])[0] if row is not None else None

    def add_row(self, **values: Any) -> Row:
        return self._rows([self._call("add_row", self, values)])[0]

    def list_columns(self) -> list[dict[str, Any]]:
        return self._call("list_columns", self)

    def __repr__(self) -> str:
        return f"<Table {self.data.get('name')}{' view' if self.data.get('perm') else ''}>"


class _OrderBy(PortableObject):
    type_name = "anvil.tables.order_by"


def order_by(column_name: str, ascending: bool = True) -> PortableObject:
    """anvil.tables.order_by for a client search: `table.search(order_by("n"), owner="ann")`."""
    return _OrderBy({"column_name": column_name, "ascending": ascending})


class ClientSearch:
    """The rows of a client-side search, fetched a page at a time as they are iterated."""

    def __init__(self, table: Table, args: list[Any], kwargs: dict[str, Any], page_size: int | None) -> None:
        self._table = table
        self._args = args
        self._kwargs = kwargs
        self._page_size = page_size
        self._loaded: list[Row] = []
        self._more = True
        self.pages_loaded = 0

    def _next_page(self) -> bool:
        if not self._more:
            return False
        page = self._table._call("search", self._table, self._args, self._kwargs, len(self._loaded), self._page_size)
        self._loaded += self._table._rows(page["rows"])
        self._more = bool(page["more"])
        self.pages_loaded += 1
        return bool(page["rows"])

    def __iter__(self) -> Any:
        i = 0
        while True:
            while i >= len(self._loaded):
                if not self._next_page():
                    return
            yield self._loaded[i]
            i += 1

    def __getitem__(self, index: int) -> Row:
        if index < 0:
            raise ValueError("search indices must be non-negative integers")
        while index >= len(self._loaded) and self._next_page():
            pass
        if index >= len(self._loaded):
            raise IndexError("search index out of range")
        return self._loaded[index]

    def __len__(self) -> int:
        if not self._more:
            return len(self._loaded)
        return int(self._table._call("length", self._table, self._args, self._kwargs))

    def __repr__(self) -> str:
        return f"<ClientSearch of {self._table!r}: {len(self._loaded)} rows loaded>"


class AppTables:
    """`connection.app_tables`: the tables client code may use, by name (fetched once)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._tables: dict[str, Table] | None = None

    def _all(self) -> dict[str, Table]:
        if self._tables is None:
            self._tables = self._conn.call(_TABLES + "get_app_tables")
        return self._tables or {}

    def __getattr__(self, name: str) -> Table:
        if name.startswith("_"):
            raise AttributeError(name)
        table = self._all().get(name)
        if table is None:
            raise AttributeError(f"No such app table: '{name}'")
        return table

    def __getitem__(self, name: str) -> Table:
        return self.__getattr__(name)

    def __iter__(self) -> Any:
        return iter(self._all())
