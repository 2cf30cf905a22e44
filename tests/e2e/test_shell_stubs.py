"""`anvil-dev shell` through a pseudo-terminal, `anvil-dev functions`, "did you mean" on a real server,
and `anvil-dev stubs` making a misspelt column a mypy error."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, run_cli


@pytest.fixture
def new_app(tmp_path: Path) -> Path:
    result = run_cli("init", str(tmp_path / "shop"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "shop"


class Terminal:
    """A command on a pseudo-terminal: type lines, read until a text appears."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="dumb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anvil_dev", *args],
            cwd=cwd,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.seen = ""

    def read_until(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} from the shell; it printed:\n{self.seen}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    break
        found, self.seen = self.seen.split(text, 1)
        return found

    def line(self, text: str) -> str:
        os.write(self.master, (text + "\n").encode())
        return self.read_until(">>> ")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        os.close(self.master)


def test_shell_adds_a_row_calls_a_function_reads_the_row(new_app: Path) -> None:
    term = Terminal("shell", "--plain", cwd=new_app)
    try:
        banner = term.read_until(">>> ")
        assert "server functions: add, add_feedback" in banner
        term.line('row = app_tables.feedback.add_row(name="Ann", email="ann@example.org", feedback="typed")')
        out = term.line('add_feedback("Bob", "bob@example.org", "called")')
        assert "'Thanks, Bob!'" in out
        out = term.line('sorted(r["feedback"] for r in app_tables.feedback.search())')
        assert "['called', 'typed']" in out
        term.line('me = app_tables.users.add_row(email="ann@example.org", enabled=True)')
        term.line("anvil.users.force_login(me)")
        out = term.line('anvil.users.get_user()["email"]')
        assert "'ann@example.org'" in out
        os.write(term.master, b"exit()\n")
        assert term.proc.wait(15) == 0
    finally:
        term.close()
    # The shell works on the app's own data: the rows are there for `anvil-dev serve` too.
    result = run_cli("--app", str(new_app), "tables", "export", "feedback")
    assert "typed" in result.stdout and "called" in result.stdout, result.stdout + result.stderr


def test_functions_lists_names_files_and_lines(new_app: Path) -> None:
    (new_app / "server_code" / "Extra.py").write_text(
        "import anvil.server\n\n\n@anvil.server.background_task\ndef nightly(n):\n    return n\n\n\n"
        "@anvil.server.http_endpoint('/items/:id')\ndef item(id, **kw):\n    return id\n"
    )
    result = run_cli("--app", str(new_app), "functions")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    source = (new_app / "server_code" / "ServerModule1.py").read_text().splitlines()
    decorator = source.index("def add_feedback(name, email, feedback):")  # the line above it, 1-based
    assert source[decorator - 1].startswith("@anvil.server.callable")
    assert any(
        line.startswith("callable")
        and "add_feedback(name, email, feedback)" in line
        and line.endswith(f"server_code/ServerModule1.py:{decorator}")
        for line in lines
    ), result.stdout
    assert any(
        line.startswith("task") and "nightly(n)" in line and "server_code/Extra.py:4" in line for line in lines
    ), result.stdout
    assert any(
        line.startswith("http_endpoint")
        and "GET,POST /items/:id -> item()" in line
        and "server_code/Extra.py:9" in line
        for line in lines
    )


def test_unknown_function_gets_did_you_mean(new_app: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(new_app)
    result = run_cli("call", "--url", server.url, "add_feedbak", "a", "b", "c")
    assert result.returncode == 1
    assert (
        'No server function matching "add_feedbak" has been registered - did you mean "add_feedback"?' in result.stderr
    )
    result = run_cli("call", "--url", server.url, "Add", "1", "2")
    assert 'did you mean "add"?' in result.stderr


MISSPELT = """\
import datetime

import anvil.server
from anvil.tables import app_tables


@anvil.server.callable
def save(name: str) -> None:
    app_tables.feedback.add_row(name=name, emial="x@example.org", created=datetime.datetime.now())
"""


@pytest.mark.skipif(shutil.which("mypy", path=str(Path(sys.executable).parent)) is None, reason="mypy not installed")
def test_stubs_make_a_misspelt_column_a_mypy_error(new_app: Path) -> None:
    result = run_cli("--app", str(new_app), "stubs")
    assert result.returncode == 0, result.stderr
    assert (new_app / "typings" / "anvil" / "py.typed").is_file()
    module = new_app / "server_code" / "Orders.py"
    module.write_text(MISSPELT)
    mypy = [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", os.devnull, str(module)]
    env = dict(os.environ, MYPYPATH=str(new_app / "typings"))
    bad = subprocess.run(mypy, cwd=new_app, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1, bad.stdout
    assert 'Unexpected keyword argument "emial" for "add_row"' in bad.stdout
    assert 'did you mean "email"?' in bad.stdout
    assert bad.stdout.count("error:") == 1, bad.stdout  # the runtime's own files report nothing
    module.write_text(MISSPELT.replace("emial=", "email="))
    good = subprocess.run(mypy, cwd=new_app, env=env, capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stdout
    # A wrong type for a column is an error too.
    module.write_text(MISSPELT.replace('emial="x@example.org"', "email=42"))
    typed = subprocess.run(mypy, cwd=new_app, env=env, capture_output=True, text=True, timeout=300)
    assert typed.returncode == 1 and '"email"' in typed.stdout, typed.stdout
