"""The page's module bundle: which imports count, the trimmed stdlib, and what the bundle holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anvil_dev import clientbundle
from anvil_dev.appdir import AppDir
from anvil_dev.clientcode import ClientCode, brython_dir
from anvil_dev.scaffold import scaffold

LAZY = """
import a
from b import c
from . import sib
class K:
    import d
def f():
    import lazy
if TYPE_CHECKING:
    import typing_only
"""


def test_import_time_imports_leave_out_function_bodies_and_type_checking() -> None:
    found = clientbundle.imports_of(LAZY, "pkg.mod", False, import_time_only=True)
    assert found == {"a", "b", "b.c", "pkg", "pkg.sib", "d"}
    everything = clientbundle.imports_of(LAZY, "pkg.mod", False, import_time_only=False)
    assert "lazy" in everything and "typing_only" not in everything


def test_source_cpython_cannot_parse_is_scanned_by_lines() -> None:
    source = "import a, b as bee\nfrom .x import y\ntype_t = t'{a}'\ndef f():\n    import lazy\nimport c\n"
    assert clientbundle.imports_of(source, "p.m", False, import_time_only=True) == {"a", "b", "p.x", "p.x.y", "c"}


def test_closure_follows_a_roots_functions_and_star_imports_only() -> None:
    stdlib = {
        "datetime": [".py", "try:\n from _pydt import *\nexcept ImportError:\n pass\n", []],
        "_pydt": [".py", "import time\ndef strptime():\n    import _strptime\n", []],
        "_strptime": [".py", "import calendar\n", []],
        "calendar": [".py", "def f():\n    import huge\n", []],
        "huge": [".py", "", []],
        "time": [".js", "", []],
    }
    assert clientbundle.stdlib_closure(stdlib, ["datetime"]) == {"datetime", "_pydt", "time", "_strptime", "calendar"}


def test_a_group_timestamp_changes_with_its_content_only() -> None:
    one = {"m": [".py", "x = 1", []]}
    script = clientbundle.script([one, {"n": [".py", "y = 2", []]}]).decode()
    assert script.count("__BRYTHON__.update_VFS(") == 2
    assert clientbundle.group_timestamp(one) == clientbundle.group_timestamp({"m": [".py", "x = 1", []]})
    assert clientbundle.group_timestamp(one) != clientbundle.group_timestamp({"m": [".py", "x = 2", []]})


def _groups(script: bytes) -> list[dict[str, list]]:
    parts = script.decode().split("__BRYTHON__.update_VFS(")[1:]
    return [json.loads(p.rstrip().rstrip(";").rstrip(")")) for p in parts]


@pytest.mark.skipif(brython_dir() is None, reason="brython is not installed")
def test_the_bundle_holds_the_apps_modules_designers_and_a_trimmed_stdlib(tmp_path: Path) -> None:
    app = scaffold(tmp_path / "Shop")
    bundle = ClientCode(AppDir(app)).bundle()
    assert bundle is not None
    std, runtime, mine = _groups(bundle.script)
    assert "Shop.Form1" in mine and mine["Shop.Form1"][3] == 1
    assert "Form1Template" in mine["Shop.Form1._anvil_designer"][1]
    assert "anvil._wire" in runtime and "anvil._components" in runtime and runtime["anvil._components"][3] == 1
    assert {"anvil._components.base", "anvil._components.inputs", "anvil._components.repeating"} <= set(runtime)
    assert "datetime" in std and "_strptime" in std  # wire parses dates with strptime
    assert "typing" not in std and "json" not in std and "argparse" not in std
    assert len(bundle.script) < 1_500_000  # brython_stdlib.js is 5 MB
    (app / "client_code" / "Form1" / "__init__.py").write_text("import random\nx = 1\n", encoding="utf-8")
    again = ClientCode(AppDir(app)).bundle()
    assert again is not None and again.etag != bundle.etag
    assert "random" in _groups(again.script)[0]


@pytest.mark.skipif(brython_dir() is None, reason="brython is not installed")
def test_the_bundle_holds_the_plotly_shim_and_the_page_never_names_plotly_js(tmp_path: Path) -> None:
    app = scaffold(tmp_path / "Charts")
    template = app / "client_code" / "Form1" / "form_template.yaml"
    template.write_text(template.read_text() + "- {type: Plot, name: plot_1, layout_properties: {}}\n")
    code = ClientCode(AppDir(app))
    assert "plotly" not in code.page()  # plotly.js loads when a Plot is first drawn, not with the page
    runtime = _groups(code.bundle().script)[1]  # type: ignore[union-attr]
    assert {"plotly", "plotly.graph_objects", "plotly.graph_objs", "anvil._components.plot"} <= set(runtime)
