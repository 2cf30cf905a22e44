"""Engine edge cases the adversarial tests found: printed output, crashes during a replacement's
import, and processes that server code forks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_adversarial import orphans

from anvil_dev.client import ServerError
from anvil_dev.scaffold import scaffold

from helpers import write_module

MODULE = """
    import os, sys, time
    import anvil.server

    time.sleep(float(open(os.environ["SLOW_IMPORT_FILE"]).read() or 0))

    @anvil.server.callable
    def chatty(mb):
        line = "y" * 1023 + "\\n"
        for _ in range(mb * 1024):
            sys.stdout.write(line)
        return "done"

    @anvil.server.callable
    def fork_and_return():
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        return pid

    @anvil.server.callable
    def fork_then_die():
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        os._exit(7)

    @anvil.server.callable
    def die():
        os._exit(7)

    @anvil.server.callable
    def pid():
        return os.getpid()
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = scaffold(tmp_path / "EngApp")
    write_module(app, "Eng", MODULE)
    (tmp_path / "slow").write_text("0")
    return app


def env(app: Path) -> dict[str, str]:
    return {"SLOW_IMPORT_FILE": str(app.parent / "slow")}


@pytest.mark.parametrize("flag", ["--fresh", "--keep-server-running"])
def test_printed_output_does_not_count_as_returned_data(app, server_factory, flag) -> None:
    srv = server_factory(app, flag, env=env(app))
    c = srv.client()
    assert c.call("chatty", 5) == "done"
    assert len(c.last_output) <= 4 << 20  # the caller gets a bounded amount of output, not 5 MB
    assert "more characters of output are in the serve terminal" in c.last_output


def test_persistent_call_after_a_crash_still_times_out(app, server_factory) -> None:
    srv = server_factory(app, "--keep-server-running", "--timeout", "1", env=env(app))
    c = srv.client()
    (app.parent / "slow").write_text("20")
    with pytest.raises(ServerError):
        c.call("die")
    start = time.monotonic()
    try:
        c.call("pid")
    except ServerError as e:
        assert e.type == "anvil.server.TimeoutError"
    assert time.monotonic() - start < 10  # at its 1 s timeout, not after the replacement's 20 s import


@pytest.mark.parametrize("flag", ["--fresh", "--keep-server-running"])
def test_a_process_forked_by_server_code_does_not_outlive_the_call(app, server_factory, flag) -> None:
    srv = server_factory(app, flag, env=env(app))
    c = srv.client()
    c.call("fork_and_return")
    time.sleep(0.5)
    assert not orphans(srv)


@pytest.mark.parametrize("flag", ["--fresh", "--keep-server-running"])
def test_a_crash_after_a_fork_is_reported_at_once(app, server_factory, flag) -> None:
    srv = server_factory(app, flag, "--timeout", "3", env=env(app))
    c = srv.client()
    if flag == "--keep-server-running":
        c.call("fork_and_return")  # the grandchild holds the worker's socket
        fn = "die"
    else:
        fn = "fork_then_die"
    start = time.monotonic()
    with pytest.raises(ServerError) as e:
        c.call(fn)
    assert e.value.type == "anvil.server.ExecutionTerminatedError", e.value
    assert time.monotonic() - start < 2


FIDELITY = """
    import datetime
    import random
    import time

    import anvil.server
    from anvil.tables import app_tables

    RNG = random.Random()
    SEEDED = random.Random(42)
    FEEDBACK = app_tables.feedback

    @anvil.server.callable
    def draws():
        return [RNG.random(), random.random(), SEEDED.random()]

    @anvil.server.callable
    def zone():
        return [time.strftime("%Z"), datetime.datetime.now().astimezone().utcoffset().total_seconds()]
"""

QUERY_AT_IMPORT = """
    import anvil.server
    from anvil.tables import app_tables

    COUNT_AT_IMPORT = len(app_tables.feedback.search())

    @anvil.server.callable
    def count_at_import():
        return COUNT_AT_IMPORT
"""


def test_fresh_calls_behave_as_if_each_imported_the_app(app_dir, server_factory) -> None:
    write_module(app_dir, "Fidelity", FIDELITY)
    srv = server_factory(app_dir)
    c = srv.client()
    first, second = c.call("draws"), c.call("draws")
    assert first[0] != second[0] and first[1] != second[1]  # unseeded generators differ per call
    assert first[2] == second[2]  # a generator seeded on purpose does not
    assert c.call("zone") == ["UTC", 0.0]  # Anvil's servers run in UTC


def test_a_query_at_import_time_sees_the_current_data(app_dir, server_factory) -> None:
    write_module(app_dir, "AtImport", QUERY_AT_IMPORT)
    srv = server_factory(app_dir)
    c = srv.client()
    before = c.call("count_at_import")
    c.call("add_feedback", "Ann", "ann@example.org", "hi")
    assert c.call("count_at_import") == before + 1


def test_a_task_launched_inside_a_transaction_does_not_wait_for_its_lock(app_dir, server_factory) -> None:
    write_module(
        app_dir,
        "TxnTask",
        """
        import anvil.server
        import anvil.tables
        from anvil.tables import app_tables

        @anvil.server.background_task
        def noted(n):
            return n

        @anvil.server.callable
        @anvil.tables.in_transaction
        def add_and_launch():
            app_tables.feedback.add_row(name="txn", email="t@example.org", feedback="x")
            return anvil.server.launch_background_task("noted", 5).get_id()
    """,
    )
    srv = server_factory(app_dir, "--timeout", "10")
    start = time.monotonic()
    task_id = srv.client().call("add_and_launch")
    assert isinstance(task_id, str) and time.monotonic() - start < 5
