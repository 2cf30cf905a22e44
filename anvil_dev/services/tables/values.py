"""Column types and the conversion of Python values to and from their SQL storage.

Storage, per column type (every SQL column is declared without a type, so SQLite keeps each
value exactly as bound and never coerces it):

    string        TEXT                   number   INTEGER or REAL, as given
    bool          INTEGER 0/1            date     TEXT 'YYYY-MM-DD'
    datetime      TEXT 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (fixed width: sorts as it compares)
    simpleObject  TEXT, compact JSON     media    INTEGER id in the media table
    link_single   INTEGER row id of the target table
    link_multiple TEXT, a JSON list of row ids of the target table
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from anvil_dev.services.tables.errors import TableError

TYPES = ("string", "number", "bool", "date", "datetime", "simpleObject", "media", "link_single", "link_multiple")
LINK_TYPES = ("link_single", "link_multiple")
# anvil.yaml's older names for the link types.
TYPE_ALIASES = {
    "liveObject": "link_single",
    "liveObjectArray": "link_multiple",
    "link": "link_single",
    "text": "string",
    "boolean": "bool",
    "simple_object": "simpleObject",
    "object": "simpleObject",
}
_TYPE_WORDS = {
    "string": "a string",
    "number": "a number",
    "bool": "a bool",
    "date": "a date",
    "datetime": "a datetime",
    "simpleObject": "a simple object",
    "media": "a media object",
    "link_single": "a link to a single row",
    "link_multiple": "a link to multiple rows",
}


class RowRef(NamedTuple):
    """Which row: the service's currency for links (the runtime's Row converts to and from it)."""

    table_id: int
    row_id: int


class MediaRef(NamedTuple):
    """A media value stored in the tables' media table; read only when asked for."""

    media_id: int


@dataclass
class Column:
    name: str
    type: str
    sql_name: str
    target: int | None = None  # table id a link column points to

    def describe(self) -> str:
        return _TYPE_WORDS.get(self.type, self.type)


def canonical_type(name: Any) -> str | None:
    name = TYPE_ALIASES.get(str(name), str(name))
    return name if name in TYPES else None


def row_ref(value: Any) -> RowRef | None:
    """The RowRef of a row-like value (a RowRef, or an object whose class has `_anvil_row_ref`)."""
    if isinstance(value, RowRef):
        return value
    get = getattr(type(value), "_anvil_row_ref", None)
    return get(value) if get is not None else None


def is_media(value: Any) -> bool:
    return (
        (not isinstance(value, (str, bytes, type)))
        and callable(getattr(value, "get_bytes", None))
        and hasattr(value, "content_type")
    )


