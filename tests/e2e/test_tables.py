"""anvil.tables through a real `anvil-dev serve`: a server module written as public Anvil apps
write them, rows returned to the client and passed back, concurrent writers in fresh children,
data across restarts, and a server killed with SIGKILL in the middle of writes; each on SQLite and
on PostgreSQL (`backend_database`/`module_database`).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from anvil_dev.client import Connection, Media, ServerError
from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, backend_env, write_module

TABLES = {
    "people": {
        "title": "People",
        "client": "none",
        "server": "full",
        "columns": [
            {"name": "name", "type": "string"},
            {"name": "age", "type": "number"},
            {"name": "Lic. #", "type": "string"},
            {"name": "joined", "type": "datetime"},
            {"name": "tags", "type": "simpleObject"},
            {"name": "photo", "type": "media"},
            {"name": "boss", "type": "link_single", "target": "people"},
            {"name": "friends", "type": "link_multiple", "target": "people"},
        ],
    },
    "counters": {
        "title": "Counters",
        "client": "none",
        "server": "full",
        "columns": [
            {"name": "name", "type": "string"},
            {"name": "value", "type": "number"},
        ],
    },
    "log": {
        "title": "Log",
        "client": "none",
        "server": "full",
        "columns": [
            {"name": "seq", "type": "number"},
            {"name": "writer", "type": "string"},
        ],
    },
}

MODULE = """
    import datetime
    import time

    import anvil
    import anvil.server
    import anvil.tables as tables
    import anvil.tables.query as q
    from anvil.tables import app_tables


    @anvil.server.callable
    def reset():
        for t in (app_tables.people, app_tables.counters, app_tables.log):
            t.delete_all_rows()
        app_tables.counters.add_row(name="hits", value=0)


    @anvil.server.callable
    def add_person(name, age=None, boss=None, **extra):
        return app_tables.people.add_row(name=name, age=age, boss=boss,
                                         joined=datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
                                         **extra)


    @anvil.server.callable
    def older_than(age):
        return app_tables.people.search(tables.order_by("age", ascending=False), age=q.greater_than(age))


    @anvil.server.callable
    def names_matching(pattern):
        return [r["name"] for r in app_tables.people.search(q.any_of(name=q.ilike(pattern), tags=["vip"]))]


    @anvil.server.callable
    def reports_of(boss):
        return [r["name"] for r in app_tables.people.search(boss=boss)]


    @anvil.server.callable
    def rename(person, new_name):
        person["name"] = new_name
        return person


    @anvil.server.callable
    def befriend(person, friend):
        person["friends"] = (person["friends"] or []) + [friend]
        return [f["name"] for f in person["friends"]]


    @anvil.server.callable
    def copy_person(data):
        # dict(row) from the client, with a linked row and a datetime inside, as real apps send it
        return app_tables.people.add_row(**data)


    @anvil.server.callable
    def describe(person):
        return {"id": person.get_id(), "name": person["name"], "boss": person["boss"] and person["boss"]["name"],
                "joined": person["joined"], "is_row": isinstance(person, tables.Row)}


    @anvil.server.callable
    def fire(person):
        person.delete()


    @anvil.server.callable
    def read_name(person):
        return person["name"]


    @anvil.server.callable
    def get_by_id(row_id):
        row = app_tables.people.get_by_id(row_id)
        return row and row["name"]


    @anvil.server.callable
    def typo():
        return app_tables.people.search(nmae="x")


    @anvil.server.callable
    def photo_of(person):
        return person["photo"]


    @anvil.server.callable
    def set_photo(person, media):
        person["photo"] = media


    @anvil.server.callable
    def transfer_then_fail():
        with tables.Transaction():
            app_tables.counters.get(name="hits")["value"] = 1000
            raise ValueError("changed my mind")


    @anvil.server.callable
    def hits():
        return app_tables.counters.get(name="hits")["value"]


    @anvil.server.callable
    @tables.in_transaction
    def bump(writer):
        row = app_tables.counters.get(name="hits")
        value = row["value"]
        app_tables.log.add_row(seq=value, writer=writer)
        row["value"] = value + 1
        return value


    @anvil.server.callable
    def write_forever(seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            bump("forever")


    @anvil.server.callable
    def every_operator_and_method():
        P = app_tables.people
        ann = P.add_row(name="Ann", age=30, tags={"role": "admin", "langs": ["py", "js"]})
        bob = P.add_row(name="Bob", age=40, boss=ann, friends=[ann])
        cyd = P.add_row(name="cyd 100% sure", age=None, boss=ann, friends=[ann, bob])
        P.add_rows([{"name": "Dee", "age": 50}, {"name": "Eve", "age": 60}])
        n = lambda rows: [r["name"] for r in rows]
        try:
            P.get(age=q.greater_than(0))
            many = "no error"
        except tables.TableError as e:
            many = str(e)
        bob.update(age=41)
        bob["age"] = 42
        eve = P.get(name="Eve")
        eve.delete()
        return {
            "like": n(P.search(name=q.like("%b"))), "like_escape": n(P.search(name=q.like("%100\\%%"))),
            "ilike": n(P.search(name=q.ilike("C%"))),
            "gt": n(P.search(age=q.greater_than(40))), "lt": n(P.search(age=q.less_than(40))),
            "gte": n(P.search(age=q.greater_than_or_equal_to(42))),
            "lte": n(P.search(age=q.less_than_or_equal_to(42))),
            "between": n(P.search(age=q.between(30, 50))),
            "full_text": n(P.search(name=q.full_text_match("sure"))),
            "all_of": n(P.search(q.all_of(boss=ann, age=42))), "any_of": n(P.search(q.any_of(name="Ann", age=50))),
            "none_of": n(P.search(q.none_of(name="Ann", age=None))), "not_": n(P.search(q.not_(age=q.less_than(45)))),
            "none": n(P.search(age=None)), "link": n(P.search(boss=ann)),
            "multi": n(P.search(friends=[ann, bob])), "simple": n(P.search(tags={"langs": ["js"]})),
            "order": n(P.search(tables.order_by("age", ascending=False))),
            "page_size": n(P.search(q.page_size(1), tables.order_by("name"))),
            "fetch_only": P.search(q.fetch_only("name"), name="Ann")[0]["age"],
            "only_cols": list(dict(P.search(q.only_cols("name"), name="Ann")[0])),
            "len": len(P.search()), "index": P.search(tables.order_by("name"))[1]["name"],
            "slice": n(P.search(tables.order_by("name"))[1:3]), "bool": [bool(P.search()), bool(P.search(age=-1))],
            "get": P.get(name="Ann") == ann, "get_none": P.get(name="nobody"), "get_many": many,
            "get_by_id": P.get_by_id(bob.get_id())["name"], "has_row": [P.has_row(ann), P.has_row(eve)],
            "columns": [c["name"] for c in P.list_columns()][:3],
            "csv_lines": len(P.to_csv().get_bytes().decode().splitlines()),
            "keys": bob.keys()[:2], "items": bob.items()[:2], "dict": dict(bob)["age"], "get_default": bob.get("x", 7),
            "id_form": bob.get_id() == "[%d,%d]" % tuple(int(x) for x in bob.get_id().strip("[]").split(",")),
            "readable": n(P.client_readable(boss=ann).search()),
        }


    @anvil.server.callable
    def log_seqs():
        return sorted(r["seq"] for r in app_tables.log.search())
"""


def make_tables_app(root: Path) -> Path:
    app = scaffold(root / "TablesApp")
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"].update(TABLES)
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_module(app, "Tables", MODULE)
    return app


@pytest.fixture(scope="module")
def tables_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tables_app(tmp_path_factory.mktemp("tables"))


@pytest.fixture(scope="module")
def shared_server(tables_app: Path, module_database: str | None) -> Iterator[ServerProcess]:
    s = ServerProcess(tables_app, env=backend_env(module_database))
    yield s
    s.stop()


@pytest.fixture
def c(shared_server: ServerProcess) -> Connection:
    client = shared_server.client()
    client.call("reset")
    return client


def test_rows_returned_to_the_client_carry_their_columns_and_links(c: Connection) -> None:
    boss = c.call("add_person", "Ann", 50)
    bob = c.call("add_person", "Bob", 30, boss=boss, tags=["vip"], **{"Lic. #": "L-1"})
    assert boss["name"] == "Ann" and bob["Lic. #"] == "L-1" and bob["tags"] == ["vip"]
    table_id, row_id = (int(x) for x in bob.get_id().strip("[]").split(","))
    assert bob.get_id() == f"[{table_id},{row_id}]"
    assert bob["boss"]["name"] == "Ann" and bob["boss"] == boss
    assert bob["joined"].isoformat() == "2024-05-06T07:08:09+00:00"
    assert c.call("get_by_id", bob.get_id()) == "Bob"


def test_searches_with_operators_and_order_by(c: Connection) -> None:
    ann = c.call("add_person", "Ann", 50)
    c.call("add_person", "Bob", 30, boss=ann)
    c.call("add_person", "Cyd", 40, boss=ann, tags=["vip", "new"])
    c.call("add_person", "Dee", 20)
    older = c.call("older_than", 25)
    assert type(older).type_name == "anvil.tables.SearchIterator"  # the client sees its rows as a list
    assert [r["name"] for r in older.data] == ["Ann", "Cyd", "Bob"]
    assert c.call("names_matching", "%E") == ["Cyd", "Dee"]
    assert c.call("reports_of", ann) == ["Bob", "Cyd"]


def test_every_operator_and_method_in_a_server_module(c: Connection) -> None:
    got = c.call("every_operator_and_method")
    assert got == {
        "like": ["Bob"],
        "like_escape": ["cyd 100% sure"],
        "ilike": ["cyd 100% sure"],
        "gt": ["Bob", "Dee"],
        "lt": ["Ann"],
        "gte": ["Bob", "Dee"],
        "lte": ["Ann", "Bob"],
        "between": ["Ann", "Bob"],
        "full_text": ["cyd 100% sure"],
        "all_of": ["Bob"],
        "any_of": ["Ann", "Dee"],
        "none_of": ["Bob", "Dee"],
        "not_": ["cyd 100% sure", "Dee"],
        "none": ["cyd 100% sure"],
        "link": ["Bob", "cyd 100% sure"],
        "multi": ["cyd 100% sure"],
        "simple": ["Ann"],
        # None last descending (server/core/src/anvil/runtime/tables/v2/query.clj:314).
        "order": ["Dee", "Bob", "Ann", "cyd 100% sure"],
        "page_size": ["Ann", "Bob", "Dee", "cyd 100% sure"],
        "fetch_only": 30,
        "only_cols": ["name"],
        "len": 4,
        "index": "Bob",
        "slice": ["Bob", "Dee"],
        # bool() of a search is always True (services/anvil/tables/v2/_search.py:216-218).
        "bool": [True, True],
        "get": True,
        "get_none": None,
        "get_many": "More than one row matched this query",
        "get_by_id": "Bob",
        "has_row": [True, False],
        "columns": ["name", "age", "Lic. #"],
        "csv_lines": 5,
        "keys": ["name", "age"],
        "items": [["name", "Bob"], ["age", 42]],
        "dict": 42,
        "get_default": 7,
        "id_form": True,
        "readable": ["Bob", "cyd 100% sure"],
    }


def test_rows_passed_back_are_live_rows(c: Connection) -> None:
    ann = c.call("add_person", "Ann", 50)
    bob = c.call("add_person", "Bob", 30, boss=ann)
    assert c.call("describe", bob) == {
        "id": bob.get_id(),
        "name": "Bob",
        "boss": "Ann",
        "joined": bob["joined"],
        "is_row": True,
    }
    renamed = c.call("rename", bob, "Robert")
    assert renamed["name"] == "Robert" and c.call("read_name", bob) == "Robert"
    assert c.call("befriend", bob, ann) == ["Ann"]
    copy = c.call("copy_person", dict(ann, name="Ann II", boss=bob))
    assert copy["name"] == "Ann II" and copy["boss"]["name"] == "Robert" and copy["joined"] == ann["joined"]


def test_a_forged_row_reference_is_refused(c: Connection) -> None:
    ann = c.call("add_person", "Ann", 50)
    bob = c.call("add_person", "Bob", 30)
    bob.data["data"]["name"] = "Mallory"  # data sent back is ignored ...
    assert c.call("read_name", bob) == "Bob"
    bob.data["id"] = ann.get_id()  # ... and an altered id fails its MAC
    with pytest.raises(ServerError) as e:
        c.call("fire", bob)
    assert e.value.type == "anvil.server.PermissionDenied" and "Invalid row reference" in str(e.value)
    assert c.call("read_name", ann) == "Ann"


def test_deleted_rows_and_unknown_columns_raise_anvils_errors(c: Connection) -> None:
    bob = c.call("add_person", "Bob", 30)
    c.call("fire", bob)
    with pytest.raises(ServerError) as e:
        c.call("read_name", bob)
    assert e.value.type == "anvil.tables.RowDeleted" and "This row has been deleted" in str(e.value)
    with pytest.raises(ServerError) as e:
        c.call("typo")
    assert e.value.type == "anvil.tables.NoSuchColumnError" and "nmae" in str(e.value)


def test_media_columns(c: Connection) -> None:
    ann = c.call("add_person", "Ann", 50)
    c.call("set_photo", ann, Media("image/png", b"\x89PNG fake", name="ann.png"))
    photo = c.call("photo_of", ann)
    assert (photo.content_type, photo.name, photo.get_bytes()) == ("image/png", "ann.png", b"\x89PNG fake")


def test_a_failed_transaction_changes_nothing(c: Connection) -> None:
    with pytest.raises(ServerError, match="changed my mind"):
        c.call("transfer_then_fail")
    assert c.call("hits") == 0


def test_concurrent_writers_in_fresh_children_are_serialised(c: Connection, shared_server: ServerProcess) -> None:
    n_threads, n_calls = 6, 15
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        client = shared_server.client()
        try:
            for _ in range(n_calls):
                client.call("bump", f"w{i}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    total = n_threads * n_calls
    assert c.call("hits") == total
    assert c.call("log_seqs") == list(range(total))  # each read-modify-write saw the one before


def test_concurrent_writers_in_persistent_worker_threads(
    tmp_path: Path, server_factory: Callable[..., ServerProcess], backend_database: str | None
) -> None:
    server = server_factory(make_tables_app(tmp_path), "--keep-server-running", "--workers", "2")
    server.client().call("reset")
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        client = server.client()
        try:
            for _ in range(10):
                client.call("bump", f"w{i}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert server.client().call("log_seqs") == list(range(60))


def test_data_survives_a_restart(
    tmp_path: Path, server_factory: Callable[..., ServerProcess], backend_database: str | None
) -> None:
    app = make_tables_app(tmp_path)
    first = server_factory(app)
    first.client().call("reset")
    ann = first.client().call("add_person", "Ann", 50)
    first.stop()
    second = server_factory(app)
    assert second.client().call("read_name", ann) == "Ann"


def _db_state(app: Path, database: str | None) -> tuple[str, int, list[int]]:
    """The database as it is on disk: its integrity check (SQLite), the counter, the log's seqs."""
    if database:
        import psycopg

        with psycopg.connect(database) as conn:
            hits = conn.execute('SELECT value FROM "app_counters" WHERE name=%s', ("hits",)).fetchone()[0]
            seqs = sorted(int(r[0]) for r in conn.execute('SELECT seq FROM "app_log"'))
        return "ok", int(hits), seqs
    db = sqlite3.connect(app / ".anvil-dev" / "data.sqlite3", timeout=30)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        hits = db.execute('SELECT value FROM "app_counters" WHERE name=?', ("hits",)).fetchone()[0]
        seqs = sorted(r[0] for r in db.execute('SELECT seq FROM "app_log"'))
        return ok, hits, seqs
    finally:
        db.close()


def test_sigkill_during_writes_leaves_every_committed_row_and_no_half_written_one(
    tmp_path: Path, server_factory: Callable[..., ServerProcess], backend_database: str | None
) -> None:
    app = make_tables_app(tmp_path)
    server = server_factory(app)
    server.client().call("reset")
    threading.Thread(target=lambda: _ignore_errors(server.client().call, "write_forever", 25), daemon=True).start()
    deadline = time.monotonic() + 30
    seen = 0
    while seen < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = len(_db_state(app, backend_database)[2])
    assert seen >= 300, "the writer never got going"
    # Every process of serve dies at once, as in a crash: the host, the zygote and the children
    # (each child leads a process group of its own, so killing serve's group alone would leave
    # the writing child running).
    for pid in _process_tree(server.proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.wait(10)
    ok, hits, seqs = _db_state(app, backend_database)
    assert ok == "ok"
    assert hits == len(seqs) >= seen and seqs == list(range(hits))  # each transaction whole, or not at all
    restarted = server_factory(app)
    assert restarted.client().call("hits") == hits
    assert restarted.client().call("bump", "after") == hits  # and writing goes on


def _process_tree(root: int) -> list[int]:
    """`root` and every process descended from it, from /proc (parents before children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree = [root]
    for pid in tree:
        tree.extend(children.get(pid, []))
    return tree


def _ignore_errors(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - the server is killed under this call on purpose
        pass
