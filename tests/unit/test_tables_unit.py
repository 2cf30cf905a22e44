"""In-process tests of anvil.tables over the SQLite tables service: every API and query operator.

The runtime `anvil` package is imported from anvil_dev/runtime (not the anvil-uplink install), and
the services are pointed at an app written into tmp_path.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

import anvil_dev
from anvil_dev import services, wire
from anvil_dev.protocol import Caller
from anvil_dev.services import tables as svc

from helpers import load_runtime

RUNTIME = Path(anvil_dev.__file__).parent / "runtime"
ROOT = Path(anvil_dev.__file__).parent.parent


@pytest.fixture(scope="module")
def rt() -> types.SimpleNamespace:
    """The runtime's anvil modules (anvil-uplink's own `anvil` package is set aside if loaded)."""
    rt = load_runtime("tables", "tables.query", "server", "_registry")
    return types.SimpleNamespace(
        anvil=rt.anvil, tables=rt.tables, q=rt.tables_query, server=rt.server, registry=rt._registry.REGISTRY
    )


MAP_SCHEMA: dict[str, Any] = {
    "people": {
        "title": "People",
        "client": "search",
        "server": "full",
        "columns": [
            {"name": "name", "type": "string", "admin_ui": {"width": 200}},
            {"name": "age", "type": "number"},
            {"name": "Lic. #", "type": "string"},
            {"name": "active", "type": "bool"},
            {"name": "born", "type": "date"},
            {"name": "seen", "type": "datetime"},
            {"name": "meta", "type": "simpleObject"},
            {"name": "photo", "type": "media"},
            {"name": "boss", "type": "link_single", "target": "people"},
            {"name": "friends", "type": "link_multiple", "target": "people"},
            {"name": "group", "type": "link_single", "target": "groups"},
        ],
    },
    "groups": {
        "title": "Groups",
        "client": "none",
        "server": "full",
        "columns": [
            {"name": "name", "type": "string"},
            {"name": "notes", "type": "string"},
        ],
    },
    "secret_stuff": {"client": "full", "columns": [{"name": "x", "type": "number"}]},
}


def make_app(path: Path, schema: Any = None, **server_config: Any) -> Path:
    server_config.setdefault("auto_create_missing_columns", True)
    config = {
        "name": "T",
        "services": [{"source": "/runtime/services/tables.yml", "client_config": {}, "server_config": server_config}],
        "db_schema": MAP_SCHEMA if schema is None else schema,
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _backend(backend_database: str | None) -> str | None:
    """Every test here runs on SQLite and on PostgreSQL (services.open reads ANVIL_DEV_DATABASE)."""
    return backend_database


@pytest.fixture
def app(tmp_path: Path, rt: types.SimpleNamespace) -> Path:
    path = make_app(tmp_path / "app")
    services.open(path)
    return path


@pytest.fixture
def T(app: Path, rt: types.SimpleNamespace) -> types.SimpleNamespace:  # reads like a module
    """The app's tables, and the anvil.tables API."""
    return types.SimpleNamespace(
        people=rt.tables.app_tables.people,
        groups=rt.tables.app_tables.groups,
        t=rt.tables,
        q=rt.q,
        app_tables=rt.tables.app_tables,
    )


def names(rows: Any) -> list[str]:
    return [r["name"] for r in rows]


# ------------------------------------------------------------------------------------- schema


def test_map_form_schema_gives_tables_columns_and_links(T: Any) -> None:
    assert sorted(T.app_tables) == ["groups", "people", "secret_stuff"]
    assert T.app_tables["people"] == T.people
    cols = {c["name"]: c for c in T.people.list_columns()}
    assert cols["Lic. #"]["type"] == "string"
    assert cols["friends"]["type"] == "link_multiple"
    groups_id = json.loads(T.groups.add_row(name="g").get_id())[0]
    assert cols["group"] == {"name": "group", "type": "link_single", "table_id": groups_id}
    with pytest.raises(AttributeError, match="No such app table: 'nope'"):
        T.app_tables.nope  # noqa: B018
    with pytest.raises(AttributeError, match="read-only"):
        T.app_tables.people = None


def test_list_form_schema_with_ids_and_access(tmp_path: Path, rt: Any) -> None:
    schema = [
        {
            "name": "Colours",
            "id": 41,
            "python_name": "colours",
            "columns": {"ZCAx=": {"name": "name", "type": "string"}},
            "access": {"python_name": "colours", "server": "full", "client": "search", "table_id": 41},
        },
        {
            "name": "People",
            "id": 42,
            "python_name": "people",
            "columns": {
                "f+sB=": {"name": "name", "type": "string"},
                "yVT6=": {
                    "name": "favourite_colour",
                    "type": "liveObject",
                    "backend": "anvil.tables.Row",
                    "table_id": 41,
                },
                "yVT7=": {
                    "name": "also_likes",
                    "type": "liveObjectArray",
                    "backend": "anvil.tables.Row",
                    "table_id": 41,
                },
            },
            "access": {"python_name": "people", "server": "full", "client": "none", "table_id": 42},
        },
    ]
    services.open(make_app(tmp_path / "app", schema))
    tables = rt.tables.app_tables
    red = tables.colours.add_row(name="red")
    blue = tables.colours.add_row(name="blue")
    ann = tables.people.add_row(name="Ann", favourite_colour=red, also_likes=[red, blue])
    assert red.get_id() == "[41,1]" and ann.get_id() == "[42,1]"
    assert ann["favourite_colour"]["name"] == "red"
    assert names(ann["also_likes"]) == ["red", "blue"]
    assert services.current().tables.client_access("colours") == "search"
    assert services.current().tables.client_access("people") == "none"
    assert services.current().tables.client_access("no_such_table") == "none"


def test_client_access_from_map_form(T: Any) -> None:
    tables = services.current().tables
    assert [tables.client_access(n) for n in ("people", "groups", "secret_stuff")] == ["search", "none", "full"]


def test_describe_and_export_csv_for_the_host(T: Any, app: Path) -> None:
    g = T.groups.add_row(name="Admins", notes='says "hi", twice')
    T.people.add_row(name="Ann", age=30, group=g, **{"Lic. #": "L-1"})
    T.people.add_row(name="Bob")
    described = {t["name"]: t for t in services.current().tables.describe()}
    assert described["people"]["rows"] == 2 and described["groups"]["rows"] == 1
    people_cols = {c["name"]: c for c in described["people"]["columns"]}
    assert people_cols["group"] == {"name": "group", "type": "link_single", "target": "groups"}
    assert people_cols["Lic. #"]["type"] == "string"
    out = io.StringIO()
    services.current().tables.export_csv("groups", out)
    assert out.getvalue().splitlines() == ["ID,name,notes", f'"{g.get_id()}",Admins,"says ""hi"", twice"']
    with pytest.raises(svc.TableError, match="No table 'nope'.*people"):
        services.current().tables.export_csv("nope", io.StringIO())


def test_editing_the_yaml_hides_columns_without_losing_data(tmp_path: Path, rt: Any) -> None:
    path = make_app(tmp_path / "app")
    services.open(path)
    rt.tables.app_tables.groups.add_row(name="g", notes="keep me")
    schema = json.loads(json.dumps(MAP_SCHEMA))
    schema["groups"]["columns"] = [{"name": "name", "type": "string"}, {"name": "size", "type": "number"}]
    make_app(path, schema)
    services.open(path)
    row = rt.tables.app_tables.groups.get(name="g")
    assert list(dict(row)) == ["name", "size"]
    make_app(path, MAP_SCHEMA)
    services.open(path)
    assert rt.tables.app_tables.groups.get(name="g")["notes"] == "keep me"