def kind_of(value: Any) -> str:
    """How a value is named in error messages ("a string", "a list", ...)."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, _dt.datetime):
        return "a datetime"
    if isinstance(value, _dt.date):
        return "a date"
    if row_ref(value) is not None:
        return "a row"
    if is_media(value):
        return "a media object"
    return f"a {type(value).__name__}"


def datetime_to_sql(value: _dt.datetime) -> str:
    # A naive datetime is taken as the server's local time, as Anvil's server does.
    utc = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return utc.isoformat(sep=" ", timespec="microseconds")


def datetime_from_sql(text: str) -> _dt.datetime:
    # fromisoformat, not strptime: the first strptime in a process imports _strptime (3 ms).
    return _dt.datetime.fromisoformat(text).replace(tzinfo=_dt.timezone.utc)


def _bad(col: Column, value: Any, table: str) -> TableError:
    return TableError(f"Column '{col.name}' of table '{table}' is {col.describe()} - cannot set it to {kind_of(value)}")


def to_sql(col: Column, value: Any, table: str, put_media: Callable[[Any], int]) -> Any:
    """The stored form of `value` for a write to `col`; raises TableError on a wrong type."""
    if value is None:
        return None
    t = col.type
    if t == "string":
        if isinstance(value, str):
            return value
    elif t == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                return float(value)  # SQLite integers are 64-bit
            return value
    elif t == "bool":
        if isinstance(value, bool):
            return int(value)
    elif t == "datetime":
        if isinstance(value, _dt.datetime):
            return datetime_to_sql(value)
    elif t == "date":
        if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
            return value.isoformat()
    elif t == "simpleObject":
        return simple_object_to_sql(col, value, table)
    elif t == "media":
        if is_media(value):
            return put_media(value)
    elif t == "link_single":
        ref = row_ref(value)
        if ref is not None:
            _check_target(col, ref, table)
            return ref.row_id
    elif t == "link_multiple":
        if isinstance(value, (list, tuple)):
            ids = []
            for item in value:
                ref = row_ref(item)
                if ref is None:
                    raise TableError(
                        f"Column '{col.name}' of table '{table}' links to multiple rows - "
                        f"its list cannot contain {kind_of(item)}"
                    )
                _check_target(col, ref, table)
                ids.append(ref.row_id)
            return json.dumps(ids)
    raise _bad(col, value, table)


def _check_target(col: Column, ref: RowRef, table: str) -> None:
    if col.target is not None and ref.table_id != col.target:
        raise TableError(
            f"Column '{col.name}' of table '{table}' links to rows of another table "
            f"(table id {col.target}), not table id {ref.table_id}"
        )


# Built once: json.dumps with arguments of its own builds an encoder for each value it writes.
_simple_object_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def simple_object_to_sql(col: Column, value: Any, table: str) -> str:
    try:
        return _simple_object_json(value)
    except (TypeError, ValueError) as e:
        raise TableError(
            f"Column '{col.name}' of table '{table}' is a simple object - it can hold only "
            f"strings, numbers, bools, None, lists and dicts ({e})"
        ) from None


def from_sql(col: Column, raw: Any) -> Any:
    """The Python value of a stored one. Tolerant: a value stored under an older type comes back raw."""
    if raw is None:
        return None
    t = col.type
    try:
        if t == "bool":
            return bool(raw)
        if t == "datetime" and isinstance(raw, str):
            return datetime_from_sql(raw)
        if t == "date" and isinstance(raw, str):
            return _dt.date.fromisoformat(raw)
        if t == "simpleObject" and isinstance(raw, str):
            return json.loads(raw)
        if t == "link_single" and isinstance(raw, int):
            return RowRef(col.target or 0, raw)
        if t == "link_multiple" and isinstance(raw, str):
            return [RowRef(col.target or 0, i) for i in json.loads(raw)]
        if t == "media" and isinstance(raw, int):
            return MediaRef(raw)
    except (ValueError, TypeError):
        pass
    return raw


def query_value(col: Column, value: Any) -> Any:
    """The stored form of a value a search compares a column with (no type errors: no match instead)."""
    t = col.type
    if value is None:
        return None
    if t == "bool" and isinstance(value, bool):
        return int(value)
    if t == "datetime":
        if isinstance(value, _dt.datetime):
            return datetime_to_sql(value)
        if isinstance(value, _dt.date):
            return datetime_to_sql(_dt.datetime(value.year, value.month, value.day))
    if t == "date":
        if isinstance(value, _dt.datetime):
            return value.date().isoformat()
        if isinstance(value, _dt.date):
            return value.isoformat()
    if t in LINK_TYPES:
        ref = row_ref(value)
        if ref is not None:
            return ref.row_id if col.target in (None, ref.table_id) else -1
    if isinstance(value, (_dt.date, list, dict, tuple)) or row_ref(value) is not None or is_media(value):
        raise TableError(f"Cannot compare column '{col.name}' ({col.describe()}) with {kind_of(value)}")
    return value


def infer_type(value: Any) -> tuple[str, int | None] | None:
    """The column type a value implies (for auto-created columns), with a link's target table."""
    if isinstance(value, bool):
        return "bool", None
    if isinstance(value, (int, float)):
        return "number", None
    if isinstance(value, str):
        return "string", None
    if isinstance(value, _dt.datetime):
        return "datetime", None
    if isinstance(value, _dt.date):
        return "date", None
    ref = row_ref(value)
    if ref is not None:
        return "link_single", ref.table_id
    if is_media(value):
        return "media", None
    if isinstance(value, (list, tuple)) and value:
        refs = [row_ref(v) for v in value]
        if all(r is not None for r in refs) and len({r.table_id for r in refs if r}) == 1:
            return "link_multiple", refs[0].table_id if refs[0] else None
    if isinstance(value, (list, tuple, dict)):
        return "simpleObject", None
    return None


def csv_cell(col: Column, value: Any, row_id_text: Callable[[RowRef], str]) -> str:
    """How a value appears in a CSV export."""
    if value is None:
        return ""
    if col.type == "bool":
        return "true" if value else "false"
    if col.type == "datetime" and isinstance(value, _dt.datetime):
        return value.isoformat()
    if col.type == "date" and isinstance(value, _dt.date):
        return value.isoformat()
    if col.type == "simpleObject":
        return json.dumps(value, ensure_ascii=False)
    if col.type == "link_single" and isinstance(value, RowRef):
        return row_id_text(value)
    if col.type == "link_multiple" and isinstance(value, list):
        return ",".join(row_id_text(r) for r in value)
    if isinstance(value, MediaRef):
        return f"<media {value.media_id}>"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return repr(value)
    return str(value)
