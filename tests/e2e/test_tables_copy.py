"""`anvil-dev tables copy --to postgresql://...` and `--from`: an app's rows, links, media and
simpleObjects moved from SQLite to a real PostgreSQL and back, read through real servers."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, run_cli, write_module

MODULE = """
    import anvil
    import anvil.server
    from anvil.tables import app_tables


    @anvil.server.callable
    def seed():
        ann = app_tables.people.add_row(name="Ann", age=50, tags={"k": [1, 2.5, "x", None, True]})
        bob = app_tables.people.add_row(
            name="Bob", age=41.5, boss=ann, friends=[ann], tags=["a", {"b": 1.0}],
            photo=anvil.BlobMedia("image/png", bytes(range(256)) * 40, name="bob.png"),
        )
        app_tables.people.add_row(name="Cyd", boss=bob, friends=[ann, bob], extra="auto-created")
        app_tables.notes.add_row(text="about Bob", who=bob)


    @anvil.server.callable
    def dump():
        out = []
        for r in app_tables.people.search():
            photo = r["photo"]
            out.append({
                "id": r.get_id(), "name": r["name"], "age": r["age"], "tags": r["tags"],
                "boss": r["boss"]["name"] if r["boss"] else None,
                "friends": [f["name"] for f in r["friends"] or []],
                "photo": [photo.content_type, photo.name, photo.get_bytes().hex()] if photo else None,
                "extra": r["extra"],
            })
        notes = [[n["text"], n["who"]["name"], n["who"].get_id()] for n in app_tables.notes.search()]
        return {"people": out, "notes": notes, "vip": [r["name"] for r in app_tables.people.search(tags=["a"])]}


    @anvil.server.callable
    def add_one():
        return app_tables.people.add_row(name="Dee").get_id()
"""

TABLES = {
    "people": {
        "title": "People",
        "client": "none",
        "server": "full",
        "columns": [
            {"name": "name", "type": "string"},
            {"name": "age", "type": "number"},
            {"name": "tags", "type": "simpleObject"},
            {"name": "photo", "type": "media"},
            {"name": "boss", "type": "link_single", "target": "people"},
            {"name": "friends", "type": "link_multiple", "target": "people"},
        ],
    },
    "notes": {
        "title": "Notes",
        "client": "none",
        "server": "full",
        "columns": [{"name": "text", "type": "string"}, {"name": "who", "type": "link_single", "target": "people"}],
    },
}


def _app(path: Path) -> Path:
    app = scaffold(path / "CopyApp")
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"].update(TABLES)
    for svc in config["services"]:
        if svc.get("source") == "/runtime/services/tables.yml":
            svc.setdefault("server_config", {})["auto_create_missing_columns"] = True
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_module(app, "Copy", MODULE)
    return app


def test_tables_copy_to_postgres_and_back_keeps_rows_links_media_and_objects(
    tmp_path: Path, postgres_url: str, server_factory: Callable[..., ServerProcess]
) -> None:
    app = _app(tmp_path / "a")
    local = server_factory(app)
    local.client().call("seed")
    before = local.client().call("dump")
    local.stop()
    assert before["people"][1]["photo"][2] == (bytes(range(256)) * 40).hex() and before["vip"] == ["Bob"]

    done = run_cli("--app", str(app), "tables", "copy", "--to", postgres_url)
    assert done.returncode == 0, done.stderr
    assert "copied 4 rows in" in done.stdout and "copying 4 rows" in done.stderr

    on_pg = server_factory(app, "--database", postgres_url)
    assert on_pg.client().call("dump") == before  # ids too: references held elsewhere stay right
    dee = on_pg.client().call("add_one")
    assert dee not in [p["id"] for p in before["people"]]  # new rows get new ids after the copied ones
    after_pg = on_pg.client().call("dump")
    on_pg.stop()

    # Into a fresh copy of the app (its own empty SQLite file) and back out.
    back = tmp_path / "b" / app.name
    shutil.copytree(app, back, ignore=shutil.ignore_patterns(".anvil-dev"))
    done = run_cli("--app", str(back), "tables", "copy", "--from", postgres_url)
    assert done.returncode == 0, done.stderr
    assert "copied 5 rows" in done.stdout
    again = server_factory(back)
    assert again.client().call("dump") == after_pg


def test_tables_copy_refuses_tables_that_have_rows_and_bad_arguments(tmp_path: Path, postgres_url: str) -> None:
    app = _app(tmp_path)
    done = run_cli("--app", str(app), "tables", "copy")
    assert done.returncode == 2 and "give one of --to" in done.stderr
    done = run_cli("--app", str(app), "tables", "copy", "--to", "mysql://x/y")
    assert done.returncode == 2 and "is not a postgresql:// URL" in done.stderr
    assert run_cli("--app", str(app), "tables", "copy", "--to", postgres_url).returncode == 0  # empty: 0 rows
    seeded = tmp_path / "seeded"
    shutil.copytree(app, seeded / app.name)
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO app_people (name) VALUES ('already here')")
    done = run_cli("--app", str(app), "tables", "copy", "--to", postgres_url)
    assert done.returncode == 1 and "already has 1 rows" in done.stderr and "nothing was copied" in done.stderr
    assert "Traceback" not in done.stderr
