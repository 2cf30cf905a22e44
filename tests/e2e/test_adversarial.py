"""Attacks on a real server: malformed wire data, hostile server code, reloads under load, dropped clients.

The standard: bad input gets a clear error that says what and where, never a traceback from our
internals; nothing is lost; the server keeps serving (each test ends with a normal call) and
leaves no process behind. The two servers (fresh and persistent) are shared by the tests of this
module: every attack must leave them as it found them, which is what is being tested.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import simple_websocket

from anvil_dev.client import Media, ServerError
from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, run_cli, wait_until, write_module

ATTACK_MODULE = """
    import os
    import sys
    import threading
    import time

    import anvil.server
    from anvil.tables import app_tables

    @anvil.server.callable
    def exit_with(code):
        sys.exit(code)

    @anvil.server.callable
    def raise_system_exit():
        raise SystemExit("leaving")

    @anvil.server.callable
    def raise_keyboard_interrupt():
        raise KeyboardInterrupt()

    @anvil.server.callable
    def kill_self():
        os.kill(os.getpid(), 9)

    @anvil.server.callable
    def generator():
        yield 1

    @anvil.server.callable
    def contains_itself():
        d = {"a": 1}
        d["self"] = d
        return d

    class Unprintable:
        def __repr__(self):
            raise RuntimeError("repr failed")
        __str__ = __repr__

    @anvil.server.callable
    def unprintable():
        return {"x": Unprintable()}

    class UnprintableError(Exception):
        def __str__(self):
            raise RuntimeError("str failed")

    @anvil.server.callable
    def unprintable_error():
        raise UnprintableError("hidden")

    @anvil.server.callable
    def binary_garbage():
        sys.stdout.write("\\udcff\\x00\\x01\\x1b[2J garbage\\n")
        print(b"\\xff\\xfe")
        return "printed"

    @anvil.server.callable
    def late_thread():
        def later():
            time.sleep(0.3)
            print("late-thread-line")
        threading.Thread(target=later).start()
        return "started"

    @anvil.server.callable
    def nested(n):
        x = []
        for _ in range(n):
            x = [x]
        return x

    @anvil.server.callable
    def depth(value):
        n = 0
        while isinstance(value, list) and value:
            value, n = value[0], n + 1
        return n

    @anvil.server.callable
    def length(value):
        return len(value)

    @anvil.server.callable
    def kinds(*args, **kwargs):
        return [type(a).__name__ for a in args], {k: type(v).__name__ for k, v in kwargs.items()}

    @anvil.server.callable
    def media_info(*args, **kwargs):
        return [[m.name, m.content_type, len(m.get_bytes())] for m in list(args) + list(kwargs.values())]

    @anvil.server.callable
    def new_row(name):
        return app_tables.feedback.add_row(name=name, email="x@example.org", feedback="")

    @anvil.server.callable
    def row_name(row):
        return row["name"]

    @anvil.server.callable
    def sleep(seconds):
        time.sleep(seconds)
        return "slept"
"""


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, *args: str) -> Iterator[ServerProcess]:
    app = scaffold(tmp_path_factory.mktemp(name) / "AttackApp")
    write_module(app, "Attack", ATTACK_MODULE)
    srv = ServerProcess(app, *args)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _start(tmp_path_factory, "fresh", "--fresh", "--timeout", "5")


@pytest.fixture(scope="module")
def persistent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _start(tmp_path_factory, "persistent", "--keep-server-running", "--timeout", "5")


@pytest.fixture(params=["fresh", "persistent"])
def srv(request: pytest.FixtureRequest) -> ServerProcess:
    return request.getfixturevalue(request.param)


def post(srv: ServerProcess, body: bytes | str, content_type: str = "application/json") -> requests.Response:
    return requests.post(srv.url + "/_/call", data=body, headers={"Content-Type": content_type}, timeout=30)


def call_json(
    command: str, args: list[object] | None = None, objects: list[object] | None = None, **extra: object
) -> str:
    return json.dumps(
        {"command": command, "args": [None] if args is None else args, "kwargs": {}, "objects": objects or [], **extra}
    )


def assert_json_error(r: requests.Response, status: int, type_name: str, fragment: str) -> None:
    """A JSON error reply (never an HTML page or a traceback of ours) with this status, type and text."""
    assert r.status_code == status, r.text[:500]
    assert r.headers["Content-Type"] == "application/json", r.text[:500]
    err = r.json()["error"]
    assert err["type"] == type_name, err
    assert fragment in err["message"], err
    assert "Traceback" not in r.text and "anvil_dev/" not in r.text


def still_serving(srv: ServerProcess) -> None:
    assert srv.client().call("add", 20, 22) == 42
    assert not orphans(srv)


def orphans(srv: ServerProcess) -> list[int]:
    """Processes of the server's session whose parent is not in it: left behind by something of ours."""
    stats = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields: state ppid pgrp session ...
            if int(fields[3]) == srv.proc.pid and fields[0] != "Z":
                stats[int(pid)] = int(fields[1])
    return [pid for pid, ppid in stats.items() if pid != srv.proc.pid and ppid not in stats]