# ------------------------------------------------------------------------------- rows and types


def test_every_column_type_round_trips(T: Any, rt: Any) -> None:
    g = T.groups.add_row(name="G")
    boss = T.people.add_row(name="Boss")
    seen = dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    T.people.add_row(
        name="Ann",
        age=30.5,
        active=False,
        born=dt.date(1990, 5, 6),
        seen=seen,
        meta={"tags": ["a", "b"], "n": None, "deep": {"x": 1}},
        photo=rt.anvil.BlobMedia("image/png", b"\x89PNG..", name="me.png"),
        boss=boss,
        friends=[boss],
        group=g,
        **{"Lic. #": "L-7"},
    )
    ann = T.people.get(name="Ann")  # a fresh read, not add_row's cache
    assert ann["age"] == 30.5 and ann["active"] is False and ann["Lic. #"] == "L-7"
    assert ann["born"] == dt.date(1990, 5, 6)
    assert ann["seen"] == seen and ann["seen"].utcoffset() == dt.timedelta(0)
    assert ann["meta"] == {"tags": ["a", "b"], "n": None, "deep": {"x": 1}}
    photo = ann["photo"]
    assert isinstance(photo, rt.anvil.BlobMedia)
    assert (photo.content_type, photo.name, photo.get_bytes(), photo.length) == ("image/png", "me.png", b"\x89PNG..", 6)
    assert ann["boss"] == boss and ann["boss"]["name"] == "Boss"
    assert ann["friends"] == [boss] and ann["group"]["name"] == "G"
    assert T.people.get(name="Boss")["age"] is None
    big = T.people.add_row(name="Big", age=2**40)
    assert T.people.get_by_id(big.get_id())["age"] == 2**40


def test_naive_datetimes_are_local_time(T: Any) -> None:
    naive = dt.datetime(2024, 6, 1, 12, 0)
    row = T.people.add_row(name="N", seen=naive)
    assert T.people.get(name="N")["seen"] == naive.astimezone()
    assert row["seen"] == naive.astimezone()


def test_cached_values_are_copies(T: Any) -> None:
    row = T.people.add_row(name="A", meta={"list": [1]})
    row["meta"]["list"].append(2)
    assert row["meta"] == {"list": [1]}


def test_wrong_types_are_refused(T: Any, rt: Any) -> None:
    for col, value in [
        ("name", 5),
        ("age", "5"),
        ("age", True),
        ("active", 1),
        ("born", dt.datetime.now()),
        ("seen", dt.date.today()),
        ("meta", {"d": dt.date.today()}),
        ("photo", b"bytes"),
        ("boss", "[1,1]"),
        ("friends", ["x"]),
    ]:
        with pytest.raises(rt.tables.TableError, match=f"Column '{col}'"):
            T.people.add_row(**{col: value})
    g = T.groups.add_row(name="g")
    with pytest.raises(rt.tables.TableError, match="links to rows of another table"):
        T.people.add_row(boss=g)
    assert len(T.people.search()) == 0


def test_unknown_columns_are_created_with_inferred_types(T: Any, rt: Any) -> None:
    g = T.groups.add_row(name="g")
    row = T.groups.add_row(
        count=3,
        flag=True,
        when=dt.date(2020, 1, 1),
        at=dt.datetime.now(dt.timezone.utc),
        obj={"a": 1},
        leader=T.people.add_row(name="L"),
        members=[row2 := T.people.add_row()],
        pic=rt.anvil.BlobMedia("text/plain", b"x"),
        nothing=None,
        Name="upper",
    )
    types_ = {c["name"]: c["type"] for c in T.groups.list_columns()}
    assert {k: types_[k] for k in ("count", "flag", "when", "at", "obj", "leader", "members", "pic", "Name")} == {
        "count": "number",
        "flag": "bool",
        "when": "date",
        "at": "datetime",
        "obj": "simpleObject",
        "leader": "link_single",
        "members": "link_multiple",
        "pic": "media",
        "Name": "string",
    }
    assert "nothing" not in types_
    fresh = T.groups.get(count=3)
    assert fresh["Name"] == "upper" and fresh["name"] is None  # "Name" and "name" are two columns
    assert fresh["members"] == [row2] and fresh != g and row == fresh
    g["count"] = 4
    assert T.groups.get(count=4) == g


def test_unknown_columns_raise_without_auto_create(tmp_path: Path, rt: Any) -> None:
    services.open(make_app(tmp_path / "app", auto_create_missing_columns=False))
    people = rt.tables.app_tables.people
    # A v1 app: Anvil's v1 wording for a write (server/core/src/anvil/runtime/tables/rpc.clj:362-363).
    with pytest.raises(
        rt.tables.NoSuchColumnError,
        match="Row update failed: Column 'nmae' does not exist and automatic column creation is disabled.",
    ):
        people.add_row(nmae="typo")
    row = people.add_row(name="ok")
    with pytest.raises(rt.tables.NoSuchColumnError):
        row["nmae"] = 1
    # Reading or searching a missing column is a plain TableError on v1 (general-tables-error in
    # server/core/src/anvil/runtime/tables/rpc.clj:612-617 and 876-878).
    with pytest.raises(rt.tables.TableError, match="^No such column 'nmae' in this table$"):
        row["nmae"]
    with pytest.raises(rt.tables.TableError, match="^No such column 'nmae' in table 'people'$"):
        people.search(nmae="x")
    assert issubclass(rt.tables.NoSuchColumnError, rt.tables.TableError)


def test_row_behaves_like_a_dict(T: Any) -> None:
    row = T.groups.add_row(name="G", notes="n")
    assert row.keys() == ["name", "notes"]
    assert row.values() == ["G", "n"] and row.items() == [("name", "G"), ("notes", "n")]
    assert dict(row) == {"name": "G", "notes": "n"}
    assert list(row) == [("name", "G"), ("notes", "n")]
    assert "notes" in row and "x" not in row
    assert row.get("x", 7) == 7 and row.get("notes") == "n"
    with pytest.raises(TypeError):
        row[0]
    with pytest.raises(AttributeError, match="Rows cannot have local state"):
        row.extra = 1
    with pytest.raises(TypeError):
        T.t.Row()


def test_update_setitem_refresh_and_identity(T: Any) -> None:
    row = T.groups.add_row(name="G")
    row["notes"] = "one"
    row.update(name="H", notes="two")
    row.update({"notes": "three"})
    other = T.groups.get(name="H")
    assert other["notes"] == "three"
    assert other == row and hash(other) == hash(row) and other is not row
    assert len({row, other}) == 1
    assert row.get_id() == other.get_id() and json.loads(row.get_id())[1] == 1
    other["notes"] = "changed elsewhere"
    assert row["notes"] == "three"  # the cache, as on Anvil
    row.update()
    assert row["notes"] == "changed elsewhere"
    other["notes"] = "again"
    row.refresh()
    assert row["notes"] == "again"


