"""Hostile input, races and runaway code against a real server (issue 18).

Each test here was written to fail before its fix: a lockout that bursts of concurrent wrong
passwords slipped past, internal errors escaping as non-Anvil 500s, and a client naming a module
for a worker to import. Every test ends with the server still serving.
"""

from __future__ import annotations

import errno
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import simple_websocket
import yaml

from anvil_dev.client import ServerError
from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, write_module

USERS_MODULE = """
    import anvil.server
    import anvil.users

    @anvil.server.callable
    def current():
        user = anvil.users.get_user()
        return user["email"] if user is not None else None
"""

BAD_LOGIN = "Incorrect email address or password"


@pytest.fixture(params=["fresh", "persistent"])
def mode_flag(request: pytest.FixtureRequest) -> str:
    return "--fresh" if request.param == "fresh" else "--keep-server-running"


def burst(n: int, attempt: Callable[[int], Any]) -> list[Any]:
    """Run attempt(0..n-1) in n threads released at once; each result or the exception it raised."""
    gate = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        gate.wait()
        try:
            results[i] = attempt(i)
        except Exception as e:  # noqa: BLE001 - the refusals are what is being counted
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def checked_wrong(results: list[Any]) -> int:
    """How many attempts had their password checked and found wrong (not refused as locked)."""
    return sum(1 for r in results if isinstance(r, ServerError) and r.message == BAD_LOGIN)


def locked_refusals(results: list[Any]) -> int:
    return sum(
        1
        for r in results
        if isinstance(r, ServerError) and r.type == "anvil.users.TooManyPasswordFailures" and r.message != BAD_LOGIN
    )


