"""The portable-type codec: Anvil's wire format, pure functions, no I/O.

A message is plain JSON with every non-JSON value replaced by null, plus an `"objects"` list of
`{"path": [...], "type": [T], ...}` entries that say what to put back at each path. The same
codec serves HTTP, the host-worker pipes and the uplink websockets.
"""

from __future__ import annotations

import datetime as _dt
import math

# The browser runs this module too (as anvil._wire, on Brython), where importing `typing`,
# `collections.abc` and `re` costs the first page load over a second; the names are annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MAX_INT = 2147483647
# Deeper values are refused with a SerializationError naming the path, rather than a bare
# RecursionError (the encoder recurses, up to three frames a level, under Python's limit of 1000).
MAX_DEPTH = 200
_JSON_SCALARS = (str, bool, type(None))


class SerializationError(Exception):
    """A value cannot cross the wire; the message names it and where it is."""


class SerializationInfo:
    """What a portable class's __serialize__/__deserialize__ is told about the other side."""

    def __init__(self, remote_is_trusted: bool = True, local_is_trusted: bool = True) -> None:
        self.remote_is_trusted = remote_is_trusted
        self.local_is_trusted = local_is_trusted
        self._shared: dict[Any, tuple[Any, Any]] = {}

    def shared_data(
        self,
        key: Any = None,
        transmitted_data_factory: Callable[[], Any] = dict,
        local_data_factory: Callable[[], Any] = dict,
    ) -> tuple[Any, Any]:
        if key not in self._shared:
            self._shared[key] = (transmitted_data_factory(), local_data_factory())
        return self._shared[key]


class TypeRegistry:
    """Portable classes by name, and the hooks for objects the codec does not know itself.

    The runtime subclasses this to add Media; `error_class` is the exception raised, so that
    server code sees `anvil.server.SerializationError`.
    """

    error_class: type[Exception] = SerializationError

    def __init__(self) -> None:
        self.classes: dict[str, type] = {}
        self.names: dict[type, str] = {}

    def register(self, cls: type, name: str) -> None:
        self.classes[name] = cls
        self.names[cls] = name

    def lookup(self, name: str, may_import: bool = True) -> type | None:
        """The class registered under `name`. Subclasses may import its module first, but only
        with `may_import`: a name from an untrusted sender must never choose what is imported."""
        return self.classes.get(name)

    def encode_other(self, obj: Any, path: list[Any]) -> dict[str, Any] | None:
        """An objects-list entry (without "path") for an object of no built-in kind, or None."""
        return None

    def make_tz(self, offset: _dt.timedelta) -> _dt.tzinfo:
        """The tzinfo decoded datetimes carry (the runtime gives Anvil's anvil.tz.tzoffset)."""
        return _dt.timezone(offset)

    def decode_other(self, entry: dict[str, Any], path: list[Any]) -> Any:
        raise self.error_class(f"Cannot deserialize object of type {entry.get('type')} at {format_path(path)}")


DEFAULT_REGISTRY = TypeRegistry()


# Python refuses str(int) and int(str) beyond this many digits (a quadratic conversion: a denial of
# service); Longs from trusted senders may be longer and are converted in pieces below the limit.
_INT_DIGITS = 4000
UNTRUSTED_LONG_DIGITS = 4300  # Python's default limit


def _is_decimal(text: str) -> bool:
    """Whether `text` is [+-]?[0-9]+ (ASCII digits only: str.isdigit alone takes '²')."""
    body = text[1:] if text[:1] in ("+", "-") else text
    return bool(body) and body.isascii() and body.isdigit()


def int_text(value: int) -> str:
    """`str(value)` for an int of any size (Python's own refuses over 4,300 digits)."""
    if -(10**_INT_DIGITS) < value < 10**_INT_DIGITS:
        return str(value)
    sign, value = ("-", -value) if value < 0 else ("", value)
    return sign + _digits(value, _split_power(value))


def _split_power(value: int) -> int:
    k = _INT_DIGITS
    while 10 ** (2 * k) <= value:
        k *= 2
    return k