def test_deleted_rows_raise_row_deleted(T: Any, rt: Any) -> None:
    boss = T.people.add_row(name="Boss")
    ann = T.people.add_row(name="Ann", boss=boss)
    stale = T.people.get(name="Boss")
    boss.delete()
    for action in (
        lambda: boss["name"],
        lambda: boss.update(name="x"),
        boss.delete,
        lambda: stale.update(name="y"),
        lambda: T.people.get(name="Ann")["boss"]["name"],
    ):
        with pytest.raises(rt.tables.RowDeleted, match="This row has been deleted"):
            action()
    assert T.people.get_by_id(boss.get_id()) is None
    assert ann["name"] == "Ann"
    assert issubclass(rt.tables.RowDeleted, rt.tables.TableError)


def test_media_bytes_are_removed_with_their_row(T: Any, rt: Any, app: Path) -> None:
    row = T.people.add_row(name="P", photo=rt.anvil.BlobMedia("text/plain", b"one"))
    row["photo"] = rt.anvil.BlobMedia("text/plain", b"two")
    assert T.people.get(name="P")["photo"].get_bytes() == b"two"
    assert media_count() == 1
    row.delete()
    assert media_count() == 0


def media_count() -> int:
    """How many media the tables' database holds (on either backend)."""
    st = services.current().tables
    return int(st.conn().execute(f"SELECT count(*) FROM {st.d.media_table}").fetchone()[0])


def index_names(table: str) -> set[str]:
    """The indexes of an SQL table (besides its primary key), on either backend."""
    st = services.current().tables
    if st.d.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name=?"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE tablename=? AND indexname NOT LIKE '%pkey'"
    return {r[0] for r in st.conn().execute(sql, (table,))}


# ------------------------------------------------------------------------------ table methods


def test_get_get_by_id_and_has_row(T: Any, rt: Any) -> None:
    a = T.people.add_row(name="Ann", age=30)
    T.people.add_row(name="Bob", age=30)
    assert T.people.get(name="Ann") == a
    assert T.people.get(T.q.any_of(name="Ann", age=99)) == a
    assert T.people.get(name="Nobody") is None
    with pytest.raises(rt.tables.TableError, match="More than one row matched this query"):
        T.people.get(age=30)
    assert T.people.get_by_id(a.get_id()) == a
    # A v1 app: get_by_id reads a JSON "[t,r]" string; anything else, or another table's id, is None
    # (server/core/src/anvil/runtime/tables/rpc.clj:950-953).
    assert T.people.get_by_id(json.loads(a.get_id())) is None
    assert T.groups.get_by_id(a.get_id()) is None
    assert T.people.get_by_id("not an id") is None
    assert T.people.has_row(a) and a in T.people
    assert not T.groups.has_row(a)
    with pytest.raises(TypeError, match="You can't iterate on a table"):
        iter(T.people)


def test_add_rows_delete_all_rows_and_to_csv(T: Any) -> None:
    rows = T.groups.add_rows([{"name": "a"}, {"name": "b", "notes": "x"}])
    assert names(rows) == ["a", "b"]
    media = T.groups.to_csv()
    assert media.content_type == "text/csv" and media.name == "groups.csv"
    assert media.get_bytes().decode().splitlines()[1:] == [f'"{rows[0].get_id()}",a,', f'"{rows[1].get_id()}",b,x']
    T.groups.add_row(name="=cmd()")
    excel = T.groups.search(name="=cmd()").to_csv(escape_for_excel=True).get_bytes().decode()
    assert "'=cmd()" in excel
    T.groups.search(name="a").delete_all_rows()
    assert names(T.groups.search()) == ["b", "=cmd()"]
    T.groups.delete_all_rows()
    assert len(T.groups.search()) == 0


def test_search_iterator_len_index_slice_bool_and_pages(T: Any) -> None:
    T.groups.add_rows([{"name": f"g{i:03}", "notes": "even" if i % 2 == 0 else "odd"} for i in range(250)])
    results = T.groups.search(T.t.order_by("name"))
    assert len(results) == 250 and bool(results)
    assert results[0]["name"] == "g000" and results[249]["name"] == "g249" and results[120]["name"] == "g120"
    # A v1 app: a negative index and a past-the-end one are IndexErrors with the LiveObject's wording
    # (server/downlink/python/anvil/_server.py, LiveObjectProxy.__getitem__).
    with pytest.raises(IndexError, match="^list index cannot be negative$"):
        results[-1]
    with pytest.raises(IndexError, match="^list index out of range$"):
        results[250]
    part = results[10:13]  # a one-shot iterator without len() (_server.py LiveObjectProxy.Iter)
    with pytest.raises(TypeError):
        len(part)  # type: ignore[arg-type]
    assert names(part) == ["g010", "g011", "g012"] and names(part) == []
    assert names(results[::100]) == ["g000", "g100", "g200"]
    assert names(T.groups.search(T.q.page_size(7), notes="even"))[:3] == ["g000", "g002", "g004"]
    assert len(list(T.groups.search(T.q.page_size(7), notes="even"))) == 125
    # bool() of a search is always True, even an empty one (v1 has no __nonzero__ method,
    # server/core/src/anvil/runtime/tables/rpc.clj:312-318; v2/_search.py:216-218).
    assert T.groups.search(name="none such") and len(T.groups.search(name="none such")) == 0
    # Writing to rows while iterating a search (a common pattern) sees every row once.
    seen = 0
    for row in T.groups.search(notes="odd"):
        row["notes"] = "was odd"
        seen += 1
    assert seen == 125 and len(T.groups.search(notes="was odd")) == 125


def test_search_refresh_sees_new_rows(T: Any) -> None:
    results = T.groups.search()
    assert len(list(results)) == 0
    T.groups.add_row(name="new")
    assert len(list(results)) == 0
    results.refresh()
    assert names(results) == ["new"]


# ------------------------------------------------------------------------------ query operators


@pytest.fixture
def people(T: Any) -> Any:
    ann = T.people.add_row(
        name="Ann",
        age=30,
        active=True,
        born=dt.date(1994, 1, 1),
        seen=dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone.utc),
        meta={"tags": ["admin", "x"], "level": 3, "prefs": {"theme": "dark"}},
    )
    bob = T.people.add_row(
        name="Bob",
        age=40,
        active=False,
        born=dt.date(1984, 6, 1),
        boss=ann,
        friends=[ann],
        seen=dt.datetime(2024, 1, 2, 9, tzinfo=dt.timezone.utc),
        meta=["x", 1],
    )
    cyd = T.people.add_row(name="Cyd Ánez", age=50, boss=ann, friends=[ann, bob], meta="plain")
    dee = T.people.add_row(name="dee 100% sure_thing", age=None)
    return types.SimpleNamespace(ann=ann, bob=bob, cyd=cyd, dee=dee, T=T, q=T.q)


def find(p: Any, *args: Any, **kwargs: Any) -> list[str]:
    return names(p.T.people.search(*args, **kwargs))


