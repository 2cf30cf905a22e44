"""The real anvil-uplink client (PyPI's `anvil-uplink`) against a real `anvil-dev serve`.

Each uplink runs as its own `python script.py` process, as users run them. A script connects,
defines its functions, makes one round trip (so that its REGISTERs have been read), prints READY
and then obeys lines on stdin (`call NAME ARGS-JSON`, `disconnect`, `reconnect`, `drop`), printing
one `RESULT <json>` or `ERROR <type> <message>` line per command.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import simple_websocket

from anvil_dev.client import Media, ServerError

from helpers import OutputLines, ServerProcess, wait_until, write_module

PRELUDE = '''
import datetime, json, os, socket, sys, threading, time
import anvil, anvil.server

KEY, URL = sys.argv[1], sys.argv[2]

def _plain(v):
    """JSON-able description of a value, so the test can compare what arrived."""
    if isinstance(v, anvil.Media):
        return {"media": v.content_type, "name": v.name, "length": v.length,
                "head": list(v.get_bytes()[:4])}
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return repr(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return repr(v.isoformat()) if not isinstance(v, datetime.datetime) else \\
            ["datetime", v.replace(tzinfo=None).isoformat(), v.utcoffset().total_seconds()]
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**31:
        return ["big", str(v)]
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v

def _sync():
    anvil.server.call("anvil.private.echo", "sync")
'''

MAIN = """
anvil.server.connect(KEY, url=URL, quiet=True)
try:
    _sync()
except Exception as e:
    print("FATAL %s" % e, flush=True)
    os._exit(1)
print("READY", flush=True)
for line in sys.stdin:
    cmd, _, rest = line.strip().partition(" ")
    try:
        if cmd == "call":
            name, _, args = rest.partition(" ")
            print("RESULT " + json.dumps(_plain(anvil.server.call(name, *json.loads(args or "[]")))), flush=True)
        elif cmd == "disconnect":
            anvil.server.disconnect()
            print("RESULT null", flush=True)
        elif cmd == "reconnect":
            anvil.server.connect(KEY, url=URL, quiet=True)
            _sync()
            print("RESULT null", flush=True)
        elif cmd == "drop":
            # The network goes away under the client: it must notice and reconnect by itself.
            anvil.server._connection.sock.shutdown(socket.SHUT_RDWR)
            print("RESULT null", flush=True)
        elif cmd == "run":
            print("RESULT " + json.dumps(_plain(eval(rest))), flush=True)
    except Exception as e:
        print("ERROR %s %s" % (getattr(e, "error_obj", {}).get("type") or type(e).__name__, e), flush=True)
os._exit(0)
"""


class Uplink:
    """An anvil-uplink script in its own process, driven line by line over stdin."""

    def __init__(self, path: Path, key: str, url: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen(
            [sys.executable, str(path), key, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=path.parent,
            env=dict(env, PYTHONUNBUFFERED="1"),
        )
        self._replies: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        self._out = OutputLines(self.proc.stdout, on_line=self._on_line)

    def _on_line(self, line: str) -> None:
        if line.startswith(("RESULT ", "ERROR ")):
            self._replies.put(line)

    @property
    def lines(self) -> list[str]:
        return self._out.lines

    @property
    def output(self) -> str:
        return self._out.text

    def wait_for(self, text: str, timeout: float = 30) -> None:
        self._out.wait_for(text, timeout, who="the uplink")

    def do(self, command: str, timeout: float = 30) -> Any:
        """Send one command line; return its RESULT value, or raise UplinkSideError for an ERROR line."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no reply to {command!r} within {timeout}s:\n{self.output}") from None
        if line.startswith("ERROR "):
            type_name, _, message = line[6:].partition(" ")
            raise UplinkSideError(type_name, message)
        return json.loads(line[7:])

    def call(self, name: str, *args: Any) -> Any:
        return self.do(f"call {name} {json.dumps(list(args))}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class UplinkSideError(Exception):
    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type = type_name
        self.message = message


@pytest.fixture
def start_uplink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Uplink]]:
    """Start an uplink script (its own code between the prelude and the command loop), connected
    to `server` (by default the test's `server` fixture)."""
    started: list[Uplink] = []

    def start(code: str = "", key: str | None = None, wait: bool = True, server: ServerProcess | None = None) -> Uplink:
        server = server or request.getfixturevalue("server")
        path = tmp_path / f"uplink_script_{len(started)}.py"
        path.write_text(PRELUDE + textwrap.dedent(code) + MAIN)
        up = Uplink(path, key if key is not None else uplink_key(server), f"ws://127.0.0.1:{server.port}/_/uplink")
        started.append(up)
        if wait:
            up.wait_for("READY")
        return up

    yield start
    for up in started:
        up.stop()


