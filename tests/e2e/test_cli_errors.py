"""Mistakes a new user makes, through the real `anvil-dev` command: each gives one line saying what, where and
what to do, a non-zero exit, and never a Python traceback from anvil-dev's internals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from anvil_dev.client import ConnectionLost, connect
from anvil_dev.scaffold import scaffold

from helpers import ROOT, ServerProcess, free_port, run_cli, wait_until, write_module

TRACEBACK = "Traceback (most recent call last)"


def one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The single line the command printed on stderr for its error; asserts the exit code and no traceback."""
    assert TRACEBACK not in result.stderr + result.stdout, result.stderr
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


BROKEN_YAML = {
    "invalid YAML": ("name: App\nservices: [\n", "anvil.yaml line 3, column 1 is not valid YAML"),
    "a top-level list": ("- name: App\n- services: []\n", "anvil.yaml must be a mapping of keys"),
    "db_schema: 5": (
        "name: App\ndb_schema: 5\n",
        "anvil.yaml line 2: db_schema is 5 (a number), but must be a mapping of tables or a list",
    ),
}
COMMANDS = [["serve", "--port", "0"], ["tables"], ["users", "list"], ["tasks"], ["secrets"]]


@pytest.mark.parametrize("broken", list(BROKEN_YAML))
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_broken_anvil_yaml(app_dir: Path, broken: str, command: list[str]) -> None:
    text, expected = BROKEN_YAML[broken]
    (app_dir / "anvil.yaml").write_text(text)
    line = one_error_line(run_cli("--app", str(app_dir), *command))
    assert line.startswith("Error: ") and str(app_dir / "anvil.yaml") in line and expected in line, line
    assert "fix" in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("127.0.0.1:3030", "'127.0.0.1:3030' is not a URL - give the scheme too: http://127.0.0.1:3030"),
        ("ftp://127.0.0.1:3030", "'ftp://127.0.0.1:3030' is not an http:// or https:// URL"),
        ("http://127.0.0.1:99999", "'http://127.0.0.1:99999' has no valid port (give 1-65535)"),
    ],
)
@pytest.mark.parametrize("how", ["--url", "ANVIL_DEV_URL"])
def test_malformed_url_for_call(tmp_path: Path, url: str, expected: str, how: str) -> None:
    argv, env = (["--url", url], {}) if how == "--url" else ([], {"ANVIL_DEV_URL": url})
    line = one_error_line(run_cli("call", *argv, "add", "1", "2", env=env, cwd=tmp_path), code=2)
    assert line.startswith(f"Error: --url / ANVIL_DEV_URL: {expected}"), line

    as_json = run_cli("call", "--json", *argv, "add", "1", "2", env=env, cwd=tmp_path)
    assert as_json.returncode == 2 and TRACEBACK not in as_json.stderr
    error = json.loads(as_json.stdout)["error"]
    assert error["type"] == "UsageError" and expected in error["message"]


def test_json_errors_are_json(server: ServerProcess, tmp_path: Path) -> None:
    failed = run_cli("call", "--json", "--url", server.url, "add_feedback", "", "", "")
    assert failed.returncode == 1 and TRACEBACK not in failed.stdout + failed.stderr
    error = json.loads(failed.stdout)["error"]
    assert error["type"] == "ValueError" and error["message"] == "Please give your name and email"
    assert error["trace"] and "ServerModule1" in error["trace"][-1][0], error["trace"]

    nobody = f"http://127.0.0.1:{free_port()}"
    gone = run_cli("call", "--json", "--url", nobody, "add", "1", "2")
    assert gone.returncode == 2
    assert json.loads(gone.stdout) == {
        "error": {
            "type": "ConnectionFailed",
            "trace": [],
            "message": f"no anvil-dev server at {nobody} - start one with `anvil-dev serve`",
        }
    }


def test_tables_export_of_no_such_table(app_dir: Path) -> None:
    line = one_error_line(run_cli("--app", str(app_dir), "tables", "export", "nosuch"))
    assert line == (
        "Error: No table 'nosuch' in this app (tables: feedback, users) - `anvil-dev tables` lists "
        "them with their columns"
    )


@pytest.fixture
def busy_port() -> Callable[[], int]:
    held: list[socket.socket] = []

    def take() -> int:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        held.append(s)
        return int(s.getsockname()[1])

    yield take
    for s in held:
        s.close()


@pytest.mark.parametrize("how", ["--port", "ANVIL_DEV_PORT"])
def test_port_in_use(app_dir: Path, busy_port: Callable[[], int], how: str) -> None:
    port = busy_port()
    argv, env = (["--port", str(port)], {}) if how == "--port" else ([], {"ANVIL_DEV_PORT": str(port)})
    line = one_error_line(run_cli("--app", str(app_dir), "serve", *argv, env=env))
    assert line == (
        f"Error: port {port} is already in use on 127.0.0.1 (another anvil-dev serve, or another "
        "program) - choose another with --port N or ANVIL_DEV_PORT=N (`make demo ANVIL_DEV_PORT=N` "
        "for the demo)"
    )


