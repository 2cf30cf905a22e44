"""Transactions conflict as Anvil's do, through a real `anvil-dev serve` (fresh mode).

Anvil's transactions are SERIALIZABLE: a transaction that writes after another one changed the data
fails with TransactionConflict('Another transaction has changed this data; aborting')
(server/core/src/anvil/runtime/tables/util.clj:80-83), and `in_transaction` retries it up to 18
times with back-off (services/anvil/tables/__init__.py:201-240). Here a transaction is a deferred
SQLite transaction over a WAL snapshot: readers never wait for one another, and the upgrade to a
writer is where a conflict shows. The interleavings are forced with barrier files, not timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from anvil_dev.client import Connection
from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, backend_env, wait_until, write_module

MODULE = '''
import os
import time

import anvil.server
import anvil.tables
from anvil.tables import app_tables

_attempts = []


def _barrier(path):
    deadline = time.time() + 30
    while not os.path.exists(path):
        if time.time() > deadline:
            raise RuntimeError("barrier never opened: " + path)
        time.sleep(0.01)


def _touch(path):
    open(path, "w").close()


@anvil.server.callable
def reset():
    app_tables.counters.delete_all_rows()
    app_tables.counters.add_row(name="hits", value=0)


@anvil.server.callable
def value():
    return app_tables.counters.get(name="hits")["value"]


def _step(tag, where):
    """Read the counter in a transaction, say so, wait to be let go, then write it."""
    try:
        with anvil.tables.Transaction():
            row = app_tables.counters.get(name="hits")
            v = row["value"]
            _touch(os.path.join(where, tag + ".read"))
            _barrier(os.path.join(where, tag + ".go"))
            row["value"] = v + 1
        return ["committed", v + 1]
    except anvil.tables.TransactionConflict as e:
        return ["conflict", type(e).__name__, str(e), isinstance(e, anvil.server.AnvilWrappedError)]


@anvil.server.callable
def step(tag, where):
    return _step(tag, where)


@anvil.server.background_task
def step_task(tag, where):
    result = _step(tag, where)
    with open(os.path.join(where, tag + ".result"), "w") as f:
        f.write(repr(result))


@anvil.server.callable
def launch_step(tag, where):
    anvil.server.launch_background_task("step_task", tag, where)


@anvil.server.callable
@anvil.tables.in_transaction
def retrying_step(tag, where):
    """The first attempt waits at the barrier (and conflicts); the retries go straight through."""
    _attempts.append(1)
    row = app_tables.counters.get(name="hits")
    v = row["value"]
    if len(_attempts) == 1:
        _touch(os.path.join(where, tag + ".read"))
        _barrier(os.path.join(where, tag + ".go"))
    row["value"] = v + 1
    return len(_attempts)


@anvil.server.callable
@anvil.tables.in_transaction
def increment():
    row = app_tables.counters.get(name="hits")
    row["value"] = row["value"] + 1


@anvil.server.callable
def read_only(tag, other, where):
    """Read in a transaction and wait, inside it, until the other reader has read too."""
    with anvil.tables.Transaction():
        v = app_tables.counters.get(name="hits")["value"]
        _touch(os.path.join(where, tag + ".read"))
        _barrier(os.path.join(where, other + ".read"))
        return v


@anvil.server.callable
def write_and_hold(where):
    with anvil.tables.Transaction():
        app_tables.counters.get(name="hits")["value"] = 100
        _touch(os.path.join(where, "hold.written"))
        _barrier(os.path.join(where, "hold.go"))
    return 100


@anvil.server.callable
def nested():
    @anvil.tables.in_transaction
    def inner():
        return "joined"

    with anvil.tables.Transaction():
        try:
            return inner()
        except anvil.tables.TableError as e:
            return [type(e).__name__, str(e)]
'''

CONFLICT = ["conflict", "TransactionConflict", "Another transaction has changed this data; aborting", True]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, module_database: str | None) -> Iterator[ServerProcess]:
    app = scaffold(tmp_path_factory.mktemp("conflicts") / "ConflictApp")
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"]["counters"] = {
        "title": "Counters",
        "client": "none",
        "server": "full",
        "columns": [{"name": "name", "type": "string"}, {"name": "value", "type": "number"}],
    }
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_module(app, "Conflicts", MODULE)
    s = ServerProcess(app, env=backend_env(module_database))
    yield s
    s.stop()


@pytest.fixture
def c(server: ServerProcess) -> Connection:
    client = server.client()
    client.call("reset")
    return client


@pytest.fixture
def where(tmp_path: Path) -> str:
    return str(tmp_path)


def _in_thread(c: Connection, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(c.call(*args)))
    t.start()
    return t, out


def _open(where: str, name: str) -> None:
    (Path(where) / name).touch()


def _wait_file(where: str, name: str) -> None:
    wait_until(lambda: (Path(where) / name).exists(), what=name)


def test_two_fresh_calls_in_conflicting_transactions(c: Connection, where: str) -> None:
    a, a_out = _in_thread(c, "step", "a", where)
    _wait_file(where, "a.read")
    b, b_out = _in_thread(c, "step", "b", where)
    _wait_file(where, "b.read")  # both have read value 0 in their own transaction
    _open(where, "a.go")
    a.join(30)
    _open(where, "b.go")
    b.join(30)
    assert a_out == [["committed", 1]]
    assert b_out == [CONFLICT]  # b read data that a changed, so b's write is refused
    assert c.call("value") == 1


def test_a_background_task_conflicts_with_a_call(c: Connection, where: str) -> None:
    c.call("launch_step", "task", where)
    _wait_file(where, "task.read")
    call, call_out = _in_thread(c, "step", "call", where)
    _wait_file(where, "call.read")
    _open(where, "call.go")
    call.join(30)
    _open(where, "task.go")
    _wait_file(where, "task.result")
    assert call_out == [["committed", 1]]
    assert (Path(where) / "task.result").read_text() == repr(CONFLICT)
    assert c.call("value") == 1


def test_in_transaction_retries_until_it_wins(c: Connection, where: str) -> None:
    retrying, out = _in_thread(c, "retrying_step", "r", where)
    _wait_file(where, "r.read")
    _open(where, "plain.go")
    assert c.call("step", "plain", where) == ["committed", 1]  # commits while the first attempt waits
    _open(where, "r.go")
    retrying.join(30)
    assert out and out[0] >= 2  # the first attempt conflicted, a retry committed
    assert c.call("value") == 2  # both increments count, neither was lost


def test_twenty_concurrent_transactional_increments_count_exactly_twenty(c: Connection) -> None:
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda _: c.call("increment"), range(20)))
    assert c.call("value") == 20


def test_read_only_transactions_never_wait_for_each_other(c: Connection, where: str) -> None:
    # Each reader waits, inside its transaction, for the other to have read: if either blocked the
    # other this would never finish (the barrier gives up after 30 s and the call fails).
    a, a_out = _in_thread(c, "read_only", "x", "y", where)
    b, b_out = _in_thread(c, "read_only", "y", "x", where)
    a.join(60)
    b.join(60)
    assert a_out == [0] and b_out == [0]


def test_readers_do_not_wait_for_a_writer_holding_the_lock(c: Connection, where: str) -> None:
    writer, w_out = _in_thread(c, "write_and_hold", where)
    _wait_file(where, "hold.written")  # the writer has written (it holds SQLite's write lock) and waits
    a, a_out = _in_thread(c, "read_only", "p", "q", where)
    b, b_out = _in_thread(c, "read_only", "q", "p", where)
    a.join(60)
    b.join(60)
    assert a_out == [0] and b_out == [0]  # they read the last committed value, without waiting
    _open(where, "hold.go")
    writer.join(30)
    assert w_out == [100] and c.call("value") == 100


def test_a_nested_in_transaction_is_refused_as_on_anvil(c: Connection) -> None:
    # server/core/src/anvil/runtime/tables/util.clj:484-485: no joining an open transaction.
    assert c.call("nested") == ["TableError", "You already have a transaction open here"]
