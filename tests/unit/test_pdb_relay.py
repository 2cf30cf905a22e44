"""The pdb relay in-process: a thread stands in for a child that reaches breakpoint(), a pseudo-terminal for
the serve terminal. (tests/e2e/test_debugging.py drives the real serve the same way.)"""

from __future__ import annotations

import os
import pdb
import select
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from anvil_dev.engine import breakpoints
from anvil_dev.host.debugger import PdbRelay


@pytest.fixture(autouse=True)
def restore_hooks() -> Iterator[None]:
    hook, set_trace = sys.breakpointhook, pdb.set_trace
    yield
    sys.breakpointhook, pdb.set_trace = hook, set_trace


class Terminal:
    """The user's side of a pseudo-terminal: what was printed, and typing."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.tty_in = os.fdopen(slave, "rb", buffering=0)
        self.tty_out = os.fdopen(os.dup(slave), "wb", buffering=0)
        self.seen = b""

    def expect(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                self.seen += os.read(self.master, 4096)
            assert time.monotonic() < deadline, f"no {text!r} on the terminal: {self.seen!r}"
        cut = self.seen.index(text.encode()) + len(text)
        before, self.seen = self.seen[:cut], self.seen[cut:]
        return before.decode()

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")


def doubled_plus_one(x: int) -> int:
    y = x * 2
    breakpoint()
    z = y + 1
    return z


def test_breakpoint_prompts_on_the_terminal_and_the_call_goes_on() -> None:
    term = Terminal()
    relay = PdbRelay(term.tty_in, term.tty_out)
    try:
        breakpoints.install(relay.path)
        result: list[int] = []
        worker = threading.Thread(target=lambda: result.append(doubled_plus_one(20)))
        worker.start()
        banner = term.expect("(Pdb) ")
        assert (
            f"-- pdb: test_pdb_relay.py line {doubled_plus_one.__code__.co_firstlineno + 2}, in doubled_plus_one"
            in banner
        )
        assert "-> z = y + 1" in banner  # the call's own frame, at the line after breakpoint()
        assert relay.is_stopped(os.getpid())
        term.type("n")
        assert "-> return z" in term.expect("(Pdb) ")
        term.type("p y, z")
        assert "(40, 41)" in term.expect("(Pdb) ")
        term.type("c")
        term.expect("-- pdb: session over")
        worker.join(10)
        assert result == [41]
        assert not relay.is_stopped(os.getpid()) and relay.stopped_seconds(os.getpid()) > 0
    finally:
        relay.close()


def test_set_trace_goes_the_same_way() -> None:
    term = Terminal()
    relay = PdbRelay(term.tty_in, term.tty_out)
    try:
        breakpoints.install(relay.path)

        def traced() -> str:
            word = "here"
            pdb.set_trace()
            return word

        result: list[str] = []
        worker = threading.Thread(target=lambda: result.append(traced()))
        worker.start()
        assert "in traced" in term.expect("(Pdb) ")
        term.type("p word")
        assert "'here'" in term.expect("(Pdb) ")
        term.type("c")
        worker.join(10)
        assert result == ["here"]
    finally:
        relay.close()


def test_without_a_terminal_the_breakpoint_says_how_to_debug_instead() -> None:
    breakpoints.install(None)
    with pytest.raises(breakpoints.BreakpointUnavailable) as caught:
        doubled_plus_one(1)
    assert str(caught.value) == (
        f"breakpoint() at test_pdb_relay.py line {doubled_plus_one.__code__.co_firstlineno + 2}, in doubled_plus_one: "
        "anvil-dev serve is not running in a terminal, so pdb has nowhere to prompt - run `anvil-dev serve` in a "
        "terminal with its input not redirected, and the prompt opens there"
    )
