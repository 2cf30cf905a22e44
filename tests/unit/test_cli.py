"""The CLI in-process: what `serve` hands the host and what `call` hands the client, from argv and env.

No server runs: `anvil_dev.host.server.serve` and `anvil_dev.client.connect` are replaced by fakes that
record what reached them, so each row of a table is one invocation of the real click commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from anvil_dev import client as client_module
from anvil_dev.appdir import AppDir
from anvil_dev.cli import cli
from anvil_dev.config import Settings
from anvil_dev.host import server as server_module


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ANVIL_DEV_* variables must not leak into the rows below."""
    for name in list(os.environ):
        if name.startswith("ANVIL_DEV_"):
            monkeypatch.delenv(name)


def make_app(tmp_path: Path, server_persist: bool | None = None) -> Path:
    app = tmp_path / "App"
    app.mkdir()
    text = "name: App\n"
    if server_persist is not None:
        text += f"runtime_options:\n  server_persist: {str(server_persist).lower()}\n"
    (app / "anvil.yaml").write_text(text)
    return app


class ServeCalls:
    """Stands in for the host's `serve`: keeps the app and Settings each invocation reached it with."""

    def __init__(self) -> None:
        self.calls: list[tuple[AppDir, Settings]] = []

    def __call__(self, app: AppDir, settings: Settings) -> None:
        self.calls.append((app, settings))

    @property
    def settings(self) -> Settings:
        assert len(self.calls) == 1, f"serve was called {len(self.calls)} times"
        return self.calls[0][1]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> ServeCalls:
    calls = ServeCalls()
    monkeypatch.setattr(server_module, "serve", calls)
    return calls


