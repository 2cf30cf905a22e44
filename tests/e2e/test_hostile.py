"""Hostile input, races and runaway code against a real server (issue 18).

Each test here was written to fail before its fix: a lockout that bursts of concurrent wrong
passwords slipped past, internal errors escaping as non-Anvil 500s, and a client naming a module
for a worker to import. Every test ends with the server still serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from anvil_dev.client import ServerError

from helpers import ServerProcess, write_module

USERS_MODULE = """
    import anvil.server
    import anvil.users

    @anvil.server.callable
    def current():
        user = anvil.users.get_user()
        return user["email"] if user is not None else None
"""

BAD_LOGIN = "Incorrect email address or password"


@pytest.fixture(params=["fresh", "persistent"])
def mode_flag(request: pytest.FixtureRequest) -> str:
    return "--fresh" if request.param == "fresh" else "--keep-server-running"


def burst(n: int, attempt: Callable[[int], Any]) -> list[Any]:
    """Run attempt(0..n-1) in n threads released at once; each result or the exception it raised."""
    gate = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        gate.wait()
        try:
            results[i] = attempt(i)
        except Exception as e:  # the refusals are what is being counted
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def checked_wrong(results: list[Any]) -> int:
    """How many attempts had their password checked and found wrong (not refused as locked)."""
    return sum(1 for r in results if isinstance(r, ServerError) and r.message == BAD_LOGIN)


def locked_refusals(results: list[Any]) -> int:
    return sum(1 for r in results if isinstance(r, ServerError)
               and r.type == "anvil.users.TooManyPasswordFailures" and r.message != BAD_LOGIN)


@pytest.fixture
def users_server(app_dir: Path, mode_flag: str, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    write_module(app_dir, "Users", USERS_MODULE)
    config = yaml.safe_load((app_dir / "anvil.yaml").read_text())
    for svc in config["services"]:
        if svc["source"].endswith("/users.yml"):
            svc["server_config"]["max_password_failures"] = 10
    (app_dir / "anvil.yaml").write_text(yaml.safe_dump(config))
    return server_factory(app_dir, mode_flag, "--workers", "4") if mode_flag != "--fresh" \
        else server_factory(app_dir, mode_flag)


def login(srv: ServerProcess, password: str) -> Any:
    return srv.client().login("wolf@example.org", password)


# ---------------------------------------------------------------------------------------------------- lockout


def test_concurrent_wrong_passwords_never_pass_the_limit(users_server: ServerProcess) -> None:
    users_server.client().signup("wolf@example.org", "right password")
    results = burst(40, lambda i: login(users_server, f"wrong {i}"))
    assert all(isinstance(r, ServerError) for r in results), results
    assert checked_wrong(results) <= 10, f"{checked_wrong(results)} of 40 wrong passwords were checked (limit 10)"
    assert checked_wrong(results) + locked_refusals(results) + 1 >= 40  # the 10th says TooMany with BAD_LOGIN
    with pytest.raises(ServerError) as e:
        login(users_server, "right password")
    assert e.value.type == "anvil.users.TooManyPasswordFailures"
    assert users_server.client().call("current") is None


def test_a_right_password_inside_a_burst_past_the_limit_is_refused(users_server: ServerProcess) -> None:
    users_server.client().signup("wolf@example.org", "right password")
    c = users_server.client()
    results = burst(40, lambda i: (c if i == 39 else users_server.client()).login(
        "wolf@example.org", "right password" if i == 39 else f"wrong {i}"))
    assert isinstance(results[39], ServerError), "the right password logged in during a burst of 39 wrong ones"
    assert results[39].type == "anvil.users.TooManyPasswordFailures"
    assert c.call("current") is None
    assert checked_wrong(results) <= 10