def uplink_key(server: ServerProcess) -> str:
    return (server.app_dir / ".anvil-dev" / "uplink.key").read_text().strip()


UPLINK_FUNCTIONS = """
@anvil.server.callable
def up_echo(value):
    return value

@anvil.server.callable
def up_describe(value):
    return _plain(value)

@anvil.server.callable
def up_reverse(media):
    data = media.get_bytes()
    return anvil.BlobMedia("application/x-reversed", data[::-1], name="rev-" + (media.name or ""))

@anvil.server.callable
def up_who():
    return os.getpid()
"""

NESTED_MODULE = """
import anvil.server

@anvil.server.callable
def via_server(x):
    # Called from uplink code; calls back into the uplink through the same call stack.
    return {"doubled": anvil.server.call("up_double", x), "session": anvil.server.get_session_id(),
            "stack": [f.type for f in anvil.server.context.call_stack]}

@anvil.server.callable
def server_calls_uplink(x):
    return anvil.server.call("up_double", x)

@anvil.server.callable
def my_session():
    return anvil.server.get_session_id()
"""


# ---------------------------------------------------------------------------------------------


def test_uplink_calls_server_functions_with_portable_types_and_media(server: ServerProcess, start_uplink) -> None:
    write_module(
        server.app_dir,
        "Pairs",
        """
        import anvil.server

        @anvil.server.portable_class("test.Pair")
        class Pair:
            def __init__(self, a, b):
                self.a, self.b = a, b

        @anvil.server.callable
        def swap(p):
            return [type(p).__name__, Pair(p.b, p.a)]
    """,
    )
    up = start_uplink("""
        @anvil.server.portable_class("test.Pair")
        class Pair:
            def __init__(self, a, b):
                self.a, self.b = a, b
    """)
    assert up.call("add", 2, 40) == 42
    # A portable class both sides define, with a date inside.
    swapped = wait_until(
        lambda: _do_or_none(
            up,
            "run (lambda r: _plain([r[0], type(r[1]).__name__, r[1].a, r[1].b]))("
            "anvil.server.call('swap', Pair(1, datetime.date(2024, 1, 2))))",
        ),
        what="the Pairs module to load",
    )
    assert swapped == ["Pair", "Pair", "'2024-01-02'", 1]
    sent = (
        '[2**40, -2**70, float("inf"), 1.5, None, True, "héllo", {"a": [1, {"b": 2}]}, '
        "datetime.date(2024, 5, 6), "
        "datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))]"
    )
    assert up.do(f"run _plain(anvil.server.call('echo', {sent}))") == up.do(f"run _plain({sent})")
    # A 1 MB media to the server and back (the template's echo returns its argument).
    got = up.do(
        "run (lambda m, r: [r.get_bytes() == m.get_bytes(), r.content_type, r.name, r.length])("
        "*(lambda m: (m, anvil.server.call('echo', m)))("
        "anvil.BlobMedia('application/x-test', os.urandom(1_000_000), name='big.bin')))"
    )
    assert got == [True, "application/x-test", "big.bin", 1_000_000]
    with pytest.raises(UplinkSideError) as e:
        up.call("no_such_function")
    assert e.value.type == "anvil.server.NoServerFunctionError"
    assert 'No server function matching "no_such_function" has been registered' in e.value.message


def test_server_and_clients_call_uplink_functions(server: ServerProcess, start_uplink) -> None:
    start_uplink(UPLINK_FUNCTIONS)
    client = server.client()
    value = {
        "big": 2**70,
        "inf": float("inf"),
        "list": [1, "two", None, True],
        "date": __import__("datetime").date(2024, 5, 6),
    }
    back = client.call("up_echo", value)
    assert back == value
    data = os.urandom(1_000_000)
    rev = client.call("up_reverse", Media("application/octet-stream", data, name="x.bin"))
    assert (rev.content_type, rev.name) == ("application/x-reversed", "rev-x.bin")
    assert rev.get_bytes() == data[::-1]
    # The uplink sees what the browser sent: a 1 MB media arrives whole, with its type and name.
    assert client.call("up_describe", Media("text/plain", b"abc" * 5, name="t.txt")) == {
        "media": "text/plain",
        "name": "t.txt",
        "length": 15,
        "head": list(b"abca"),
    }