def test_equality_none_and_bools(people: Any) -> None:
    p = people
    assert find(p, name="Ann") == ["Ann"]
    assert find(p, age=None) == ["dee 100% sure_thing"]
    assert find(p, active=None) == ["Cyd Ánez", "dee 100% sure_thing"]
    assert find(p, active=False) == ["Bob"]
    assert find(p, born=dt.date(1984, 6, 1)) == ["Bob"]
    assert find(p, seen=dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == ["Ann"]
    assert find(p, name="Ann", age=31) == []


def test_like_and_ilike(people: Any) -> None:
    p, q = people, people.q
    assert find(p, name=q.like("%n")) == ["Ann"]
    assert find(p, name=q.like("a%")) == []  # case-sensitive
    assert find(p, name=q.like("_ob")) == ["Bob"]
    assert find(p, name=q.like("%100\\%%")) == ["dee 100% sure_thing"]
    assert find(p, name=q.like("%sure\\_%")) == ["dee 100% sure_thing"]
    assert find(p, name=q.like("%[x]%")) == []
    assert find(p, name=q.ilike("a%")) == ["Ann"]
    assert find(p, name=q.ilike("%ÁNEZ")) == ["Cyd Ánez"]
    assert find(p, name=q.ilike("%ánez")) == ["Cyd Ánez"]
    assert find(p, name=q.ilike("BOB")) == ["Bob"]


def test_comparisons_and_between(people: Any) -> None:
    p, q = people, people.q
    assert find(p, age=q.greater_than(30)) == ["Bob", "Cyd Ánez"]
    assert find(p, age=q.greater_than_or_equal_to(40)) == ["Bob", "Cyd Ánez"]
    assert find(p, age=q.less_than(40)) == ["Ann"]
    assert find(p, age=q.less_than_or_equal_to(40)) == ["Ann", "Bob"]
    assert find(p, age=q.between(30, 50)) == ["Ann", "Bob"]
    assert find(p, age=q.between(30, 50, min_inclusive=False, max_inclusive=True)) == ["Bob", "Cyd Ánez"]
    assert find(p, born=q.less_than(dt.date(1990, 1, 1))) == ["Bob"]
    assert find(p, seen=q.greater_than(dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc))) == ["Bob"]
    assert find(p, name=q.greater_than("C")) == ["Cyd Ánez", "dee 100% sure_thing"]


def test_full_text_match(people: Any) -> None:
    p, q = people, people.q
    p.T.groups.add_rows(
        [
            {"name": "a", "notes": "The quick brown foxes are running home"},
            {"name": "b", "notes": "A slow fox walked to the shops"},
            {"name": "c", "notes": "Nothing to see"},
            {"name": "d", "notes": "Fruit flies like a banana"},
        ]
    )

    def ft(*args: Any, **kw: Any) -> list[str]:
        return names(p.T.groups.search(notes=q.full_text_match(*args, **kw)))

    assert ft("fox") == ["a", "b"]
    assert ft("running foxes") == ["a"]
    assert ft("the fox") == ["a", "b"]  # stop words ignored
    assert ft("fox cat") == []
    assert ft("fly") == ["d"] and ft("FRUITS") == ["d"]
    assert ft("fox & !slow", raw=True) == ["a"]
    assert ft("shop | see", raw=True) == ["b", "c"]
    assert ft("wal:*", raw=True) == ["b"]
    assert ft("(quick | slow) & fox", raw=True) == ["a", "b"]


def test_all_of_any_of_none_of(people: Any) -> None:
    p, q = people, people.q
    assert find(p, q.any_of(name="Ann", age=50)) == ["Ann", "Cyd Ánez"]
    assert find(p, q.all_of(age=q.greater_than(30), active=False)) == ["Bob"]
    assert find(p, q.none_of(name="Ann", age=50)) == ["Bob", "dee 100% sure_thing"]
    assert find(p, q.not_(active=True)) == ["Bob", "Cyd Ánez", "dee 100% sure_thing"]
    assert find(p, name=q.any_of("Ann", "Bob")) == ["Ann", "Bob"]
    assert find(p, age=q.all_of(q.greater_than(30), q.less_than(50))) == ["Bob"]
    assert find(p, age=q.none_of(30, 40)) == ["Cyd Ánez", "dee 100% sure_thing"]
    assert find(p, q.any_of(q.all_of(name="Ann", age=30), q.all_of(name="Bob", age=99))) == ["Ann"]
    assert find(p, q.any_of()) == [] and len(find(p, q.all_of())) == 4
    assert find(p, q.any_of(name=q.ilike("a%"), age=q.greater_than(45)), active=True) == ["Ann"]


def test_links_in_searches(people: Any) -> None:
    p, q = people, people.q
    assert find(p, boss=p.ann) == ["Bob", "Cyd Ánez"]
    assert find(p, boss=None) == ["Ann", "dee 100% sure_thing"]
    assert find(p, friends=[p.ann]) == ["Bob", "Cyd Ánez"]
    assert find(p, friends=[p.ann, p.bob]) == ["Cyd Ánez"]
    assert find(p, friends=p.bob) == ["Cyd Ánez"]
    assert find(p, boss=q.any_of(p.ann, p.bob)) == ["Bob", "Cyd Ánez"]
    assert find(p, friends=q.any_of([p.bob], [p.dee])) == ["Cyd Ánez"]
    assert find(p, q.any_of(boss=p.cyd, friends=[p.bob])) == ["Cyd Ánez"]


def test_simple_object_containment(people: Any) -> None:
    p = people
    assert find(p, meta={"tags": ["admin"]}) == ["Ann"]
    assert find(p, meta={"prefs": {"theme": "dark"}, "level": 3}) == ["Ann"]
    assert find(p, meta={"level": 4}) == []
    assert find(p, meta=["x"]) == ["Bob"]
    assert find(p, meta="x") == ["Bob"]  # a list contains its items
    assert find(p, meta="plain") == ["Cyd Ánez"]
    assert find(p, meta=None) == ["dee 100% sure_thing"]


def test_order_by(people: Any) -> None:
    p, t = people, people.T.t
    # None first ascending, last descending (server/core/src/anvil/runtime/tables/v2/query.clj:314).
    assert find(p, t.order_by("age", ascending=False)) == ["Cyd Ánez", "Bob", "Ann", "dee 100% sure_thing"]
    assert find(p, t.order_by("age")) == ["dee 100% sure_thing", "Ann", "Bob", "Cyd Ánez"]
    p.T.people.add_row(name="Ann", age=99)
    assert [
        (r["name"], r["age"])
        for r in p.T.people.search(t.order_by("name"), t.order_by("age", False), name=p.q.like("A%"))
    ] == [("Ann", 99), ("Ann", 30)]
    # A v1 app's wording (server/core/src/anvil/runtime/tables/rpc.clj:612-617).
    with pytest.raises(p.T.t.TableError, match="No such column 'nope' in table 'people'"):
        p.T.people.search(t.order_by("nope"))