# ------------------------------------------------------------------------------- malformed objects entries


def _entry(kind: str, **fields: object) -> dict[str, object]:
    return {"path": ["args", 0], "type": [kind], **fields}


@pytest.mark.parametrize(
    "entry, fragment",
    [
        (_entry("ValueType"), "No such serializable type: None at msg['args'][0]"),
        (_entry("ValueType", typeName="nope.Nope"), "No such serializable type: nope.Nope at msg['args'][0]"),
        (_entry("ValueType", typeName="os.system"), "No such serializable type: os.system at msg['args'][0]"),
        (_entry("ClassType", typeName=7), "No such serializable type: 7 at msg['args'][0]"),
        (_entry("Long", value="12x"), "Malformed Long value at msg['args'][0]: '12x'"),
        (_entry("Long", value="9" * 100_000), "Malformed Long value at msg['args'][0]"),
        (_entry("Long"), "Malformed Long value at msg['args'][0]: None"),
        (_entry("Float", value="1.5"), "Malformed Float value at msg['args'][0]"),
        (_entry("Date", value="2024-13-45"), "Malformed Date value at msg['args'][0]"),
        (_entry("DateTime", value=5), "Malformed DateTime value at msg['args'][0]: 5"),
        (_entry("DateTime", value="2024-01-01 00:00:00+9999"), "Malformed DateTime value at msg['args'][0]"),
        (_entry("NoSuchKind"), "Cannot deserialize object of type ['NoSuchKind'] at msg['args'][0]"),
        ({"path": ["args", 0], "type": []}, "Cannot deserialize object of type [] at msg['args'][0]"),
        ({"path": ["args", 7], "type": ["Long"], "value": "5"}, "cannot set a value at msg['args'][7]"),
        ({"path": ["args", 0, "x", 3], "type": ["Long"], "value": "5"}, "no value at msg['args'][0]['x']"),
    ],
)
def test_malformed_objects_entries_name_what_and_where(fresh: ServerProcess, entry: dict, fragment: str) -> None:
    r = post(fresh, call_json("echo", objects=[entry]))
    assert_json_error(r, 400, "anvil.server.SerializationError", fragment)
    assert r.json()["error"]["message"].startswith("Cannot deserialize arguments to function.")
    still_serving(fresh)


@pytest.mark.parametrize("path", [["kwargs"], ["args"], ["command"], ["caller", "trusted"], [], "args", [{"a": 1}]])
def test_objects_entries_must_point_inside_the_arguments(fresh: ServerProcess, path: object) -> None:
    r = post(fresh, call_json("echo", objects=[{"path": path, "type": ["Long"], "value": "5"}]))
    assert_json_error(
        r,
        400,
        "anvil.server.SerializationError",
        'Malformed entry in \'objects\': its "path" must be a list that starts with "args"',
    )
    still_serving(fresh)


# ------------------------------------------------------------------------------- nesting, size, encoding


def test_deeply_nested_json_is_refused_with_a_clear_error(fresh: ServerProcess) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for body in (
        deep,
        '{"command": "echo", "args": [' + deep + "]}",
        '{"command": "echo", "args": [' + "[" * 300 + "]" * 300 + "]}",
    ):
        assert_json_error(
            post(fresh, body), 400, "anvil.server.SerializationError", "Call body nested more than 200 levels deep"
        )
    r = requests.post(
        fresh.url + "/_/call", files={"json": (None, '{"command": "echo", "args": [' + deep + "]}")}, timeout=30
    )
    assert_json_error(r, 400, "anvil.server.SerializationError", "Call body nested more than 200 levels deep")
    # Just inside the limit works both ways; a deeper value made by server code is named, not a RecursionError.
    c = fresh.client()
    assert c.call("depth", c.call("nested", 190)) == 190
    with pytest.raises(ServerError) as e:
        c.call("nested", 5000)
    assert e.value.type == "anvil.server.SerializationError"
    assert "Cannot serialize a value nested more than 200 levels deep at msg['response'][0][0]" in e.value.message
    still_serving(fresh)


