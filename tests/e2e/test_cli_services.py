"""The service commands of the CLI against a real app: tables, outbox, secrets, email deliver."""

from __future__ import annotations

from helpers import run_cli, write_module

MAIL = """
    import anvil.email
    import anvil.server
    from anvil.tables import app_tables

    @anvil.server.callable
    def notify(to):
        anvil.email.send(to=to, subject="Hello there", text="plain body", html="<b>bold body</b>",
                         attachments=[anvil.BlobMedia("text/plain", b"attached", name="a.txt")])

    @anvil.email.handle_message
    def incoming(msg):
        app_tables.feedback.add_row(name="mail", email=msg.envelope.from_address, feedback=msg.subject)
"""

EML = b"""From: Bob <bob@example.org>
To: app@example.org
Subject: Inbound subject

Hi there.
"""


def test_tables_and_export(app_dir, server_factory) -> None:
    srv = server_factory(app_dir)
    srv.client().call("add_feedback", "Ann", "ann@example.org", "Great, thanks")
    r = run_cli("--app", str(app_dir), "tables")
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("feedback:"))
    assert "1 rows" in line and "email (string)" in line
    r = run_cli("--app", str(app_dir), "tables", "export", "feedback", "--csv")
    assert r.returncode == 0 and "Ann" in r.stdout and "Great, thanks" in r.stdout
    r = run_cli("--app", str(app_dir), "tables", "export", "nope")
    assert r.returncode == 1 and "nope" in r.stderr


def test_outbox_commands_and_inbound_email(app_dir, server_factory, tmp_path) -> None:
    write_module(app_dir, "Mail", MAIL)
    srv = server_factory(app_dir)
    srv.client().call("notify", "ann@example.org")
    srv.wait_for_output("[email] to ann@example.org: Hello there")
    r = run_cli("--app", str(app_dir), "outbox")
    assert "to ann@example.org: Hello there" in r.stdout
    msg_id = r.stdout.split()[0]
    r = run_cli("--app", str(app_dir), "outbox", "show", msg_id)
    assert "Subject: Hello there" in r.stdout and "plain body" in r.stdout and "<b>bold body</b>" in r.stdout
    assert "[attachment] a.txt (text/plain, 8 bytes)" in r.stdout
    eml = tmp_path / "in.eml"
    eml.write_bytes(EML)
    r = run_cli("--app", str(app_dir), "email", "deliver", str(eml), "--url", srv.url)
    assert r.returncode == 0, r.stderr
    rows = srv.client().call("list_feedback")
    assert rows[0]["feedback"] == "Inbound subject"


def test_secrets_set_and_list(app_dir, server_factory) -> None:
    r = run_cli("--app", str(app_dir), "secrets", "set", "api_key", "--value", "s3cret")
    assert r.returncode == 0 and "s3cret" not in r.stdout
    r = run_cli("--app", str(app_dir), "secrets")
    assert "api_key" in r.stdout and "s3cret" not in r.stdout
    write_module(
        app_dir,
        "Sec",
        """
        import anvil.secrets
        import anvil.server

        KEY = anvil.secrets.get_secret("api_key")

        @anvil.server.callable
        def key_length():
            return len(KEY)
    """,
    )
    srv = server_factory(app_dir)
    assert srv.client().call("key_length") == 6
    assert "s3cret" not in srv.output


def test_console_log_names_cli_and_python_callers(server) -> None:
    import json

    import requests

    run_cli("call", "add", "1", "2", "--url", server.url)
    server.client().call("add", 3, 4)
    kinds = []
    with requests.get(server.url + "/_/console/events", stream=True, timeout=10) as r:
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                event = json.loads(line[5:])
                data = event.get("data", event)
                if data.get("command") == "add":
                    kinds.append(data.get("client_type"))
            if len(kinds) == 2:
                break
    assert kinds == ["cli", "python"]


def test_reset_asks_first_and_then_wipes_local_data(app_dir, server_factory) -> None:
    srv = server_factory(app_dir)
    srv.client().call("add_feedback", "Ann", "ann@example.org", "hi")
    srv.stop()
    data = app_dir / ".anvil-dev"
    assert (data / "data.sqlite3").exists()
    import subprocess
    import sys

    from helpers import ROOT

    declined = subprocess.run(
        [sys.executable, "-m", "anvil_dev", "--app", str(app_dir), "reset"],
        input="n\n",
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert declined.returncode == 1 and "Aborted" in declined.stderr and data.exists()
    r = run_cli("--app", str(app_dir), "reset", "--yes")
    assert r.returncode == 0 and not data.exists()
    again = server_factory(app_dir)
    assert again.client().call("list_feedback") == []


def test_console_log_names_the_user_a_call_ran_as(app_dir, server_factory) -> None:
    import json

    import requests

    write_module(
        app_dir,
        "Who",
        """
        import anvil.server
        import anvil.users

        @anvil.server.callable(require_user=True)
        def secret_sum(a, b):
            return a + b
    """,
    )
    srv = server_factory(app_dir)
    c = srv.client()
    c.signup("ann@example.org", "correct horse battery")
    assert c.call("secret_sum", 1, 2) == 3
    assert "user" not in json.dumps(c.call_raw("secret_sum", [1, 2], {}))
    with requests.get(srv.url + "/_/console/events", stream=True, timeout=10) as r:
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                data = json.loads(line[5:]).get("data", {})
                if data.get("command") == "secret_sum":
                    assert data["user"] == "ann@example.org"
                    break
