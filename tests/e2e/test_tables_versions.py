"""A v1 app and a v2 (Accelerated Tables) app through a real `anvil-dev serve`: where Anvil's two
Data Tables implementations differ, each app sees its own; where they agree, both see Anvil's.

The implementation is the tables service's `client_config.enable_v2`, as on Anvil
(services/anvil/tables/__init__.py:59-67). Each expected value cites the Anvil code it follows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, backend_env, write_module

PROBE = """
import anvil.server
import anvil.tables
import anvil.tables.query as q
from anvil.tables import app_tables, order_by


def _err(f):
    try:
        f()
    except Exception as e:
        return [type(e).__name__, str(e)]
    return "no error"


@anvil.server.callable
def probe():
    P = app_tables.people
    P.delete_all_rows()
    app_tables.other.delete_all_rows()
    a = P.add_row(name="A", age=2)
    b = P.add_row(name="B", age=None)
    c = P.add_row(name="C", age=1)
    d = P.add_row(name="D", age=2)
    e = P.add_row(name="E", age=None)
    o = app_tables.other.add_row(x=1)
    n = lambda rows: [r["name"] for r in rows]
    part = P.search(order_by("name"))[1:3]
    t = anvil.tables
    return {
        "asc": n(P.search(order_by("age"))),
        "desc": n(P.search(order_by("age", ascending=False))),
        "bool_empty": bool(P.search(name="nobody")),
        "neg_index": _err(lambda: P.search()[-1]),
        "neg_slice": _err(lambda: P.search()[-2:]),
        "past_end": _err(lambda: P.search()[99]),
        "slice_len": _err(lambda: len(part)),
        "slice_twice": [n(part), n(part)],
        "by_id": [P.get_by_id(c.get_id())["name"], P.get_by_id("nope"), P.get_by_id(o.get_id()),
                  P.get_by_id("[%s]" % c.get_id()), _name(P.get_by_id(c.get_id()[1:-1].split(",")[1]))],
        "sort_missing": _err(lambda: P.search(order_by("nope"))),
        "write_missing": _err(lambda: P.add_row(nope=1)),
        "read_missing": _err(lambda: a["nope"]),
        "query_missing": _err(lambda: P.search(nope=1)),
        "wrapped": [issubclass(x, anvil.server.AnvilWrappedError)
                    for x in (t.TableError, t.RowDeleted, t.NoSuchColumnError, t.TransactionConflict)],
        "search_eq": [P.search(name="A") == P.search(name="A"), P.search(name="A") == P.search(name="B"),
                      hash(P.search(name="A")) == hash(P.search(name="A"))],
        "get_table_by_id": _err(lambda: anvil.tables.get_table_by_id(1)),
        "buffer_changes": _err(lambda: a.buffer_changes),
        "restrict_columns": _err(lambda: P.restrict_columns(["name"])),
        "model": _err(lambda: P.Row),
    }


def _name(row):
    return row and row["name"]
"""

V2_ONLY = """
import anvil.server
import anvil.tables.query as q
from anvil.tables import app_tables


class Person(app_tables.people.Row, attrs=True, buffered=True):
    def greet(self):
        return "hi " + self.name


def _fresh(row):
    return dict(app_tables.people.get_by_id(row.get_id()))["name"]


@anvil.server.callable
def v2_only():
    P = app_tables.people
    P.delete_all_rows()
    ann = P.add_row(name="Ann", age=30)
    out = {"model": [type(ann).__name__, isinstance(ann, Person), ann.greet(), ann.name]}
    # Person is buffered: writes wait for save() (v2/_row.py:818-855).
    ann["name"] = "Anna"
    out["buffered"] = [ann.buffered_changes, ann["name"], _fresh(ann)]
    ann.save()
    out["saved"] = [ann.buffered_changes, _fresh(ann)]
    ann.name = "Annie"
    ann.reset()
    out["reset"] = [ann.buffered_changes, ann["name"], _fresh(ann)]
    zed = Person(name="Zed", age=1)
    out["draft"] = [zed.get_id(), zed["name"], zed["age"], len(P.search(name="Zed"))]
    zed.save()
    out["draft_saved"] = [zed.get_id() is not None, P.get(name="Zed") == zed]
    ann.buffer_changes(False)
    with ann.buffer_changes():
        ann["age"] = 99
        inside = [ann["age"], P.get(name="Anna")["age"]]
    out["context"] = [inside, ann.buffered_changes, ann["age"]]
    ann.fetch(q.fetch_only("name"))
    try:
        ann.fetch("name")
    except TypeError as e:
        out["fetch_bad"] = str(e)
    only = P.restrict_columns(["name"]).get(name="Anna")
    out["restricted"] = [only["name"], _raises(lambda: only["age"])]
    return out


def _raises(f):
    try:
        f()
    except Exception as e:
        return type(e).__name__
    return "no error"
