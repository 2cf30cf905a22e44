"""AppDir's view of anvil.yaml's dependency apps: which are found, and the line for each missing one."""

from __future__ import annotations

from pathlib import Path

import yaml

from anvil_dev.appdir import AppDir
from anvil_dev.scaffold import scaffold


def _app(tmp_path: Path, deps: list[dict[str, object]]) -> AppDir:
    path = scaffold(tmp_path / "Main")
    config = yaml.safe_load((path / "anvil.yaml").read_text())
    config["dependencies"] = deps
    (path / "anvil.yaml").write_text(yaml.safe_dump(config))
    return AppDir(path)


def test_missing_dependencies_say_what_they_are_and_how_to_point_at_them(tmp_path: Path) -> None:
    app = _app(
        tmp_path,
        [
            {"dep_id": "dep_a", "resolution_hints": {"name": "Anvil Labs", "package_name": "anvil_labs"}},
            {"dep_id": "dep_b"},
            {"app_id": "OLDSTYLE", "package_name": "old_pkg"},
        ],
    )
    found, missing = app.dependencies()
    assert found == []
    assert missing == [
        "dependency Anvil Labs (dep_a) not found (a dependency app of anvil.yaml, not a pip package) - give its "
        f"directory with --dep dep_a=PATH or put it beside the app as {tmp_path.resolve() / 'anvil_labs'}",
        "dependency app dep_b not found (a dependency app of anvil.yaml, not a pip package) - give its "
        "directory with --dep dep_b=PATH",
        "dependency old_pkg (OLDSTYLE) not found (a dependency app of anvil.yaml, not a pip package) - give its "
        f"directory with --dep OLDSTYLE=PATH or put it beside the app as {tmp_path.resolve() / 'old_pkg'}",
    ]


def test_a_dependency_is_found_by_dep_or_beside_the_app(tmp_path: Path) -> None:
    app = _app(
        tmp_path,
        [
            {"dep_id": "dep_a", "resolution_hints": {"package_name": "labs"}},
            {"dep_id": "dep_b", "resolution_hints": {"package_name": "elsewhere"}},
        ],
    )
    beside = scaffold(tmp_path / "labs")
    given = scaffold(tmp_path / "far" / "Other")
    found, missing = app.dependencies({"dep_b": str(given)})
    assert [d.path for d in found] == [beside.resolve(), given.resolve()] and missing == []
    assert [d["package"] for d in app.declared_dependencies()] == ["labs", "elsewhere"]
