"""`anvil.tables.Row`: a live row with a cache, portable as "anvil.tables.Row"."""

from __future__ import annotations

import copy
import datetime as _dt
import json
import sys
from collections.abc import Callable
from typing import Any

from anvil.tables._values import _TableMedia, _utc
from anvil_dev import services
from anvil_dev.services.tables import MediaRef, NoSuchColumnError, RowDeleted, RowRef, TableError

# Rows on the wire: the row itself and the rows it links to carry their data; links further
# away carry only id, table and MAC, so a cycle of links cannot make a message recurse.
_WIRE_DATA_DEPTH = 2


def to_user(value: Any) -> Any:
    """A value from the service as server code sees it: links become Rows, media Media."""
    if isinstance(value, RowRef):
        return Row._make(value.table_id, value.row_id)
    if isinstance(value, MediaRef):
        return _TableMedia(value.media_id)
    if isinstance(value, list) and value and isinstance(value[0], RowRef):
        return [Row._make(r.table_id, r.row_id) for r in value]
    if isinstance(value, _dt.datetime) and value.tzinfo is _dt.timezone.utc:
        return value.replace(tzinfo=_utc())
    return value


# anvil.tables._model.model_class, bound on first use: the model classes derive from Row, so
# _model imports this module, and an import inside _make would cost a lookup per row.
_model_class: Callable[[int], type[Row]] | None = None


def _bind_model_class() -> Callable[[int], type[Row]]:
    global _model_class
    from anvil.tables._model import model_class

    _model_class = model_class
    return model_class


def parse_row_id(row_id: Any) -> tuple[int, int]:
    """(table id, row id) from Anvil's "[table_id,row_id]" form (a list or tuple will do too)."""
    try:
        parts = json.loads(row_id) if isinstance(row_id, str) else row_id
        tid, rid = parts
        if isinstance(tid, bool) or isinstance(rid, bool):
            raise ValueError
        return int(tid), int(rid)
    except (TypeError, ValueError, OverflowError):  # OverflowError: infinity (1e999 in JSON)
        raise TableError(f'Invalid row id {row_id!r:.80}: expected the form "[table_id,row_id]"') from None


class AbstractTableClass:
    """The base of Row, Table and SearchIterator, as on Anvil (services/anvil/tables/_base_classes.py:6)."""

    __slots__ = ()


