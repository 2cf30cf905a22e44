"""In-process checks of the pieces that turn a user's mistake into one line: anvil.yaml's checks, --url's,
the serve lock, -h on every command, --app after the command, the last-resort line, the duration style."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from anvil_dev import _units
from anvil_dev.appdir import AppConfigError, AppDir, AppDirError
from anvil_dev.cli import InternalError, cli
from anvil_dev.client import check_url
from anvil_dev.host import server as server_module


def app_with(tmp_path: Path, text: str) -> AppDir:
    (tmp_path / "anvil.yaml").write_text(text)
    return AppDir(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: A\nservices: [\n", "anvil.yaml line 3, column 1 is not valid YAML: "),
        ("- 1\n", "anvil.yaml must be a mapping of keys (name:, services:, db_schema:, ...), not a list"),
        (
            "name: A\n\ndb_schema: 5\n",
            "anvil.yaml line 3: db_schema is 5 (a number), but must be a mapping of tables "
            "or a list of tables - fix it, or remove db_schema",
        ),
        ("services: {a: 1}\n", "anvil.yaml line 1: services is a mapping, but must be a list of services"),
        ("runtime_options: yes\n", "anvil.yaml line 1: runtime_options is true (a boolean), but must be a mapping"),
        ("scheduled_tasks: every day\n", "scheduled_tasks is 'every day' (a string), but must be a list of tasks"),
    ],
)
def test_anvil_yaml_checked_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    app = app_with(tmp_path, text)
    with pytest.raises(AppConfigError) as caught:
        app.check()
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "anvil.yaml"))


@pytest.mark.parametrize(
    "text",
    [
        "name: 2048\n",  # a number for a name is still a name
        "db_schema:\n- name: T\n  columns: []\n",
        "db_schema: {t: {columns: []}}\nsecrets: [{name: k, type: key}]\n",
        "",  # an empty anvil.yaml is an app with nothing declared
    ],
)
def test_anvil_yaml_shapes_real_apps_use_pass(tmp_path: Path, text: str) -> None:
    app_with(tmp_path, text).check()


def test_check_reads_the_config_once(tmp_path: Path) -> None:
    app = app_with(tmp_path, "name: First\n")
    app.check()
    (tmp_path / "anvil.yaml").write_text("name: Second\n")
    assert app.config["name"] == "First"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:3030", "'127.0.0.1:3030' is not a URL - give the scheme too: http://127.0.0.1:3030"),
        ("localhost:3030", "'localhost:3030' is not a URL - give the scheme too: http://localhost:3030"),
        ("ftp://h:1", "'ftp://h:1' is not an http:// or https:// URL"),
        ("http://127.0.0.1:99999", "'http://127.0.0.1:99999' has no valid port (give 1-65535)"),
        ("http://127.0.0.1:0", "'http://127.0.0.1:0' has no valid port"),
        ("http://:3030", "'http://:3030' names no host"),
    ],
)
def test_check_url_refuses(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_url(url)
    assert str(caught.value).startswith(message)


def test_check_url_accepts() -> None:
    assert check_url("http://127.0.0.1:3030/") == "http://127.0.0.1:3030"
    assert check_url("https://example.test") == "https://example.test"
    assert check_url("http://[::1]:3030") == "http://[::1]:3030"


def test_serving_lock_refuses_a_second_holder_and_goes_with_the_first(tmp_path: Path) -> None:
    app = app_with(tmp_path, "name: A\n")
    with app.serving("http://127.0.0.1:1234"):
        with pytest.raises(AppDirError) as caught:
            with AppDir(tmp_path).serving("http://127.0.0.1:5678"):
                pass
        assert str(caught.value).startswith(
            f"another anvil-dev serve (pid {os.getpid()}, http://127.0.0.1:1234) is already serving {tmp_path}"
        )
    with AppDir(tmp_path).serving("http://127.0.0.1:5678"):  # released: the next one may serve
        assert (tmp_path / ".anvil-dev" / "serve.lock").read_text() == f"{os.getpid()} http://127.0.0.1:5678\n"


def _all_commands(group: click.Group, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _all_commands(command, [*path, name])
        else:
            found.append([*path, name])
    return found


@pytest.mark.parametrize("path", _all_commands(cli, []), ids=lambda p: " ".join(p) or "anvil-dev")
def test_dash_h_everywhere(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "-h"], prog_name="anvil-dev")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: anvil-dev {' '.join(path)}".rstrip() + " ")


def test_app_after_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_with(tmp_path, "name: A\n")
    reached: list[AppDir] = []
    monkeypatch.setattr(server_module, "serve", lambda a, _s: reached.append(a))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["serve", "--app", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [a.path for a in reached] == [app.path]
    listed = CliRunner().invoke(cli, ["tables", "--app", str(tmp_path)])
    assert listed.exit_code == 0 and "no data tables" in listed.output


def test_internal_error_is_one_line_naming_where() -> None:
    try:
        _units.duration("soon")  # type: ignore[arg-type]
    except ValueError as e:
        message = InternalError(e).message
    source = Path(_units.__file__).read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "float(seconds)" in text)
    assert message == (
        "anvil-dev failed: ValueError: could not convert string to float: 'soon' (in "
        f"anvil_dev/_units.py line {line}, duration) - this is a bug in anvil-dev; please report it "
        "with the output of the same command run with --traceback"
    )


def test_internal_error_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app_with(tmp_path, "name: A\n")
    monkeypatch.setattr(server_module, "serve", lambda _a, _s: _units.duration("soon"))
    result = CliRunner().invoke(cli, ["--app", str(tmp_path), "serve"])
    assert result.exit_code == 1 and result.output.startswith("Error: anvil-dev failed: ValueError: ")
    shown = CliRunner().invoke(cli, ["--traceback", "--app", str(tmp_path), "serve"])
    assert isinstance(shown.exception, ValueError)  # --traceback: Python's own report, for a bug report


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0032, "3.2 ms"),
        (0.85, "850 ms"),
        (0.9996, "1.0 s"),
        (59.97, "1 min 0 s"),
        (1.0, "1.0 s"),
        (12.34, "12.3 s"),
        (185, "3 min 5 s"),
        (7300, "2 h 1 min"),
        (-1, "0.0 ms"),
    ],
)
def test_one_duration_style(seconds: float, text: str) -> None:
    assert _units.duration(seconds) == text
