"""Replay from the command line against a real server: edit a function, `anvil-dev call --replay ID` and
`--last NAME` rerun a logged call (same arguments, same caller and user) and print the new result."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import ServerProcess, run_cli, write_module

GREETER = """
import anvil.server
import anvil.users

@anvil.server.callable
def greet(name, *, punct="!"):
    user = anvil.users.get_user()
    return "hello {}{} (as {})".format(name, punct, user["email"] if user else "nobody")
"""


def _console_calls(srv: ServerProcess) -> list[dict[str, Any]]:
    with urllib.request.urlopen(srv.url + "/_/console/api/calls", timeout=30) as resp:
        calls: list[dict[str, Any]] = json.load(resp)["calls"]
    return calls


def test_edit_then_replay_by_id_and_by_name(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> None:
    write_module(app_dir, "Greeter", GREETER)
    assert run_cli("--app", str(app_dir), "users", "add", "ann@example.org").returncode == 0
    srv = server_factory(app_dir)
    cli = ("--app", str(app_dir), "call", "--url", srv.url)

    first = run_cli(*cli, "greet", "Ann", "--kw", "punct=?", "--as", "ann@example.org")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "hello Ann? (as ann@example.org)"
    (logged,) = [c for c in _console_calls(srv) if c["command"] == "greet"]
    assert logged["user"] == "ann@example.org" and logged["client_type"] == "cli"

    mark = srv.mark()
    write_module(app_dir, "Greeter", GREETER.replace('"hello {}{} (as {})"', '"HELLO {}{} (as {})"'))
    srv.wait_for_output("reloaded server_code/Greeter.py", after=mark)

    by_id = run_cli(*cli, "--replay", str(logged["id"]))
    assert by_id.returncode == 0, by_id.stderr
    # The same arguments (the keyword too) and the same user, through the new code.
    assert by_id.stdout.strip() == "HELLO Ann? (as ann@example.org)"
    replay_id = int(re.search(rf"replayed call #{logged['id']} \(greet\) as call #(\d+)", by_id.stderr)[1])

    recent = run_cli(*cli, "--recent")
    assert recent.returncode == 0, recent.stderr
    assert re.search(
        rf"#{replay_id}\s.*greet\s+\[cli\] ok as ann@example.org \(replay of #{logged['id']}\)", recent.stdout
    ), recent.stdout

    mark = srv.mark()
    write_module(app_dir, "Greeter", GREETER.replace('"hello {}{} (as {})"', '"hi {}{} (as {})"'))
    srv.wait_for_output("reloaded server_code/Greeter.py", after=mark)
    by_name = run_cli(*cli, "--last", "greet", "--json")
    assert by_name.returncode == 0, by_name.stderr
    assert json.loads(by_name.stdout) == "hi Ann? (as ann@example.org)"

    calls = [c for c in _console_calls(srv) if c["command"] == "greet"]
    assert [c["replay_of"] for c in reversed(calls)] == [None, logged["id"], replay_id]


def test_replay_errors_say_what_to_do(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(app_dir)
    cli = ("--app", str(app_dir), "call", "--url", srv.url)
    missing = run_cli(*cli, "--replay", "4242")
    assert missing.returncode == 1
    assert "No call #4242 in the server's recent calls" in missing.stderr and "Traceback" not in missing.stderr
    never = run_cli(*cli, "--last", "add")
    assert never.returncode == 1 and 'No call of "add"' in never.stderr
    mixed = run_cli(*cli, "--replay", "1", "add", "1", "2")
    assert mixed.returncode == 2 and "give no NAME, ARGS or --kw" in mixed.stderr

    failing = run_cli(*cli, "add", "1", "nope")
    assert failing.returncode == 1 and "TypeError" in failing.stderr
    replayed = run_cli(*cli, "--last", "add")
    # The replayed call raised again: which call it was comes first, then the error as `call` shows one.
    assert replayed.returncode == 1
    assert "replayed call #" in replayed.stderr and "TypeError" in replayed.stderr

    stopped = run_cli("--app", str(app_dir), "call", "--url", "http://127.0.0.1:9", "--last", "add")
    assert stopped.returncode == 2 and "no anvil-dev server at" in stopped.stderr
