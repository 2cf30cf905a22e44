"""`anvil.tables` in client code: `app_tables` and the rows, tables, views and searches that server
functions return, read and written through the server's client functions
(`anvil.private.tables.client.*`), which check every permission: a table's `client` setting, the
views server code made, `client_hidden` columns. What they refuse arrives as Anvil's errors
(`anvil.server.PermissionDenied`, `anvil.tables.NoSuchColumnError`)."""

from anvil import server
from anvil.tables._rows import Row, SearchIterator, Table, _call


class TableError(server.AnvilWrappedError):
    pass


class NoSuchColumnError(TableError):
    pass


class TransactionConflict(server.AnvilWrappedError):
    pass


for _n, _c in (("anvil.tables.TableError", TableError), ("anvil.tables.NoSuchColumnError", NoSuchColumnError),
               ("anvil.tables.TransactionConflict", TransactionConflict)):
    server.register_exception_type(_n, _c)


class order_by:
    """Sort a search by a column: `app_tables.x.search(tables.order_by("n", ascending=False))`."""

    def __init__(self, column_name, ascending=True):
        self.column_name = column_name
        self.ascending = ascending


server.REGISTRY.register(order_by, "anvil.tables.order_by")


class fetch_only:
    """Load only these columns of the rows a search finds (others are loaded when read)."""

    def __init__(self, *only_cols, **linked_cols):
        spec = dict.fromkeys(only_cols, True)
        for col, only in linked_cols.items():
            spec[col] = only.spec
        self.spec = spec


server.REGISTRY.register(fetch_only, "anvil.tables.fetch_only")


class AppTables:
    """The tables client code may use, by name (fetched from the server once per page)."""

    _cache = None

    def _all(self):
        if AppTables._cache is None:
            AppTables._cache = _call("get_app_tables") or {}
        return AppTables._cache

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        table = self._all().get(name)
        if table is None:
            # Brython words it as Anvil does: "'AppTables' object has no attribute 'private'". A table
            # whose client permission is 'none' is not listed for client code.
            raise AttributeError(name)
        return table

    def __getitem__(self, name):
        try:
            return self.__getattr__(name)
        except AttributeError:
            raise KeyError(name)

    def __iter__(self):
        return iter(self._all())

    def __dir__(self):
        return list(self._all())


app_tables = AppTables()


def get_table_by_id(table_id):
    for t in app_tables._all().values():
        if t._ref.get("id") == table_id:
            return t
    return None


class Transaction:
    def __init__(self, *a, **kw):
        raise RuntimeError("Transactions are for server code: call a server function that uses one")


def in_transaction(*a, **kw):
    raise RuntimeError("in_transaction is for server code: put the function in server_code/")
