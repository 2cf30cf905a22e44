"""Tests of __APP_NAME__'s server functions: run `pytest` in the app's directory.

anvil-dev's pytest plugin gives each test a real app server and an empty database of its own
(the tables anvil.yaml declares; your .anvil-dev/ data is never touched). Fixtures:
anvil_call (a call as a client makes it), anvil_local (the same call in this process, no server),
as_user / logged_in, app_tables, outbox, background_tasks, secrets.
"""

import anvil.server
import pytest


def test_add(anvil_call):
    assert anvil_call("add", 2, 3) == 5


def test_feedback_is_stored(anvil_call, app_tables):
    assert anvil_call("add_feedback", "Ann", "ann@example.org", "Nice app") == "Thanks, Ann!"
    row = app_tables.feedback.get(email="ann@example.org")
    assert row["feedback"] == "Nice app"


def test_each_test_starts_empty(app_tables):
    assert len(app_tables.feedback.search()) == 0


def test_feedback_needs_a_name(anvil_call):
    with pytest.raises(ValueError, match="Please give your name"):
        anvil_call("add_feedback", "", "ann@example.org", "hi")


def test_unknown_function(anvil_call):
    with pytest.raises(anvil.server.NoServerFunctionError):
        anvil_call("no_such_function")


def test_in_process(anvil_local, app_tables):
    anvil_local("add_feedback", "Bob", "bob@example.org", "Quick")
    assert [r["name"] for r in app_tables.feedback.search()] == ["Bob"]