def test_wrong_key_is_refused_with_anvils_message(server: ServerProcess, start_uplink) -> None:
    mark = server.mark()
    up = start_uplink(key="not-the-key", wait=False)
    up.wait_for("FATAL")
    assert "Anvil fatal error: Incorrect uplink key" in up.output
    server.wait_for_output("incorrect uplink key", after=mark)


def test_disconnected_uplink_gives_uplink_disconnected_error_and_reconnects(
    server: ServerProcess, start_uplink
) -> None:
    up = start_uplink(UPLINK_FUNCTIONS)
    client = server.client()
    pid = client.call("up_who")
    mark = server.mark()
    up.do("disconnect")
    # The client returns once it has closed its end; the host learns of it a moment later.
    server.wait_for_output("disconnected", after=mark)
    with pytest.raises(ServerError) as e:
        client.call("up_who")
    assert e.value.type == "anvil.server.UplinkDisconnectedError"
    assert e.value.message == 'The uplink server for "up_who" has been disconnected'
    up.do("reconnect")
    assert client.call("up_who") == pid
    # The network drops under the client: it reconnects and re-registers by itself.
    mark = server.mark()
    up.do("drop")
    server.wait_for_output("disconnected", after=mark)
    server.wait_for_output("uplink connected", after=mark)
    wait_until(lambda: _call_or_none(client, "up_who") == pid, what="calls to work again")


def _do_or_none(up: Uplink, command: str) -> Any:
    try:
        return up.do(command)
    except UplinkSideError:
        return None


def _call_or_none(client: Any, name: str, *args: Any) -> Any:
    try:
        return client.call(name, *args)
    except ServerError:
        return None


def test_pending_call_fails_when_its_uplink_dies(server: ServerProcess, start_uplink) -> None:
    up = start_uplink("""
        @anvil.server.callable
        def up_block():
            print("BLOCKING", flush=True)
            time.sleep(600)
    """)
    client = server.client()
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            client.call("up_block")
        except ServerError as e:
            result["error"] = e

    t = threading.Thread(target=call)
    t.start()
    up.wait_for("BLOCKING")
    up.proc.kill()
    t.join(30)
    assert not t.is_alive()
    assert result["error"].type == "anvil.server.UplinkDisconnectedError"
    assert result["error"].message == "Uplink disconnected"


def test_two_uplinks_share_a_name(server: ServerProcess, start_uplink) -> None:
    a = start_uplink(UPLINK_FUNCTIONS)
    b = start_uplink(UPLINK_FUNCTIONS)
    client = server.client()
    pids = {a.proc.pid, b.proc.pid}
    seen = wait_until(
        lambda: {client.call("up_who") for _ in range(40)} == pids and pids, what="calls to reach both uplinks"
    )
    assert seen == pids
    # One goes away: every call reaches the other, none fails.
    mark = server.mark()
    a.do("disconnect")
    server.wait_for_output("disconnected", after=mark)
    assert {client.call("up_who") for _ in range(20)} == {b.proc.pid}


@pytest.mark.parametrize("mode", [[], ["--keep-server-running"]], ids=["fresh", "persistent"])
def test_uplink_calls_server_which_calls_back_into_the_uplink(
    app_dir: Path, server_factory: Callable[..., ServerProcess], start_uplink, mode: list[str]
) -> None:
    write_module(app_dir, "Nested", NESTED_MODULE)
    server = server_factory(app_dir, *mode)
    up = start_uplink(
        server=server,
        code="""
        @anvil.server.callable
        def up_double(x):
            return 2 * x

        @anvil.server.callable
        def up_outer(x):
            return anvil.server.call("via_server", x)
    """,
    )
    # client -> server module -> uplink
    assert server.client().call("server_calls_uplink", 4) == 8
    # uplink -> server module -> uplink
    assert up.call("via_server", 21)["doubled"] == 42
    # browser -> uplink -> server module -> uplink: the server module shares the browser's session.
    client = server.client()
    session = client.call("my_session")
    inner = client.call("up_outer", 5)
    assert inner["doubled"] == 10
    assert inner["session"] == session
    assert inner["stack"] == ["browser", "uplink"]
    # Straight from the uplink: one session for the connection, as on Anvil.
    direct = up.call("via_server", 1)
    assert (direct["doubled"], direct["stack"]) == (2, ["uplink"])
    assert direct["session"] and direct["session"] != session
    assert up.call("my_session") == direct["session"]


