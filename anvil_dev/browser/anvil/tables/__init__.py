"""`anvil.tables` in client code: rows the server sends (read, and passed back to it)."""

from anvil import server


class TableError(server.AnvilWrappedError):
    pass


class NoSuchColumnError(TableError):
    pass


class TransactionConflict(server.AnvilWrappedError):
    pass


for _n, _c in (("anvil.tables.TableError", TableError), ("anvil.tables.NoSuchColumnError", NoSuchColumnError),
               ("anvil.tables.TransactionConflict", TransactionConflict)):
    server.register_exception_type(_n, _c)


class Row:
    """A data table row sent by server code: its columns, and its id, table and MAC to send back."""

    def __deserialize__(self, data, info):
        self._spec = {k: data.get(k) for k in ("id", "table", "mac")}
        self._data = dict(data.get("data") or {})

    def __serialize__(self, info):
        return dict(self._spec)

    def __getitem__(self, key):
        try:
            return self._data[key]
        except KeyError:
            raise NoSuchColumnError("No such column '%s'" % key)

    def get(self, key, default=None):
        return self._data.get(key, default)

    def get_id(self):
        return self._spec.get("id")

    def keys(self):
        return self._data.keys()

    def items(self):
        return self._data.items()

    def __iter__(self):
        return iter(self._data.items())

    def __eq__(self, other):
        return isinstance(other, Row) and other.get_id() == self.get_id()

    def __hash__(self):
        return hash(self.get_id())

    def __repr__(self):
        return "<anvil.tables.Row %s>" % self.get_id()


server.REGISTRY.register(Row, "anvil.tables.Row")


class _AppTables:
    def __getattr__(self, name):
        raise TableError("app_tables.%s is not available to client code here: call a server function "
                         "that reads the table (client access to tables is not supported yet)" % name)


app_tables = _AppTables()


def order_by(column_name, ascending=True):
    return {"column": column_name, "ascending": ascending}