def test_huge_arrays_non_utf8_and_odd_strings(fresh: ServerProcess) -> None:
    r = post(fresh, json.dumps({"command": "length", "args": [list(range(1_000_000))]}))
    assert r.status_code == 200 and r.json()["response"] == 1_000_000
    assert_json_error(
        post(fresh, b'{"command": "echo", "args": ["\xff\xfe"]}'),
        400,
        "anvil.server.InternalError",
        "Malformed JSON in call body: 'utf-8' codec can't decode byte 0xff",
    )
    assert_json_error(post(fresh, b"\xff\xfe{}"), 400, "anvil.server.InternalError", "Malformed JSON in call body")
    # Lone surrogates and NUL are valid JSON strings: they arrive, and go back, unchanged.
    r = post(fresh, json.dumps({"command": "echo", "args": ["\ud800\x00"]}))
    assert r.status_code == 200 and r.json()["response"] == "\ud800\x00"
    still_serving(fresh)


def test_kwargs_of_every_json_type_and_odd_names(fresh: ServerProcess) -> None:
    values = {"n": None, "b": True, "i": 1, "f": 1.5, "s": "x", "l": [1], "d": {"a": {}}, "": 0, "not an identifier": 1}
    r = post(fresh, json.dumps({"command": "kinds", "args": [[], {}], "kwargs": values}))
    assert r.json()["response"] == [
        ["list", "dict"],
        {
            "n": "NoneType",
            "b": "bool",
            "i": "int",
            "f": "float",
            "s": "str",
            "l": "list",
            "d": "dict",
            "": "int",
            "not an identifier": "int",
        },
    ]
    # A wrong type for a function that cannot take it: the function's own error, pointing at its line.
    with pytest.raises(ServerError) as e:
        fresh.client().call("add", "one", 2)
    assert e.value.type == "TypeError" and 'can only concatenate str (not "int") to str' in e.value.message
    assert e.value.trace[0][0] == "server_code/ServerModule1.py"
    with pytest.raises(ServerError) as e:
        fresh.client().call("add", 1, 2, c=3)
    assert e.value.type == "TypeError" and "unexpected keyword argument 'c'" in e.value.message
    still_serving(fresh)


# ------------------------------------------------------------------------------------------- multipart


def test_multipart_bodies_with_missing_repeated_and_odd_parts(fresh: ServerProcess) -> None:
    url = fresh.url + "/_/call"

    def media_call(objects: list[dict], command: str = "media_info", args: list | None = None) -> str:
        return call_json(command, args=[None] * len(objects) if args is None else args, objects=objects)

    def media(i: int, part: object, **fields: object) -> dict[str, object]:
        return {
            "path": ["args", i],
            "type": ["DataMedia"],
            "id": part,
            "mime-type": "text/plain",
            "name": "a.txt",
            **fields,
        }

    # One part named by two entries: both get every byte (it used to be read once, the second got 0 bytes).
    r = requests.post(
        url, files={"json": (None, media_call([media(0, "p0"), media(1, "p0")])), "p0": ("a.txt", b"hello")}, timeout=30
    )
    assert r.json()["response"] == [["a.txt", "text/plain", 5], ["a.txt", "text/plain", 5]]
    # A part whose id is a path is just a part name: the media lands in the store, not at that path.
    r = requests.post(
        url,
        files={"json": (None, media_call([media(0, "../../escape")])), "../../escape": ("e.txt", b"abc")},
        timeout=30,
    )
    assert r.json()["response"] == [["a.txt", "text/plain", 3]]
    assert not (fresh.app_dir / "escape").exists() and not (fresh.app_dir.parent / "escape").exists()
    # Non-string content types and names are replaced by the part's own, so the download works.
    r = requests.post(
        url,
        files={
            "json": (None, media_call([media(0, "p0", **{"mime-type": 5, "name": ["x"]})], command="echo")),
            "p0": ("b.txt", b"bytes", "text/csv"),
        },
        timeout=30,
    )
    entry = r.json()["objects"][0]
    assert (entry["mime-type"], entry["name"]) == ("text/csv", "b.txt")
    download = requests.get(fresh.url + entry["url"], timeout=30)
    assert download.status_code == 200 and download.content == b"bytes"
    # Missing parts, a json part sent as a file, and bodies that are not multipart at all.
    assert_json_error(
        requests.post(url, files={"json": (None, media_call([media(0, "p9")]))}, timeout=30),
        400,
        "anvil.server.SerializationError",
        "Media at ['args', 0] has no part named 'p9'",
    )
    assert_json_error(
        requests.post(url, files={"other": (None, "{}")}, timeout=30),
        400,
        "anvil.server.InternalError",
        "A multipart call needs a 'json' part",
    )
    for body, ctype in [
        (b'--XX\r\nContent-Disposition: form-data; name="json"\r\n\r\n{', "boundary=XX"),
        (b"garbage", "boundary=XX"),
        (b"garbage", ""),
    ]:
        r = post(fresh, body, "multipart/form-data" + ("; " + ctype if ctype else ""))
        assert_json_error(r, 400, "anvil.server.InternalError", "A multipart call needs a 'json' part")
    r = requests.post(
        url, files={"json": (None, '{"command": "echo", "args": [' + "[" * 5000 + "]" * 5000 + "]}")}, timeout=30
    )
    assert_json_error(r, 400, "anvil.server.SerializationError", "nested more than 200 levels deep")
    still_serving(fresh)