def test_require_user_on_uplink_function_sees_the_callers_login(server: ServerProcess, start_uplink) -> None:
    start_uplink("""
        import anvil.users

        @anvil.server.callable(require_user=True)
        def up_whoami():
            user = anvil.users.get_user()
            return [user["email"], user.get_id(), user["signed_up"].year]

        @anvil.server.callable(require_user=lambda u: u["email"].endswith("@example.org"))
        def up_staff_only():
            return "staff"

        @anvil.server.callable
        def up_email_via_server():
            # A row the uplink got goes back to server code as a row.
            return anvil.server.call("email_of", anvil.users.get_user())
    """)
    write_module(
        server.app_dir,
        "Rows",
        """
        import anvil.server

        @anvil.server.callable
        def email_of(row):
            return row["email"]
    """,
    )
    client = server.client()
    with pytest.raises(ServerError) as e:
        client.call("up_whoami")
    assert e.value.type == "anvil.users.AuthenticationFailed"
    assert e.value.message == "You must be logged in to call this server function"
    user = client.signup("ann@example.org", "a long password 1")
    email, row_id, year = client.call("up_whoami")
    assert (email, row_id) == ("ann@example.org", user.get_id())
    assert year >= 2024
    assert client.call("up_staff_only") == "staff"
    wait_until(
        lambda: _call_or_none(client, "up_email_via_server") == "ann@example.org",
        what="a row to go from the uplink back to server code",
    )
    other = server.client()
    other.signup("bob@elsewhere.net", "a long password 2")
    with pytest.raises(ServerError) as e:
        other.call("up_staff_only")
    assert e.value.type == "anvil.server.PermissionDenied"


def test_background_task_in_uplink_code(server: ServerProcess, start_uplink) -> None:
    write_module(
        server.app_dir,
        "Tasks",
        """
        import anvil.server

        @anvil.server.callable
        def start(n):
            return anvil.server.launch_background_task("up_count", n).get_id()

        @anvil.server.callable
        def status(task_id):
            t = anvil.server.get_background_task(task_id)
            done = t.is_completed()
            return {"done": done, "state": t.get_state(), "result": t.get_return_value() if done else None}
    """,
    )
    start_uplink("""
        @anvil.server.background_task
        def up_count(n):
            for i in range(n):
                anvil.server.task_state["i"] = i
                time.sleep(0.3)
            return "counted %d" % n
    """)
    client = server.client()
    task_id = wait_until(lambda: _call_or_none(client, "start", 4), what="the task to launch")
    final = wait_until(lambda: (s := client.call("status", task_id))["done"] and s, what="the task to end")
    assert final["result"] == "counted 4"
    assert final["state"] == {"i": 3}


def test_malformed_or_flooding_uplinks_are_dropped_others_keep_working(server: ServerProcess, start_uplink) -> None:
    start_uplink(UPLINK_FUNCTIONS)
    client = server.client()
    key = uplink_key(server)
    url = f"ws://127.0.0.1:{server.port}/_/uplink"

    def raw() -> simple_websocket.Client:
        ws = simple_websocket.Client.connect(url)
        ws.send(json.dumps({"key": key, "v": 8}))
        assert json.loads(ws.receive(timeout=10))["auth"] == "OK"
        return ws

    def closed(ws: simple_websocket.Client) -> bool:
        try:
            while ws.receive(timeout=10) is not None:
                pass
        except simple_websocket.ConnectionClosed:
            return True
        return False

    # The heartbeat is answered at once.
    ws = raw()
    ws.send(
        json.dumps(
            {
                "type": "CALL",
                "id": "hb1",
                "command": "anvil.private.echo",
                "args": ["keep-alive"],
                "kwargs": {},
                "call-stack-id": "outbound-x",
            }
        )
    )
    assert json.loads(ws.receive(timeout=10)) == {"id": "hb1", "response": "keep-alive", "objects": []}
    ws.close()

    for bad in ["not json", b"\x00a binary frame with no header", "[1, 2]", "x" * (17 * 1024 * 1024)]:
        ws = raw()
        ws.send(bad)
        assert closed(ws), f"not disconnected after {str(bad)[:30]!r}"

    # Hundreds of calls in flight (to a function that never answers) from one uplink.
    hog = raw()
    hog.send(json.dumps({"type": "REGISTER", "name": "never_answers"}))
    flood = raw()
    for i in range(250):
        flood.send(
            json.dumps(
                {
                    "type": "CALL",
                    "id": f"c{i}",
                    "command": "never_answers",
                    "args": [],
                    "kwargs": {},
                    "call-stack-id": "outbound-x",
                }
            )
        )
    assert closed(flood)
    hog.close()
    # The well-behaved uplink never noticed.
    assert client.call("up_echo", "still here") == "still here"
