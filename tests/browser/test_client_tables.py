"""anvil.tables from client Python in the browser: `app_tables` searches, gets, adds, updates and
deletes through the server's client functions, which check each table's `client` permission,
views and client_hidden columns, and refusals arrive as Anvil's exception types."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import ServerProcess, write_module

READY_MS = 90_000

MODULE = """
import anvil.server
from anvil.tables import app_tables


@anvil.server.callable
def reset(n):
    app_tables.notes.delete_all_rows()
    app_tables.notes.add_rows([{"n": i, "owner": "ann" if i % 2 else "bob", "secret": "s%d" % i}
                               for i in range(n)])
    app_tables.private.add_row(x=1)


@anvil.server.callable
def private_table():
    return app_tables.private


@anvil.server.callable
def all_notes():
    return app_tables.notes.search()


@anvil.server.callable
def owner_of(row):
    return row["owner"] + " " + row["secret"]


@anvil.server.callable
def todo_titles():
    return sorted((r["title"], r["done"]) for r in app_tables.todo.search())
"""

TABLES = {
    "notes": {
        "client": "search",
        "server": "full",
        "columns": [
            {"name": "n", "type": "number"},
            {"name": "owner", "type": "string"},
            {"name": "secret", "type": "string", "client_hidden": True},
        ],
    },
    "todo": {
        "client": "full",
        "server": "full",
        "columns": [{"name": "title", "type": "string"}, {"name": "done", "type": "bool"}],
    },
    "private": {"client": "none", "server": "full", "columns": [{"name": "x", "type": "number"}]},
}

TEMPLATE = """
container: {type: ColumnPanel}
components:
- {type: Label, name: result, properties: {text: ''}, layout_properties: {grid_position: 'A,B'}}
"""

FORM = """
import json
from ._anvil_designer import MainTemplate
from anvil import *
import anvil.server
import anvil.tables as tables
import anvil.tables.query as q
from anvil.tables import app_tables


class Main(MainTemplate):
  def __init__(self, **properties):
    self.init_components(**properties)
    out = {}

    def attempt(key, f):
      try:
        f()
        out[key] = "allowed"
      except (anvil.server.PermissionDenied, tables.TableError, AttributeError) as e:
        out[key] = [type(e).__name__, str(e)]

    notes = app_tables.notes
    out["names"] = sorted(app_tables)
    ann = notes.search(tables.order_by("n", ascending=False), owner="ann")
    out["ann"] = [len(ann), [r["n"] for r in ann][:3], ann.pages_loaded]
    out["count"] = len(notes.search())
    out["above"] = [r["n"] for r in notes.search(tables.order_by("n"), n=q.greater_than_or_equal_to(247))]
    one = notes.get(n=3)
    out["one"] = [one["n"], one["owner"], sorted(one.keys())]
    out["back"] = anvil.server.call("owner_of", one)

    todo = app_tables.todo.add_row(title="write tests", done=False)
    todo.update(done=True)
    todo["title"] = "written"
    app_tables.todo.add_row(title="gone", done=False).delete()
    out["todo"] = [[r["title"], r["done"]] for r in app_tables.todo.search()]

    attempt("write", lambda: one.update(n=-3))
    attempt("add", lambda: notes.add_row(n=99))
    attempt("hidden", lambda: notes.get(secret="s1"))
    attempt("hidden_read", lambda: one["secret"])
    attempt("unlisted", lambda: app_tables.private)
    private = anvil.server.call("private_table")
    attempt("none", lambda: list(private.search()))

    big = anvil.server.call("all_notes")
    first = big.pages_loaded
    out["server_search"] = [first, sum(1 for _ in big), big.pages_loaded, len(big)]
    self.result.text = json.dumps(out)
"""


def _write(app: Path, rel: str, text: str) -> None:
    path = app / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def tables_server(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    config = yaml.safe_load((app_dir / "anvil.yaml").read_text())
    config["db_schema"].update(TABLES)
    config["startup_form"] = "Main"
    (app_dir / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_module(app_dir, "Tables", MODULE)
    _write(app_dir, "client_code/Main/form_template.yaml", TEMPLATE)
    _write(app_dir, "client_code/Main/__init__.py", FORM)
    server = server_factory(app_dir)
    server.client().call("reset", 250)
    return server


def test_client_python_reads_writes_and_is_refused_as_on_anvil(tables_server: ServerProcess, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(tables_server.url + "/")
    page.wait_for_selector("body[data-anvil-ready='1']", timeout=READY_MS)
    label = page.locator(".anvil-label .label-text")
    label.filter(has_text="names").wait_for(timeout=READY_MS)
    got = json.loads(label.inner_text())
    context.close()
    assert not errors
    assert got["names"] == ["notes", "todo"]  # `client: none` is not listed
    # A client search is lazy and paged (100 rows a page): 125 of ann's rows, newest first.
    assert got["ann"] == [125, [249, 247, 245], 2]
    assert got["count"] == 250
    assert got["above"] == [247, 248, 249]
    assert got["one"] == [3, "ann", ["n", "owner"]]  # client_hidden "secret" never reaches the browser
    assert got["back"] == "ann s3"  # the row went back to the server as the live row
    assert got["todo"] == [["written", True]]
    assert tables_server.client().call("todo_titles") == [["written", True]]
    assert got["write"] == ["PermissionDenied", "Permission denied: Cannot write in table 'notes' from client code."]
    assert got["add"] == got["write"]
    assert got["hidden"] == ["NoSuchColumnError", "No such column 'secret'"]
    assert got["hidden_read"] == ["NoSuchColumnError", "No such column 'secret'"]
    assert got["unlisted"] == ["AttributeError", "'AppTables' object has no attribute 'private'"]  # Anvil's words
    assert got["none"] == ["PermissionDenied", "Permission denied: Cannot search in table 'private' from client code."]
    # A search a server function returned: its first page, then the rest by the server's cursor.
    assert got["server_search"] == [1, 250, 3, 250]
