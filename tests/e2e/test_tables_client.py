"""Client code and data tables through a real `anvil-dev serve`, with the Python client: table
permissions (client none/search/full), views, client_hidden columns, lazy pages and linked rows.

What is allowed follows Anvil's tables service (server/core/src/anvil/runtime/tables/rpc.clj:34-74,
ensure-table-access-ok): `search` reads, `full` writes, `none` refuses; views made by server code
read (and write) only their rows; client_hidden columns never reach client code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from anvil_dev.client import Connection, Row, ServerError, order_by
from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, backend_env, write_module

MODULE = '''
import anvil.server
from anvil.tables import app_tables


@anvil.server.callable
def reset(n):
    for t in (app_tables.notes, app_tables.todo, app_tables.private):
        t.delete_all_rows()
    app_tables.notes.add_rows([{"n": i, "owner": "ann" if i % 2 else "bob", "secret": "s%d" % i}
                               for i in range(n)])
    app_tables.private.add_row(x=1)


@anvil.server.callable
def private_table():
    return app_tables.private


@anvil.server.callable
def writable_view(owner):
    return app_tables.notes.client_writable(owner=owner)


@anvil.server.callable
def readable_view(owner):
    return app_tables.notes.client_readable(owner=owner)


@anvil.server.callable
def task_views():
    app_tables.tasks.delete_all_rows()
    app_tables.tasks.add_row(title="t", owner="ann", note=app_tables.notes.get(n=9))
    return [app_tables.tasks.client_writable(owner="ann"), app_tables.tasks.client_writable_cascade(owner="ann")]


@anvil.server.callable
def all_notes(owner=None):
    return app_tables.notes.search(owner=owner) if owner else app_tables.notes.search()


@anvil.server.callable
def count_of(search):
    return [len(search), sum(1 for _ in search)]


@anvil.server.callable
def a_note(n):
    return app_tables.notes.get(n=n)


@anvil.server.callable
def secret_of(n):
    return app_tables.notes.get(n=n)["secret"]


@anvil.server.callable
def chain():
    """Three todo rows, each linking to the next: the last is beyond the data a row carries."""
    c = app_tables.todo.add_row(title="c")
    b = app_tables.todo.add_row(title="b", next=c)
    return app_tables.todo.add_row(title="a", next=b)
'''

TABLES = {
    "notes": {
        "title": "Notes",
        "client": "search",
        "server": "full",
        "columns": [
            {"name": "n", "type": "number"},
            {"name": "owner", "type": "string"},
            {"name": "secret", "type": "string", "client_hidden": True},
        ],
    },
    "todo": {
        "title": "Todo",
        "client": "full",
        "server": "full",
        "columns": [
            {"name": "title", "type": "string"},
            {"name": "done", "type": "bool"},
            {"name": "next", "type": "link_single", "target": "todo"},
        ],
    },
    "private": {"title": "Private", "client": "none", "server": "full", "columns": [{"name": "x", "type": "number"}]},
    "tasks": {
        "title": "Tasks",
        "client": "none",
        "server": "full",
        "columns": [
            {"name": "title", "type": "string"},
            {"name": "owner", "type": "string"},
            {"name": "note", "type": "link_single", "target": "notes"},
        ],
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, module_database: str | None) -> Iterator[ServerProcess]:
    app = scaffold(tmp_path_factory.mktemp("client") / "ClientTables")
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"].update(TABLES)
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_module(app, "Tables", MODULE)
    s = ServerProcess(app, env=backend_env(module_database))
    yield s
    s.stop()


@pytest.fixture
def c(server: ServerProcess) -> Connection:
    client = server.client()
    client.call("reset", 1000)
    return client


def test_app_tables_shows_only_tables_client_code_may_use(c: Connection) -> None:
    assert sorted(c.app_tables) == ["notes", "todo"]
    with pytest.raises(AttributeError, match="No such app table: 'private'"):
        c.app_tables.private  # noqa: B018


def test_a_client_none_table_is_refused_even_when_server_code_hands_it_out(c: Connection) -> None:
    private = c.call("private_table")
    with pytest.raises(ServerError) as e:
        list(private.search())
    assert e.value.type == "anvil.server.PermissionDenied"
    assert e.value.message == "Permission denied: Cannot search in table 'private' from client code."


def test_a_search_of_1000_rows_is_paged_lazily(c: Connection) -> None:
    results = c.app_tables.notes.search(page_size=100)
    assert results.pages_loaded == 0  # nothing is fetched until it is used
    first = results[0]
    assert first["n"] == 0 and results.pages_loaded == 1
    seen = [r["n"] for r in results]
    assert seen == list(range(1000)) and results.pages_loaded == 10
    assert len(c.app_tables.notes.search(owner="ann")) == 500


def test_client_search_table_reads_but_does_not_write(c: Connection) -> None:
    notes = c.app_tables.notes
    row = notes.get(n=3)
    assert row["owner"] == "ann"
    with pytest.raises(ServerError) as e:
        row.update(owner="eve")
    assert e.value.message == "Permission denied: Cannot write in table 'notes' from client code."
    with pytest.raises(ServerError) as e:
        notes.add_row(n=-1)
    assert e.value.type == "anvil.server.PermissionDenied"
    assert c.call("a_note", 3)["owner"] == "ann"


def test_client_full_table_adds_updates_and_deletes(c: Connection) -> None:
    todo = c.app_tables.todo
    row = todo.add_row(title="write tests", done=False)
    row.update(done=True)
    assert todo.get(title="write tests")["done"] is True
    row.delete()
    assert todo.get(title="write tests") is None


def test_a_client_writable_view_updates_only_its_rows(c: Connection) -> None:
    mine = c.call("writable_view", "ann")
    row = mine.get(n=5)
    row.update(n=5000)
    assert c.call("a_note", 5000)["owner"] == "ann"
    bobs = c.call("a_note", 4)  # bob's row, handed out by the server: readable, not writable here
    with pytest.raises(ServerError, match="not in the view"):
        mine._call("update_row", mine, bobs, {"n": -4})
    with pytest.raises(ServerError, match="This view only holds rows whose 'owner' is 'ann'"):
        row.update(owner="bob")
    readable = c.call("readable_view", "ann")
    with pytest.raises(ServerError) as e:
        readable.get(n=7).update(n=7000)
    assert e.value.type == "anvil.server.PermissionDenied"


def test_a_forged_view_is_refused(c: Connection) -> None:
    mine = c.call("writable_view", "ann")
    mine.data["view"]["kwargs"]["owner"] = "bob"  # try to widen the view to someone else's rows
    with pytest.raises(ServerError) as e:
        list(mine.search())
    assert e.value.type == "anvil.server.PermissionDenied"
    assert "signature does not match" in e.value.message


def test_client_hidden_columns_never_reach_client_code(c: Connection) -> None:
    row = c.app_tables.notes.get(n=1)
    assert "secret" not in dict(row.items()) and sorted(row.keys()) == ["n", "owner"]
    assert "secret" not in dict(c.call("a_note", 1).items())  # a row a server function returns, too
    assert [col["name"] for col in c.app_tables.notes.list_columns()] == ["n", "owner"]
    with pytest.raises(ServerError) as e:
        c.app_tables.notes.get(secret="s1")
    assert e.value.type == "anvil.tables.NoSuchColumnError"
    with pytest.raises(ServerError) as e:
        list(c.app_tables.notes.search(order_by("secret")))
    assert e.value.type == "anvil.tables.NoSuchColumnError"
    assert c.call("secret_of", 1) == "s1"  # server code sees it


def test_a_client_search_sorts_with_order_by(c: Connection) -> None:
    found = c.app_tables.notes.search(order_by("n", ascending=False), owner="bob", page_size=7)
    assert [r["n"] for r in found][:3] == [998, 996, 994] and found.pages_loaded == 72


def test_linked_rows_load_when_read(c: Connection) -> None:
    a = c.call("chain")
    b = a["next"]
    assert isinstance(b, Row) and b["title"] == "b"
    far = b["next"]
    assert "data" not in far.data  # beyond the data sent with the row: a reference only
    assert far["title"] == "c"  # loaded from the server now


POSTS = {
    "title": "Posts",
    "client": "none",
    "server": "full",
    "columns": [{"name": "text", "type": "string"}, {"name": "author", "type": "link_single", "target": "users"}],
}
POSTS_MODULE = """
import anvil.server
from anvil.tables import app_tables


