"""Rows, tables (and views) and searches of `anvil.tables` in client code.

A Table is the reference the server handed out (signed, with a view's constraint); a Row carries
its id, table and MAC to send back, and its columns; a row linked from far away arrives as a
reference only and is loaded the first time a column is read. `row.update()` and `row.delete()`
go through the table or view the row was found by, which is what the server checks.
"""

from anvil import server

PREFIX = "anvil.private.tables.client."


def _call(op, *args):
    return server.call(PREFIX + op, *args)


def _via(table, rows):
    for r in rows:
        if isinstance(r, Row) and table is not None:
            r._via = table
    return rows


class Row:
    """A data table row: `row["col"]`, `row.update(col=...)`, `row.delete()`, `row.get_id()`."""

    _via = None

    def __deserialize__(self, data, info):
        self._spec = {k: data.get(k) for k in ("id", "table", "mac")}
        self._data = dict(data["data"]) if isinstance(data.get("data"), dict) else None

    def __serialize__(self, info):
        return dict(self._spec)

    def _columns(self):
        if self._data is None:
            fresh = _call("get_row", self)
            self._data = dict(fresh._data or {})
        return self._data

    def _linked(self, value):
        # Rows linked from a row of a client_writable_cascade view are written through that view.
        via = self._via
        if via is not None and via._ref.get("perm") == "rwc":
            for r in value if isinstance(value, list) else [value]:
                if isinstance(r, Row) and r._via is None:
                    r._via = via
        return value

    def __getitem__(self, key):
        cols = self._columns()
        if key not in cols:
            from anvil.tables import NoSuchColumnError
            raise NoSuchColumnError("No such column '%s'" % key)
        return self._linked(cols[key])

    def __setitem__(self, key, value):
        self.update(**{key: value})

    def __contains__(self, key):
        return key in self._columns()

    def get(self, key, default=None):
        return self._linked(self._columns().get(key, default))

    def update(self, *args, **values):
        """Write columns (through a client_writable view, or a table whose client permission is full)."""
        if args:
            values = dict(args[0], **values)
        fresh = _call("update_row", self._via, self, values)
        self._data = dict(fresh._data or {})

    def delete(self):
        _call("delete_row", self._via, self)

    def refresh(self):
        self._data = None
        self._columns()

    def get_id(self):
        return self._spec.get("id")

    def keys(self):
        return self._columns().keys()

    def items(self):
        return self._columns().items()

    def __iter__(self):
        return iter(self._columns().items())

    def __eq__(self, other):
        return isinstance(other, Row) and other.get_id() == self.get_id()

    def __hash__(self):
        return hash(self.get_id())

    def __repr__(self):
        return "<anvil.tables.Row %s>" % self.get_id()


class Table:
    """A data table, or a view of one that server code made, as client code may use it."""

    def __deserialize__(self, data, info):
        self._ref = dict(data)

    def __serialize__(self, info):
        return dict(self._ref)

    def search(self, *args, **kwargs):
        """A lazy search: its first page is fetched when it is first iterated (or indexed)."""
        page = kwargs.pop("page_size", None)
        for a in args:
            rows = getattr(a, "rows", None)
            if type(a).__name__ == "page_size" and isinstance(rows, int):
                page = rows
        return SearchIterator(self, list(args), kwargs, page)

    def get(self, *args, **kwargs):
        row = _call("get", self, list(args), kwargs)
        return _via(self, [row])[0] if row is not None else None

    def get_by_id(self, row_id, *args, **kwargs):
        row = _call("get_by_id", self, row_id)
        return _via(self, [row])[0] if row is not None else None

    def add_row(self, **values):
        return _via(self, [_call("add_row", self, values)])[0]

    def add_rows(self, rows):
        return [self.add_row(**r) for r in rows]

    def has_row(self, row):
        return isinstance(row, Row) and self.get_by_id(row.get_id()) is not None

    def list_columns(self):
        return _call("list_columns", self)

    def __repr__(self):
        return "<anvil.tables.Table %s%s>" % (self._ref.get("name"), " view" if self._ref.get("perm") else "")


class SearchIterator:
    """The rows of a search, fetched a page at a time as iteration or indexing reaches them: a
    client search (`table.search(...)`) or one a server function returned (its first page and a
    cursor the server signed)."""

    def __init__(self, table=None, args=None, kwargs=None, page_size=None, rows=None, cursor=None):
        self._table = table
        self._args = args or []
        self._kwargs = kwargs or {}
        self._page_size = page_size
        self._cursor = cursor
        self._loaded = list(rows or [])
        self._more = table is not None or cursor is not None
        self.pages_loaded = 1 if rows else 0

    @classmethod
    def __new_deserialized__(cls, data, info):
        if isinstance(data, dict) and "more" in data:
            return cls(rows=data.get("rows") or [], cursor=data["more"])
        return cls(rows=data or [])

    def __serialize__(self, info):
        if self._cursor is not None:
            return {"rows": self._loaded, "more": self._cursor}
        while self._next_page():
            pass
        return list(self._loaded)

    def _next_page(self):
        if not self._more:
            return False
        if self._cursor is not None:
            page = _call("next_page", self._cursor, len(self._loaded))
        else:
            page = _call("search", self._table, self._args, self._kwargs, len(self._loaded), self._page_size)
        self._loaded += _via(self._table, page["rows"])
        self._more = bool(page["more"])
        self.pages_loaded += 1
        return bool(page["rows"])

    def __iter__(self):
        i = 0
        while True:
            while i >= len(self._loaded):
                if not self._next_page():
                    return
            yield self._loaded[i]
            i += 1

    def __len__(self):
        if not self._more:
            return len(self._loaded)
        if self._cursor is not None:
            return int(_call("cursor_length", self._cursor))
        return int(_call("length", self._table, self._args, self._kwargs))

    def __bool__(self):
        return bool(self._loaded) or self._next_page()

    def __getitem__(self, index):
        if isinstance(index, int) and index >= 0:
            while index >= len(self._loaded) and self._next_page():
                pass
        else:  # a negative index or a slice: every row
            while self._next_page():
                pass
        return self._loaded[index]

    def __repr__(self):
        return "<anvil.tables.SearchIterator: %d rows loaded%s>" % (len(self._loaded), " ..." if self._more else "")


server.REGISTRY.register(Row, "anvil.tables.Row")
server.REGISTRY.register(Table, "anvil.tables.Table")
server.REGISTRY.register(SearchIterator, "anvil.tables.SearchIterator")