def invoke_serve(app: Path, argv: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--app", str(app), "serve", *argv], env=env)


# Each row: serve's argv, the environment, anvil.yaml's server_persist, and the Settings fields expected.
SERVE_CASES: list[tuple[str, list[str], dict[str, str], bool | None, dict[str, Any]]] = [
    (
        "defaults",
        [],
        {},
        None,
        {
            "host": "127.0.0.1",
            "port": 3030,
            "timeout": 30.0,
            "workers": 1,
            "persistent": False,
            "reload": True,
            "poll": False,
            "scheduled_tasks": True,
            "uplink_key": None,
            "client_uplink_key": None,
            "max_response_mb": 4.0,
            "secrets": {},
            "smtp": {},
            "deps": {},
            "schedule_speedup": 1.0,
            "memory_limit_mb": None,
        },
    ),
    ("--port", ["--port", "4000"], {}, None, {"port": 4000}),
    ("ANVIL_DEV_PORT", [], {"ANVIL_DEV_PORT": "4001"}, None, {"port": 4001}),
    ("--port beats ANVIL_DEV_PORT", ["--port", "4002"], {"ANVIL_DEV_PORT": "4001"}, None, {"port": 4002}),
    ("--host", ["--host", "0.0.0.0"], {}, None, {"host": "0.0.0.0"}),
    ("ANVIL_DEV_HOST", [], {"ANVIL_DEV_HOST": "::1"}, None, {"host": "::1"}),
    ("--timeout", ["--timeout", "2.5"], {}, None, {"timeout": 2.5}),
    ("--timeout 0 is no limit", ["--timeout", "0"], {}, None, {"timeout": None}),
    ("ANVIL_DEV_TIMEOUT=0 is no limit", [], {"ANVIL_DEV_TIMEOUT": "0"}, None, {"timeout": None}),
    ("--timeout beats ANVIL_DEV_TIMEOUT", ["--timeout", "5"], {"ANVIL_DEV_TIMEOUT": "0"}, None, {"timeout": 5.0}),
    ("--workers", ["--workers", "3"], {}, None, {"workers": 3}),
    ("ANVIL_DEV_WORKERS", [], {"ANVIL_DEV_WORKERS": "2"}, None, {"workers": 2}),
    ("anvil.yaml server_persist", [], {}, True, {"persistent": True}),
    ("anvil.yaml server_persist false", [], {}, False, {"persistent": False}),
    ("--keep-server-running", ["--keep-server-running"], {}, None, {"persistent": True}),
    ("--fresh beats anvil.yaml", ["--fresh"], {}, True, {"persistent": False}),
    ("--keep-server-running beats anvil.yaml", ["--keep-server-running"], {}, False, {"persistent": True}),
    ("env beats anvil.yaml (on)", [], {"ANVIL_DEV_KEEP_SERVER_RUNNING": "1"}, False, {"persistent": True}),
    ("env beats anvil.yaml (off)", [], {"ANVIL_DEV_KEEP_SERVER_RUNNING": "0"}, True, {"persistent": False}),
    ("--fresh beats env", ["--fresh"], {"ANVIL_DEV_KEEP_SERVER_RUNNING": "true"}, None, {"persistent": False}),
    ("--max-response-mb", ["--max-response-mb", "0.5"], {}, None, {"max_response_mb": 0.5}),
    ("--memory-limit", ["--memory-limit", "256"], {}, None, {"memory_limit_mb": 256.0}),
    ("ANVIL_DEV_MEMORY_LIMIT", [], {"ANVIL_DEV_MEMORY_LIMIT": "128"}, None, {"memory_limit_mb": 128.0}),
    (
        "--memory-limit 0 is no limit",
        ["--memory-limit", "0"],
        {"ANVIL_DEV_MEMORY_LIMIT": "128"},
        None,
        {"memory_limit_mb": None},
    ),
    ("--no-reload --poll", ["--no-reload", "--poll"], {}, None, {"reload": False, "poll": True}),
    (
        "ANVIL_DEV_RELOAD ANVIL_DEV_POLL",
        [],
        {"ANVIL_DEV_RELOAD": "0", "ANVIL_DEV_POLL": "1"},
        None,
        {"reload": False, "poll": True},
    ),
    ("--no-scheduled-tasks", ["--no-scheduled-tasks"], {}, None, {"scheduled_tasks": False}),
    ("ANVIL_DEV_NO_SCHEDULED_TASKS", [], {"ANVIL_DEV_NO_SCHEDULED_TASKS": "1"}, None, {"scheduled_tasks": False}),
    ("--uplink-key", ["--uplink-key", "k1"], {}, None, {"uplink_key": "k1"}),
    ("ANVIL_DEV_UPLINK_KEY", [], {"ANVIL_DEV_UPLINK_KEY": "k2"}, None, {"uplink_key": "k2"}),
    ("--client-uplink-key", ["--client-uplink-key", "client_k1"], {}, None, {"client_uplink_key": "client_k1"}),
    (
        "ANVIL_DEV_CLIENT_UPLINK_KEY",
        [],
        {"ANVIL_DEV_CLIENT_UPLINK_KEY": "client_k2"},
        None,
        {"client_uplink_key": "client_k2"},
    ),
    ("--secret", ["--secret", "api_key=s3=cret"], {}, None, {"secrets": {"api_key": "s3=cret"}}),
    ("--secret twice", ["--secret", "a=1", "--secret", "b="], {}, None, {"secrets": {"a": "1", "b": ""}}),
    ("ANVIL_DEV_SECRET_X", [], {"ANVIL_DEV_SECRET_TOKEN": "t"}, None, {"secrets": {"TOKEN": "t"}}),
    (
        "--secret beats ANVIL_DEV_SECRET_X",
        ["--secret", "TOKEN=opt"],
        {"ANVIL_DEV_SECRET_TOKEN": "env"},
        None,
        {"secrets": {"TOKEN": "opt"}},
    ),
    (
        "--secret and ANVIL_DEV_SECRET_X together",
        ["--secret", "a=1"],
        {"ANVIL_DEV_SECRET_B": "2"},
        None,
        {"secrets": {"a": "1", "B": "2"}},
    ),
    (
        "--smtp-*",
        [
            "--smtp-host",
            "mail.example.org",
            "--smtp-port",
            "2525",
            "--smtp-user",
            "u",
            "--smtp-password",
            "p",
            "--smtp-encryption",
            "starttls",
        ],
        {},
        None,
        {"smtp": {"host": "mail.example.org", "port": "2525", "user": "u", "password": "p", "encryption": "starttls"}},
    ),
    (
        "ANVIL_DEV_SMTP_*",
        [],
        {"ANVIL_DEV_SMTP_HOST": "relay", "ANVIL_DEV_SMTP_PORT": "25"},
        None,
        {"smtp": {"host": "relay", "port": "25"}},
    ),
    (
        "--smtp-host beats ANVIL_DEV_SMTP_HOST",
        ["--smtp-host", "opt"],
        {"ANVIL_DEV_SMTP_HOST": "env"},
        None,
        {"smtp": {"host": "opt"}},
    ),
    ("ANVIL_DEV_SCHEDULE_SPEEDUP", [], {"ANVIL_DEV_SCHEDULE_SPEEDUP": "60"}, None, {"schedule_speedup": 60.0}),
    (
        "--debug: debugpy's port, no timeout",
        ["--debug", "--timeout", "5"],
        {},
        None,
        {"debugpy_port": 5678, "timeout": None},
    ),
    ("--debugpy PORT", ["--debugpy", "5700"], {}, None, {"debugpy_port": 5700, "timeout": None}),
    ("ANVIL_DEV_DEBUGPY", [], {"ANVIL_DEV_DEBUGPY": "5701"}, None, {"debugpy_port": 5701}),
    ("--show-internal-frames", ["--show-internal-frames"], {}, None, {"show_internal_frames": True}),
]


@pytest.mark.parametrize(
    ("argv", "env", "server_persist", "expected"), [c[1:] for c in SERVE_CASES], ids=[c[0] for c in SERVE_CASES]
)
def test_serve_settings(
    tmp_path: Path,
    served: ServeCalls,
    argv: list[str],
    env: dict[str, str],
    server_persist: bool | None,
    expected: dict[str, Any],
) -> None:
    app = make_app(tmp_path, server_persist)
    result = invoke_serve(app, argv, env)
    assert result.exit_code == 0, result.output
    settings = served.settings
    assert {
        k: getattr(settings, k) if k not in ("secrets", "smtp", "deps") else dict(getattr(settings, k))
        for k in expected
    } == expected
    assert served.calls[0][0].path == app.resolve()
    assert settings.app_path == str(app.resolve())


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, 300.0),  # anvil.yaml's
        ([], {"ANVIL_DEV_MEMORY_LIMIT": "200"}, 200.0),  # the variable beats anvil.yaml
        (["--memory-limit", "100"], {"ANVIL_DEV_MEMORY_LIMIT": "200"}, 100.0),  # the option beats both
    ],
)
def test_serve_memory_limit_comes_from_anvil_yaml_last(
    tmp_path: Path, served: ServeCalls, argv: list[str], env: dict[str, str], expected: float
) -> None:
    app = make_app(tmp_path)
    (app / "anvil.yaml").write_text("name: App\nanvil_dev:\n  memory_limit_mb: 300\n")
    result = invoke_serve(app, argv, env)
    assert result.exit_code == 0, result.output
    assert served.settings.memory_limit_mb == expected