def test_strings_sort_in_the_backends_collation(
    tmp_path: Path, rt: Any, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anvil keeps its tables in PostgreSQL, so there strings sort as the database's collation says
    # (here ICU's en-US: case and accents second); SQLite compares them byte by byte.
    if backend == "postgres":
        url = request.getfixturevalue("postgres_server").new_database(icu_locale="en-US")
        monkeypatch.setenv("ANVIL_DEV_DATABASE", url)
    services.open(make_app(tmp_path / "collated"))
    groups = rt.tables.app_tables.groups
    groups.add_rows([{"name": n} for n in ["bob", "Émile", "Ann", "cyd", "ann", "Eve"]])
    expected = {
        "sqlite": ["Ann", "Eve", "ann", "bob", "cyd", "Émile"],
        "postgres": ["ann", "Ann", "bob", "cyd", "Émile", "Eve"],
    }[backend]
    assert names(groups.search(rt.tables.order_by("name"))) == expected
    assert names(groups.search(rt.tables.order_by("name", ascending=False))) == expected[::-1]


def test_fetch_only_and_only_cols(people: Any) -> None:
    p, q = people, people.q
    row = p.T.people.search(q.fetch_only("name"), name="Ann")[0]
    assert row["name"] == "Ann" and row["age"] == 30  # the rest loads when read
    only = p.T.people.search(q.only_cols("name", "age"), name="Ann")[0]
    assert dict(only) == {"name": "Ann", "age": 30}
    with pytest.raises(p.T.t.NoSuchColumnError):
        only["meta"]


def test_bad_search_arguments(people: Any) -> None:
    p, q = people, people.q
    with pytest.raises(TypeError, match="positional arguments"):
        p.T.people.search("Ann")
    with pytest.raises(p.T.t.TableError, match="media column"):
        p.T.people.search(photo=b"png")
    with pytest.raises(ValueError):
        p.T.people.search(q.page_size(0))


def test_values_and_names_never_become_sql(T: Any) -> None:
    evil = 'x\'); DROP TABLE "app_people"; --'
    T.people.add_row(name=evil, **{'col "quoted"': 1, "a'b": 2})
    assert T.people.get(name=evil)['col "quoted"'] == 1
    assert T.people.get(**{"a'b": 2})["name"] == evil
    assert len(T.people.search(name=T.q.like(evil))) == 1


# ---------------------------------------------------------------------------------- auto index


def test_big_tables_get_indexes_on_searched_columns(T: Any, app: Path) -> None:
    T.groups.add_rows([{"name": f"g{i}", "notes": str(i % 7)} for i in range(svc.AUTO_INDEX_MIN_ROWS)])

    def indexes() -> set[str]:
        return index_names("app_groups")

    assert not indexes()
    assert len(T.groups.search(notes="3")) == 143
    assert indexes() == {"ix_app_groups_notes"}
    T.groups.search(name=T.q.like("g1%"))
    assert indexes() == {"ix_app_groups_notes"}  # a LIKE scan gains nothing from an index


def test_a_search_inside_a_transaction_never_builds_an_index(T: Any) -> None:
    T.groups.add_rows([{"name": f"g{i}", "notes": str(i % 7)} for i in range(svc.AUTO_INDEX_MIN_ROWS)])
    with T.t.Transaction():
        assert T.groups.get(name="g1")["notes"] == "1"  # its snapshot is taken
        writer = threading.Thread(target=lambda: T.groups.add_row(name="meanwhile"))
        writer.start()
        writer.join(30)
        # Read-only, so it must never conflict: an index built here would make it a writer.
        assert len(T.groups.search(notes="3")) == 143
        assert index_names("app_groups") == set()
    assert len(T.groups.search(notes="3")) == 143
    assert index_names("app_groups") == {"ix_app_groups_notes"}  # the next search outside one builds it


def test_auto_index_can_be_turned_off(tmp_path: Path, rt: Any) -> None:
    path = make_app(tmp_path / "app", auto_index=False)
    services.open(path)
    groups = rt.tables.app_tables.groups
    groups.add_rows([{"name": f"g{i}"} for i in range(svc.AUTO_INDEX_MIN_ROWS)])
    assert len(groups.search(name="g5")) == 1
    assert index_names("app_groups") == set()


# ------------------------------------------------------------------------------- views


def test_client_views_restrict_rows(people: Any) -> None:
    p = people
    readable = p.T.people.client_readable(boss=p.ann)
    assert names(readable.search()) == ["Bob", "Cyd Ánez"]
    assert names(readable.search(age=q_gt(p, 45))) == ["Cyd Ánez"]
    assert readable.get(name="Ann") is None
    assert readable.has_row(p.bob) and not readable.has_row(p.ann)
    assert readable.get_by_id(p.ann.get_id()) is None and readable.get_by_id(p.bob.get_id()) == p.bob
    writable = p.T.people.client_writable(boss=p.bob)
    new = writable.add_row(name="Eve")
    assert new["boss"] == p.bob
    with pytest.raises(p.T.t.TableError, match="only holds rows"):
        writable.add_row(name="Fay", boss=p.ann)
    assert "client_writable view" in repr(writable)


def q_gt(p: Any, v: Any) -> Any:
    return p.q.greater_than(v)


# ------------------------------------------------------------------------------- transactions


def test_transaction_commits_or_rolls_back(T: Any, rt: Any) -> None:
    with T.t.Transaction():
        T.groups.add_row(name="kept")
    with pytest.raises(ZeroDivisionError):
        with T.t.Transaction():
            T.groups.add_row(name="lost")
            1 / 0  # noqa: B018
    with T.t.Transaction() as txn:
        T.groups.add_row(name="aborted")
        txn.abort()
    assert names(T.groups.search()) == ["kept"]


def test_a_failed_write_inside_a_transaction_leaves_nothing_behind(T: Any, rt: Any, app: Path) -> None:
    with T.t.Transaction():
        with pytest.raises(rt.tables.TableError):
            T.people.add_row(name="half", photo=rt.anvil.BlobMedia("text/plain", b"x"), age="not a number")
        T.people.add_row(name="whole")
    assert names(T.people.search()) == ["whole"]
    assert media_count() == 0


def test_columns_created_in_an_aborted_transaction_go_with_it(T: Any) -> None:
    with T.t.Transaction() as txn:
        T.groups.add_row(name="x", fresh_col=1)
        assert T.groups.get(name="x")["fresh_col"] == 1
        txn.abort()
    assert "fresh_col" not in [c["name"] for c in T.groups.list_columns()]
    T.groups.add_row(name="y", fresh_col="now a string")
    assert T.groups.get(name="y")["fresh_col"] == "now a string"


def test_nested_transaction_is_refused_but_in_transaction_joins(T: Any, rt: Any) -> None:
    calls = []

    @T.t.in_transaction
    def add(name: str) -> Any:
        calls.append(name)
        return T.groups.add_row(name=name)

    # Anvil refuses a second transaction on the same thread, @in_transaction included: it does not
    # join (server/core/src/anvil/runtime/tables/util.clj:484-485; services/anvil/tables/__init__.py:205-212).
    with T.t.Transaction() as txn:
        with pytest.raises(rt.tables.TableError, match="^You already have a transaction open here$"):
            with T.t.Transaction():
                pass
        with pytest.raises(rt.tables.TableError, match="^You already have a transaction open here$"):
            add("nested")
        T.groups.add_row(name="in txn")
        txn.abort()
    assert len(T.groups.search()) == 0 and calls == []
    assert add("alone")["name"] == "alone" and calls == ["alone"]


def test_in_transaction_retries_conflicts(T: Any, rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt.tables.time, "sleep", lambda s: None)
    attempts = []

    @T.t.in_transaction(relaxed=True)
    def flaky() -> str:
        attempts.append(1)
        T.groups.add_row(name=f"try{len(attempts)}")
        if len(attempts) < 3:
            raise rt.tables.TransactionConflict("simulated")
        return "done"

    assert flaky() == "done" and len(attempts) == 3
    assert names(T.groups.search()) == ["try3"]  # the failed attempts were rolled back

    @T.t.in_transaction
    def always() -> None:
        attempts.append(1)
        raise rt.tables.TransactionConflict("simulated")

    attempts.clear()
    with pytest.raises(rt.tables.TransactionConflict):
        always()
    assert len(attempts) == 18


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's write lock; Postgres's row locks: the next test
def test_a_held_lock_gives_transaction_conflict_and_in_transaction_retries_past_it(T: Any, rt: Any, app: Path) -> None:
    T.groups.add_row(name="counter", notes="0")
    other = sqlite3.connect(app / ".anvil-dev" / "data.sqlite3", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    conn = services.current().db.connection()
    conn.execute("PRAGMA busy_timeout=100")
    try:
        # A transaction that has read may not wait for the lock: its write is a conflict at once.
        with pytest.raises(
            rt.tables.TransactionConflict, match="^Another transaction has changed this data; aborting$"
        ):
            with T.t.Transaction():
                row = T.groups.get(name="counter")
                row["notes"] = "never"
        assert T.groups.get(name="counter")["notes"] == "0"
        threading.Timer(0.5, other.execute, ("COMMIT",)).start()

        @T.t.in_transaction
        def bump() -> None:
            row = T.groups.get(name="counter")
            row["notes"] = str(int(row["notes"]) + 1)

        bump()
    finally:
        conn.execute("PRAGMA busy_timeout=30000")
    assert T.groups.get(name="counter")["notes"] == "1"


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_row_another_transaction_changed_gives_transaction_conflict_and_in_transaction_retries(
    T: Any, rt: Any, backend_database: str
) -> None:
    import psycopg

    T.groups.add_row(name="counter", notes="0")
    other = psycopg.connect(backend_database)  # a transaction of its own, open until committed
    other.execute("UPDATE app_groups SET notes = '10' WHERE name = 'counter'")
    timer = threading.Timer(0.5, other.commit)
    try:
        # SERIALIZABLE, as on Anvil: this transaction's write waits for the other's row lock, and
        # when that one commits a change, Postgres refuses this one (40001): a TransactionConflict.
        with pytest.raises(
            rt.tables.TransactionConflict, match="^Another transaction has changed this data; aborting$"
        ):
            with T.t.Transaction():
                row = T.groups.get(name="counter")
                timer.start()
                row["notes"] = "never"
        assert T.groups.get(name="counter")["notes"] == "10"
        other.execute("UPDATE app_groups SET notes = '20' WHERE name = 'counter'")
        threading.Timer(0.5, other.commit).start()

        @T.t.in_transaction
        def bump() -> None:
            row = T.groups.get(name="counter")
            row["notes"] = str(int(row["notes"]) + 1)

        bump()
    finally:
        timer.cancel()
        other.close()
    assert T.groups.get(name="counter")["notes"] == "21"  # retried past the conflict, on the other's value


def test_transactions_serialise_writers_in_several_processes(T: Any, app: Path) -> None:
    T.groups.add_row(name="counter", notes="0")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(RUNTIME)!r})
        from anvil_dev import services
        services.open({str(app)!r})
        import anvil.tables
        from anvil.tables import app_tables

        @anvil.tables.in_transaction
        def bump():
            row = app_tables.groups.get(name="counter")
            row["notes"] = str(int(row["notes"]) + 1)
            app_tables.groups.add_row(name="log")

        for _ in range(40):
            bump()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert T.groups.get(name="counter")["notes"] == "160"
    assert len(T.groups.search(name="log")) == 160


