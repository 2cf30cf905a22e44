"""Debugging server code where it runs: breakpoint() in a real `anvil-dev serve` driven in a pseudo-terminal
(pexpect), and without a terminal the call's clear error instead."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
import requests

from helpers import ROOT, ServerProcess, free_port, write_module

TRACEBACK = "Traceback (most recent call last)"
PROMPT = r"\(Pdb\) "

DEBUGGED = """
    import anvil.server


    @anvil.server.callable
    def doubled_plus_one(x):
        y = x * 2
        breakpoint()
        z = y + 1
        return z


    @anvil.server.callable
    def traced(word):
        import pdb
        pdb.set_trace()
        return word.upper()


    @anvil.server.callable
    def quick():
        return "quick"


    @anvil.server.background_task
    def task_with_breakpoint(n):
        total = n + 1
        breakpoint()
        anvil.server.task_state["total"] = total
        return total


    @anvil.server.callable
    def launch(n):
        return anvil.server.launch_background_task("task_with_breakpoint", n)


    @anvil.server.callable
    def task_done(task):
        return task.is_completed() and task.get_return_value()


    @anvil.server.http_endpoint("/stop-here")
    def stop_here(**params):
        answer = "endpoint " + params.get("q", "")
        breakpoint()
        return answer


    @anvil.server.callable
    def guarded():
        try:
            breakpoint()
            went_on = "ran on"
        except Exception:
            return "swallowed"
        return went_on
