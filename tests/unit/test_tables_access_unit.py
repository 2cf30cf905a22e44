"""Pure parts of client and uplink table access, in-process: the uplink's LiveObject translation,
the client uplink handshake, client_hidden in anvil.yaml, and get_by_id's id rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from anvil_dev.host.uplink import frames
from anvil_dev.host.uplink.tables import SEARCH_TYPE, TABLE_TYPE, UplinkTables, table_live_objects
from anvil_dev.services.tables import schema

from helpers import load_runtime

REF = {"id": 3, "name": "notes", "perm": None, "mac": "abc"}


def _table_call(method: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "CALL",
        "id": "c1",
        "liveObjectCall": {"id": json.dumps(REF), "backend": TABLE_TYPE, "mac": "", "method": method},
        **extra,
    }


def test_an_uplink_search_becomes_a_client_search_call_with_its_objects_moved() -> None:
    tables = UplinkTables()
    when = {"path": ["kwargs", "when"], "type": ["DateTime"], "value": "2024-01-02 03:04:05.000000+0000"}
    msg, post = tables.translate(_table_call("search", args=[], kwargs={"when": None}, objects=[when]))
    assert msg["command"] == "anvil.private.tables.client.search"
    assert msg["args"] == [REF, [], {"when": None}, 0, None]
    assert {"path": ["args", 2, "when"], "type": ["DateTime"], "value": when["value"]} in msg["objects"]
    assert {"path": ["args", 0], "type": ["ValueType"], "typeName": TABLE_TYPE} in msg["objects"]
    # The reply: the first page inside a SearchIterator LiveObject, with where the next page starts.
    row = {"id": "[3,1]", "table": "notes", "mac": "m", "data": {"n": 1}}
    entry = {"path": ["response", "rows", 0], "type": ["ValueType"], "typeName": "anvil.tables.Row"}
    reply = post({"response": {"rows": [row], "more": True}, "objects": [entry]})
    live = reply["objects"][0]
    assert reply["response"] is None and live["path"] == ["response"] and live["backend"] == SEARCH_TYPE
    assert live["iterItems"]["nextPage"] == 1
    item = live["iterItems"]["items"][0]
    assert item["type"] == ["LiveObject"] and item["id"] == "[3,1]" and item["itemCache"]["n"]["value"] == 1
    # ... and __anvil_iter_page__ on it runs the same search from that offset.
    page, _ = tables.translate(
        {
            "type": "CALL",
            "id": "c2",
            "args": [1],
            "kwargs": {},
            "liveObjectCall": {"id": live["id"], "backend": SEARCH_TYPE, "method": "__anvil_iter_page__"},
        }
    )
    assert page["args"] == [REF, [], {"when": None}, 1, None]


def test_an_unknown_search_or_method_is_a_clear_error() -> None:
    tables = UplinkTables()
    gone = tables.translate(
        {"liveObjectCall": {"id": "search-nope", "backend": SEARCH_TYPE, "method": "__anvil_iter_page__"}, "args": [0]}
    )
    assert "no longer available" in gone["error"]["message"]
    other = tables.translate(_table_call("to_csv", args=[], kwargs={}))
    assert "does not run Table.to_csv" in other["error"]["message"]
    assert tables.translate({"command": "f", "args": []}) is None


def test_tables_going_to_an_uplink_become_live_objects() -> None:
    msg = {
        "response": {"t": REF},
        "objects": [{"path": ["response", "t"], "type": ["ValueType"], "typeName": TABLE_TYPE}],
    }
    out = table_live_objects(msg)
    entry = out["objects"][0]
    assert entry["type"] == ["LiveObject"] and json.loads(entry["id"]) == REF and "search" in entry["methods"]
    assert out["response"]["t"] is None and msg["response"]["t"] == REF  # the original is untouched


def test_the_client_uplink_key_connects_with_client_privileges() -> None:
    hello = json.dumps({"key": "client_K", "v": 7})
    assert frames.hello(hello, "server", "client_K")[-1]["priv"] == "client"
    assert frames.hello(json.dumps({"key": "server", "v": 7}), "server", "client_K")[-1]["priv"] == "uplink"
    with pytest.raises(frames.WrongKey):
        frames.hello(json.dumps({"key": "client_X", "v": 7}), "server", "client_K")


def test_client_hidden_is_read_from_both_forms_of_db_schema() -> None:
    cols = [{"name": "a", "type": "string"}, {"name": "b", "type": "string", "client_hidden": True}]
    for db_schema in ({"t": {"columns": cols}}, [{"name": "T", "python_name": "t", "columns": cols}]):
        (spec,) = schema.parse_db_schema({"db_schema": db_schema})
        assert [(c.name, c.client_hidden) for c in spec.columns] == [("a", False), ("b", True)]


@pytest.mark.parametrize(
    ("row_id", "v2", "expected"),
    [
        ("[3,7]", True, 7),
        ("[3,7]", False, 7),
        ("[4,7]", True, None),
        ("[4,7]", False, None),
        (7, True, 7),
        ("7", True, 7),
        (7, False, None),
        ("7", False, None),  # a bare number: v2 only
        ("[3, 7]", True, None),
        ("[3, 7]", False, 7),  # v2 wants the exact form, v1 reads JSON
        ("nope", True, None),
        ("nope", False, None),
        ([3, 7], False, None),
        (True, True, None),
    ],
)
def test_get_by_id_reads_ids_as_each_implementation_does(row_id: Any, v2: bool, expected: int | None) -> None:
    # tables/v2/basic_ops.clj:82-100 (v2) and tables/rpc.clj:950-953 (v1).
    rt = load_runtime("tables")
    assert rt.tables._table._clean_row_id(row_id, 3, v2) == expected
