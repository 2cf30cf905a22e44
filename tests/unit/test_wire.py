"""The portable-type codec: round trips of every portable value, and refusals that name the path."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anvil_dev import wire


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class Custom:
    def __init__(self, v: int) -> None:
        self.v = v

    def __serialize__(self, info: wire.SerializationInfo) -> dict[str, int]:
        return {"value": self.v}

    def __deserialize__(self, data: dict[str, int], info: wire.SerializationInfo) -> None:
        self.v = data["value"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Custom) and other.v == self.v


REG = wire.TypeRegistry()
REG.register(Point, "tests.Point")
REG.register(Custom, "tests.Custom")

tz = st.builds(lambda m: dt.timezone(dt.timedelta(minutes=m)), st.integers(-12 * 60, 14 * 60))
scalars = (
    st.none()
    | st.booleans()
    | st.text()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.dates()
    | st.datetimes(timezones=tz)
    | st.builds(Point, st.integers(), st.integers())
    | st.builds(Custom, st.integers())
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


def roundtrip(value: object) -> object:
    encoded = wire.encode({"response": value}, REG)
    # What crosses the wire is JSON text.
    decoded = wire.decode(json.loads(json.dumps(encoded)), REG)
    return decoded["response"]


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_portable_value_round_trips(value: object) -> None:
    assert roundtrip(value) == value


@given(st.integers())
def test_ints_beyond_32_bits_travel_as_long(n: int) -> None:
    encoded = wire.encode({"response": n})
    assert (encoded["objects"] != []) == (abs(n) > wire.MAX_INT)
    assert roundtrip(n) == n


def test_special_floats_and_tuples() -> None:
    assert roundtrip(float("inf")) == float("inf")
    assert roundtrip(float("-inf")) == float("-inf")
    assert math.isnan(roundtrip(float("nan")))  # type: ignore[arg-type]
    assert roundtrip((1, 2, (3,))) == [1, 2, [3]]


def test_naive_datetime_is_sent_with_the_local_offset() -> None:
    naive = dt.datetime(2020, 1, 1, 12, 0, 0)
    back = roundtrip(naive)
    assert isinstance(back, dt.datetime) and back.tzinfo is not None
    assert back == naive.astimezone()


def test_datetime_format_matches_anvil() -> None:
    value = dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    encoded = wire.encode({"response": {"dt": value}})
    assert encoded["objects"] == [
        {"path": ["response", "dt"], "type": ["DateTime"], "value": "2024-01-02 03:04:05.123456+0100"}
    ]


def test_each_entry_has_its_own_path_among_siblings_and_nesting() -> None:
    value = {"a": [1, dt.date(2024, 1, 2), {"b": 2**40, "c": [float("nan")]}], "d": (dt.date(2024, 3, 4),), "e": 5}
    encoded = wire.encode({"response": value})
    assert [(e["path"], e["type"][0]) for e in encoded["objects"]] == [
        (["response", "a", 1], "Date"),
        (["response", "a", 2, "b"], "Long"),
        (["response", "a", 2, "c", 0], "Float"),
        (["response", "d", 0], "Date"),
    ]
    assert encoded["response"] == {"a": [1, None, {"b": None, "c": [None]}], "d": [None], "e": 5}


def test_portable_class_entry_comes_after_its_fields() -> None:
    encoded = wire.encode({"response": [Point(1, dt.date(2024, 5, 6))]}, REG)
    kinds = [e["type"][0] for e in encoded["objects"]]
    assert kinds == ["Date", "ValueType"]
    assert encoded["objects"][1]["typeName"] == "tests.Point"


def test_class_itself_is_portable() -> None:
    assert roundtrip(Point) is Point


@pytest.mark.parametrize(
    "value, message",
    [
        ({1: "x"}, "Cannot serialize dictionaries with keys that aren't strings at msg['response']"),
        ([1, {"a": object()}], "Cannot serialize <class 'object'> object at msg['response'][1]['a']"),
        ({"s": {1, 2}}, "Cannot serialize <class 'set'> object at msg['response']['s']"),
    ],
)
def test_refusals_name_the_path(value: object, message: str) -> None:
    with pytest.raises(wire.SerializationError) as e:
        wire.encode({"response": value}, REG)
    assert message in str(e.value)


def test_cycles_are_refused_not_a_recursion_error() -> None:
    a: list[object] = [1]
    a.append(a)
    with pytest.raises(wire.SerializationError, match=r"circular reference\) at msg\['response'\]\[1\]"):
        wire.encode({"response": a})
    d: dict[str, object] = {}
    d["self"] = {"again": d}
    with pytest.raises(wire.SerializationError, match="circular"):
        wire.encode({"response": d})


def _at_stack_depth(frames: int, fn: Callable[[], object]) -> object:
    return fn() if frames == 0 else _at_stack_depth(frames - 1, fn)


@pytest.mark.parametrize("kind", ["dicts", "lists", "portable objects"])
def test_the_deepest_value_allowed_encodes_with_room_left_for_the_callers_frames(kind: str) -> None:
    """MAX_DEPTH levels, from 300 frames down (nested calls, a framework's own): the encoder's
    frames a level leave room; past MAX_DEPTH the refusal names it, never a RecursionError."""

    def nest(levels: int) -> object:
        value: object = 1
        for _ in range(levels):
            value = {"a": value} if kind == "dicts" else [value] if kind == "lists" else Point(value, 0)  # type: ignore[arg-type]
        return value

    deepest = nest(wire.MAX_DEPTH - 1)  # inside the response's own list
    _at_stack_depth(300, lambda: wire.encode({"response": [deepest]}, REG))
    with pytest.raises(wire.SerializationError, match="nested more than"):
        _at_stack_depth(300, lambda: wire.encode({"response": [nest(wire.MAX_DEPTH + 5)]}, REG))


def test_shared_but_acyclic_values_are_fine() -> None:
    shared = [1, 2]
    assert roundtrip([shared, shared]) == [[1, 2], [1, 2]]


def test_unknown_type_name_is_a_clear_error() -> None:
    msg = {"response": {}, "objects": [{"path": ["response"], "type": ["ValueType"], "typeName": "x.Nope"}]}
    with pytest.raises(wire.SerializationError, match="No such serializable type: x.Nope at msg\\['response'\\]"):
        wire.decode(msg, REG)


@pytest.mark.parametrize(
    "objects",
    [
        "not a list",
        [{"path": "x", "type": ["Long"], "value": "1"}],
        [{"path": ["response", 5], "type": ["Long"], "value": "1"}],
        [{"path": ["response"], "type": ["Long"], "value": "abc"}],
        [{"path": ["response"], "type": ["DateTime"], "value": "yesterday"}],
    ],
)
def test_malformed_objects_are_serialization_errors(objects: object) -> None:
    with pytest.raises(wire.SerializationError):
        wire.decode({"response": [1], "objects": objects}, REG)
