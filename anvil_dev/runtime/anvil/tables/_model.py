"""Accelerated Tables' model classes: `app_tables.t.Row`, the app's subclasses of it, buffered changes and drafts.

`app_tables.t.Row` is a per-table subclass of `Row`; an app may subclass it
(`class Person(app_tables.people.Row, attrs=True, buffered=True): ...`) and every row of that
table is then an instance of the newest subclass (v2/_model.py:67-203).
"""

from __future__ import annotations

import copy
from typing import Any

from anvil.tables._row import Row, to_user
from anvil_dev import services
from anvil_dev.services.tables import NoSuchColumnError, TableError

_base_models: dict[int, type[Row]] = {}
_models: dict[int, type[Row]] = {}
_SPELLING = {
    "client_writeable": "client_writable",
    "client_updateable": "client_updatable",
    "client_createable": "client_creatable",
    "client_deleteable": "client_deletable",
}
_UNSET: Any = object()


class _BufferedContext:
    """What buffer_changes() returns: inside `with`, writes are buffered; leaving drops the buffer."""

    def __init__(self, row: Row) -> None:
        self._row = row

    def __enter__(self) -> _BufferedContext:
        if self._row._buffer is None:
            object.__setattr__(self._row, "_buffer", {})
        return self

    def __exit__(self, *exc: Any) -> None:
        # Unsaved changes are dropped; a realized row leaves buffered mode, a draft stays a draft.
        if self._row._id is None:
            self._row._buffer.clear()
        else:
            object.__setattr__(self._row, "_buffer", None)


class ModelRow(Row):
    """A v2 row: Row plus buffered changes, drafts, save()/reset() and fetch() (v2/_row.py:818-968)."""

    __slots__ = ()
    _Row_buffered_ = False
    _Row_permissions_ = {"update": False, "create": False, "delete": False}
    _Row_table_id_: int = 0

    def __new__(cls, **values: Any) -> ModelRow:
        """A draft row of this table: it is written by save()."""
        self: ModelRow = object.__new__(model_class(cls._Row_table_id_))  # type: ignore[assignment]
        s = object.__setattr__
        for name, value in (
            ("_table_id", cls._Row_table_id_),
            ("_id", None),
            ("_cache", {}),
            ("_deleted", False),
            ("_only", None),
            ("_depth", 0),
            ("_buffer", dict(values)),
        ):
            s(self, name, value)
        return self

    def __init__(self, **values: Any) -> None:
        pass

    def __init_subclass__(
        cls,
        attrs: bool = False,
        buffered: bool = False,
        client_writable: bool = False,
        client_updatable: Any = _UNSET,
        client_creatable: Any = _UNSET,
        client_deletable: Any = _UNSET,
        **kws: Any,
    ) -> None:
        for attr in ("__deserialize__", "__serialize__", "__init__", "__new__", "__new_deserialized__"):
            if attr in cls.__dict__:
                raise TypeError(
                    f"It is not possible to customize the method {attr!r} for {cls.__module__}.{cls.__name__}"
                )
        for wrong, right in _SPELLING.items():
            if wrong in kws:
                raise TypeError(f"Parameter '{wrong}' is misspelled. Did you mean '{right}'?")
        if kws:
            raise TypeError(f"Unexpected keyword arguments: {kws}")
        super().__init_subclass__()
        if attrs and "__getattr__" not in cls.__dict__:
            cls.__getattr__ = _getattr_impl  # type: ignore[attr-defined]
            cls.__setattr__ = _setattr_impl  # type: ignore[method-assign,assignment]
        if buffered:
            cls._Row_buffered_ = True
        perms = dict(cls._Row_permissions_)
        for kind, given in (("update", client_updatable), ("create", client_creatable), ("delete", client_deletable)):
            if given is not _UNSET:
                perms[kind] = bool(given)
            elif client_writable:
                perms[kind] = True
        cls._Row_permissions_ = perms
        if cls.__dict__.get("_Row_is_base_"):
            return
        _models[cls._Row_table_id_] = cls
        _register_wire(cls)

    def buffer_changes(self, buffered: bool | None = None) -> _BufferedContext | None:
        if buffered:
            object.__setattr__(self, "_buffer", self._buffer if self._buffer is not None else {})
            return _BufferedContext(self)
        if buffered is None:
            return _BufferedContext(self)
        if self._id is None:
            raise ValueError(
                "Changes in a draft row must always be buffered - call save() to convert to a "
                "realized row or reset to clear the buffer"
            )
        object.__setattr__(self, "_buffer", None)
        return None

    @property
    def buffered_changes(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._buffer) if self._buffer is not None else None

    def save(self) -> None:
        save_all(self)

    def reset(self) -> None:
        reset_all(self)

    def fetch(self, fetch: Any) -> None:
        from anvil.tables.query import fetch_only

        if not isinstance(fetch, fetch_only):
            raise TypeError(f"expected a q.fetch_only() object, got {type(fetch).__name__!r}")
        self._fill()