# --------------------------------------------------------------------------------------- row references


def test_forged_row_references_are_refused(fresh: ServerProcess) -> None:
    c = fresh.client()
    ann, bob = c.call("new_row", "Ann"), c.call("new_row", "Bob")
    assert c.call("row_name", ann) == "Ann"

    def row_call(data: object) -> requests.Response:
        return post(
            fresh,
            call_json(
                "row_name",
                args=[data],
                objects=[{"path": ["args", 0], "type": ["ValueType"], "typeName": "anvil.tables.Row"}],
            ),
        )

    refused = "Invalid row reference: its signature does not match (was it altered?)"
    for forged in [
        {k: v for k, v in ann.data.items() if k != "mac"},  # no MAC
        dict(ann.data, mac=""),  # empty MAC
        dict(ann.data, mac=bob.data["mac"]),  # another row's MAC
        dict(ann.data, id=bob.get_id()),  # another row's id under Ann's MAC
        dict(ann.data, id="[999999,1]"),  # a table that does not exist
    ]:
        assert_json_error(row_call(forged), 403, "anvil.server.PermissionDenied", refused)
    for junk in ["junk", 7, None, [ann.data]]:
        r = row_call(junk)
        assert r.status_code in (400, 403, 500) and "Invalid row reference" in r.json()["error"]["message"], r.text
    assert c.call("row_name", bob) == "Bob"
    still_serving(fresh)


# --------------------------------------------------------------------------------- hostile server code


@pytest.mark.parametrize(
    "fn, args, type_name, message",
    [
        ("exit_with", [3], "SystemExit", "3"),
        ("raise_system_exit", [], "SystemExit", "leaving"),
        ("raise_keyboard_interrupt", [], "KeyboardInterrupt", ""),
        ("unprintable_error", [], "UnprintableError", "<the exception's __str__ raised RuntimeError: str failed>"),
    ],
)
def test_server_code_that_exits_or_interrupts_gets_its_own_error(
    srv: ServerProcess, fn: str, args: list, type_name: str, message: str
) -> None:
    start = time.monotonic()
    with pytest.raises(ServerError) as e:
        srv.client().call(fn, *args)
    assert time.monotonic() - start < 3, "the caller waited for the timeout"
    assert (e.value.type, e.value.message) == (type_name, message)
    assert e.value.trace[0][0] == "server_code/Attack.py"
    still_serving(srv)


def test_a_process_that_kills_itself(srv: ServerProcess) -> None:
    with pytest.raises(ServerError) as e:
        srv.client().call("kill_self")
    assert e.value.type == "anvil.server.ExecutionTerminatedError"
    assert "Server code execution process was killed" in e.value.message
    still_serving(srv)


