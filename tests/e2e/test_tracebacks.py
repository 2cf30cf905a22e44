"""A failed call's server traceback, as `anvil-dev call`, the serve terminal and the console show it: function
names and source lines, outermost first ("most recent call last"), the app's frames unless asked for more;
the wire keeps Anvil's [file, line] trace, innermost first, and nothing else."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from helpers import ServerProcess, run_cli, write_module

HEADER = "Server traceback (most recent call last):"
TRACEBACK = "Traceback (most recent call last)"  # what Python prints when anvil-dev itself fails

TRACED = """
    import json

    import anvil.server


    def middle(x):
        return 10 // x


    @anvil.server.callable
    def outer(x):
        y = middle(x)
        return y


    @anvil.server.callable
    def bad_json(text):
        return json.loads(text)


    @anvil.server.callable
    def nested():
        return anvil.server.call("outer", 0)
"""


def line_of(code: str) -> int:
    return next(n for n, text in enumerate(textwrap.dedent(TRACED).splitlines(), 1) if code in text)


FILE = "server_code/Traced.py"
OUTER = f'  File "{FILE}", line {line_of("y = middle(x)")}, in outer'
MIDDLE = f'  File "{FILE}", line {line_of("return 10 // x")}, in middle'
ZERO = "ZeroDivisionError: integer division or modulo by zero"


@pytest.fixture
def traced_app(app_dir: Path) -> Path:
    write_module(app_dir, "Traced", TRACED)
    return app_dir


def cli_call(app: Path | None, url: str, *args: str) -> tuple[list[str], int]:
    """`anvil-dev call` as a user types it in the app's directory (or elsewhere, with `app` None)."""
    result = run_cli("call", "--url", url, *args, cwd=app or Path("/"))
    assert TRACEBACK not in result.stderr + result.stdout, result.stderr
    return result.stderr.splitlines(), result.returncode


@pytest.mark.parametrize("mode", ["fresh", "keep-server-running"])
def test_call_shows_the_app_frames_with_names_and_source_innermost_last(
    traced_app: Path, server_factory: Callable[..., ServerProcess], mode: str
) -> None:
    server = server_factory(traced_app, *(["--keep-server-running"] if mode != "fresh" else []))
    lines, code = cli_call(traced_app, server.url, "outer", "0")
    assert code == 1
    assert lines == [HEADER, OUTER, "    y = middle(x)", MIDDLE, "    return 10 // x", ZERO], lines


def test_call_traceback_shows_anvil_devs_frames_too(
    traced_app: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    server = server_factory(traced_app)
    lines, code = cli_call(traced_app, server.url, "--traceback", "outer", "0")
    assert code == 1 and lines[0] == HEADER and lines[-1] == ZERO
    ours = [n for n, line in enumerate(lines) if "anvil_dev/runtime/anvil/_engine_hooks.py" in line]
    assert ours and any(lines[n].endswith(", in _run") for n in ours), lines
    assert max(ours) < lines.index(OUTER) < lines.index(MIDDLE), lines  # the runtime called the function


def test_library_frames_after_the_app_are_one_line(
    traced_app: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    server = server_factory(traced_app)
    lines, code = cli_call(traced_app, server.url, "bad_json", "not json")
    assert code == 1
    assert lines[:3] == [
        HEADER,
        f'  File "{FILE}", line {line_of("json.loads(text)")}, in bad_json',
        "    return json.loads(text)",
    ]
    hidden = lines[3]
    assert hidden.startswith("  [") and "frames of libraries hidden: call --traceback shows them]" in hidden, lines
    assert lines[4:] == ["JSONDecodeError: Expecting value: line 1 column 1 (char 0)"], lines


def test_a_nested_call_shows_both_functions(traced_app: Path, server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(traced_app)
    lines, code = cli_call(traced_app, server.url, "nested")
    assert code == 1 and lines[-1] == ZERO
    nested = f'  File "{FILE}", line {line_of("anvil.server.call(")}, in nested'
    assert lines.index(nested) < lines.index(OUTER) < lines.index(MIDDLE), lines


def test_away_from_the_app_the_wire_trace_is_shown_outermost_first(
    traced_app: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    """Without the app's .anvil-dev/ (no CLI token) only the files and lines clients get can be shown."""
    server = server_factory(traced_app)
    lines, code = cli_call(None, server.url, "outer", "0")
    assert code == 1
    assert lines == [HEADER, OUTER.rsplit(", in ", 1)[0], MIDDLE.rsplit(", in ", 1)[0], ZERO], lines


def test_the_wire_carries_anvils_trace_only(traced_app: Path, server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(traced_app)
    resp = requests.post(
        server.url + "/_/call", json={"command": "outer", "args": [0], "kwargs": {}, "objects": []}, timeout=60
    )
    body = resp.json()
    assert set(body) == {"error", "objects", "output"}
    assert body["error"] == {
        "type": "ZeroDivisionError",
        "message": "integer division or modulo by zero",
        "trace": [[FILE, line_of("return 10 // x")], [FILE, line_of("y = middle(x)")]],
    }
    assert "middle(x)" not in resp.text  # no source line reaches a client
    call_id = resp.headers["X-Anvil-Dev-Call"]
    refused = requests.get(f"{server.url}/_/dev/calls/{call_id}", timeout=60)
    assert refused.status_code == 403 and "middle(x)" not in refused.text


def test_the_serve_terminal_shows_the_traceback(traced_app: Path, server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(traced_app)
    mark = server.mark()
    cli_call(traced_app, server.url, "outer", "0")
    server.wait_for_output("outer failed (cli): ZeroDivisionError", after=mark)
    at = server.lines.index(f"outer failed (cli): {ZERO}", mark)
    shown = server.lines[at + 1 : at + 6]
    assert shown == ["  " + HEADER, "  " + OUTER, "      y = middle(x)", "  " + MIDDLE, "      return 10 // x"], shown
    assert "_engine_hooks.py" not in server.output


def test_serve_show_internal_frames(traced_app: Path, server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(traced_app, "--show-internal-frames")
    mark = server.mark()
    cli_call(traced_app, server.url, "outer", "0")
    server.wait_for_output("outer failed (cli)", after=mark)
    server.wait_for_output("      return 10 // x", after=mark)
    after = server.lines[mark:]
    assert any("anvil_dev/runtime/anvil/_engine_hooks.py" in line and "in _run" in line for line in after), after


def test_the_console_gets_the_frames_in_order(traced_app: Path, server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(traced_app)
    events = requests.get(server.url + "/_/console/events", stream=True, timeout=60)
    resp = requests.post(
        server.url + "/_/call", json={"command": "outer", "args": [0], "kwargs": {}, "objects": []}, timeout=60
    )
    call_id = int(resp.headers["X-Anvil-Dev-Call"])
    failure = requests.get(f"{server.url}/_/console/api/calls/{call_id}", timeout=60).json()
    assert failure["error"]["type"] == "ZeroDivisionError" and failure["ok"] is False
    app_frames = [(f["name"], f["source"]) for f in failure["frames"] if f["kind"] == "app"]
    assert app_frames == [("outer", "y = middle(x)"), ("middle", "return 10 // x")]
    assert failure["frames"][0]["kind"] == "anvil_dev"  # there, for the console's toggle to show
    for chunk in events.iter_lines(decode_unicode=True):
        if chunk.startswith("data:"):
            event = json.loads(chunk[5:])
            if event.get("kind") == "call" and event["data"].get("id") == call_id:
                assert event["data"]["frames"] == failure["frames"]
                break
    events.close()