class Row(AbstractTableClass):
    """A row of a data table. Reads come from a cache filled by the search that found the row
    (or on first use); writes go to the database at once."""

    __slots__ = ("_table_id", "_id", "_cache", "_deleted", "_only", "_depth", "_buffer")
    _table_id: int
    _id: int
    _cache: dict[str, Any] | None
    _deleted: bool
    _only: tuple[str, ...] | None
    _depth: int
    # Accelerated Tables only: None, or the changes buffered since buffer_changes()/of a draft.
    _buffer: dict[str, Any] | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Rows cannot be created directly: use app_tables.<table>.add_row(...)")

    @classmethod
    def _make(
        cls,
        table_id: int,
        row_id: int,
        data: dict[str, Any] | None = None,
        only: tuple[str, ...] | None = None,
        depth: int = 0,
    ) -> Row:
        # v1 rows are plain `Row`s; v2 rows are the table's model class (`app_tables.t.Row` or
        # the app's subclass of it), so they have buffer_changes(), save() and the rest.
        klass = (_model_class or _bind_model_class())(table_id) if cls is Row and services.current().tables.v2 else cls
        self = object.__new__(klass)
        s = object.__setattr__
        s(self, "_table_id", table_id)
        s(self, "_id", row_id)
        s(self, "_cache", None if data is None else {k: to_user(v) for k, v in data.items()})
        s(self, "_deleted", False)
        s(self, "_only", only)
        s(self, "_depth", depth)
        s(self, "_buffer", {} if getattr(klass, "_Row_buffered_", False) else None)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        # A property with a setter on a model class works (as v2/_utils.py maybe_handle_descriptors).
        if hasattr(getattr(type(self), name, None), "__set__") and not name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"Rows cannot have local state, trying to set {name!r} attribute on {self!r}")

    def _anvil_row_ref(self) -> RowRef:
        if self._deleted:
            raise RowDeleted("This row has been deleted")
        return RowRef(self._table_id, self._id)

    # -------------------------------------------------------------- reading

    def _fill(self) -> dict[str, Any]:
        data = services.current().tables.load_row(self._table_id, self._id)
        if data is None:
            object.__setattr__(self, "_deleted", True)
            raise RowDeleted("This row has been deleted")
        cache = {k: to_user(v) for k, v in data.items()}
        object.__setattr__(self, "_cache", cache)
        return cache

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str):
            raise TypeError(f"Row columns are always strings, not {type(key).__name__}")
        if self._deleted:
            raise RowDeleted("This row has been deleted")
        if self._buffer is not None and key in self._buffer:
            return (
                copy.deepcopy(self._buffer[key]) if isinstance(self._buffer[key], (dict, list)) else self._buffer[key]
            )
        if self._id is None:  # a draft: what it has not been given reads as None
            return None
        if self._only is not None and key not in self._only:
            raise NoSuchColumnError(f"No such column '{key}'")
        cache = self._cache
        if cache is None or key not in cache:
            cache = self._fill()
            if key not in cache:
                try:
                    services.current().tables.column(self._table_id, key)
                except NoSuchColumnError:
                    if services.current().tables.v2:
                        raise  # "No such column 'x'" (v2/_row.py:736-738)
                    # A plain TableError on v1 (tables/rpc.clj:876-878).
                    raise TableError(f"No such column '{key}' in this table") from None
                cache = self._fill()
        value = cache[key]
        # The cache must not change when the caller edits what it got.
        if isinstance(value, list) and value and isinstance(value[0], Row):
            return list(value)
        if isinstance(value, (dict, list)):
            return copy.deepcopy(value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except NoSuchColumnError:
            return default
        except TableError:
            if key in self.keys():
                raise
            return default

    def keys(self) -> list[str]:
        if self._id is None:
            return list(self._buffer or {})
        if self._deleted:
            raise RowDeleted("This row has been deleted")
        names = list(services.current().tables.table_by_id(self._table_id).columns)
        return [n for n in names if n in self._only] if self._only is not None else names

    def values(self) -> list[Any]:
        return [self[k] for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self[k]) for k in self.keys()]

    def __iter__(self) -> Any:
        return iter(self.items())

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def get_id(self) -> str | None:
        if self._id is None:
            return None  # a draft row has no id until it is saved (v2/_row.py:857-862)
        return f"[{self._table_id},{self._id}]"

    def refresh(self, fetch: Any = None) -> None:
        """Re-read the row from the database."""
        self._fill()

    # -------------------------------------------------------------- writing

    def __setitem__(self, key: str, value: Any) -> None:
        self.update(**{key: value})

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Write columns (row.update(a=1) or row.update({"a": 1})); with no arguments, re-read the row."""
        if len(args) > 1:
            raise TypeError(f"update() takes at most 1 positional argument ({len(args)} given)")
        values = dict(args[0]) if args else {}
        values.update(kwargs)
        if self._deleted:
            raise RowDeleted("This row has been deleted")
        if self._buffer is not None and values:
            self._buffer.update(values)
            return
        if not values:
            self._fill()
            return
        if self._only is not None:
            for k in values:
                if k not in self._only:
                    raise NoSuchColumnError(f"No such column '{k}'")
        try:
            written = services.current().tables.update_row(self._table_id, self._id, values)
        except RowDeleted:
            object.__setattr__(self, "_deleted", True)
            raise
        if self._cache is not None:
            self._cache.update((k, to_user(v)) for k, v in written.items())

    def delete(self) -> None:
        if self._deleted:
            raise RowDeleted("This row has been deleted")
        object.__setattr__(self, "_deleted", True)
        services.current().tables.delete_row(self._table_id, self._id)

    # -------------------------------------------------------------- identity

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return self._id == other._id and self._table_id == other._table_id

    def __hash__(self) -> int:
        if self._id is None:
            raise ValueError("draft rows are unhashable")  # v2/_row.py:754-756
        return hash((self._table_id, self._id))

    def __repr__(self) -> str:
        if self._cache is None or self._deleted:
            return f"<anvil.tables.Row {self.get_id()}{' (deleted)' if self._deleted else ''}>"
        shown = [f"{k}={v!r:.40}" for k, v in list(self._cache.items())[:5]]
        more = ", ..." if len(self._cache) > 5 else ""
        return f"<anvil.tables.Row: {', '.join(shown)}{more}>"

    # -------------------------------------------------------------- the wire

    def __serialize__(self, info: Any) -> dict[str, Any]:
        if self._id is None or self._buffer:
            from anvil.server import SerializationError  # v2/_row.py:448-466

            raise SerializationError(
                f"Rows with buffered changes cannot be serialized. Call save() or reset() first, (Found {self!r})"
            )
        st = services.current().tables
        out: dict[str, Any] = {
            "id": self.get_id(),
            "table": st.table_by_id(self._table_id).name,
            "mac": st.mac("row", self._table_id, self._id),
        }
        if self._depth < _WIRE_DATA_DEPTH:
            data = {k: self._wire_value(v) for k, v in self.items()}
            if not getattr(info, "remote_is_trusted", True):
                data = _for_client(out["table"], data)
            out["data"] = data
        return out

    def _wire_value(self, value: Any) -> Any:
        # A linked row travels as a copy that knows how far it is from the row being sent.
        if isinstance(value, Row):
            return Row._make(value._table_id, value._id, None, None, self._depth + 1)._share(value)
        if isinstance(value, list) and value and isinstance(value[0], Row):
            return [self._wire_value(v) for v in value]
        return value

    def _share(self, original: Row) -> Row:
        object.__setattr__(self, "_cache", original._cache)
        return self

    @classmethod
    def __new_deserialized__(cls, data: Any, info: Any) -> Row:
        if not isinstance(data, dict):
            raise TableError("Invalid row reference")
        try:
            tid, rid = parse_row_id(data.get("id"))
        except TableError as e:
            # Bad input from the caller, as a SerializationError (400), not a failure of the server.
            from anvil._registry import SerializationError

            raise SerializationError(f"Invalid row reference: {e}") from None
        st = services.current().tables
        if not getattr(info, "remote_is_trusted", False) and not st.check_mac(data.get("mac"), "row", tid, rid):
            raise _permission_denied("Invalid row reference: its signature does not match (was it altered?)")
        st.table_by_id(tid)
        return cls._make(tid, rid)


_warned_password_hash = False


def _for_client(table_name: str, data: dict[str, Any]) -> dict[str, Any]:
    """Row data as client code may see it: without the table's client_hidden columns (as Anvil's
    v2/_utils.py clean_row_data strips them for an untrusted remote)."""
    global _warned_password_hash
    from anvil.tables._client import strip_hidden

    data = strip_hidden(table_name, data)
    if "password_hash" in data and not _warned_password_hash:
        _warned_password_hash = True
        print(
            f"Warning: a row of table '{table_name}' went to client code with its password_hash column; "
            "mark that column client_hidden: true in anvil.yaml's db_schema to keep it on the server",
            file=sys.__stderr__,
        )
    return data


def _permission_denied(message: str) -> Exception:
    try:
        from anvil.server import PermissionDenied
    except ImportError:
        return TableError(message)
    return PermissionDenied(message)
