"""`anvil.tables` Table (and its client views), `app_tables` and get_table_by_id."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import anvil
from anvil.tables._model import base_model
from anvil.tables._row import AbstractTableClass, Row, _permission_denied, parse_row_id
from anvil.tables._search import SearchIterator
from anvil_dev import services
from anvil_dev.services.tables import Compiled, TableError
from anvil_dev.services.tables.query import QUERY_CLASSES, OfQuery, all_of, only_cols

_PERMS = {"r": "client_readable", "rw": "client_writable", "rwc": "client_writable_cascade"}


def _canon(value: Any) -> Any:
    """A JSON-able, order-independent form of a view's constraint, for its MAC."""
    if isinstance(value, Row):
        return ["row", value._table_id, value._id]
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return ["time", value.isoformat()]
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return [type(value).__name__, _canon(vars(value))]
    return value


class Table(AbstractTableClass):
    """A data table (`app_tables.name`), or a view of it restricted to rows matching a query."""

    def __init__(
        self,
        table_id: int,
        name: str,
        perm: str | None = None,
        view_args: tuple[Any, ...] = (),
        view_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._id = table_id
        self._name = name
        self._perm = perm
        self._view_args = tuple(view_args)
        self._view_kwargs = dict(view_kwargs or {})

    @property
    def _is_view(self) -> bool:
        return bool(self._view_args or self._view_kwargs)

    def _compile(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Compiled:
        if self._is_view:
            args = (
                *args,
                all_of(*[a for a in self._view_args if isinstance(a, OfQuery)], **self._view_kwargs),
                *[a for a in self._view_args if isinstance(a, only_cols)],
            )
        return services.current().tables.compile(self._id, args, kwargs)

    # -------------------------------------------------------------- rows in, rows out

    def add_row(self, **column_values: Any) -> Row:
        return self.add_rows([column_values])[0]

    def add_rows(self, rows: Iterable[dict[str, Any]]) -> list[Row]:
        # A writable view's plain column=value constraints are what its new rows hold.
        fixed = {k: v for k, v in self._view_kwargs.items() if not isinstance(v, QUERY_CLASSES)}
        prepared = []
        for values in rows:
            values = dict(values)
            for k, v in fixed.items():
                if k in values and values[k] != v:
                    raise TableError(f"This view only holds rows whose '{k}' is {v!r:.60}")
                values[k] = v
            prepared.append(values)
        return [Row._make(self._id, rid, data) for rid, data in services.current().tables.add_rows(self._id, prepared)]

    def search(self, *args: Any, **kwargs: Any) -> SearchIterator:
        recompile = functools.partial(self._compile, args, kwargs)
        return SearchIterator(self._id, recompile(), recompile=recompile)

    def get(self, *args: Any, **kwargs: Any) -> Row | None:
        compiled = self._compile(args, kwargs)
        rows = services.current().tables.select(self._id, compiled, limit=2)
        if len(rows) > 1:
            raise TableError("More than one row matched this query")
        return Row._make(self._id, rows[0][0], rows[0][1], compiled.only) if rows else None

    def _matches_any(self, *args: Any, **kwargs: Any) -> bool:
        """Whether any row (of this table or view) matches: one query, at most one row read."""
        return bool(services.current().tables.select(self._id, self._compile(args, kwargs), limit=1, cols=[]))

    def get_by_id(self, row_id: Any, fetch: Any = None) -> Row | None:
        rid = _clean_row_id(row_id, self._id, services.current().tables.v2)
        if rid is None:
            return None
        compiled = self._compile((), {}) if self._is_view else None
        if compiled is not None and not services.current().tables.has_row(self._id, rid, compiled):
            return None
        data = services.current().tables.load_row(self._id, rid)
        return Row._make(self._id, rid, data) if data is not None else None

    def has_row(self, row: Any) -> bool:
        # Anvil answers False for anything that is not a row (apps pass a dict for "not saved yet").
        if not isinstance(row, Row) or row._table_id != self._id:
            return False
        return services.current().tables.has_row(self._id, row._id, self._compile((), {}) if self._is_view else None)

    __contains__ = has_row

    def delete_all_rows(self) -> None:
        if self._is_view:
            recompile = functools.partial(self._compile, (), {})
            services.current().tables.delete_where(self._id, recompile(), recompile)
        else:
            services.current().tables.delete_where(self._id)

    def list_columns(self) -> list[dict[str, Any]]:
        info = services.current().tables.table_by_id(self._id)
        return [
            {"name": c.name, "type": c.type, **({"table_id": c.target} if c.target is not None else {})}
            for c in info.columns.values()
        ]

    def to_csv(self, escape_for_excel: bool = False) -> anvil.BlobMedia:
        return self.search().to_csv(escape_for_excel)

    # -------------------------------------------------------------- views for client code

    def _view(self, perm: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Table:
        self._compile(args, kwargs)  # check the constraint now, not when the client uses it
        return Table(self._id, self._name, perm, self._view_args + args, {**self._view_kwargs, **kwargs})

    def client_readable(self, *args: Any, **kwargs: Any) -> Table:
        return self._view("r", args, kwargs)

    def client_writable(self, *args: Any, **kwargs: Any) -> Table:
        return self._view("rw", args, kwargs)

    def client_writable_cascade(self, *args: Any, **kwargs: Any) -> Table:
        return self._view("rwc", args, kwargs)

    def restrict_columns(self, col_spec: Any) -> Table:
        """A view showing only these columns (Accelerated Tables; v2/_table.py:63-67)."""
        _v2_only("restrict_columns")
        names = [col_spec] if isinstance(col_spec, str) else list(col_spec)
        info = services.current().tables.table_by_id(self._id)
        for n in names:
            if n not in info.columns:
                raise TableError(f"No such column '{n}' exists in table '{info.name}'")  # v2/basic_ops.clj:171
        return Table(self._id, self._name, self._perm, (*self._view_args, only_cols(*names)), self._view_kwargs)

    def _row_model(self) -> type[Row]:
        """`table.Row`, this table's model class (Accelerated Tables): subclass it to give rows methods."""
        _v2_only("Table.Row")
        return base_model(self._id, self._name)

    # -------------------------------------------------------------- identity and the wire

    def __iter__(self) -> Iterator[Row]:
        raise TypeError("You can't iterate on a table. Call search() on this table to get an iterator of rows instead.")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return (self._id, self._perm, _canon(self._view_args), _canon(self._view_kwargs)) == (
            other._id,
            other._perm,
            _canon(other._view_args),
            _canon(other._view_kwargs),
        )

    def __hash__(self) -> int:
        return hash((self._id, self._perm))

    def __repr__(self) -> str:
        view = f" ({_PERMS[self._perm]} view)" if self._perm else ""
        return f"<anvil.tables.Table: {self._name}{view}>"

    def _mac_parts(self) -> tuple[Any, ...]:
        canon = json.dumps([_canon(self._view_args), _canon(self._view_kwargs)], sort_keys=True, default=str)
        return ("table", self._id, self._perm or "", canon)

    def __serialize__(self, info: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self._id,
            "name": self._name,
            "perm": self._perm,
            "mac": services.current().tables.mac(*self._mac_parts()),
        }
        if self._is_view:
            out["view"] = {"args": list(self._view_args), "kwargs": self._view_kwargs}
        return out

    @classmethod
    def __new_deserialized__(cls, data: Any, info: Any) -> Table:
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise TableError("Invalid table reference")
        view: dict[str, Any] = data["view"] if isinstance(data.get("view"), dict) else {}
        table = cls(
            data["id"],
            str(data.get("name")),
            data.get("perm") if data.get("perm") in _PERMS else None,
            tuple(view.get("args") or ()),
            dict(view.get("kwargs") or {}),
        )
        if not getattr(info, "remote_is_trusted", False) and not services.current().tables.check_mac(
            data.get("mac"), *table._mac_parts()
        ):
            raise _permission_denied("Invalid table reference: its signature does not match (was it altered?)")
        table._name = services.current().tables.table_by_id(table._id).name
        return table


# Set after the class body, where a `Row` attribute would hide the Row class from its annotations.
Table.Row = property(Table._row_model)  # type: ignore[attr-defined]


class AppTables:
    """`app_tables`: each table of the app by its Python name (attribute or item)."""

    def __getattr__(self, name: str) -> Table:
        if name.startswith("__"):
            raise AttributeError(name)
        info = services.current().tables.table(name)
        if info is None:
            raise AttributeError(f"No such app table: '{name}'")
        return Table(info.id, info.name)

    def __getitem__(self, name: str) -> Table:
        try:
            return self.__getattr__(name)
        except AttributeError as e:
            raise KeyError(str(e)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("app_tables is read-only")

    def __iter__(self) -> AppTableIterator:
        return AppTableIterator()

    def __dir__(self) -> list[str]:
        return services.current().tables.table_names()

    def __repr__(self) -> str:
        return "<anvil.tables.app_tables>"


class AppTableIterator:
    """Iterating `app_tables`: the tables' Python names (services/anvil/tables/__init__.py:38)."""

    def __init__(self) -> None:
        self._names: Iterator[str] | None = None

    def __iter__(self) -> AppTableIterator:
        return self

    def __next__(self) -> str:
        if self._names is None:
            self._names = iter(services.current().tables.table_names())
        return next(self._names)


_ROW_ID = re.compile(r"^\[(\d+),(\d+)\]$")


def _clean_row_id(row_id: Any, table_id: int, v2: bool) -> int | None:
    """The row number get_by_id looks up, or None when it names no row of this table.

    v2 takes a bare row number or "[t,r]" exactly (tables/v2/basic_ops.clj:82-100); v1 a JSON
    "[t,r]" (tables/rpc.clj:950-953). Neither raises for an id that does not parse.
    """
    if v2:
        if isinstance(row_id, int) and not isinstance(row_id, bool):
            return row_id
        text = str(row_id)
        if text.isdigit():
            return int(text)
        m = _ROW_ID.match(text)
        return int(m.group(2)) if m and int(m.group(1)) == table_id else None
    try:
        tid, rid = json.loads(row_id) if isinstance(row_id, str) else (None, None)
    except (TypeError, ValueError):
        return None
    ok = all(isinstance(x, int) and not isinstance(x, bool) for x in (tid, rid))
    return rid if ok and tid == table_id else None


def _v2_only(what: str) -> None:
    if not services.current().tables.v2:
        raise AttributeError(
            f"{what} is only available with Accelerated Tables (set enable_v2: true in the "
            "tables service's client_config in anvil.yaml)"
        )


def get_table_by_id(table_id: Any) -> Table:
    """A table by its id (a row id "[table_id,row_id]" names its table too)."""
    if not services.current().tables.v2:
        raise TableError("get_table_by_id is only available in Accelerated Tables beta")  # tables/__init__.py:156
    return table_by_id(table_id)


def table_by_id(table_id: Any) -> Table:
    """get_table_by_id without the v2 check, for the runtime's own use (a legacy numeric user_table)."""
    if isinstance(table_id, str) and table_id.startswith("["):
        table_id = parse_row_id(table_id)[0]
    info = services.current().tables.table_by_id(int(table_id))
    return Table(info.id, info.name)
