"""anvil.secrets, anvil.email, anvil.http and anvil.tz through a real `anvil-dev serve`.

Mail is relayed through an aiosmtpd server and HTTP requests go to a tiny server, both on
127.0.0.1 in this process.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from anvil_dev import services
from anvil_dev.client import ServerError

from helpers import ServerProcess, free_port, write_module

APP_YAML = """\
name: SvcApp
package_name: SvcApp
runtime_options: {version: 2}
services:
- source: /runtime/services/anvil/email.yml
  client_config: {}
  server_config: {}
- source: /runtime/services/anvil/secrets.yml
  client_config: {}
  server_config: {}
secrets:
  api_key: {type: secret, value: {ABC: encrypted-on-anvil}}
  data_key: {type: key, value: {ABC: encrypted-on-anvil}}
"""

SERVICES_MODULE = """
    import datetime

    import anvil
    import anvil.email
    import anvil.http
    import anvil.secrets
    import anvil.server
    import anvil.tz

    # As public Anvil apps do: read a secret once, when the module is imported.
    API_KEY = anvil.secrets.get_secret("api_key")

    @anvil.server.callable
    def api_key():
        return API_KEY

    @anvil.server.callable
    def other_secret(name):
        return anvil.secrets.get_secret(name)

    @anvil.server.callable
    def key_roundtrip(text):
        token = anvil.secrets.encrypt_with_key("data_key", text)
        return token, anvil.secrets.decrypt_with_key("data_key", token)

    @anvil.server.callable
    def send(to, subject, **kw):
        report = anvil.email.send(to=to, subject=subject, text="Hello from the app",
                                  attachments=[anvil.BlobMedia("text/plain", b"attached", name="note.txt")], **kw)
        return report.message_id

    @anvil.server.callable
    def fetch_json(url, payload):
        return anvil.http.request(url, method="POST", data=payload, json=True)

    @anvil.server.callable
    def fetch_media(url):
        return anvil.http.request(url)

    @anvil.server.callable
    def fetch_status(url):
        try:
            anvil.http.request(url)
        except anvil.http.HttpError as e:
            return e.status, e.content.get_bytes().decode()

    @anvil.server.callable
    def encoded(text):
        return anvil.http.url_encode(text)

    @anvil.server.callable
    def five_hours_east():
        return datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=anvil.tz.tzoffset(hours=5))

    @anvil.server.callable
    def shift(when):
        return {"offset_minutes": when.utcoffset().total_seconds() / 60,
                "in_utc": when.astimezone(anvil.tz.tzutc()),
                "later": when + datetime.timedelta(hours=1)}
