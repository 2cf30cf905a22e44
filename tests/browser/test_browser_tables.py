"""Data tables from client code in a real browser (Playwright on Debian's chromium): anvil.js reads
a `client: search` table, pages through 1,000 rows lazily, updates a row of a client_writable view,
and is refused on a `client: none` table and on a forged view. The server checks every rule
(server/core/src/anvil/runtime/tables/rpc.clj:34-74)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, write_module

MODULE = """
import anvil.server
from anvil.tables import app_tables


@anvil.server.callable
def reset(n):
    app_tables.notes.delete_all_rows()
    app_tables.private.delete_all_rows()
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
def all_notes():
    return app_tables.notes.search()


@anvil.server.callable
def count_of(search):
    return sum(1 for _ in search)


@anvil.server.callable
def note_n(n):
    row = app_tables.notes.get(n=n)
    return row and [row["n"], row["owner"]]
"""

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
    "private": {"title": "Private", "client": "none", "server": "full", "columns": [{"name": "x", "type": "number"}]},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    app = scaffold(tmp_path_factory.mktemp("browser-tables") / "BrowserTables")
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"].update(TABLES)
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_module(app, "Tables", MODULE)
    s = ServerProcess(app)
    yield s
    s.stop()


@pytest.fixture
def page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    server.client().call("reset", 1000)
    context = browser.new_context()
    context.set_default_timeout(30_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server.url + "/")
    pg.wait_for_function("() => window.anvil && window.anvil.tables")
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_the_browser_reads_a_search_table_and_pages_1000_rows_lazily(page: Any) -> None:
    got = page.evaluate("""async () => {
        const t = await anvil.tables.getAppTables();
        const found = t.notes.search({}, {pageSize: 100, args: [anvil.tables.orderBy("n")]});
        const before = found.pagesLoaded;
        const seen = [];
        let afterFirst = null;
        for await (const row of found) {
            if (afterFirst === null) afterFirst = found.pagesLoaded;
            seen.push(row.n);
        }
        const one = await t.notes.get({n: 3});
        return {names: Object.keys(t).sort(), before, afterFirst, pages: found.pagesLoaded, count: seen.length,
                inOrder: seen.every((n, i) => n === i), keys: Object.keys(one).sort(), owner: one.owner,
                length: await t.notes.search({owner: "ann"}).length()};
    }""")
    assert got == {
        "names": ["notes"],
        "before": 0,
        "afterFirst": 1,
        "pages": 10,
        "count": 1000,
        "inOrder": True,
        "keys": ["n", "owner"],
        "owner": "ann",
        "length": 500,
    }  # no client_hidden "secret"


def test_the_browser_updates_a_row_of_a_client_writable_view(page: Any, server: ServerProcess) -> None:
    got = page.evaluate("""async () => {
        const mine = await anvil.server.call("writable_view", "ann");
        const row = await mine.get({n: 5});
        await row.update({n: 5005});
        let moved = null;
        try { await row.update({owner: "bob"}); } catch (e) { moved = [e.type, e.message]; }
        return {n: row.n, moved};
    }""")
    assert got == {
        "n": 5005,
        "moved": ["anvil.server.PermissionDenied", "This view only holds rows whose 'owner' is 'ann'"],
    }
    assert server.client().call("note_n", 5005) == [5005, "ann"]


def test_the_browser_is_refused_a_client_none_table_a_write_and_a_forged_view(page: Any) -> None:
    got = page.evaluate("""async () => {
        const out = {};
        const attempt = async (key, f) => { try { await f(); out[key] = "allowed"; }
                                            catch (e) { out[key] = [e.type, e.message]; } };
        const priv = await anvil.server.call("private_table");
        await attempt("none", () => priv.search().toArray());
        const t = await anvil.tables.getAppTables();
        await attempt("write", async () => (await t.notes.get({n: 2})).update({n: -2}));
        const forged = await anvil.server.call("writable_view", "ann");
        forged._anvilRef.view.kwargs.owner = "bob";
        await attempt("forged", () => forged.get({n: 4}));
        await attempt("hidden", () => t.notes.get({secret: "s1"}));
        return out;
    }""")
    assert got["none"] == [
        "anvil.server.PermissionDenied",
        "Permission denied: Cannot search in table 'private' from client code.",
    ]
    assert got["write"] == [
        "anvil.server.PermissionDenied",
        "Permission denied: Cannot write in table 'notes' from client code.",
    ]
    assert got["forged"][0] == "anvil.server.PermissionDenied" and "signature does not match" in got["forged"][1]
    assert got["hidden"] == ["anvil.tables.NoSuchColumnError", "No such column 'secret'"]


def test_a_search_a_server_function_returns_is_read_lazily_in_the_browser(page: Any) -> None:
    got = page.evaluate("""async () => {
        const found = await anvil.server.call("all_notes");
        const first = found.loaded.length;
        const seen = [];
        for await (const row of found) seen.push(row.n);
        return {isSearch: found instanceof anvil.tables.SearchIterator, first, pages: found.pagesLoaded,
                count: seen.length, inOrder: seen.every((n, i) => n === i),
                back: await anvil.server.call("count_of", found)};
    }""")
    assert got == {"isSearch": True, "first": 100, "pages": 10, "count": 1000, "inOrder": True, "back": 1000}