def test_port_in_use_under_make_demo(tmp_path: Path, busy_port: Callable[[], int]) -> None:
    """`make demo` as the README gives it, with this Python's venv as the Makefile's (nothing is installed)."""
    venv = Path(sys.executable).parent.parent
    if shutil.which("make") is None or not (venv / "bin" / "anvil-dev").exists():
        pytest.skip("needs make and a venv with anvil-dev installed (as `make test` makes it)")
    port = busy_port()
    stamp = venv / ".installed-runtime"
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(ROOT / "Makefile"),
            "-C",
            str(tmp_path),
            "-o",
            str(stamp),
            "demo",
            f"VENV={venv}",
            f"ANVIL_DEV_PORT={port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode != 0 and TRACEBACK not in result.stdout + result.stderr, result.stderr
    assert (
        f"Error: port {port} is already in use on 127.0.0.1 (another anvil-dev serve, or another program) - "
        "choose another with --port N or ANVIL_DEV_PORT=N (`make demo ANVIL_DEV_PORT=N` for the demo)"
        in result.stderr.splitlines()
    ), result.stderr


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("192.0.2.1", "192.0.2.1 is not an address of this machine"),  # TEST-NET-1: never a local address
        ("no-such-host.invalid", "'no-such-host.invalid' is not an address or a host name this machine can find"),
    ],
)
def test_host_that_cannot_be_bound(app_dir: Path, host: str, expected: str) -> None:
    line = one_error_line(run_cli("--app", str(app_dir), "serve", "--host", host, "--port", str(free_port())))
    assert line.startswith("Error: cannot listen on ") and expected in line, line
    assert "give --host (or ANVIL_DEV_HOST) an address of this machine" in line


def test_serve_app_after_the_command(app_dir: Path, tmp_path: Path) -> None:
    """`anvil-dev serve --app DIR`, as users type it, serves DIR (from a directory that is no app)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "anvil_dev", "serve", "--app", str(app_dir), "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Serving on" in line:
                break
        assert connect(f"http://127.0.0.1:{port}").call("add", 2, 3) == 5
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def test_second_serve_on_one_app_refuses(
    server: ServerProcess, app_dir: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    line = one_error_line(run_cli("--app", str(app_dir), "serve", "--port", str(free_port())))
    assert line == (
        f"Error: another anvil-dev serve (pid {server.proc.pid}, {server.url}) is already serving "
        f"{app_dir} - stop it first, or call that one (two servers on one app would run its scheduled "
        "tasks twice)"
    )
    # A server killed outright leaves its lock file behind; the lock itself goes with the process.
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    assert (app_dir / ".anvil-dev" / "serve.lock").exists()
    again = server_factory(app_dir)
    assert again.client().call("add", 1, 1) == 2


def test_call_cut_off_by_the_server_stopping(
    app_dir: Path, server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    write_module(
        app_dir,
        "Slow",
        f"""
        import pathlib, time
        import anvil.server

        @anvil.server.callable
        def slow():
            pathlib.Path({str(marker)!r}).write_text("x")
            time.sleep(60)
    """,
    )
    server = server_factory(app_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "anvil_dev", "call", "--url", server.url, "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    wait_until(marker.exists, what="the call to start")
    os.killpg(server.proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    line = one_error_line(result, code=2)
    assert line == (
        f"the server at {server.url} closed the connection before it answered (did "
        "`anvil-dev serve` stop?) - the call may have run in part; start the server again and retry"
    )


def test_client_tells_a_lost_connection_from_no_server(
    app_dir: Path, server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    write_module(
        app_dir,
        "Slow",
        f"""
        import pathlib, time
        import anvil.server

        @anvil.server.callable
        def slow():
            pathlib.Path({str(marker)!r}).write_text("x")
            time.sleep(60)
    """,
    )
    server = server_factory(app_dir)
    conn = server.client()
    import threading

    caught: list[BaseException] = []

    def call() -> None:
        try:
            conn.call("slow")
        except BaseException as e:  # noqa: BLE001 - the test looks at what it was
            caught.append(e)

    t = threading.Thread(target=call)
    t.start()
    wait_until(marker.exists, what="the call to start")
    os.killpg(server.proc.pid, signal.SIGKILL)
    t.join(30)
    assert len(caught) == 1 and isinstance(caught[0], ConnectionLost), caught


def test_init_prints_its_next_step_quoted(tmp_path: Path) -> None:
    result = run_cli("init", "my app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "Next: cd 'my app' && anvil-dev serve"
    plain = run_cli("init", "plain", cwd=tmp_path)
    assert plain.stdout.splitlines()[-1] == "Next: cd plain && anvil-dev serve"


def test_users_list_columns_are_aligned(app_dir: Path) -> None:
    for email in ("a@x.org", "someone.with.a.long.address@example.org"):
        assert run_cli("--app", str(app_dir), "users", "add", email).returncode == 0
    result = run_cli("--app", str(app_dir), "users", "add", "admin@x.org", "--password", "long enough pw", "--admin")
    assert result.returncode == 0, result.stderr
    lines = run_cli("--app", str(app_dir), "users", "list").stdout.splitlines()
    assert lines[0].split() == ["ID", "EMAIL", "FLAGS", "LAST", "LOGIN"]
    # Every column starts at the same offset on every line.
    for header in ("EMAIL", "FLAGS", "LAST LOGIN"):
        col = lines[0].index(header)
        assert all(line[col - 1] == " " and line[col] != " " for line in lines[1:]), (header, lines)
    assert "admin@x.org" in lines[3] and "enabled, admin" in lines[3]


def test_scaffolded_app_still_serves(tmp_path: Path, server_factory: Callable[..., ServerProcess]) -> None:
    """The checks on anvil.yaml accept what `init` writes and Anvil's own shapes (db_schema as a list)."""
    app = scaffold(tmp_path / "ListForm")
    text = (app / "anvil.yaml").read_text().split("db_schema:")[0]
    (app / "anvil.yaml").write_text(
        text + "db_schema:\n- name: Feedback\n  python_name: feedback\n  columns: [{name: name, type: string}]\n"
    )
    assert server_factory(app).client().call("add", 1, 2) == 3