@anvil.server.callable
def post(email, text):
    return app_tables.posts.add_row(text=text, author=app_tables.users.get(email=email))
"""


def _posts_app(root: Path, hidden: bool) -> Path:
    app = scaffold(root / ("Hidden" if hidden else "Unhidden"))
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"]["posts"] = POSTS
    if not hidden:
        for col in config["db_schema"]["users"]["columns"]:
            col.pop("client_hidden", None)
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_module(app, "Posts", POSTS_MODULE)
    return app


@pytest.mark.parametrize("hidden", [True, False])
def test_a_users_row_linked_from_a_returned_row_honours_client_hidden(
    tmp_path: Path, hidden: bool, backend_database: str | None
) -> None:
    # The scaffold's users table marks password_hash and email_confirmation_key client_hidden.
    s = ServerProcess(_posts_app(tmp_path, hidden))
    try:
        client = s.client()
        client.signup("ann@example.org", "a long enough password")
        author = client.call("post", "ann@example.org", "hello")["author"]
        assert author["email"] == "ann@example.org"
        if hidden:
            assert "password_hash" not in author.keys() and "email_confirmation_key" not in author.keys()
            assert "password_hash column" not in s.output
        else:
            assert "password_hash" in author.keys()  # as Anvil sends a column that is not hidden
            line = s.wait_for_output("password_hash column")
            assert "mark that column client_hidden: true in anvil.yaml's db_schema" in line
    finally:
        s.stop()


def test_a_cascade_view_writes_the_rows_its_rows_link_to(c: Connection) -> None:
    # client_writable_cascade: the linked table gets "rwc" (tables/v2/basic_ops.clj:112-116);
    # client_writable writes only its own table's rows.
    writable, cascade = c.call("task_views")
    note = writable.get(title="t")["note"]
    with pytest.raises(ServerError) as e:
        note.update(owner="cascaded")
    assert e.value.message == "Permission denied: Cannot write in table 'notes' from client code."
    note = cascade.get(title="t")["note"]
    note.update(owner="cascaded")
    assert c.call("a_note", 9)["owner"] == "cascaded"
    other = c.call("a_note", 8)  # not linked from the view's rows
    with pytest.raises(ServerError):
        cascade._call("update_row", cascade, other, {"owner": "x"})


def test_a_search_a_server_function_returns_arrives_a_page_at_a_time(c: Connection) -> None:
    found = c.call("all_notes")
    assert type(found).type_name == "anvil.tables.SearchIterator"
    assert len(found.data["rows"]) == 100 and "secret" not in found.data["rows"][0].keys()
    assert [r["n"] for r in found] == list(range(1000))  # the other nine pages, fetched as reached
    assert len(found.data["rows"]) == 1000 and len(found) == 1000
    assert c.call("count_of", c.call("all_notes", "ann")) == [500, 500]  # it goes back as the same search
    sealed = c.call("all_notes")
    sealed.data["more"] = sealed.data["more"][:-4] + "AAAA"  # altered: refused, not read
    with pytest.raises(ServerError) as e:
        list(sealed)
    assert e.value.type == "anvil.server.PermissionDenied"
