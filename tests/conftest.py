"""Fixtures: scaffolded apps, real `anvil-dev serve` subprocesses on free ports, clients, a CliRunner.

The plain helpers these use (and tests import) are in helpers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from anvil_dev import services
from anvil_dev.client import Connection
from anvil_dev.scaffold import scaffold

from helpers import PostgresServer, ServerProcess, postgres_bin


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A freshly scaffolded app (as `anvil-dev init` makes it)."""
    return scaffold(tmp_path / "TestApp")


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(app: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
        s = ServerProcess(app, *args, env=env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def server(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(app_dir)


@pytest.fixture
def client(server: ServerProcess) -> Connection:
    return server.client()


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the test session (Debian's `postgresql` package; `.ci/run`
    installs it). Skipped, with the reason, only where the package or the driver is absent."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql): the Postgres tests need initdb/pg_ctl")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'anvil-dev[postgres]'): the Postgres tests need it")
    server = PostgresServer(bindir)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.new_database()


# The Data Tables suite runs on both backends: `backend` is "sqlite" or "postgres" (a test that only
# SQLite can run parametrizes it with ["sqlite"] alone).
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(autouse=True)
def _services_of_no_app_after_each_test() -> Iterator[None]:
    """A test that opened the services in this process (on some app, on SQLite or Postgres) must
    not leave them to the next one: the host's state uses the process's open services if any."""
    yield
    services.forget()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a PostgreSQL server `postgres`, so the in-process tier
    (`make test-fast`) can leave them to `make test`."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        uses_server = {"postgres_server", "postgres_url"} & set(getattr(item, "fixturenames", ()))
        if uses_server or "postgres" in (params.get("backend"), params.get("module_database")):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def module_postgres_url(postgres_server: PostgresServer) -> str:
    """A database of the module's own on the session's PostgreSQL server (reset() empties it)."""
    return postgres_server.new_database()


@pytest.fixture
def backend_database(backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The empty database of this test's backend: None for SQLite (the app's own file), else the
    URL of the module's Postgres database, emptied, and set as ANVIL_DEV_DATABASE for this process
    and the programs it starts."""
    if backend == "sqlite":
        monkeypatch.delenv("ANVIL_DEV_DATABASE", raising=False)
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url: str = request.getfixturevalue("module_postgres_url")
    server.reset(url)
    monkeypatch.setenv("ANVIL_DEV_DATABASE", url)
    return url


@pytest.fixture(scope="module", params=BACKENDS)
def module_database(request: pytest.FixtureRequest) -> str | None:
    """For a module's shared server: None on SQLite, else a fresh Postgres database of its own."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()