"""

PEOPLE = {
    "title": "People",
    "client": "none",
    "server": "full",
    "columns": [{"name": "name", "type": "string"}, {"name": "age", "type": "number"}],
}
OTHER = {"title": "Other", "client": "none", "server": "full", "columns": [{"name": "x", "type": "number"}]}


def _app(root: Path, v2: bool) -> Path:
    app = scaffold(root / ("V2App" if v2 else "V1App"))
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    for svc in config["services"]:
        if svc["source"].endswith("/tables.yml"):
            svc["client_config"] = {"enable_v2": True} if v2 else {}
            svc["server_config"] = {"auto_create_missing_columns": False}
    config["db_schema"] = {
        "people": PEOPLE,
        "other": OTHER,
        **{k: v for k, v in config["db_schema"].items() if k == "users"},
    }
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_module(app, "Probe", PROBE)
    if v2:
        write_module(app, "V2Only", V2_ONLY)
    return app


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, module_database: str | None, request: pytest.FixtureRequest
) -> Iterator[dict[str, ServerProcess]]:
    root = tmp_path_factory.mktemp("versions")
    # Two apps, so two databases on Postgres (the module's, and one more).
    other = request.getfixturevalue("postgres_server").new_database() if module_database else None
    started = {
        "v1": ServerProcess(_app(root, False), env=backend_env(module_database)),
        "v2": ServerProcess(_app(root, True), env=backend_env(other)),
    }
    yield started
    for s in started.values():
        s.stop()


# Where the two agree.
COMMON: dict[str, Any] = {
    # None first ascending, last descending, ties by row id (tables/v2/query.clj:310-316).
    "asc": ["B", "E", "C", "A", "D"],
    "desc": ["A", "D", "C", "B", "E"],
    # No __nonzero__ in v1's search methods (tables/rpc.clj:312-318); v2/_search.py:216-218.
    "bool_empty": True,
    # A slice is a one-shot iterator without len() (_server.py LiveObjectProxy.Iter; v2/_search.py:21-72).
    "slice_len": ["TypeError", "object of type '_OneShot' has no len()"],
    "slice_twice": [["B", "C"], []],
    "wrapped": [True, True, True, True],  # services/anvil/tables/_errors.py:6-30
    "search_eq": [True, False, True],  # v2/_search.py:208-214; v1 LiveObject ids (anvil/__init__.py:15-22)
}
V1: dict[str, Any] = {
    **COMMON,
    "neg_index": ["IndexError", "list index cannot be negative"],  # _server.py LiveObjectProxy.__getitem__
    "neg_slice": ["Exception", "list slice indices and step cannot be negative"],
    "past_end": ["IndexError", "list index out of range"],
    # A JSON "[t,r]" of this table, else None (tables/rpc.clj:950-953).
    "by_id": ["C", None, None, None, None],
    "sort_missing": ["TableError", "No such column 'nope' in table 'people'"],  # tables/rpc.clj:612-617
    "write_missing": [
        "NoSuchColumnError",
        "Row update failed: Column 'nope' does not exist and automatic column creation is disabled.",
    ],  # tables/rpc.clj:362-363
    "get_table_by_id": ["TableError", "get_table_by_id is only available in Accelerated Tables beta"],
    "read_missing": ["TableError", "No such column 'nope' in this table"],  # tables/rpc.clj:876-878
    "query_missing": ["TableError", "No such column 'nope' in table 'people'"],  # tables/rpc.clj:612-617
}
V2: dict[str, Any] = {
    **COMMON,
    "neg_index": ["ValueError", "search indices must be non-negative integers"],  # v2/_search.py:252-263
    "neg_slice": ["ValueError", "search slice indices must non-negative itegers (or None)"],
    "past_end": ["IndexError", "search index out of range"],  # v2/_search.py:246-249
    # "[t,r]" exactly, or a bare row number (tables/v2/basic_ops.clj:82-100).
    "by_id": ["C", None, None, None, "C"],
    "sort_missing": ["TableError", 'Cannot sort by nonexistent column "nope"'],  # tables/v2/search.clj:58-60
    "write_missing": ["NoSuchColumnError", "No such column 'nope'"],  # tables/v2/updates.clj:56
    "get_table_by_id": "no error",
    "read_missing": ["NoSuchColumnError", "No such column 'nope'"],  # v2/_row.py:736-738
    "query_missing": ["NoSuchColumnError", "No such column 'nope'"],  # tables/v2/query.clj:160
    "buffer_changes": "no error",
    "restrict_columns": "no error",
    "model": "no error",
}


def _v2_only_message(what: str) -> list[str]:
    return [
        "AttributeError",
        f"{what} is only available with Accelerated Tables (set enable_v2: true in the "
        "tables service's client_config in anvil.yaml)",
    ]


def test_a_v1_app_sees_anvils_v1_tables(servers: dict[str, ServerProcess]) -> None:
    got = servers["v1"].client().call("probe")
    # v1 rows are LiveObjects without buffer_changes (tables/rpc.clj:114-116 lists their methods).
    assert got.pop("buffer_changes")[0] == "AttributeError"
    assert got.pop("restrict_columns") == _v2_only_message("restrict_columns")
    assert got.pop("model") == _v2_only_message("Table.Row")
    assert got == V1


def test_a_v2_app_sees_anvils_accelerated_tables(servers: dict[str, ServerProcess]) -> None:
    assert servers["v2"].client().call("probe") == V2


def test_v2_model_classes_buffering_drafts_and_restricted_views(servers: dict[str, ServerProcess]) -> None:
    got = servers["v2"].client().call("v2_only")
    assert got == {
        # The newest subclass of app_tables.people.Row is every people row (v2/_model.py:114-203).
        "model": ["Person", True, "hi Ann", "Ann"],
        "buffered": [{"name": "Anna"}, "Anna", "Ann"],
        "saved": [{}, "Anna"],
        "reset": [{}, "Anna", "Anna"],
        "draft": [None, "Zed", 1, 0],  # a draft has no id until save() (v2/_row.py:857-862)
        "draft_saved": [True, True],
        # Inside `with row.buffer_changes():` writes wait; leaving drops them (v2/_row.py:180-200).
        "context": [[99, 30], None, 30],
        "fetch_bad": "expected a q.fetch_only() object, got 'str'",  # v2/_row.py:963-968
        "restricted": ["Anna", "NoSuchColumnError"],
    }
