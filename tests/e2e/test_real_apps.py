"""Apps laid out and written the way public Anvil apps are, served unchanged by the real `anvil-dev serve`.

The apps live in tests/apps/ (each is copied to a temporary directory first, so nothing is written
into the repository). They use the shapes real apps' anvil.yaml files have (the list-form db_schema
with column ids, `liveObject` links and `access` blocks; the map form with `target` links; a
dependency that is not there; encrypted `secrets:`), an app `__init__.py` at the root,
`.anvil_editor.yaml`, forms that only the browser imports, and server code in the style of public
apps: the editor's import boilerplate for every service, one `callable(require_user=True)` object
reused as a decorator, `in_transaction` above and below `callable`, `from .Utils import *`, client
modules and portable classes used on the server, modules of the same name in two packages.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from anvil_dev.client import Media, ServerError

from helpers import ServerProcess

APPS = Path(__file__).resolve().parent.parent / "apps"


def serve_copy(name: str, tmp_path: Path, server_factory: Callable[..., ServerProcess], *args: str) -> ServerProcess:
    app = tmp_path / name
    shutil.copytree(APPS / name, app, ignore=shutil.ignore_patterns("__pycache__", ".anvil-dev"))
    return server_factory(app, *args)


@pytest.mark.parametrize("mode", ["--fresh", "--keep-server-running"])
def test_helpdesk_list_form_schema_users_and_transactions(
    tmp_path: Path, server_factory: Callable[..., ServerProcess], mode: str
) -> None:
    srv = serve_copy("HelpDesk", tmp_path, server_factory, mode)
    assert "open_ticket" in srv.output and "close_tickets" in srv.output  # in_transaction kept the names
    ann = srv.client()
    assert ann.call("sign_up_agent", "ann@example.org", "pw-ann-123") == "ann@example.org"
    # What the call wrote into the session after force_login is there in the next call.
    assert ann.call("who_am_i") == {
        "email": "ann@example.org",
        "role": "agent",
        "session_row_matches": True,
        "by_id": "ann@example.org",
        "since_is_aware": True,
    }

    # A new customer arrives as a dict (has_row says False), a known one as the row the client got.
    t1 = ann.call(
        "open_ticket", {"title": "Printer on fire"}, {"email": "bob@example.org", "name": "Bob"}, note="Smoke seen"
    )
    assert t1["number"] == 1 and t1["customer"]["email"] == "bob@example.org" and t1["status"] == "Open"
    t2 = ann.call("open_ticket", {"title": "Login broken"}, t1["customer"])
    assert t2["number"] == 2 and t2["customer"] == t1["customer"]
    with pytest.raises(ServerError) as bad:
        ann.call("open_ticket", {"title": " "}, {"email": "nobody"})
    assert bad.value.type == "ValidationError"  # a portable exception class from client_code
    assert bad.value.message == "A ticket needs a title; A customer needs an email address"
    t3 = ann.call("open_ticket", {"title": "Third"}, {"email": "cy@example.org", "name": "Cy"})
    assert t3["number"] == 3  # the failed one rolled back its counter increment

    assert ann.call("add_note", t1, "Called Bob") == 2
    due = datetime.date.today() + datetime.timedelta(days=3)
    assert ann.call("ticket_summary", t1) == {
        "customer_email": "bob@example.org",
        "owner_email": "ann@example.org",
        "watchers": ["ann@example.org"],
        "first_note": "Smoke seen",
        "latest_note": "Called Bob",
        "due": due,
    }
    assert [t["number"] for t in ann.call("list_tickets", filters={"customer": t1["customer"]})] == [2, 1]
    assert ann.call("due_between", datetime.date.today(), due) == [1, 2, 3]
    assert ann.call("notes_for", [t1, t2, t1]) == [1, 2]
    assert ann.call("watched_by_me") == [1, 2, 3]

    # in_transaction above callable: the registered function is the transactional one.
    with pytest.raises(ServerError, match="stopped after 1 tickets"):
        ann.call("close_tickets", [t1, t2], fail_after=1)
    assert [t["status"] for t in ann.call("list_tickets")] == ["Open", "Open", "Open"]
    assert ann.call("close_tickets", [t1, t2]) == ["Closed", "Closed"]

    reopened = ann.call("reopen", t1)  # dict(row): links stay rows the client can pass back
    assert reopened["status"] == "Open" and reopened["watchers"][0]["email"] == "ann@example.org"
    assert [
        t["number"] for t in ann.call("list_tickets", filters={"customer": reopened["customer"], "status": "Open"})
    ] == [1]
    assert ann.call("dashboard") == {"open": 2, "origin": srv.url}
    # Mail sent inside a transaction (the outbox's first use in this process) does not wait for its lock.
    assert ann.call("close_and_tell", t3) == "Closed"
    srv.wait_for_output("[email] to cy@example.org: Ticket 3 closed")

    # The editor's imports for Google, Microsoft, Facebook, Stripe and Data Files load; using one says why not.
    with pytest.raises(ServerError) as denied:
        ann.call("export_to_drive")  # require_user=<function>: only leads
    assert denied.value.type == "anvil.server.PermissionDenied"
    lee = srv.client()
    lee.call("sign_up_agent", "lee@example.org", "pw-lee-123", role="lead")
    with pytest.raises(ServerError) as missing:
        lee.call("export_to_drive")
    assert missing.value.type == "NotImplementedError"
    assert missing.value.message.startswith(
        "anvil.google.drive.app_files.tickets_sheet.add_row(): the Google API service is not available under anvil-dev"
    )

    with pytest.raises(ServerError) as anonymous:
        srv.client().call("list_tickets")
    assert anonymous.value.type == "anvil.users.AuthenticationFailed"
    ann.call("sign_out")
    with pytest.raises(ServerError, match="You must be logged in"):
        ann.call("who_am_i")


def test_todosync_map_form_schema_portable_classes_media_and_endpoints(
    tmp_path: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    srv = serve_copy("TodoSync", tmp_path, server_factory, "--secret", "api_token=tok-123")
    # anvil_extras is only imported by forms: serving goes on, with one line saying it is missing.
    assert "dependency Anvil Extras (dep_q7x2mw9kd3a1bz) not found" in srv.output
    c = srv.client()
    todo = c.registry.lookup("TodoSync.model.portable.Todo")
    synced = c.call(
        "todos.sync",
        {
            "new": [
                todo({"description": "Buy milk", "uuid": None, "done": False}),
                todo({"description": "Answer mail", "uuid": None, "done": False}),
            ],
            "deleted": [],
        },
    )
    assert [(type(t).type_name, t.description) for t in synced] == [
        ("TodoSync.model.portable.Todo", "Answer mail"),
        ("TodoSync.model.portable.Todo", "Buy milk"),
    ]
    assert c.call("one_todo_class") is True  # relative, package-absolute and bare imports: one module

    ids = c.call("ids_by_description")
    assert all(isinstance(i, str) for i in ids.values())
    milk, mail = ids["Buy milk"], ids["Answer mail"]
    assert c.call("tag", milk, "home", "shop") == ["home", "shop"]
    as_dict = c.call("todo_as_dict", milk)
    assert as_dict["list"]["name"] == "Inbox" and [t["name"] for t in as_dict["tags"]] == ["home", "shop"]
    assert c.call("same_list", as_dict) == ["Answer mail", "Buy milk"]

    assert c.call("find", text="MILK") == [["Buy milk", "Inbox"]]
    assert c.call("find", tag_names=["shop", "nowhere"]) == [["Buy milk", "Inbox"]]
    assert c.call("note", mail, "urgent") == {"source": "sync", "note": "urgent"}
    assert c.call("find", text="urgent") == [["Answer mail", "Inbox"]]
    assert c.call("mark_done", [synced[0].uuid]) == 1
    assert c.call("find", open_only=True) == [["Buy milk", "Inbox"]]
    assert c.call("find", first=1) == [["Answer mail", "Inbox"]]
    assert c.call("summary") == {"lists": {"Inbox": 2}, "open": 1}
    assert c.call("share_link", "Inbox & more") == [f"{srv.url}/#?list=Inbox%20%26%20more", f"{srv.url}/_/api"]

    csv_media = c.call("attach_csv", milk)
    assert csv_media.name == "todo.csv" and csv_media.get_bytes() == b"description,done\nBuy milk,False\n"
    assert c.call("read_attachment", milk) == [[{"description": "Buy milk", "done": "False"}], "todo.csv", "text/csv"]
    assert c.call("attach_upload", mail, Media("text/plain", b"hello", name="a.txt")) == [5, "hello"]

    url = srv.url + "/_/api/lists/Inbox/todos"
    ok = requests.get(url, headers={"Authorization": "Bearer tok-123"}, timeout=10)
    assert ok.status_code == 200 and [t["description"] for t in ok.json()] == ["Answer mail", "Buy milk"]
    assert (
        requests.get(url + "?open=yes", headers={"Authorization": "Bearer tok-123"}, timeout=10).json()[0][
            "description"
        ]
        == "Buy milk"
    )
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401

    assert [c.call("visit"), c.call("visit"), srv.client().call("visit")] == [1, 2, 1]


def test_a_server_module_named_like_the_standard_library_does_not_hide_it(
    tmp_path: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    app = tmp_path / "HelpDesk"
    shutil.copytree(APPS / "HelpDesk", app, ignore=shutil.ignore_patterns("__pycache__", ".anvil-dev"))
    (app / "server_code" / "email.py").write_text(
        "import anvil.server\n"
        "\n"
        "@anvil.server.callable\n"
        "def mime_type():\n"
        "  from email.mime.text import MIMEText\n"
        "  return MIMEText('hi').get_content_type()\n"
    )
    srv = server_factory(app)
    assert srv.client().call("mime_type") == "text/plain"