def test_serve_refuses_a_memory_limit_in_anvil_yaml_that_is_not_a_number(tmp_path: Path, served: ServeCalls) -> None:
    app = make_app(tmp_path)
    (app / "anvil.yaml").write_text("name: App\nanvil_dev:\n  memory_limit_mb: lots\n")
    result = invoke_serve(app, [])
    assert result.exit_code == 2 and not served.calls
    assert "anvil.yaml's anvil_dev.memory_limit_mb is 'lots': it needs a number of megabytes" in result.output
    assert "Traceback" not in result.output


def test_serve_secret_names_match_either_case(tmp_path: Path, served: ServeCalls) -> None:
    result = invoke_serve(make_app(tmp_path), ["--secret", "api_key=opt"], {"ANVIL_DEV_SECRET_MAIL_PW": "env"})
    assert result.exit_code == 0, result.output
    assert served.settings.secret("api_key") == "opt"
    assert served.settings.secret("mail_pw") == "env"


def test_serve_dep_paths_are_resolved(tmp_path: Path, served: ServeCalls, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = invoke_serve(app, ["--dep", "LIB1=libs/One", "--dep", f"LIB2={tmp_path / 'Two'}"])
    assert result.exit_code == 0, result.output
    assert dict(served.settings.deps) == {"LIB1": str(tmp_path / "libs" / "One"), "LIB2": str(tmp_path / "Two")}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--secret", "novalue"], "--secret 'novalue' is not NAME=VALUE"),
        (["--secret", "=value"], "--secret '=value' is not NAME=VALUE"),
        (["--dep", "LIB1"], "--dep 'LIB1' is not APP_ID=PATH"),
        (["--dep", "=../Lib"], "--dep '=../Lib' is not APP_ID=PATH"),
        (["--dep", "LIB1="], "--dep 'LIB1=' is not APP_ID=PATH"),
        (["--timeout", "-1"], "--timeout"),
        (["--workers", "0"], "--workers"),
        (["--port", "http"], "--port"),
        (["--smtp-encryption", "tls"], "--smtp-encryption"),
    ],
)
def test_serve_bad_options_are_usage_errors(tmp_path: Path, served: ServeCalls, argv: list[str], message: str) -> None:
    result = invoke_serve(make_app(tmp_path), argv)
    assert result.exit_code == 2
    assert message in result.stderr
    assert served.calls == []