@pytest.fixture
def users_server(app_dir: Path, mode_flag: str, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    write_module(app_dir, "Users", USERS_MODULE)
    config = yaml.safe_load((app_dir / "anvil.yaml").read_text())
    for svc in config["services"]:
        if svc["source"].endswith("/users.yml"):
            svc["server_config"]["max_password_failures"] = 10
    (app_dir / "anvil.yaml").write_text(yaml.safe_dump(config))
    return (
        server_factory(app_dir, mode_flag, "--workers", "4")
        if mode_flag != "--fresh"
        else server_factory(app_dir, mode_flag)
    )


def login(srv: ServerProcess, password: str) -> Any:
    return srv.client().login("wolf@example.org", password)


# ---------------------------------------------------------------------------------------------------- lockout


def test_concurrent_wrong_passwords_never_pass_the_limit(users_server: ServerProcess) -> None:
    users_server.client().signup("wolf@example.org", "right password")
    results = burst(40, lambda i: login(users_server, f"wrong {i}"))
    assert all(isinstance(r, ServerError) for r in results), results
    assert checked_wrong(results) <= 10, f"{checked_wrong(results)} of 40 wrong passwords were checked (limit 10)"
    assert checked_wrong(results) + locked_refusals(results) + 1 >= 40  # the 10th says TooMany with BAD_LOGIN
    with pytest.raises(ServerError) as e:
        login(users_server, "right password")
    assert e.value.type == "anvil.users.TooManyPasswordFailures"
    assert users_server.client().call("current") is None


def test_a_right_password_inside_a_burst_past_the_limit_is_refused(users_server: ServerProcess) -> None:
    users_server.client().signup("wolf@example.org", "right password")
    c = users_server.client()
    answered = threading.Semaphore(0)

    def attempt(i: int) -> Any:
        # A right password checked before the tenth wrong one is rightly let in, and the burst's
        # threads run in any order; so it goes in once ten wrong ones have been answered (each
        # counted, or refused as locked), while the other 29 are still in flight.
        if i == 39:
            for _ in range(10):
                assert answered.acquire(timeout=60), "fewer than ten wrong passwords were answered"
            return c.login("wolf@example.org", "right password")
        try:
            return login(users_server, f"wrong {i}")
        finally:
            answered.release()

    results = burst(40, attempt)
    assert isinstance(results[39], ServerError), f"the right password, after ten wrong ones: {results[39]!r}"
    assert results[39].type == "anvil.users.TooManyPasswordFailures"
    assert c.call("current") is None
    assert checked_wrong(results) <= 10


# ---------------------------------------------------------------------------------------------------- internal errors

APP_MODULE = """
    import anvil.server
    from anvil.tables import app_tables

    @anvil.server.callable
    def add(a, b):
        return a + b

    @anvil.server.callable
    def power(base, exponent):
        return base ** exponent

    @anvil.server.callable
    def digits(n):
        return len(str(abs(n))) if abs(n) < 10 ** 4000 else n.bit_length()

    @anvil.server.callable
    def new_row(name):
        return app_tables.feedback.add_row(name=name, email="x@example.org", feedback="")

    @anvil.server.callable
    def row_name(row):
        return row["name"]

    @anvil.server.callable
    def table_of(row):
        return app_tables.feedback

    @anvil.server.callable
    def rows_in(table):
        return len(table.search())

    @anvil.server.callable
    def echo(value):
        return value
"""


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    app = scaffold(tmp_path_factory.mktemp("hostile") / "HostileApp")
    write_module(app, "Hostile", APP_MODULE)
    srv = ServerProcess(app, "--fresh")
    yield srv
    srv.stop()


def post_call(srv: ServerProcess, command: str, args: list[Any], objects: list[Any]) -> requests.Response:
    body = json.dumps({"command": command, "args": args, "kwargs": {}, "objects": objects}, allow_nan=True)
    return requests.post(srv.url + "/_/call", data=body, headers={"Content-Type": "application/json"}, timeout=30)


def assert_refused(r: requests.Response, type_name: str, fragment: str, srv: ServerProcess, mark: int) -> None:
    """A 4xx JSON error of Anvil's type naming the problem; no traceback in the reply or the terminal."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"] == "application/json", r.text[:500]
    err = r.json()["error"]
    assert (err["type"], fragment in err["message"]) == (type_name, True), err
    assert "Traceback" not in r.text
    assert "Traceback" not in "\n".join(srv.lines[mark:])
    assert srv.client().call("add", 20, 22) == 42


ROW = [{"path": ["args", 0], "type": ["ValueType"], "typeName": "anvil.tables.Row"}]
TABLE = [{"path": ["args", 0], "type": ["ValueType"], "typeName": "anvil.tables.Table"}]


@pytest.mark.parametrize("row_id", ["[1e999,1]", "[1,-1e999]", [1e999, 1], [1, float("-inf")], [1, float("nan")]])
def test_row_references_with_infinite_numbers_are_refused(app_server: ServerProcess, row_id: Any) -> None:
    mark = app_server.mark()
    r = post_call(app_server, "row_name", [{"id": row_id, "mac": "0" * 32}], ROW)
    assert_refused(r, "anvil.server.SerializationError", "Invalid row reference: Invalid row id", app_server, mark)


def test_references_with_non_ascii_macs_are_refused(app_server: ServerProcess) -> None:
    c = app_server.client()
    row = c.call("new_row", "Ann")
    table = c.call("table_of", row)
    mark = app_server.mark()
    r = post_call(app_server, "row_name", [dict(row.data, mac="é" * 32)], ROW)
    assert_refused(
        r, "anvil.server.PermissionDenied", "Invalid row reference: its signature does not match", app_server, mark
    )
    r = post_call(app_server, "rows_in", [dict(table.data, mac="\u2603")], TABLE)
    assert_refused(
        r, "anvil.server.PermissionDenied", "Invalid table reference: its signature does not match", app_server, mark
    )
    assert c.call("row_name", row) == "Ann" and c.call("rows_in", table) >= 1


def test_big_ints_cross_the_wire_whatever_their_size(app_server: ServerProcess) -> None:
    """Results of any size (Python's own str() refuses over 4,300 digits); arguments from a client
    up to that limit (a longer one would cost the worker quadratic time to read)."""
    c = app_server.client()
    assert c.call("power", 10, 5000) == 10**5000
    assert c.call("power", -7, 30000) == (-7) ** 30000
    assert c.call("add", 10**4000, 1) == 10**4000 + 1
    mark = app_server.mark()
    r = post_call(app_server, "add", [None, 1], [{"path": ["args", 0], "type": ["Long"], "value": "9" * 5000}])
    assert_refused(r, "anvil.server.SerializationError", "Malformed Long value at msg['args'][0]", app_server, mark)


def test_a_deeply_nested_first_uplink_frame_is_refused_cleanly(app_server: ServerProcess) -> None:
    for depth in (10_000, 100_000):
        mark = app_server.mark()
        ws = simple_websocket.Client.connect(f"ws://127.0.0.1:{app_server.port}/_/uplink")
        ws.send("[" * depth + "]" * depth)
        frames: list[str] = []
        try:
            while (m := ws.receive(timeout=10)) is not None:
                frames.append(m)
        except simple_websocket.ConnectionClosed:
            pass
        assert [json.loads(f) for f in frames] == [{"error": "Incorrect uplink key"}], frames
        app_server.wait_for_output("incorrect uplink key", after=mark)
        assert "Traceback" not in "\n".join(app_server.lines[mark:])
    assert app_server.client().call("add", 1, 2) == 3


# ---------------------------------------------------------------------------------------------------- type names


def test_a_client_cannot_make_a_worker_import_a_module(app_server: ServerProcess) -> None:
    """`this` prints the Zen of Python when imported, and the app's client module Planted (which no
    server module imports) leaves a file behind: a type name from a client must import neither."""
    marker = app_server.app_dir / "planted"
    (app_server.app_dir / "client_code" / "Planted.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass Thing:\n    pass\n"
    )
    for name in ("this.Nope", "antigravity.Nope", "HostileApp.Planted.Thing", "Planted.Thing", "os.path.Nope"):
        mark = app_server.mark()
        r = post_call(app_server, "echo", [{}], [{"path": ["args", 0], "type": ["ValueType"], "typeName": name}])
        assert_refused(r, "anvil.server.SerializationError", f"No such serializable type: {name}", app_server, mark)
        assert "The Zen of Python" not in "\n".join(app_server.lines[mark:])
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------- runaway code

PRINT_MODULE = """
    import anvil.server

    @anvil.server.callable
    def print_without_newlines(mib):
        piece = "x" * 1024
        for _ in range(mib * 1024):
            print(piece, end="")
        print()
        return "printed"
"""


def test_output_printed_without_newlines_costs_linear_time(
    app_dir: Path, mode_flag: str, server_factory: Callable[..., ServerProcess]
) -> None:
    """32 MiB in 1 KiB pieces: done at once when each write costs its own size, never (past the
    call's timeout) when each re-joins the line so far (half a terabyte copied)."""
    write_module(app_dir, "Printer", PRINT_MODULE)
    srv = server_factory(app_dir, mode_flag, "--timeout", "120")
    c = srv.client()
    assert c.call("print_without_newlines", 32) == "printed"
    srv.wait_for_output("[print_without_newlines] xxxx", timeout=60)
    assert c.call("print_without_newlines", 0) == "printed"


# ---------------------------------------------------------------------------------------------------- a full disk

DISK_MODULE = """
    import anvil.server
    from anvil.tables import app_tables

    @anvil.server.callable
    def add_note(name, size=0):
        app_tables.feedback.add_row(name=name, email="x@example.org", feedback="x" * size)
        return name

    @anvil.server.callable
    def notes():
        return sorted(r["name"] for r in app_tables.feedback.search())
"""


@pytest.fixture
def small_state_dir(app_dir: Path) -> Iterator[Path]:
    """The app's .anvil-dev/ on a 4 MiB tmpfs of its own, so that the test can fill it or make it
    read-only (needs root in a namespace that allows mounts; skipped with the reason otherwise)."""
    state = app_dir / ".anvil-dev"
    state.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(state)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def fill(directory: Path) -> Path:
    """Write a file into `directory` until its filesystem has no space left."""
    filler = directory / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return filler


def test_a_full_disk_fails_writes_clearly_loses_nothing_and_service_resumes(
    app_dir: Path, small_state_dir: Path, mode_flag: str, server_factory: Callable[..., ServerProcess]
) -> None:
    write_module(app_dir, "Disk", DISK_MODULE)
    srv = server_factory(app_dir, mode_flag)
    c = srv.client()
    committed = [c.call("add_note", f"n{i}") for i in range(20)]
    filler = fill(small_state_dir)
    mark = srv.mark()
    with pytest.raises(ServerError) as e:
        for i in range(200):  # SQLite may still fit a few small rows in pages it has
            c.call("add_note", f"late{i}", 20_000)
    assert e.value.type == "anvil.tables.TableError", e.value
    assert "disk" in e.value.message and str(small_state_dir) in e.value.message, e.value.message
    assert "Traceback" not in "\n".join(srv.lines[mark:])
    assert set(committed) <= set(c.call("notes")), "reads go on, and every committed row is there"
    filler.unlink()
    assert c.call("add_note", "after", 10) == "after"
    assert set(committed) | {"after"} <= set(c.call("notes"))
