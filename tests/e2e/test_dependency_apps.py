"""Dependency apps anvil-dev cannot find, through a real server: the banner says what is missing
and how to point at it, and an import of the missing app's package names the file that did it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from anvil_dev.client import ServerError

from helpers import write_module

LABS = {
    "dep_id": "dep_labs123",
    "version": {"dev": False},
    "resolution_hints": {"app_id": "ABCDEF123456", "name": "Anvil Labs", "package_name": "anvil_labs"},
}
BARE = {"dep_id": "dep_bare456"}


def add_dependencies(app: Path, *deps: dict[str, object]) -> None:
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["dependencies"] = list(deps)
    (app / "anvil.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture
def app_missing_labs(app_dir: Path) -> Path:
    add_dependencies(app_dir, LABS, BARE)
    # Outer is imported first and imports Inner; Inner's import of the missing package fails.
    write_module(
        app_dir,
        "Outer",
        """
        import anvil.server
        from . import Inner

        @anvil.server.callable
        def outer():
            return "outer"
    """,
    )
    write_module(
        app_dir,
        "Inner",
        """
        import anvil.server
        import anvil_labs.utils
    """,
    )
    return app_dir


@pytest.mark.parametrize("flag", ["--fresh", "--keep-server-running"])
def test_a_missing_dependency_app_is_named_as_one(app_missing_labs: Path, server_factory, flag: str) -> None:
    srv = server_factory(app_missing_labs, flag)
    out = srv.output
    assert "dependency Anvil Labs (dep_labs123) not found (a dependency app of anvil.yaml, not a pip package)" in out
    assert f"--dep dep_labs123=PATH or put it beside the app as {app_missing_labs.parent / 'anvil_labs'}" in out
    assert "dependency app dep_bare456 not found" in out
    assert "dependency dependency" not in out
    assert "pip install anvil_labs" not in out

    with pytest.raises(ServerError) as e:
        srv.client().call("outer")
    assert e.value.type == "ModuleNotFoundError"
    message = e.value.message
    assert message.startswith(
        "No module named 'anvil_labs' (imported by server_code/Inner.py line 3): "
        "anvil_labs is the package of the dependency app Anvil Labs (dep_labs123)"
    ), message
    assert "--dep dep_labs123=PATH" in message and "pip install" not in message


def test_a_missing_pip_package_names_the_file_that_imported_it(app_dir: Path, server_factory) -> None:
    write_module(
        app_dir,
        "Aaa",
        """
        import anvil.server
        from . import Zzz
    """,
    )
    write_module(
        app_dir,
        "Zzz",
        """
        import anvil.server

        import surely_not_installed_pkg
    """,
    )
    srv = server_factory(app_dir)
    with pytest.raises(ServerError) as e:
        srv.client().call("add", 1, 2)
    assert "(imported by server_code/Zzz.py line 4)" in e.value.message
    assert "pip install surely_not_installed_pkg" in e.value.message