def test_serve_without_anvil_yaml_is_a_usage_error(tmp_path: Path, served: ServeCalls) -> None:
    result = invoke_serve(tmp_path, [])
    assert result.exit_code == 2
    assert "no anvil.yaml" in result.stderr and "anvil-dev init" in result.stderr
    assert served.calls == []


class FakeConnection:
    """Stands in for the client: records the call and answers with `result` (or raises it)."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.last_output = ""
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((name, args, kwargs))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


class Connects:
    """Stands in for `anvil_dev.client.connect`, keeping what each connection was opened with."""

    def __init__(self) -> None:
        self.result: Any = None
        self.opened: list[tuple[str, dict[str, Any]]] = []
        self.connections: list[FakeConnection] = []

    def __call__(self, url: str, **kwargs: Any) -> FakeConnection:
        self.opened.append((url, kwargs))
        conn = FakeConnection(self.result)
        self.connections.append(conn)
        return conn

    @property
    def call(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        assert len(self.connections) == 1 and len(self.connections[0].calls) == 1
        return self.connections[0].calls[0]


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Connects:
    fake = Connects()
    monkeypatch.setattr(client_module, "connect", fake)
    monkeypatch.chdir(tmp_path)  # returned Media would land here
    return fake


# Each row: call's argv after NAME, and the positional and keyword arguments the server function gets.
CALL_CASES: list[tuple[str, list[str], list[Any], dict[str, Any]]] = [
    ("numbers", ["2", "3"], [2, 3], {}),
    ("negative number", ["-1", "2.5"], [-1, 2.5], {}),
    ("plain words are a string", ["plain words"], ["plain words"], {}),
    ("JSON object", ['{"a": [1, 2.5, null]}'], [{"a": [1, 2.5, None]}], {}),
    ("JSON literals", ["true", "null", "[]"], [True, None, []], {}),
    ("a quoted number is a string", ['"3"'], ["3"], {}),
    ("not quite JSON is a string", ["{a: 1}", "01"], ["{a: 1}", "01"], {}),
    ("empty string", [""], [""], {}),
    ("--kw JSON", ["--kw", "value=[1]"], [], {"value": [1]}),
    ("--kw string", ["--kw", "greeting=hello there"], [], {"greeting": "hello there"}),
    ("--kw value with =", ["--kw", "expr=a=b"], [], {"expr": "a=b"}),
    ("--kw empty value", ["--kw", "s="], [], {"s": ""}),
    ("args and --kw", ["1", "--kw", "b=2", "x", "--kw", "c=null"], [1, "x"], {"b": 2, "c": None}),
]


@pytest.mark.parametrize(("argv", "args", "kwargs"), [c[1:] for c in CALL_CASES], ids=[c[0] for c in CALL_CASES])
def test_call_arguments_reach_the_client(
    connects: Connects, argv: list[str], args: list[Any], kwargs: dict[str, Any]
) -> None:
    result = CliRunner().invoke(cli, ["call", "fn", *argv])
    assert result.exit_code == 0, result.output
    assert connects.call == ("fn", tuple(args), kwargs)
    assert connects.opened == [("http://127.0.0.1:3030", {"as_user": None, "token": None, "client_tag": "cli"})]


def test_call_url_from_option_or_env(connects: Connects) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["call", "fn"], env={"ANVIL_DEV_URL": "http://127.0.0.1:4000"}).exit_code == 0
    assert (
        runner.invoke(
            cli, ["call", "fn", "--url", "http://127.0.0.1:4001"], env={"ANVIL_DEV_URL": "http://127.0.0.1:4000"}
        ).exit_code
        == 0
    )
    assert [url for url, _ in connects.opened] == ["http://127.0.0.1:4000", "http://127.0.0.1:4001"]


def test_call_as_user_presents_the_apps_cli_token(tmp_path: Path, connects: Connects) -> None:
    app = make_app(tmp_path)
    result = CliRunner().invoke(cli, ["--app", str(app), "call", "whoami", "--as", "ann@example.org"])
    assert result.exit_code == 0, result.output
    _, opened = connects.opened[0]
    assert opened["as_user"] == "ann@example.org"
    assert opened["token"] == AppDir(app).cli_token()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fn", "--kw", "novalue"], "'novalue' is not KEY=VALUE"),
        (["fn", "--kw", "=1"], "'=1' is not KEY=VALUE"),
        (["  "], "give the name of a server function"),
        (["fn", "[" * 100_000], "nested too deeply"),
    ],
)
def test_call_bad_arguments_are_usage_errors(connects: Connects, argv: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["call", *argv])
    assert result.exit_code == 2
    assert message in result.stderr
    assert connects.connections == [] or connects.connections[0].calls == []


@pytest.mark.parametrize(
    ("value", "argv", "printed"),
    [
        ("hello", [], "hello\n"),
        ({"a": [1, None]}, [], "{'a': [1, None]}\n"),
        ({"a": [1, None]}, ["--json"], json.dumps({"a": [1, None]}) + "\n"),
    ],
)
def test_call_prints_the_result(connects: Connects, value: Any, argv: list[str], printed: str) -> None:
    connects.result = value
    result = CliRunner().invoke(cli, ["call", "fn", *argv])
    assert result.exit_code == 0, result.output
    assert result.stdout == printed


def test_call_server_error_exits_1_with_the_error(connects: Connects) -> None:
    connects.result = client_module.ServerError("anvil.server.NoServerFunctionError", "No server function 'fn'")
    result = CliRunner().invoke(cli, ["call", "fn"])
    assert result.exit_code == 1
    assert "anvil.server.NoServerFunctionError: No server function 'fn'" in result.stderr


def test_call_with_no_server_exits_2(connects: Connects) -> None:
    connects.result = client_module.ConnectionFailed("no anvil-dev server at http://127.0.0.1:3030")
    result = CliRunner().invoke(cli, ["call", "fn"])
    assert result.exit_code == 2
    assert "no anvil-dev server" in result.stderr


def test_the_host_imports_flask_only_once_it_has_launched_the_engine() -> None:
    """serve imports Flask, werkzeug and watchdog after the zygote has started, so that the two
    processes' imports overlap (a cold start's first call comes that much sooner)."""
    code = (
        "import sys, anvil_dev.cli, anvil_dev.host.server; "
        "print(sorted(m for m in ('flask', 'werkzeug.serving', 'watchdog', 'flask_sock') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