def _digits(value: int, k: int) -> str:
    """Decimal digits of 0 <= value < 10**(2k), by halves (divide and conquer: no digit limit)."""
    if value < 10**_INT_DIGITS:
        return str(value)
    high, low = divmod(value, 10**k)
    if not high:
        return _digits(low, k // 2)
    return _digits(high, k // 2) + _digits(low, k // 2).rjust(k, "0")


def parse_long(text: Any, trusted: bool = True) -> int:
    """A Long's decimal text as an int; from an untrusted sender no longer than Python's own limit."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str) or not _is_decimal(text.strip()):
        raise ValueError(text)
    text = text.strip()
    body = text.lstrip("+-")
    if not trusted and len(body) > UNTRUSTED_LONG_DIGITS:
        raise ValueError(f"more than {UNTRUSTED_LONG_DIGITS} digits")
    if len(body) <= _INT_DIGITS:
        return int(text)
    value = _parse_digits(body)
    return -value if text.startswith("-") else value


def _parse_digits(body: str) -> int:
    if len(body) <= _INT_DIGITS:
        return int(body)
    half = len(body) // 2
    return _parse_digits(body[:-half]) * 10**half + _parse_digits(body[-half:])


def format_path(path: list[Any]) -> str:
    return "msg" + "".join(f"[{p!r}]" for p in path)


def too_deep(value: Any, limit: int = MAX_DEPTH) -> list[Any] | None:
    """The path of the first list or dict nested more than `limit` levels deep in decoded JSON, or None.

    Iterative, so that it works on values too deep for the recursive encoder.
    """
    stack: list[tuple[Any, list[Any]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        if len(path) > limit:
            return path
        stack.extend((v, path + [k]) for k, v in items if isinstance(v, (dict, list)))
    return None


def _short_path(path: list[Any]) -> str:
    if len(path) <= 8:
        return format_path(path)
    return format_path(path[:6]) + f"...({len(path)} levels)"


def format_datetime(value: _dt.datetime) -> str:
    """Anvil's DateTime string; a naive value is taken as local time, as Anvil's Python does."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.astimezone()
    offset = value.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    # Not strftime: it does not zero-pad years before 1000.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}:"
        f"{value.second:02d}.{value.microsecond:06d}{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def parse_datetime(text: str, make_tz: Callable[[_dt.timedelta], _dt.tzinfo] = _dt.timezone) -> _dt.datetime:
    """Parse Anvil's DateTime string (offset `+HHMM`, `Z`, or none for naive)."""
    t = text.strip().replace("T", " ")
    if t.endswith("Z"):
        t = t[:-1] + "+0000"
    offset = None
    if len(t) > 5 and t[-5] in "+-" and t[-4:].isdigit():
        sign = 1 if t[-5] == "+" else -1
        offset = sign * _dt.timedelta(hours=int(t[-4:-2]), minutes=int(t[-2:]))
        t = t[:-5]
    elif len(t) > 6 and t[-6] in "+-" and t[-3] == ":":
        sign = 1 if t[-6] == "+" else -1
        offset = sign * _dt.timedelta(hours=int(t[-5:-3]), minutes=int(t[-2:]))
        t = t[:-6]
    # A datetime's offset must be under a day, whatever tzinfo would accept it.
    if offset is not None and abs(offset) >= _dt.timedelta(hours=24):
        raise ValueError(f"UTC offset {offset} is not under 24 hours")
    tz = make_tz(offset) if offset is not None else None
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in t else "%Y-%m-%d %H:%M:%S"
    value = _dt.datetime.strptime(t, fmt)
    return value.replace(tzinfo=tz) if tz is not None else value


class _Encoder:
    def __init__(self, registry: TypeRegistry, info: SerializationInfo, prefix: str) -> None:
        self.registry = registry
        self.info = info
        self.prefix = prefix
        self.objects: list[dict[str, Any]] = []
        self._active: set[int] = set()

    def fail(self, what: str, path: list[Any]) -> Exception:
        return self.registry.error_class(f"{self.prefix}{what} at {format_path(path)}")

    def too_deep(self, path: list[Any]) -> Exception:
        return self.registry.error_class(
            f"{self.prefix}Cannot serialize a value nested more than {MAX_DEPTH} levels deep at {_short_path(path)}"
        )

    # `path` is one list shared down the recursion, appended to and popped, and copied only into
    # an objects entry or an error: building a new list for every value was most of the cost of
    # encoding plain data. Values JSON holds as they are (str, bool, None, an int in range, a
    # finite float, of exactly those types) are tested inline in _dict and _list: a call for each
    # of them cost as much again. Exact dicts and lists go straight to _dict and _list, so plain
    # nesting costs one frame a level and a portable object three: MAX_DEPTH levels stay well
    # under the recursion limit, with room for the caller's own frames.

    def encode(self, value: Any, path: list[Any]) -> Any:
        t = type(value)
        if t is dict:
            return self._dict(value, path)
        if t is list or t is tuple:
            return self._list(value, path)
        if isinstance(value, _JSON_SCALARS):
            return value
        if t is int or (isinstance(value, int) and t not in self.registry.names):
            if -MAX_INT <= value <= MAX_INT:
                return int(value)
            self.objects.append({"path": list(path), "type": ["Long"], "value": int_text(int(value))})
            return None
        if t is float or (isinstance(value, float) and t not in self.registry.names):
            if math.isfinite(value):
                return float(value)
            text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            self.objects.append({"path": list(path), "type": ["Float"], "value": text})
            return None
        if isinstance(value, dict) and t not in self.registry.names:
            return self._dict(value, path)
        if isinstance(value, (list, tuple)) and t not in self.registry.names:
            return self._list(value, path)
        if isinstance(value, _dt.datetime):
            self.objects.append({"path": list(path), "type": ["DateTime"], "value": format_datetime(value)})
            return None
        if isinstance(value, _dt.date):
            self.objects.append({"path": list(path), "type": ["Date"], "value": value.isoformat()})
            return None
        name = self.registry.names.get(t)
        if name is not None:
            return self._encode_portable(value, name, path)
        if isinstance(value, type) and value in self.registry.names:
            self.objects.append({"path": list(path), "type": ["ClassType"], "typeName": self.registry.names[value]})
            return None
        entry = self.registry.encode_other(value, path)
        if entry is not None:
            entry["path"] = list(path)
            self.objects.append(entry)
            return None
        if hasattr(value, "item") and type(value).__module__ == "numpy":
            return self.encode(value.item(), path)
        if hasattr(value, "SERIALIZATION_INFO") or hasattr(value, "__serialize__"):
            raise self.fail(f"Cannot serialize {t} (must be registered with @anvil.server.portable_class)", path)
        raise self.fail(f"Cannot serialize {t} object", path)

    def _dict(self, value: dict[Any, Any], path: list[Any]) -> dict[str, Any]:
        key = self._enter(value, path)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise self.fail("Cannot serialize dictionaries with keys that aren't strings", path)
            t = type(v)
            if (
                t is str
                or v is None
                or t is bool
                or (t is int and -MAX_INT <= v <= MAX_INT)
                or (t is float and math.isfinite(v))
            ):
                out[k] = v
            else:
                path.append(k)
                out[k] = (
                    self._dict(v, path) if t is dict else self._list(v, path) if t is list else self.encode(v, path)
                )
                path.pop()
        self._active.discard(key)
        return out

    def _list(self, value: list[Any] | tuple[Any, ...], path: list[Any]) -> list[Any]:
        key = self._enter(value, path)
        out = []
        for i, v in enumerate(value):
            t = type(v)
            if (
                t is str
                or v is None
                or t is bool
                or (t is int and -MAX_INT <= v <= MAX_INT)
                or (t is float and math.isfinite(v))
            ):
                out.append(v)
            else:
                path.append(i)
                out.append(
                    self._dict(v, path) if t is dict else self._list(v, path) if t is list else self.encode(v, path)
                )
                path.pop()
        self._active.discard(key)
        return out

    def _enter(self, value: Any, path: list[Any]) -> int:
        """Before encoding what a container or portable object holds: refuse cycles and deep nesting.
        The caller discards the returned key from `_active` when done (no context manager: this is
        on the path of every list and dict a call returns)."""
        if len(path) > MAX_DEPTH:
            raise self.too_deep(path)
        key = id(value)
        if key in self._active:
            raise self.fail("Cannot serialize a value that contains itself (a circular reference)", path)
        self._active.add(key)
        return key

    def _encode_portable(self, value: Any, name: str, path: list[Any]) -> Any:
        key = self._enter(value, path)
        try:
            serialize = getattr(value, "__serialize__", None)
            data = serialize(self.info) if serialize is not None else dict(value.__dict__)
            out = self._dict(data, path) if type(data) is dict else self.encode(data, path)
        finally:
            self._active.discard(key)
        self.objects.append({"path": list(path), "type": ["ValueType"], "typeName": name})
        return out


def encode(
    fields: dict[str, Any],
    registry: TypeRegistry = DEFAULT_REGISTRY,
    *,
    info: SerializationInfo | None = None,
    error_prefix: str = "",
) -> dict[str, Any]:
    """Encode a message's top-level fields (e.g. {"response": v}) into JSON-able data plus "objects"."""
    enc = _Encoder(registry, info or SerializationInfo(), error_prefix)
    out: dict[str, Any] = {k: enc.encode(v, [k]) for k, v in fields.items()}
    out["objects"] = enc.objects
    return out


def decode(
    message: dict[str, Any],
    registry: TypeRegistry = DEFAULT_REGISTRY,
    *,
    trusted: bool = True,
    info: SerializationInfo | None = None,
) -> dict[str, Any]:
    """Put back the values an encoded message's "objects" describe; mutates and returns `message`.

    Entries are applied in order, so a portable class's fields are already decoded when its own
    entry (which comes after them) builds the instance.
    """
    objects = message.get("objects") or []
    if not isinstance(objects, list):
        raise registry.error_class("Malformed message: 'objects' must be a list")
    info = info or SerializationInfo(remote_is_trusted=trusted)
    for entry in objects:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), list) or not entry["path"]:
            raise registry.error_class(f"Malformed entry in 'objects': {entry!r:.200}")
        path = entry["path"]
        value = _decode_entry(message, entry, path, registry, info)
        _set_at(message, path, value, registry)
    return message


