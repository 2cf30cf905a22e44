"""serve and call end to end: the CLI, a real server, the Python client, and bad input (init: unit/test_init.py)."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
import requests

from anvil_dev.client import ServerError, connect

from helpers import ServerProcess, free_port, run_cli, write_module


def test_serve_without_an_app_says_what_to_do(tmp_path) -> None:
    result = run_cli("--app", str(tmp_path), "serve", "--port", str(free_port()))
    assert result.returncode == 2
    assert "no anvil.yaml" in result.stderr and "anvil-dev init" in result.stderr


def test_serve_banner_lists_functions_and_how_to_call(server: ServerProcess) -> None:
    out = server.output
    assert "add_feedback" in out and "portable_types" in out
    assert "anvil-dev call" in out
    assert f"Serving on {server.url}" in out


def test_cli_call_prints_result_output_and_errors(server: ServerProcess) -> None:
    env = {"ANVIL_DEV_URL": server.url}
    r = run_cli("call", "add", "2", "3", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "5"
    r = run_cli("call", "echo", '{"a": [1, 2.5, null]}', "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout) == {"a": [1, 2.5, None]}
    r = run_cli("call", "echo", "plain words", env=env)
    assert r.stdout.strip() == "plain words"
    r = run_cli("call", "echo", "--kw", "value=[1]", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "[1]"
    r = run_cli("call", "add_feedback", "", "x@y.org", "hi", env=env)
    assert r.returncode == 1
    assert "ValueError: Please give your name and email" in r.stderr
    assert 'File "server_code/ServerModule1.py", line' in r.stderr  # the server's traceback, as Python prints one
    r = run_cli("call", "nothing_here", env=env)
    assert r.returncode == 1
    assert (
        'anvil.server.NoServerFunctionError: No server function matching "nothing_here" has been registered' in r.stderr
    )


def test_cli_call_with_no_server_exits_2(tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    r = run_cli("call", "add", "1", "2", "--url", url)
    assert r.returncode == 2
    assert r.stderr.strip() == f"no anvil-dev server at {url} - start one with `anvil-dev serve`"


def test_print_output_reaches_terminal_and_caller(app_dir, server_factory) -> None:
    write_module(
        app_dir,
        "Talk",
        """
        import anvil.server

        @anvil.server.callable
        def talk(n):
            for i in range(n):
                print("line", i)
            return n
    """,
    )
    srv = server_factory(app_dir)
    c = srv.client()
    assert c.call("talk", 2) == 2
    assert c.last_output == "line 0\nline 1\n"
    srv.wait_for_output("[talk] line 1")
    r = run_cli("call", "talk", "1", env={"ANVIL_DEV_URL": srv.url})
    assert "line 0" in r.stderr and r.stdout.strip() == "1"


def test_every_portable_type_round_trips_through_the_client(client) -> None:
    values = client.call("portable_types")
    assert values["big"] == 2**70 and values["inf"] == float("inf")
    assert values["date"] == dt.date(2024, 5, 6)
    assert values["datetime"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc)
    assert values["point"].type_name.endswith("Shapes.Point") and values["point"].x == 1
    back = client.call("echo", values)
    assert back == values
    moved = client.call("move", values["point"], 2, 3)
    assert (moved.x, moved.y) == (3, 5)
    assert client.call("echo", (1, (2,))) == [1, [2]]


def test_cli_round_trips_portable_types(server: ServerProcess) -> None:
    r = run_cli("call", "portable_types", "--json", env={"ANVIL_DEV_URL": server.url})
    data = json.loads(r.stdout)
    assert data["big"] == 2**70 and data["date"] == "2024-05-06"
    assert data["point"]["__type__"].endswith("Shapes.Point")


def test_fresh_calls_never_share_globals(client) -> None:
    assert [client.call("count_calls") for _ in range(3)] == [1, 1, 1]


def test_decorator_forms_and_server_to_server_calls(app_dir, server_factory) -> None:
    write_module(
        app_dir,
        "Forms",
        """
        import anvil.server
        from . import Helpers
        import Helpers as AbsHelpers

        @anvil.server.callable()
        def with_parens():
            return "()"

        @anvil.server.callable("custom.name")
        def renamed():
            return "renamed"

        authenticated = anvil.server.callable(require_user=False)

        @authenticated
        def aliased(**kw):
            return sorted(kw)

        @anvil.server.callable
        def kwonly(a, *, b=2):
            return [a, b]

        @anvil.server.callable
        def via_call():
            return anvil.server.call("custom.name") + "+" + Helpers.helper() + "+" + str(AbsHelpers is Helpers)
    """,
    )
    write_module(
        app_dir,
        "Helpers",
        """
        def helper():
            return "helper"
    """,
    )
    c = server_factory(app_dir).client()
    assert c.call("with_parens") == "()"
    assert c.call("custom.name") == "renamed"
    assert c.call("aliased", x=1, y=2) == ["x", "y"]
    assert c.call("kwonly", 1, b=5) == [1, 5]
    assert c.call("via_call") == "renamed+helper+True"


def test_duplicate_name_warns(app_dir, server_factory) -> None:
    write_module(
        app_dir,
        "Dup",
        """
        import anvil.server

        @anvil.server.callable("add")
        def add_again(a, b):
            return 0
    """,
    )
    srv = server_factory(app_dir)
    srv.client().call("add", 1, 1)
    srv.wait_for_output("Warning: a callable with the name 'add' has already been registered")


def test_server_exceptions_keep_type_message_and_trace(app_dir, server_factory) -> None:
    write_module(
        app_dir,
        "Boom",
        """
        import anvil.server

        def inner():
            raise KeyError("missing thing")

        @anvil.server.callable
        def boom():
            inner()
    """,
    )
    c = server_factory(app_dir).client()
    with pytest.raises(ServerError) as e:
        c.call("boom")
    assert e.value.type == "KeyError" and "missing thing" in e.value.message
    assert e.value.trace[0] == ["server_code/Boom.py", 5]
    assert ["server_code/Boom.py", 9] in e.value.trace


def test_too_much_data_is_refused_with_anvils_message(app_dir, server_factory) -> None:
    write_module(
        app_dir,
        "Big",
        """
        import anvil.server

        @anvil.server.callable
        def big(mb):
            return "x" * int(mb * 1024 * 1024)
    """,
    )
    srv = server_factory(app_dir, "--max-response-mb", "1")
    c = srv.client()
    assert len(c.call("big", 0.5)) == 512 * 1024
    with pytest.raises(ServerError) as e:
        c.call("big", 2)
    assert e.value.type == "anvil.server.SerializationError"
    assert e.value.message == (
        "This function returned too much data - please use Media objects to transfer large amounts of data."
    )


def test_unserializable_return_names_the_path(app_dir, server_factory) -> None:
    write_module(
        app_dir,
        "Bad",
        """
        import anvil.server

        @anvil.server.callable
        def bad_key():
            return [0, {1: "x"}]

        @anvil.server.callable
        def bad_object():
            return {"x": object()}

        @anvil.server.callable
        def cycle():
            a = []
            a.append(a)
            return a
    """,
    )
    c = server_factory(app_dir).client()
    with pytest.raises(ServerError) as e:
        c.call("bad_key")
    assert e.value.type == "anvil.server.SerializationError"
    assert e.value.message == (
        "Cannot serialize return value from function. Cannot serialize dictionaries "
        "with keys that aren't strings at msg['response'][1]"
    )
    with pytest.raises(ServerError, match=r"Cannot serialize <class 'object'> object at msg\['response'\]\['x'\]"):
        c.call("bad_object")
    with pytest.raises(ServerError, match="circular reference"):
        c.call("cycle")


def post(url: str, body: bytes | str, content_type: str = "application/json", **headers: str) -> requests.Response:
    return requests.post(url + "/_/call", data=body, headers={"Content-Type": content_type, **headers}, timeout=30)


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        (b"{not json", 400, "Malformed JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"args": []}', 400, '"command"'),
        (b'{"command": "add", "args": {"a": 1}}', 400, '"args" must be a JSON array'),
        (b'{"command": "add", "args": [1, 2], "kwargs": [1]}', 400, '"kwargs" must be a JSON object'),
        (b'{"command": "add", "args": [1, 2], "objects": [{"path": "x"}]}', 400, "Malformed entry"),
        (b'{"command": "nope", "args": []}', 404, 'No server function matching "nope"'),
        (
            b'{"command": "task:nope", "args": []}',
            403,
            'Cannot call scoped server function "task:nope" from client code',
        ),
        (b'{"command": "add", "args": [1]}', 500, "missing 1 required positional argument"),
    ],
)
def test_bad_input_gets_a_clear_error_and_the_server_stays_up(
    server: ServerProcess, body: bytes, status: int, fragment: str
) -> None:
    r = post(server.url, body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]["message"]
    assert server.client().call("add", 1, 2) == 3


def test_wrong_content_type_and_huge_body(server: ServerProcess) -> None:
    r = post(server.url, "command=add", "application/x-www-form-urlencoded")
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    huge = json.dumps({"command": "echo", "args": ["x" * (20 << 20)]})
    r = post(server.url, huge)
    assert r.status_code == 413
    assert "Tried to pass too much data to a server function" in r.json()["error"]["message"]
    assert server.client().call("add", 1, 2) == 3


def test_broken_module_reaches_every_call_and_server_keeps_serving(app_dir, server_factory) -> None:
    write_module(
        app_dir,
        "Broken",
        """
        import anvil.server
        import surely_not_installed_pkg
    """,
    )
    srv = server_factory(app_dir)
    for _ in range(2):
        with pytest.raises(ServerError) as e:
            srv.client().call("add", 1, 2)
        assert e.value.type == "ModuleNotFoundError"
        assert "pip install surely_not_installed_pkg" in e.value.message
    assert requests.get(srv.url + "/_/health", timeout=5).json()["ok"] is True


def test_python_module_entry_points(tmp_path) -> None:
    r = run_cli("--version")
    assert r.returncode == 0 and "anvil-dev" in r.stdout
    import subprocess
    import sys

    from helpers import ROOT

    r2 = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--help"], capture_output=True, text=True, timeout=30)
    assert r2.returncode == 0 and "serve" in r2.stdout and "call" in r2.stdout


def listening_addresses(port: int) -> set[str]:
    """The local addresses of sockets listening on a TCP port, from /proc/net/tcp (IPv4, hex)."""
    found = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


def test_server_binds_loopback_by_default(server: ServerProcess) -> None:
    assert requests.get(server.url + "/_/health", timeout=5).status_code == 200
    assert listening_addresses(server.port) == {"127.0.0.1"}


def test_client_connect_api(server: ServerProcess) -> None:
    c = connect(server.url)
    assert c.call("add", 40, 2) == 42


def test_a_missing_part_of_anvil_is_named_as_such(app_dir, server_factory) -> None:
    write_module(app_dir, "Plotly", "import anvil.plotly_templates\n")
    srv = server_factory(app_dir)
    with pytest.raises(ServerError) as e:
        srv.client().call("add", 1, 2)
    assert "No module named 'anvil.plotly_templates'" in e.value.message  # anvil.pdf exists now (issue 21)
    assert "anvil-dev does not provide this part of Anvil's server API" in e.value.message


def test_real_app_patterns_tabs_origin_and_client_imports(app_dir, server_factory) -> None:
    (app_dir / "server_code" / "Mixed.py").write_text(
        "import anvil.server\n"
        "from Shapes import Point\n"
        "\n"
        "@anvil.server.callable\n"
        "def tabbed():\n"
        "\treturn 'tabs'\n"
        "\n"
        "@anvil.server.callable\n"
        "def spaced():\n"
        "    return [anvil.server.get_app_origin(), Point(1, 1).moved(1, 0).x]\n"
    )
    srv = server_factory(app_dir)
    c = srv.client()
    assert c.call("tabbed") == "tabs"
    assert c.call("spaced") == [srv.url, 2]