"""


def line_of(code: str) -> int:
    """The line of Debugged.py (as write_module writes it) that holds `code`, first match."""
    return next(n for n, text in enumerate(textwrap.dedent(DEBUGGED).splitlines(), 1) if code in text)


BREAK = line_of("    breakpoint()")


class TerminalServer:
    """`anvil-dev serve` with a pseudo-terminal for its terminal, as a user runs it."""

    def __init__(self, app: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.term = pexpect.spawn(
            sys.executable,
            ["-m", "anvil_dev", "--app", str(app), "serve", "--port", str(self.port), *args],
            env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
            encoding="utf-8",
            timeout=60,
            dimensions=(50, 200),
        )
        self.term.expect("Serving on")

    def stop(self) -> None:
        if self.term.isalive():
            self.term.kill(signal.SIGTERM)
            self.term.expect(pexpect.EOF, timeout=30)
        self.term.close(force=True)


@pytest.fixture
def debug_app(app_dir: Path) -> Path:
    write_module(app_dir, "Debugged", DEBUGGED)
    return app_dir


@pytest.fixture
def terminal_server(debug_app: Path) -> Iterator[Callable[..., TerminalServer]]:
    started: list[TerminalServer] = []

    def start(*args: str) -> TerminalServer:
        s = TerminalServer(debug_app, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001 - the test looks at it
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def cli_call(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "anvil_dev", "call", "--url", url, *args],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


@pytest.mark.parametrize("mode", ["fresh", "keep-server-running"])
def test_breakpoint_steps_prints_and_continues(terminal_server: Callable[..., TerminalServer], mode: str) -> None:
    server = terminal_server("--timeout", "1", *(["--keep-server-running"] if mode != "fresh" else []))
    call = cli_call(server.url, "doubled_plus_one", "20")
    term = server.term
    term.expect(rf"-- pdb: Debugged\.py line {BREAK}, in doubled_plus_one \(pid \d+\)")
    term.expect(rf"Debugged\.py\({BREAK + 1}\)doubled_plus_one\(\)")  # the call's own frame, after breakpoint()
    term.expect("-> z = y \\+ 1")
    term.expect(PROMPT)

    # Other calls are served while this one is stopped, and the --timeout 1 does not fire at the prompt:
    # the quick call's round trip takes longer than a second under the CLI, and the stopped one lives on.
    quick = cli_call(server.url, "quick")
    assert quick.communicate(timeout=60)[0] == "quick\n"
    term.sendline("n")
    term.expect("-> return z")
    term.expect(PROMPT)
    term.sendline("p y, z")
    term.expect(r"\(40, 41\)")
    term.expect(PROMPT)
    term.sendline("c")
    term.expect("-- pdb: session over")
    out, err = call.communicate(timeout=60)
    assert (out, call.returncode) == ("41\n", 0), err
    assert TRACEBACK not in err


QUIT_LINE = "-- pdb: session over, q quit the debugger: the call fails with DebuggerQuit --"


@pytest.mark.parametrize("mode", ["fresh", "keep-server-running"])
def test_q_at_the_prompt_fails_the_call_saying_so(terminal_server: Callable[..., TerminalServer], mode: str) -> None:
    """`q` stops the call where it is, with an error that says the debugger was quit (not a bare BdbQuit), past
    an `except Exception:` around the breakpoint; the server, and the next breakpoint, go on as before."""
    server = terminal_server("--timeout", "1", *(["--keep-server-running"] if mode != "fresh" else []))
    term = server.term
    call = cli_call(server.url, "guarded")
    term.expect(r"in guarded \(pid")
    term.expect(PROMPT)
    term.sendline("q")
    # The relay's session line and the dispatcher's failure line come from two host threads (the pdb
    # socket's reader, the call's): in persistent mode either may be printed first.
    lines = [QUIT_LINE, "guarded failed"]
    first = term.expect_exact(lines)
    printed = term.before
    out, err = call.communicate(timeout=60)
    assert (out, call.returncode) == ("", 1), err
    stopped_at = line_of('went_on = "ran on"')
    assert err.splitlines()[-1] == (
        f"DebuggerQuit: the debugger was quit (q at the pdb prompt) at Debugged.py line {stopped_at}, in guarded: "
        "the call stopped there; c at the prompt lets a call run on"
    ), err
    assert "BdbQuit" not in err and TRACEBACK not in err
    term.expect_exact(lines[1 - first])
    printed += term.before
    assert "the call runs on" not in printed

    again = cli_call(server.url, "doubled_plus_one", "1")
    term.expect(r"in doubled_plus_one \(pid")
    term.expect(PROMPT)
    term.sendline("c")
    term.expect("-- pdb: session over, the call runs on --")
    assert again.communicate(timeout=60)[0] == "3\n"


def test_set_trace_and_the_timeout_after_it(terminal_server: Callable[..., TerminalServer]) -> None:
    server = terminal_server("--timeout", "1")
    call = cli_call(server.url, "traced", "word")
    server.term.expect(r"in traced \(pid")
    server.term.expect(PROMPT)
    server.term.sendline("p word")
    server.term.expect("'word'")
    server.term.expect(PROMPT)
    server.term.sendline("c")
    assert call.communicate(timeout=60)[0] == "WORD\n"


def test_breakpoint_in_a_background_task(terminal_server: Callable[..., TerminalServer]) -> None:
    server = terminal_server()
    conn = requests_client(server.url)
    task = conn.call("launch", 4)
    server.term.expect(r"in task_with_breakpoint \(pid")
    server.term.expect(PROMPT)
    server.term.sendline("p total")
    server.term.expect(r"\r\n5\r\n")
    server.term.expect(PROMPT)
    server.term.sendline("c")
    from helpers import wait_until

    assert wait_until(lambda: conn.call("task_done", task), what="the task to finish") == 5


def test_breakpoint_in_an_http_endpoint(terminal_server: Callable[..., TerminalServer]) -> None:
    server = terminal_server("--timeout", "1")
    t, out = in_background(lambda: requests.get(server.url + "/_/api/stop-here", params={"q": "hi"}, timeout=60))
    server.term.expect(r"in stop_here \(pid")
    server.term.expect(PROMPT)
    server.term.sendline("p answer")
    server.term.expect("'endpoint hi'")
    server.term.expect(PROMPT)
    server.term.sendline("c")
    t.join(60)
    assert out[0].status_code == 200 and out[0].text == "endpoint hi"


def test_without_a_terminal_the_call_says_how_to_debug(
    debug_app: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    server = server_factory(debug_app)  # its stdin is /dev/null: no terminal to lend pdb
    result = subprocess.run(
        [sys.executable, "-m", "anvil_dev", "call", "--url", server.url, "doubled_plus_one", "1"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert result.returncode == 1 and TRACEBACK not in result.stderr
    assert (
        f"BreakpointUnavailable: breakpoint() at Debugged.py line {BREAK}, in doubled_plus_one: anvil-dev serve "
        "is not running in a terminal, so pdb has nowhere to prompt - run `anvil-dev serve` in a terminal with "
        "its input not redirected, and the prompt opens there"
    ) in result.stderr.splitlines()[-1]


def requests_client(url: str) -> Any:
    from anvil_dev.client import connect

    return connect(url)


def test_module_raising_at_import_is_a_failed_reload(
    app_dir: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    server = server_factory(app_dir)
    events = requests.get(server.url + "/_/console/events", stream=True, timeout=60)
    mark = server.mark()
    write_module(
        app_dir,
        "Broken",
        """
        import anvil.server

        LIMIT = 1 / 0
    """,
    )
    line = server.wait_for_output("reload of server_code/Broken.py", after=mark)
    assert line == (
        "reload of server_code/Broken.py failed: ZeroDivisionError: division by zero at "
        "server_code/Broken.py line 4 (calls will fail until it is fixed)"
    ), line
    assert not any("reloaded" in ln for ln in server.lines[mark:])
    seen = ""
    for chunk in events.iter_lines(decode_unicode=True):
        seen += chunk + "\n"
        if chunk.startswith("data:") and "reload_failed" in chunk:
            break
    events.close()
    assert '"type":"ZeroDivisionError"' in seen and '"line":4' in seen, seen
    mark = server.mark()
    write_module(app_dir, "Broken", "LIMIT = 1\n")
    server.wait_for_output("reloaded server_code/Broken.py in", after=mark)
    assert server.client().call("add", 1, 2) == 3


def test_live_log_tags_a_task_launched_from_the_cli_as_cli(
    app_dir: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    write_module(
        app_dir,
        "Tasks",
        """
        import anvil.server

        @anvil.server.background_task
        def noted(n):
            return n

        @anvil.server.callable
        def start(n):
            return anvil.server.launch_background_task("noted", n).get_id()
    """,
    )
    server = server_factory(app_dir)
    events = requests.get(server.url + "/_/console/events", stream=True, timeout=60)
    started = cli_call(server.url, "start", "3")
    assert started.communicate(timeout=60)[1] == ""
    tags: dict[str, str] = {}
    for chunk in events.iter_lines(decode_unicode=True):
        if chunk.startswith("data:"):
            data = json.loads(chunk[5:])["data"]
            if "command" in data and "client_type" in data:
                tags[data["command"]] = data["client_type"]
        if {"start", "anvil.private.background_tasks.launch"} <= set(tags):
            break
    events.close()
    assert tags == {"start": "cli", "anvil.private.background_tasks.launch": "cli"}