def _get_at(root: Any, path: list[Any], registry: TypeRegistry) -> Any:
    node = root
    for p in path:
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            raise registry.error_class(f"Malformed message: no value at {format_path(path)}") from None
    return node


def _set_at(root: Any, path: list[Any], value: Any, registry: TypeRegistry) -> None:
    parent = _get_at(root, path[:-1], registry)
    try:
        parent[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        raise registry.error_class(f"Malformed message: cannot set a value at {format_path(path)}") from None


def _decode_entry(
    message: Any, entry: dict[str, Any], path: list[Any], registry: TypeRegistry, info: SerializationInfo
) -> Any:
    types = entry.get("type")
    kind = types[0] if isinstance(types, list) and types else types
    try:
        if kind == "Long":
            return parse_long(entry["value"], info.remote_is_trusted)
        if kind == "Float":
            return float({"Infinity": "inf", "-Infinity": "-inf", "NaN": "nan"}[entry["value"]])
        if kind == "Date":
            return _dt.date.fromisoformat(entry["value"])
        if kind == "DateTime":
            return parse_datetime(entry["value"], registry.make_tz)
        if kind == "Primitive":
            return entry["value"]
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError):
        raise registry.error_class(
            f"Malformed {kind} value at {format_path(path)}: {entry.get('value')!r:.100}"
        ) from None
    if kind in ("ValueType", "ClassType"):
        name = entry.get("typeName")
        cls = registry.lookup(name, may_import=info.remote_is_trusted) if isinstance(name, str) else None
        if cls is None:
            raise registry.error_class(f"No such serializable type: {name} at {format_path(path)}")
        if kind == "ClassType":
            return cls
        data = _get_at(message, path, registry)
        new = getattr(cls, "__new_deserialized__", None)
        if new is not None:
            return new(data, info)
        obj: Any = object.__new__(cls)
        deserialize = getattr(obj, "__deserialize__", None)
        if deserialize is not None:
            deserialize(data, info)
        elif isinstance(data, dict):
            obj.__dict__.update(data)
        else:
            raise registry.error_class(f"Cannot deserialize {name} from {type(data).__name__} at {format_path(path)}")
        return obj
    return registry.decode_other(entry, path)