"""


@pytest.fixture
def svc_app(tmp_path: Path) -> Path:
    app = tmp_path / "SvcApp"
    (app / "server_code").mkdir(parents=True)
    (app / "client_code").mkdir()
    (app / "anvil.yaml").write_text(APP_YAML)
    write_module(app, "Services", SERVICES_MODULE)
    return app


class _Inbox:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's name
        self.received.append(
            {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "data": envelope.original_content}
        )
        self.arrived.set()
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox, port = _Inbox(), free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield inbox, port
    finally:
        ctl.stop()


class _Echo(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # http.server's name
        if self.path == "/gone":
            self._send(410, b"gone for good", "text/plain")
        else:
            self._send(200, b"<h1>page</h1>", "text/html")

    def do_POST(self) -> None:  # http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(
            200,
            json.dumps({"got": json.loads(body), "type": self.headers["Content-Type"]}).encode(),
            "application/json",
        )


@pytest.fixture
def web() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def svc_server(svc_app: Path, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(svc_app, "--secret", "api_key=k-123")


def test_secret_read_at_import_time_and_missing_ones_named(svc_server: ServerProcess) -> None:
    c = svc_server.client()
    assert c.call("api_key") == "k-123"
    with pytest.raises(ServerError) as info:
        c.call("other_secret", "nope")
    assert (info.value.type, info.value.message) == ("anvil.secrets.SecretError", "No such secret 'nope'")
    token, back = c.call("key_roundtrip", "card 4242")
    assert back == "card 4242" and "card" not in token
    assert "k-123" not in svc_server.output  # values are never logged


def test_unset_secret_at_import_fails_every_call_clearly(
    svc_app: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    c = server_factory(svc_app).client()
    with pytest.raises(ServerError) as info:
        c.call("encoded", "x")
    assert info.value.type == "anvil.secrets.SecretError" and "No such secret 'api_key'" in info.value.message


def test_email_kept_in_outbox_and_shown_in_terminal(svc_server: ServerProcess, svc_app: Path) -> None:
    mark = svc_server.mark()
    message_id = svc_server.client().call("send", "ann@x.org", "Welcome aboard")
    svc_server.wait_for_output("[email] to ann@x.org: Welcome aboard", after=mark)
    [listed] = services.open(svc_app).outbox.list_messages()
    assert listed["subject"] == "Welcome aboard" and listed["status"] == "outbox"
    msg = services.open(svc_app).outbox.get_message(listed["id"])
    assert msg is not None and msg["message_id"] == message_id and msg["text"] == "Hello from the app"
    assert [(a["name"], a["content"]) for a in msg["attachments"]] == [("note.txt", b"attached")]


def test_email_relayed_through_smtp_server(
    svc_app: Path, server_factory: Callable[..., ServerProcess], smtp: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp
    srv = server_factory(
        svc_app,
        "--secret",
        "api_key=k",
        env={"ANVIL_DEV_SMTP_HOST": "127.0.0.1", "ANVIL_DEV_SMTP_PORT": str(port), "ANVIL_DEV_SMTP_ENCRYPTION": "none"},
    )
    srv.client().call("send", "ann@x.org", "Relayed", cc="bob@y.org", from_address="shop@example.com")
    assert inbox.arrived.wait(10)
    [got] = inbox.received
    assert got["from"] == "shop@example.com" and got["to"] == ["ann@x.org", "bob@y.org"]
    assert b"Subject: Relayed" in got["data"] and b"Hello from the app" in got["data"]
    srv.wait_for_output(f"[email] to ann@x.org: Relayed (relayed via 127.0.0.1:{port})")
    assert services.open(svc_app).outbox.list_messages()[0]["status"] == "relayed"


def test_failed_relay_reaches_the_caller_as_send_failure(
    svc_app: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    dead = free_port()
    srv = server_factory(
        svc_app, "--secret", "api_key=k", env={"ANVIL_DEV_SMTP_HOST": "127.0.0.1", "ANVIL_DEV_SMTP_PORT": str(dead)}
    )
    with pytest.raises(ServerError) as info:
        srv.client().call("send", "ann@x.org", "Lost")
    assert info.value.type == "anvil.email.SendFailure"
    assert f"SMTP server 127.0.0.1:{dead}" in info.value.message


def test_http_request_from_server_code(svc_server: ServerProcess, web: str) -> None:
    c = svc_server.client()
    assert c.call("fetch_json", web + "/api", {"n": [1, 2]}) == {"got": {"n": [1, 2]}, "type": "application/json"}
    page = c.call("fetch_media", web + "/page")
    assert page.content_type == "text/html" and page.get_bytes() == b"<h1>page</h1>"
    assert c.call("fetch_status", web + "/gone") == [410, "gone for good"]
    assert c.call("encoded", "a b/é") == "a%20b%2F%C3%A9"
    with pytest.raises(ServerError) as info:
        c.call("fetch_media", f"http://127.0.0.1:{free_port()}/")
    assert info.value.type == "anvil.http.HttpRequestFailed" and "connection refused" in info.value.message


def test_tz_datetimes_on_the_wire(svc_server: ServerProcess) -> None:
    c = svc_server.client()
    east = c.call("five_hours_east")
    assert east.utcoffset() == dt.timedelta(hours=5) and (east.hour, east.minute) == (3, 4)
    sent = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    got = c.call("shift", sent)
    assert got["offset_minutes"] == -420
    assert got["in_utc"] == sent and got["in_utc"].utcoffset() == dt.timedelta(0)
    assert got["later"] - sent == dt.timedelta(hours=1) and got["later"].utcoffset() == dt.timedelta(hours=-7)