@pytest.mark.parametrize(
    "fn, fragment",
    [
        ("generator", "Cannot serialize <class 'generator'> object at msg['response']"),
        ("contains_itself", "circular reference) at msg['response']['self']"),
        ("unprintable", "Cannot serialize <class 'AttackApp.Attack.Unprintable'> object at msg['response']['x']"),
    ],
)
def test_unreturnable_values_are_named(srv: ServerProcess, fn: str, fragment: str) -> None:
    with pytest.raises(ServerError) as e:
        srv.client().call(fn)
    assert e.value.type == "anvil.server.SerializationError"
    assert e.value.message.startswith("Cannot serialize return value from function.") and fragment in e.value.message
    still_serving(srv)


def test_binary_garbage_on_stdout(srv: ServerProcess) -> None:
    c = srv.client()
    assert c.call("binary_garbage") == "printed"
    assert c.last_output == "\udcff\x00\x01\x1b[2J garbage\nb'\\xff\\xfe'\n"
    srv.wait_for_output("[binary_garbage] b'\\xff\\xfe'")
    still_serving(srv)


def test_a_thread_that_outlives_its_call(srv: ServerProcess) -> None:
    mark = srv.mark()
    assert srv.client().call("late_thread") == "started"
    if "--keep-server-running" in srv.proc.args:
        # A warm worker keeps it: its output, no longer in any call, goes to the terminal.
        srv.wait_for_output("late-thread-line", after=mark)
    still_serving(srv)


def test_200_concurrent_calls(srv: ServerProcess) -> None:
    results: dict[int, object] = {}

    def one(i: int) -> None:
        try:
            results[i] = srv.client().call("add", i, 1)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i + 1 for i in range(200)}
    still_serving(srv)


def test_clients_that_disconnect_mid_call_mid_body_and_mid_upload(srv: ServerProcess) -> None:
    body = json.dumps({"command": "sleep", "args": [0.5]}).encode()
    heads = [
        b"POST /_/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % len(body)
        + body,
        b"POST /_/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n"
        b'{"command": "ec',
        b"POST /_/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=XX\r\n"
        b'Content-Length: 100000\r\n\r\n--XX\r\nContent-Disposition: form-data; name="json"\r\n\r\n{}\r\n--XX\r\n'
        b'Content-Disposition: form-data; name="p0"; filename="a"\r\n\r\nabc',
    ]
    for head in heads:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(head)
            time.sleep(0.05)
            s.close()
    assert srv.client().call("sleep", 0) == "slept"
    # The abandoned upload left nothing half-written in the media store.
    media = srv.app_dir / ".anvil-dev" / "media"
    assert not list(media.glob("*.part")) if media.is_dir() else True
    still_serving(srv)


# ---------------------------------------------------------------------------------------- reloads


@pytest.mark.parametrize("flag", ["--fresh", "--keep-server-running"])
def test_calls_during_a_storm_of_saves_all_succeed(tmp_path: Path, server_factory, flag: str) -> None:
    app = scaffold(tmp_path / "StormApp")
    module = app / "server_code" / "Version.py"

    def save(v: int) -> None:
        # Written beside and renamed into place, as editors save: a reader never sees half a file.
        tmp = app / f"Version.{v}.tmp"
        tmp.write_text(f"import anvil.server\n\n@anvil.server.callable\ndef version():\n    return {v}\n")
        os.replace(tmp, module)

    save(0)
    srv = server_factory(app, flag)
    stop = threading.Event()
    seen: list[object] = []

    def caller() -> None:
        c = srv.client()
        while not stop.is_set():
            try:
                seen.append(c.call("version"))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                seen.append(e)

    callers = [threading.Thread(target=caller) for _ in range(4)]
    for t in callers:
        t.start()
    for v in range(1, 25):
        save(v)
        time.sleep(0.06)
    stop.set()
    for t in callers:
        t.join()
    errors = [s for s in seen if not isinstance(s, int)]
    assert not errors and len(seen) > 50, errors[:3]
    wait_until(lambda: srv.client().call("version") == 24, timeout=10, what="the last save to be served")
    still_serving(srv)


