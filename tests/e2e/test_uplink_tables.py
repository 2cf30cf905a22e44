"""`anvil.tables.app_tables` in a real anvil-uplink 0.7.0 script against a real `anvil-dev serve`.

A server-key uplink has full access, as Anvil's server uplinks do: it searches (paging lazily
through Anvil's LiveObject protocol, anvil/_server.py LiveObjectProxy.Iter), adds and updates rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, run_cli, write_module

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
def note(n):
    row = app_tables.notes.get(n=n)
    return row and {"n": row["n"], "owner": row["owner"], "secret": row["secret"]}
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

SCRIPT = """
import json, sys
import anvil.server
from anvil.tables import app_tables, order_by
import anvil.tables.query as q

anvil.server.connect(sys.argv[1], url=sys.argv[2], quiet=True)
out = {}

def attempt(key, f):
    try:
        out[key] = f()
    except Exception as e:
        kind = (getattr(e, "error_obj", None) or {}).get("type") or type(e).__name__
        out[key] = ["error", kind.split(".")[-1], str(e)]

notes = app_tables.notes
found = notes.search(order_by("n"))
attempt("all", lambda: [r["n"] for r in found])
attempt("len", lambda: len(notes.search(owner="ann")))
attempt("filtered", lambda: [r["n"] for r in notes.search(n=q.less_than(4))])
attempt("get_owner", lambda: notes.get(n=3)["owner"])
attempt("secret", lambda: notes.get(n=3)["secret"])
attempt("added", lambda: notes.add_row(n=5000, owner="uplink")["owner"])
def update():
    row = notes.get(n=5000)
    row["owner"] = "changed"
    row.update(n=5001)
    return [row["n"], notes.get(n=5001)["owner"]]
attempt("updated", update)
attempt("private", lambda: [r["x"] for r in app_tables.private.search()])
attempt("private_add", lambda: app_tables.private.add_row(x=2)["x"])
attempt("call", lambda: anvil.server.call("note", 5001))
print("OUT " + json.dumps(out), flush=True)
anvil.server.disconnect()
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = scaffold(tmp_path_factory.mktemp("uplink-tables") / "UplinkTables")
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"].update(TABLES)
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_module(app, "Tables", MODULE)
    return app


@pytest.fixture(scope="module")
def server(app: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(app, "--client-uplink-key", "client_TESTKEY123")
    yield s
    s.stop()


def run_script(tmp_path: Path, key: str, server: ServerProcess) -> dict[str, Any]:
    path = tmp_path / "tables_script.py"
    path.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the real anvil-uplink package
    done = subprocess.run(
        [sys.executable, str(path), key, f"ws://127.0.0.1:{server.port}/_/uplink"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("OUT ")]
    assert lines, done.stdout + done.stderr
    return json.loads(lines[0][4:])


def test_a_server_key_uplink_searches_adds_and_updates_rows(tmp_path: Path, app: Path, server: ServerProcess) -> None:
    server.client().call("reset", 250)
    key = run_cli("--app", str(app), "uplink-key").stdout.strip()
    got = run_script(tmp_path, key, server)
    assert got == {
        "all": list(range(250)),  # three pages of 100, fetched as the loop reaches them
        "len": 125,
        "filtered": [0, 1, 2, 3],
        "get_owner": "ann",
        "secret": "s3",
        "added": "uplink",
        "updated": [5001, "changed"],
        "private": [1],
        "private_add": 2,  # a server uplink has server permissions
        "call": {"n": 5001, "owner": "changed", "secret": None},
    }


def test_a_client_key_uplink_is_held_to_client_permissions(tmp_path: Path, app: Path, server: ServerProcess) -> None:
    server.client().call("reset", 250)
    got = run_script(tmp_path, "client_TESTKEY123", server)
    assert got["all"] == list(range(250)) and got["len"] == 125 and got["get_owner"] == "ann"
    assert got["secret"][:2] == ["error", "NoSuchColumnError"]  # client_hidden
    denied = "Permission denied: Cannot {} in table '{}' from client code."
    assert got["added"] == ["error", "PermissionDenied", denied.format("write", "notes")]
    # A client: none table is not in a client's app_tables at all.
    assert got["private"] == got["private_add"] == ["error", "AttributeError", "No such app table: 'private'"]
    # Server functions run for it as for any client: the row it could not write is not there.
    assert got["call"] is None


def test_the_client_uplink_key_is_generated_printed_and_given_by_the_cli(tmp_path: Path, server_factory: Any) -> None:
    app = scaffold(tmp_path / "KeyApp")
    s = server_factory(app)
    key = run_cli("--app", str(app), "uplink-key", "--client").stdout.strip()
    assert key.startswith("client_") and key != run_cli("--app", str(app), "uplink-key").stdout.strip()
    assert f"anvil.server.connect({key!r}" in s.output  # the serve banner names it


def test_a_client_uplink_cannot_register_server_functions(tmp_path: Path, server: ServerProcess) -> None:
    path = tmp_path / "register.py"
    path.write_text(
        textwrap.dedent("""
        import sys
        import anvil.server

        @anvil.server.callable
        def sneaky():
            return 1

        try:
            anvil.server.connect(sys.argv[1], url=sys.argv[2], quiet=True)
            anvil.server.call("anvil.private.echo", "x")
            print("CONNECTED", flush=True)
        except Exception as e:
            print("REFUSED " + str(e), flush=True)
        import os
        os._exit(0)
    """)
    )
    mark = server.mark()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(path), "client_TESTKEY123", f"ws://127.0.0.1:{server.port}/_/uplink"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert "CONNECTED" not in done.stdout
    assert (
        "Cannot register @anvil.server.callable functions from an unprivileged (client) uplink."
        in done.stdout + done.stderr
    )
    with pytest.raises(Exception):  # noqa: B017 - and the server never learnt the name
        server.client().call("sneaky")
    assert "client uplink connected" in server.wait_for_output("client uplink connected", after=mark)
