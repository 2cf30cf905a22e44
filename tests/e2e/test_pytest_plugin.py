"""The pytest plugin as a developer uses it: `anvil-dev init`, then plain `pytest` in the app, a real
subprocess that finds the plugin (through its pytest11 entry point once installed with it)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import ROOT, run_cli, write_module


def _installed_plugin() -> bool:
    """True when the installed anvil-dev's metadata declares the plugin (then -p would register it twice)."""
    return any(ep.value == "anvil_dev.testing" for ep in importlib.metadata.entry_points(group="pytest11"))


def run_pytest(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    plugin = [] if _installed_plugin() else ["-p", "anvil_dev.testing"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", *args],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def new_app(tmp_path: Path) -> Path:
    result = run_cli("init", str(tmp_path / "shop"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "shop"


def test_init_example_passes_under_plain_pytest(new_app: Path) -> None:
    assert (new_app / "tests" / "test_server.py").is_file()
    result = run_pytest(new_app, "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout
    # The app's own local data was never touched: the tests ran on a throwaway copy.
    assert not (new_app / ".anvil-dev" / "data.sqlite3").exists()


USERS_MODULE = """\
import anvil.email
import anvil.secrets
import anvil.server
import anvil.users
from anvil.tables import app_tables


@anvil.server.callable(require_user=True)
def my_feedback():
    me = anvil.users.get_user()
    return sorted(r["feedback"] for r in app_tables.feedback.search(email=me["email"]))


@anvil.server.callable(require_user=True)
def mail_me(subject):
    me = anvil.users.get_user()
    anvil.email.send(to=me["email"], subject=subject, text="Your feedback was read.")


@anvil.server.callable(require_user=True)
def start_digest():
    return anvil.server.launch_background_task("digest", anvil.users.get_user()["email"])


@anvil.server.background_task
def digest(email):
    n = len(app_tables.feedback.search(email=email))
    app_tables.feedback.add_row(name="digest", email=email, feedback=f"{n} so far")
    return n


@anvil.server.callable
def api_key_length():
    return len(anvil.secrets.get_secret("api_key"))
"""

SECOND_EXAMPLE = """\
import anvil.server
import anvil.users
import pytest


@pytest.fixture
def ann(app_tables):
    app_tables.feedback.add_row(name="Ann", email="ann@example.org", feedback="first")
    app_tables.feedback.add_row(name="Ann", email="ann@example.org", feedback="second")
    app_tables.feedback.add_row(name="Bob", email="bob@example.org", feedback="not Ann's")
    return "ann@example.org"


def test_needs_a_user(anvil_call):
    with pytest.raises(anvil.users.AuthenticationFailed, match="You must be logged in"):
        anvil_call("my_feedback")


def test_as_user_sees_own_rows(anvil_call, as_user, ann):
    with as_user(ann) as user:
        assert anvil_call("my_feedback") == ["first", "second"]
    assert user["email"] == ann


def test_logged_in_and_outbox(anvil_call, as_user, logged_in, outbox, ann):
    with as_user(ann) as user:
        pass
    with logged_in(user):
        anvil_call("mail_me", "Thanks")
    assert len(outbox) == 1
    assert outbox.last["to"] == ["ann@example.org"]
    assert outbox.last["subject"] == "Thanks"
    assert "was read" in outbox.last["text"]


def test_background_task_runs_to_completion(anvil_call, as_user, background_tasks, app_tables, ann):
    with as_user(ann):
        task = anvil_call("start_digest")
    assert background_tasks.wait(task) == 2
    assert app_tables.feedback.get(name="digest")["feedback"] == "2 so far"


def test_in_process_task_and_user(anvil_local, as_user, background_tasks, app_tables, ann):
    with as_user(ann):
        assert anvil_local("my_feedback") == ["first", "second"]
        task = anvil_local("start_digest")
    assert background_tasks.wait(task) == 2


def test_secrets_from_the_test(anvil_call, secrets):
    secrets["api_key"] = "k" * 12
    assert anvil_call("api_key_length") == 12


def test_secret_gone_in_the_next_test(anvil_call):
    with pytest.raises(anvil.secrets.SecretError):
        anvil_call("api_key_length")


def test_database_was_reset(app_tables, anvil_services):
    assert len(app_tables.feedback.search()) == 0
    assert anvil_services.users.list_users() == []
"""


def test_second_example_users_seeding_outbox_task(new_app: Path) -> None:
    write_module(new_app, "Accounts", USERS_MODULE)
    (new_app / "tests" / "test_accounts.py").write_text("import anvil.secrets\n" + SECOND_EXAMPLE)
    result = run_pytest(new_app, "-q", "tests/test_accounts.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed" in result.stdout


def test_failing_function_shows_anvil_exception_and_server_trace(new_app: Path) -> None:
    (new_app / "tests" / "test_broken.py").write_text(
        textwrap.dedent("""\
        def test_no_name(anvil_call):
            anvil_call("add_feedback", "", "ann@example.org", "hi")
    """)
    )
    result = run_pytest(new_app, "tests/test_broken.py")
    assert result.returncode == 1
    out = result.stdout
    assert re.search(r"^E +ValueError: Please give your name and email$", out, re.M), out
    source = (new_app / "server_code" / "ServerModule1.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if 'raise ValueError("Please give' in text)
    assert f'File "server_code/ServerModule1.py", line {line}' in out
    assert 'raise ValueError("Please give your name and email")' in out
    assert "anvil-dev server calls" in out  # the report's own section, with the call that failed
    assert "add_feedback raised ValueError" in out


def test_module_isolation_keeps_rows_between_tests(new_app: Path) -> None:
    (new_app / "pytest.ini").write_text("[pytest]\nanvil_dev_isolation = module\n")
    (new_app / "tests" / "test_server.py").unlink()
    (new_app / "tests" / "test_a.py").write_text(
        textwrap.dedent("""\
        def test_add(anvil_call):
            anvil_call("add_feedback", "Ann", "ann@example.org", "one")

        def test_still_there(app_tables):
            assert len(app_tables.feedback.search()) == 1
    """)
    )
    (new_app / "tests" / "test_b.py").write_text(
        textwrap.dedent("""\
        def test_new_module_is_empty(app_tables):
            assert len(app_tables.feedback.search()) == 0
    """)
    )
    result = run_pytest(new_app, "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_outside_an_app_the_fixtures_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(anvil_call):\n    pass\n")
    result = run_pytest(tmp_path, "-q")
    assert result.returncode != 0
    assert "no anvil.yaml" in result.stdout + result.stderr