def test_a_module_that_deletes_its_own_file(tmp_path: Path, server_factory) -> None:
    app = scaffold(tmp_path / "SelfDelete")
    write_module(
        app,
        "Doomed",
        """
        import os
        import anvil.server

        @anvil.server.callable
        def delete_me():
            os.remove(__file__)
            return "deleted"
    """,
    )
    srv = server_factory(app)
    mark = srv.mark()
    assert srv.client().call("delete_me") == "deleted"
    srv.wait_for_output("reloaded server_code/Doomed.py", after=mark)
    with pytest.raises(ServerError) as e:
        srv.client().call("delete_me")
    assert e.value.type == "anvil.server.NoServerFunctionError"
    still_serving(srv)


# ---------------------------------------------------------------------------------------- terminal, CLI


def test_hostile_function_names_are_escaped_in_the_serve_terminal(fresh: ServerProcess) -> None:
    mark = fresh.mark()
    r = post(fresh, json.dumps({"command": "x\x1b[2J\nFAKE LINE" + "y" * 500, "args": []}))
    assert_json_error(r, 404, "anvil.server.NoServerFunctionError", "No server function matching")
    line = fresh.wait_for_output("failed (browser)", after=mark)
    assert line.startswith("x\\x1b[2J\\nFAKE LINE") and "more characters" in line
    assert not any(ln.startswith("FAKE LINE") for ln in fresh.lines[mark:])
    still_serving(fresh)


def test_cli_call_with_odd_arguments(fresh: ServerProcess) -> None:
    env = {"ANVIL_DEV_URL": fresh.url}
    for args, fragment in [
        (["echo", "--kw", "novalue"], "Error: --kw 'novalue' is not KEY=VALUE"),
        (["echo", "--kw", "=1"], "Error: --kw '=1' is not KEY=VALUE"),
        (["", "1"], "Error: NAME is empty - give the name of a server function"),
        (["echo", "[" * 3000 + "]" * 3000], "is JSON nested too deeply to send"),
    ]:
        r = run_cli("call", *args, env=env)
        assert r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr, r.stderr[-500:]
    r = run_cli("call", "kinds", "--kw", "a=1", "--kw", "a=[2]", "--kw", "b=x=y", "--", "--kw", env=env)
    assert r.returncode == 0 and r.stdout.split() == "[['str'], {'a': 'list', 'b': 'str'}]".split(), r.stderr
    still_serving(fresh)


# ---------------------------------------------------------------------------------------------- uplink


def test_uplink_garbage_is_refused_without_tracebacks(fresh: ServerProcess) -> None:
    key = (fresh.app_dir / ".anvil-dev" / "uplink.key").read_text().strip()

    def connect() -> simple_websocket.Client:
        ws = simple_websocket.Client.connect(f"ws://127.0.0.1:{fresh.port}/_/uplink")
        ws.send(json.dumps({"key": key, "v": 8}))
        assert json.loads(ws.receive(timeout=10))["auth"] == "OK"
        return ws

    def replies(ws: simple_websocket.Client) -> list[object]:
        out: list[object] = []
        try:
            while (m := ws.receive(timeout=1)) is not None:
                out.append(json.loads(m))
        except simple_websocket.ConnectionClosed:
            out.append("closed")
        return out

    mark = fresh.mark()
    ws = connect()
    ws.send("[" * 100_000 + "]" * 100_000)
    assert replies(ws) == ["closed"]
    fresh.wait_for_output("broke the protocol (a text frame nested too deeply)", after=mark)
    ws = connect()
    ws.send(
        json.dumps(
            {
                "type": "CALL",
                "id": "c1",
                "command": "echo",
                "args": [None],
                "kwargs": {},
                "objects": [{"path": ["args", 0], "type": ["DateTime"], "value": 5}],
            }
        )
    )
    ws.send(json.dumps({"type": "CALL", "id": "c2", "command": "nested", "args": [900], "kwargs": {}}))
    got = {r["id"]: r["error"] for r in replies(ws)[:2]}  # type: ignore[index]
    ws.close()
    assert got["c1"]["type"] == "anvil.server.SerializationError"
    assert "Malformed DateTime value at msg['args'][0]: 5" in got["c1"]["message"]
    assert "nested more than 200 levels deep" in got["c2"]["message"]
    assert "Traceback" not in fresh.output
    still_serving(fresh)


def test_media_made_by_a_client_can_be_sent_to_a_hostile_function_and_back(fresh: ServerProcess) -> None:
    c = fresh.client()
    back = c.call("echo", [Media("text/plain", b"x" * 10, name="n.txt")] * 2)
    assert [m.get_bytes() for m in back] == [b"x" * 10] * 2
    still_serving(fresh)