def _getattr_impl(self: Row, attr: str) -> Any:
    try:
        return self[attr]
    except (NoSuchColumnError, TableError):
        raise AttributeError(attr) from None


def _setattr_impl(self: Row, attr: str, value: Any) -> None:
    if hasattr(getattr(type(self), attr, None), "__set__"):
        object.__setattr__(self, attr, value)
    else:
        self[attr] = value


def _register_wire(cls: type) -> None:
    # Every model travels as "anvil.tables.Row": our clients know that one name.
    try:
        from anvil._registry import REGISTRY
    except ImportError:
        return
    REGISTRY.names[cls] = "anvil.tables.Row"


def base_model(table_id: int, name: str) -> type[Row]:
    """`app_tables.<name>.Row`: the table's own model class, made once per process."""
    cls = _base_models.get(table_id)
    if cls is None:
        cls = type(
            "Row",
            (ModelRow,),
            {
                "__slots__": (),
                "_Row_table_id_": table_id,
                "_Row_is_base_": True,
                "__module__": "anvil.tables",
                "__qualname__": "Row",
                "_Row_prefix_": f"app_tables.{name}.Row",
            },
        )
        _base_models[table_id] = cls
        _register_wire(cls)
    return cls


def model_class(table_id: int) -> type[Row]:
    model = _models.get(table_id)
    if model is not None:
        return model
    return base_model(table_id, services.current().tables.table_by_id(table_id).name)


def save_all(*rows: Row) -> None:
    """Write every buffered change and create every draft, linked drafts first, in one transaction."""
    from anvil.tables import Transaction

    st = services.current().tables
    order: list[Row] = []
    seen: set[int] = set()

    def walk(row: Row) -> None:
        if id(row) in seen or row._buffer is None:
            return
        seen.add(id(row))
        for value in row._buffer.values():
            for linked in value if isinstance(value, list) else [value]:
                if isinstance(linked, Row) and linked._id is None:
                    walk(linked)
        order.append(row)

    for row in rows:
        if not isinstance(row, Row):
            raise TypeError("Must pass a table row")
        walk(row)

    def write() -> None:
        for row in order:
            values = dict(row._buffer or {})
            if row._id is None:
                rid, data = st.add_row(row._table_id, values)
                object.__setattr__(row, "_id", rid)
                object.__setattr__(row, "_cache", {k: to_user(v) for k, v in data.items()})
            elif values:
                Row.update(_unbuffered(row), values)
            object.__setattr__(row, "_buffer", {} if getattr(type(row), "_Row_buffered_", False) else None)

    if st.in_transaction():
        write()
    else:
        with Transaction(relaxed=True):
            write()


def _unbuffered(row: Row) -> Row:
    """A view of the same row that writes through (its cache is the row's own)."""
    twin = Row._make(row._table_id, row._id)
    object.__setattr__(twin, "_cache", row._cache)
    object.__setattr__(twin, "_buffer", None)
    return twin


def reset_all(*rows: Row) -> None:
    """Drop the buffered changes of these rows (drafts stay drafts, with nothing in them)."""
    for row in rows:
        if row._buffer is not None:
            row._buffer.clear()
