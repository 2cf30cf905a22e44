"""Fixtures: scaffolded apps, real `anvil-dev serve` subprocesses on free ports, clients, a CliRunner.

The plain helpers these use (and tests import) are in helpers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from anvil_dev.client import Connection
from anvil_dev.scaffold import scaffold

from helpers import ServerProcess


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