# ------------------------------------------------------------------------------- the wire


def encode(rt: Any, value: Any) -> dict[str, Any]:
    return json.loads(json.dumps(wire.encode({"response": value}, rt.registry)))


def decode(rt: Any, message: dict[str, Any], trusted: bool) -> Any:
    return wire.decode(message, rt.registry, trusted=trusted)["response"]


def test_rows_cross_the_wire_with_their_data_and_links_one_level_deep(T: Any, rt: Any) -> None:
    a = T.people.add_row(name="A", seen=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    b = T.people.add_row(name="B", boss=a, friends=[a])
    a["boss"] = b  # a cycle
    c = T.people.add_row(name="C", boss=b)
    msg = encode(rt, c)
    data = msg["response"]
    assert data["id"] == c.get_id() and data["table"] == "people" and len(data["mac"]) == 32
    assert data["data"]["name"] == "C"
    boss = data["data"]["boss"]
    assert boss["id"] == b.get_id() and boss["data"]["name"] == "B"
    assert "data" not in boss["data"]["boss"] and boss["data"]["boss"]["id"] == a.get_id()
    assert "data" not in boss["data"]["friends"][0]
    assert {"path": ["response"], "type": ["ValueType"], "typeName": "anvil.tables.Row"} in msg["objects"]
    assert any(o["type"] == ["DateTime"] for o in encode(rt, a)["objects"])
    back = decode(rt, msg, trusted=False)
    assert back == c and back["boss"]["boss"]["name"] == "A"


def test_forged_or_altered_row_references_are_refused(T: Any, rt: Any) -> None:
    a = T.people.add_row(name="A")
    b = T.people.add_row(name="B")
    msg = encode(rt, a)
    msg["response"]["id"] = b.get_id()
    with pytest.raises(rt.server.PermissionDenied, match="Invalid row reference"):
        decode(rt, json.loads(json.dumps(msg)), trusted=False)
    assert decode(rt, json.loads(json.dumps(msg)), trusted=True) == b
    bare = {
        "response": {"id": a.get_id(), "table": "people"},
        "objects": [{"path": ["response"], "type": ["ValueType"], "typeName": "anvil.tables.Row"}],
    }
    with pytest.raises(rt.server.PermissionDenied):
        decode(rt, json.loads(json.dumps(bare)), trusted=False)
    # The data a client sends along is ignored: the server reads the row itself.
    msg = encode(rt, a)
    msg["response"]["data"]["name"] = "Mallory"
    assert decode(rt, msg, trusted=False)["name"] == "A"


def test_search_iterators_and_tables_cross_the_wire(T: Any, rt: Any) -> None:
    T.people.add_rows([{"name": "A"}, {"name": "B"}])
    msg = encode(rt, T.people.search(T.t.order_by("name", ascending=False)))
    assert [r["data"]["name"] for r in msg["response"]] == ["B", "A"]
    assert msg["objects"][-1]["typeName"] == "anvil.tables.SearchIterator"
    back = decode(rt, msg, trusted=False)
    assert names(back) == ["B", "A"] and len(back) == 2
    view = T.people.client_readable(name="A")
    msg = encode(rt, view)
    assert msg["objects"][-1]["typeName"] == "anvil.tables.Table"
    got = decode(rt, json.loads(json.dumps(msg)), trusted=False)
    assert names(got.search()) == ["A"] and got == view
    msg["response"]["view"]["kwargs"]["name"] = "B"
    with pytest.raises(rt.server.PermissionDenied, match="Invalid table reference"):
        decode(rt, msg, trusted=False)
    assert decode(rt, encode(rt, T.people), trusted=False) == T.people


def test_query_operators_are_portable(T: Any, rt: Any) -> None:
    a = T.people.add_row(name="Ann", age=3)
    query = [
        T.q.any_of(name=T.q.like("A%"), boss=a),
        T.t.order_by("age"),
        T.q.page_size(5),
        T.q.fetch_only("name"),
        T.q.between(1, 5),
        T.q.full_text_match("x"),
        T.q.not_(age=None),
    ]
    back = decode(rt, encode(rt, query), trusted=True)
    assert back[0].kwargs["name"] == T.q.like("A%") and back[0].kwargs["boss"] == a
    assert back[1:] == query[1:]
    assert names(T.people.search(back[0])) == ["Ann"]


def test_end_call_rolls_back_a_transaction_left_open(T: Any) -> None:
    txn = T.t.Transaction()
    txn.__enter__()  # a call that never leaves its transaction
    T.groups.add_row(name="left open")
    services.current().end_call()
    assert not services.current().tables.in_transaction()
    assert len(T.groups.search()) == 0
    T.groups.add_row(name="next call")
    assert names(T.groups.search()) == ["next call"]


def test_warm_prepares_the_schema_and_leaves_no_connection_open(T: Any) -> None:
    T.groups.add_row(name="g")
    services.current().warm()
    assert getattr(services.current().db._local, "conn", None) is None
    assert names(T.groups.search()) == ["g"]


def test_a_call_checks_the_schema_once_and_still_finds_a_column_added_meanwhile(
    T: Any, rt: Any, monkeypatch: Any
) -> None:
    """Run as server code is (`_engine_hooks.execute`): one schema check for the call's lookups."""
    hooks = importlib.import_module("anvil._engine_hooks")
    for i in range(3):
        T.groups.add_row(name=f"g{i}")
    ctx = services.current()
    checks: list[int] = []
    real = type(ctx.tables.d).schema_version
    monkeypatch.setattr(ctx.tables.d, "schema_version", lambda conn: checks.append(1) or real(ctx.tables.d, conn))
    [dict(r) for r in T.groups.search()]
    assert len(checks) > 3  # outside a call, every lookup checks
    checks.clear()
    seen: dict[str, Any] = {}

    def in_a_call() -> None:
        seen["names"] = sorted(dict(r)["name"] for r in T.groups.search())
        seen["checks"] = len(checks)
        other = threading.Thread(target=lambda: T.groups.add_row(name="new", brand_new=1))  # another worker
        other.start()
        other.join(10)
        seen["brand_new"] = T.groups.get(name="new")["brand_new"]  # asked for by name: looked up again

    monkeypatch.setitem(rt.server.registrations, "in_a_call", rt.server.Registration("in_a_call", in_a_call))
    outcome = hooks.execute({"command": "in_a_call", "args": [], "kwargs": {}, "objects": []}, Caller(trusted=True))
    assert "error" not in outcome.message, outcome.message
    assert seen == {"names": ["g0", "g1", "g2"], "checks": 1, "brand_new": 1}
    checks.clear()
    assert dict(T.groups.get(name="g0"))["brand_new"] is None and checks  # after the call, lookups check


def test_a_long_call_checks_the_schema_again_once_its_check_is_old(T: Any, monkeypatch: Any) -> None:
    """As a background task does, which runs as one call for as long as it takes."""
    T.groups.add_row(name="g")
    ctx = services.current()
    checks: list[int] = []
    real = type(ctx.tables.d).schema_version
    monkeypatch.setattr(ctx.tables.d, "schema_version", lambda conn: checks.append(1) or real(ctx.tables.d, conn))
    monkeypatch.setattr(svc.store, "CALL_SCHEMA_S", 0.0)  # every check is at once too old
    ctx.begin_call()
    try:
        for _ in range(3):
            assert names(T.groups.search()) == ["g"]
    finally:
        ctx.end_call()
    assert len(checks) >= 3


def test_a_change_of_only_the_metadata_is_seen_by_a_thread_that_has_the_schema_cached(T: Any, app: Path) -> None:
    T.groups.add_row(name="g", notes="n")
    assert "notes" in dict(T.groups.get(name="g"))  # this thread's schema is cached
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"]["groups"]["columns"] = config["db_schema"]["groups"]["columns"][:1]  # notes hidden

    def sync() -> None:  # as a reload's new zygote syncs the edited anvil.yaml: no DDL on SQLite
        with services.current().tables._write() as conn:
            svc.schema.sync(conn, config)

    other = threading.Thread(target=sync)
    other.start()
    other.join(10)
    assert dict(T.groups.get(name="g")) == {"name": "g"}


def test_a_write_in_a_call_goes_by_a_schema_another_process_changed_since_its_reads(T: Any, app: Path) -> None:
    row = T.groups.add_row(name="g", notes="n")
    ctx = services.current()
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"]["groups"]["columns"][1]["type"] = "number"

    def retype() -> None:  # as a reload's new zygote syncs the edited anvil.yaml
        with ctx.tables._write() as conn:
            svc.schema.sync(conn, config)

    ctx.begin_call()
    try:
        assert T.groups.get(name="g")["notes"] == "n"  # the call's reads have checked the schema
        other = threading.Thread(target=retype)
        other.start()
        other.join(10)
        # Not written by the schema its reads had: on PostgreSQL to the old SQL column, and lost.
        with pytest.raises(Exception, match="cannot set it to a string"):
            row.update(notes="written after the retype")
    finally:
        ctx.end_call()


def _retyping_notes(app: Path) -> tuple[dict[str, Any], Any]:
    """anvil.yaml with groups.notes a number, and a function that syncs it as a reload's new
    zygote does (under lock_schema, in a write transaction), holding it open for `hold` seconds."""
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"]["groups"]["columns"][1]["type"] = "number"
    tables = services.current().tables

    def retype(synced: threading.Event | None = None, hold: float = 0.0) -> None:
        with tables._write() as conn:
            tables.d.lock_schema(conn)
            svc.schema.sync(conn, config)
            if synced is not None:
                synced.set()
            time.sleep(hold)

    return config, retype


def test_a_write_waits_for_a_schema_change_under_way_and_goes_by_it(T: Any, app: Path) -> None:
    row = T.groups.add_row(name="g", notes="n")
    _, retype = _retyping_notes(app)
    synced = threading.Event()
    other = threading.Thread(target=retype, args=(synced, 0.2))
    other.start()
    try:
        assert synced.wait(10)  # the retype is made and not yet committed
        with pytest.raises(Exception, match="cannot set it to a string"):
            row.update(notes="written while the retype commits")
    finally:
        other.join(10)
    assert T.groups.get(name="g")["notes"] in (None, "n")  # PostgreSQL: a new, empty SQL column


def test_a_transaction_that_writes_after_a_schema_change_since_its_snapshot_conflicts(T: Any, app: Path) -> None:
    row = T.groups.add_row(name="g", notes="n")
    _, retype = _retyping_notes(app)
    with pytest.raises(Exception) as failed:
        with T.t.Transaction():
            T.people.get(name="nobody")  # the snapshot, and the schema as it was
            other = threading.Thread(target=retype)
            other.start()
            other.join(10)
            row.update(notes="written in the transaction after the retype")
    # A conflict to retry (PostgreSQL), or the retype seen (SQLite): never written to the old column.
    assert type(failed.value).__name__ == "TransactionConflict" or "cannot set it to a string" in str(failed.value)
    assert T.groups.get(name="g")["notes"] in (None, "n")


# SQLite only: on PostgreSQL the ALTER TABLE holds the table's lock until the transaction ends, so
# other threads' reads of that table wait for it (docs/architecture.md, "Data tables on PostgreSQL").
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_column_added_in_an_open_transaction_is_invisible_to_other_threads(T: Any) -> None:
    T.groups.add_row(name="g")
    inside, finish = threading.Event(), threading.Event()

    def writer() -> None:
        with T.t.Transaction():
            T.groups.add_row(name="a", brand_new=1)
            inside.set()
            finish.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    try:
        assert names(T.groups.search()) == ["g"]  # this thread's connection: neither row nor column yet
        assert "brand_new" not in dict(T.groups.get(name="g"))
    finally:
        finish.set()
        thread.join(10)
    assert T.groups.get(name="a")["brand_new"] == 1 and T.groups.get(name="g")["brand_new"] is None


def test_a_client_write_never_brings_back_a_column_removed_since_the_call_read_the_schema(T: Any, app: Path) -> None:
    client = importlib.import_module("anvil.tables._client")
    context = importlib.import_module("anvil._context")
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    tables = services.current().tables

    def sync(columns: list[dict[str, Any]]) -> None:  # as a reload's new zygote syncs the edited anvil.yaml
        config["db_schema"]["secret_stuff"]["columns"] = columns
        with tables._write() as conn:
            svc.schema.sync(conn, config)

    x, y = {"name": "x", "type": "number"}, {"name": "y", "type": "number"}
    sync([x, y])
    ctx = services.current()
    ctx.begin_call()
    previous = context.push(context.CallState(remote_trusted=False))
    try:
        client.add_row(T.app_tables.secret_stuff, {"x": 1, "y": 1})  # the call's reads see y
        other = threading.Thread(target=sync, args=([x],))  # y removed from anvil.yaml meanwhile
        other.start()
        other.join(10)
        with pytest.raises(svc.NoSuchColumnError, match="Column 'y' does not exist"):
            client.add_row(T.app_tables.secret_stuff, {"x": 2, "y": 2})
        row = T.app_tables.secret_stuff.get(x=1)
        with pytest.raises(svc.NoSuchColumnError, match="Column 'y' does not exist"):
            client.update_row(T.app_tables.secret_stuff, row, {"y": 3})
    finally:
        context.pop(previous)
        ctx.end_call()
    assert [c["name"] for c in T.app_tables.secret_stuff.list_columns()] == ["x"]
    assert sorted(r["x"] for r in T.app_tables.secret_stuff.search()) == [1]


def _sync_groups(app: Path, columns: list[dict[str, Any]]) -> None:
    """Sync anvil.yaml with groups' columns as given, on another thread, as a reload's new zygote does."""
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"]["groups"]["columns"] = columns

    def sync() -> None:
        with services.current().tables._write() as conn:
            svc.schema.sync(conn, config)

    other = threading.Thread(target=sync)
    other.start()
    other.join(10)


NAME = {"name": "name", "type": "string"}


def test_deleting_a_search_made_before_its_column_was_removed_deletes_nothing(T: Any, app: Path) -> None:
    T.groups.add_row(name="kept", notes="x")
    T.groups.add_row(name="other", notes="y")
    search = T.groups.search(notes="x")
    _sync_groups(app, [NAME])  # notes removed: its values stay in the database, out of sight
    with pytest.raises(svc.TableError, match="No such column 'notes'"):
        search.delete_all_rows()  # run again by its arguments, as the search itself now would be
    assert sorted(names(T.groups.search())) == ["kept", "other"]


def test_deleting_a_search_made_before_its_column_was_retyped_deletes_what_it_now_matches(T: Any, app: Path) -> None:
    T.groups.add_row(name="a", notes="x")
    T.groups.add_row(name="b", notes=None)
    search = T.groups.search(notes=None)
    _sync_groups(app, [NAME, {"name": "notes", "type": "number"}])
    # PostgreSQL: a new, empty SQL column, so both rows now read as None; SQLite keeps the values.
    now_matching = sorted(names(T.groups.search(notes=None)))
    search.delete_all_rows()
    assert sorted(names(T.groups.search())) == sorted({"a", "b"} - set(now_matching))


def test_deleting_a_clients_search_whose_column_changed_since_is_refused(T: Any, app: Path, rt: Any) -> None:
    for i in range(3):
        T.groups.add_row(name=f"g{i}", notes="x")
    search = T.groups.search(rt.q.page_size(1), notes="x")
    from_client = type(search).from_cursor(search._cursor())  # as a client sends the search back
    _sync_groups(app, [NAME])
    with pytest.raises(svc.TableError, match="has changed since the search was made: search again"):
        from_client.delete_all_rows()
    assert len(T.groups.search()) == 3
    unchanged = T.groups.search(rt.q.page_size(1), name="g0")
    type(unchanged).from_cursor(unchanged._cursor()).delete_all_rows()
    assert sorted(names(T.groups.search())) == ["g1", "g2"]


def test_a_clients_search_is_refused_only_for_a_change_to_a_column_it_filters_by(T: Any, app: Path, rt: Any) -> None:
    for i in range(3):
        T.groups.add_row(name=f"g{i}", notes="x")
    tables = services.current().tables
    sorted_by_notes = T.groups.search(rt.q.page_size(1), T.t.order_by("notes"), name="g0")
    by_sort = type(sorted_by_notes).from_cursor(sorted_by_notes._cursor())
    unmarked = tables.unseal(T.groups.search(rt.q.page_size(1), name="g1")._cursor())
    del unmarked["c"]  # as a cursor sealed before cursors carried their columns
    old = type(sorted_by_notes).from_cursor(tables.seal(unmarked))
    _sync_groups(app, [NAME, {"name": "notes", "type": "number"}])
    by_sort.delete_all_rows()  # a delete does not sort: the retyped column does not matter to it
    with pytest.raises(svc.TableError, match="search again"):
        old.delete_all_rows()  # its columns are not known
    assert sorted(names(T.groups.search())) == ["g1", "g2"]


def test_a_client_update_of_a_buffered_model_class_row_is_written(tmp_path: Path, rt: Any) -> None:
    path = make_app(tmp_path / "v2app")
    config = yaml.safe_load((path / "anvil.yaml").read_text())
    config["services"][0]["client_config"] = {"enable_v2": True}
    (path / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    services.open(path)
    table = rt.tables.app_tables.secret_stuff

    class Stuff(table.Row, buffered=True):  # type: ignore[misc, name-defined]
        pass

    client = importlib.import_module("anvil.tables._client")
    context = importlib.import_module("anvil._context")
    row = table.add_row(x=1)
    assert isinstance(row, Stuff) and row.buffered_changes == {}
    previous = context.push(context.CallState(remote_trusted=False))
    try:
        updated = client.update_row(table, row, {"x": 5})  # a client holds no buffer to save()
    finally:
        context.pop(previous)
    assert updated["x"] == 5 and row.buffered_changes == {}
    assert services.current().tables.load_rows(table._id, [row._id])[row._id]["x"] == 5  # as stored


def test_reading_a_search_made_before_its_column_changed_runs_it_again(T: Any, app: Path, rt: Any) -> None:
    T.groups.add_row(name="a", notes="x")
    T.groups.add_row(name="b", notes="y")
    removed, retyped = T.groups.search(notes="x"), T.groups.search(notes=None)
    cursor = T.groups.search(rt.q.page_size(1), notes="x")._cursor()
    _sync_groups(app, [NAME])  # notes removed: its values stay in the database, out of sight
    for read in (len, list):
        with pytest.raises(svc.TableError, match="No such column 'notes'"):
            read(removed)  # not matched on the hidden values
    client = importlib.import_module("anvil.tables._client")
    with pytest.raises(svc.TableError, match="search again"):
        client.next_page(cursor, 1)
    _sync_groups(app, [NAME, {"name": "notes", "type": "number"}])
    assert sorted(names(retyped)) == sorted(names(T.groups.search(notes=None)))  # as a new search reads
