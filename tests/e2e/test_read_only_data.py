"""A read-only `.anvil-dev/` under a running server: calls that write fail with a clear error,
nothing committed is lost, and service resumes when it is writable again.

As root, chmod stops no write, so the directory is made read-only with a bind mount of itself
(`mount --bind` + `remount,ro,bind`); a remount of the whole filesystem would be refused while
the server holds its database open for writing. A bind mount reaches only files opened after it,
which is every connection in fresh mode (each call is a new process) but not a persistent
worker's, opened before: fresh mode it is.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from anvil_dev.client import ServerError
from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, write_module

NOTES_MODULE = """
    import anvil.server
    from anvil.tables import app_tables

    @anvil.server.callable
    def add_note(name):
        app_tables.feedback.add_row(name=name, email="x@example.org", feedback="")
        return name

    @anvil.server.callable
    def notes():
        return sorted(r["name"] for r in app_tables.feedback.search())
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = scaffold(tmp_path / "ReadOnlyApp")
    write_module(app, "Notes", NOTES_MODULE)
    return app


@pytest.fixture
def make_read_only() -> Iterator[Callable[[Path], Callable[[], None]]]:
    mounted: list[Path] = []

    def make_read_only(directory: Path) -> Callable[[], None]:
        """Make `directory` read-only; returns what makes it writable again."""
        for argv in (
            ["mount", "--bind", str(directory), str(directory)],
            ["mount", "-o", "remount,ro,bind", str(directory)],
        ):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                if mounted:
                    _umount(mounted.pop())
                pytest.skip(f"cannot make a read-only bind mount here ({' '.join(argv)}): {done.stderr.strip()}")
            if argv[1] == "--bind":
                mounted.append(directory)
        return lambda: _umount(mounted.pop())

    yield make_read_only
    for directory in mounted:
        _umount(directory)


def _umount(directory: Path) -> None:
    subprocess.run(["umount", "-l", str(directory)], check=False)


def test_a_read_only_data_directory_fails_writes_clearly_loses_nothing_and_service_resumes(
    app: Path, make_read_only, server_factory: Callable[..., ServerProcess]
) -> None:
    srv = server_factory(app, "--fresh")
    c = srv.client()
    committed = [c.call("add_note", f"n{i}") for i in range(10)]
    state = app / ".anvil-dev"
    writable_again = make_read_only(state)
    mark = srv.mark()
    with pytest.raises(ServerError) as e:
        c.call("add_note", "late")
    assert e.value.type == "anvil.tables.TableError", e.value
    assert f"{state} is read-only" in e.value.message, e.value.message
    assert "Traceback" not in "\n".join(srv.lines[mark:])
    assert c.call("notes") == sorted(committed)  # reads go on
    writable_again()
    assert c.call("add_note", "after") == "after"
    assert c.call("notes") == sorted([*committed, "after"])  # every committed row, and not the refused one
