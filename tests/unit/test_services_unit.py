"""In-process tests of anvil.email, anvil.secrets, anvil.http and anvil.tz over their services.

The runtime `anvil` package is imported from anvil_dev/runtime (not the anvil-uplink install), and
the services are pointed at an app written into tmp_path. SMTP and HTTP servers run on 127.0.0.1.
"""

from __future__ import annotations

import base64
import datetime as dt
import errno
import http.server
import json
import os
import socket
import stat
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import anvil_dev
from anvil_dev import services, wire
from anvil_dev.appdir import AppDir
from anvil_dev.services import outbox

from helpers import load_runtime

RUNTIME = Path(anvil_dev.__file__).parent / "runtime"


@pytest.fixture(scope="module")
def rt() -> types.SimpleNamespace:
    """The runtime's anvil modules (anvil-uplink's own `anvil` package is set aside if loaded)."""
    return load_runtime("email", "http", "tz", "secrets", "server")


APP_YAML: dict[str, Any] = {
    "name": "Svc",
    "package_name": "Svc",
    "services": [{"source": "/runtime/services/anvil/email.yml", "client_config": {}, "server_config": {}}],
    "secrets": {
        "api_key": {"type": "secret", "value": {"XYZ": "encrypted-on-anvil"}},
        "webhook_token": {"type": "secret", "value": {"XYZ": "encrypted-on-anvil"}},
        "data_key": {"type": "key", "value": {"XYZ": "encrypted-on-anvil"}},
    },
}


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppDir:
    for var in list(os.environ):
        if var.startswith(("ANVIL_DEV_SMTP_", "ANVIL_DEV_SECRET_", "ANVIL_DEV_ENCRYPTION_KEY_")):
            monkeypatch.delenv(var)
    (tmp_path / "anvil.yaml").write_text(yaml.safe_dump(APP_YAML))
    (tmp_path / "server_code").mkdir()
    services.open(tmp_path)
    return services.current().app_dir


# ---------------------------------------------------------------------------------------------
# anvil.tz


def test_tz_matches_anvil_repr_and_offsets(rt: Any) -> None:
    tz = rt.tz
    assert repr(tz.tzoffset(hours=2)) == "<anvil.tz.tzoffset (2.0 hour offset)>"
    assert repr(tz.tzoffset(minutes=-90)) == "<anvil.tz.tzoffset (-1.5 hour offset)>"
    assert repr(tz.tzutc()) == "<anvil.tz.tzutc>"
    local_hours = time.localtime().tm_gmtoff / 3600
    assert repr(tz.tzlocal()) == f"<anvil.tz.tzlocal ({local_hours} hour offset)>"
    assert tz.tzoffset(minutes=90).utcoffset(None) == dt.timedelta(hours=1, minutes=30)
    assert tz.tzutc().utcoffset(None) == dt.timedelta(0)
    assert isinstance(tz.UTC, dt.tzinfo)
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz.tzoffset(hours=5))
    assert when.isoformat() == "2024-01-02T03:04:05+05:00"
    assert when.astimezone(tz.tzutc()).hour == 22


def test_tzoffset_needs_exactly_one_unit_as_on_anvil(rt: Any) -> None:
    # Anvil's tz.py line 8: no argument is an offset of zero; two units are refused.
    assert rt.tz.tzoffset().utcoffset(None) == dt.timedelta(0)
    with pytest.raises(TypeError, match="precisely one of 'seconds', 'minutes' or 'hours'"):
        rt.tz.tzoffset(hours=1, minutes=30)


def test_tz_datetimes_cross_the_wire_with_their_offset(rt: Any) -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=rt.tz.tzoffset(hours=-3))
    msg = wire.encode({"response": {"when": when, "utc": when.astimezone(rt.tz.tzutc())}})
    values = {o["path"][-1]: o["value"] for o in msg["objects"]}
    assert values == {"when": "2024-05-06 07:08:09.123456-0300", "utc": "2024-05-06 10:08:09.123456+0000"}
    back = wire.decode(json.loads(json.dumps(msg)))["response"]["when"]
    assert back == when
    anvil_style = rt.tz.as_anvil_tz(back)
    assert isinstance(anvil_style.tzinfo, rt.tz.tzoffset)
    assert repr(anvil_style.tzinfo) == "<anvil.tz.tzoffset (-3.0 hour offset)>"
    assert anvil_style == when


# ---------------------------------------------------------------------------------------------
# anvil.secrets


def test_secret_from_environment_then_file(rt: Any, app: AppDir, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(rt.secrets.SecretError, match="^No such secret 'api_key'$"):
        rt.secrets.get_secret("api_key")
    services.current().secrets.set_secret("api_key", "from-file")
    assert rt.secrets.get_secret("api_key") == "from-file"
    monkeypatch.setenv("ANVIL_DEV_SECRET_api_key", "from-env")
    services.open(app.path)  # settings, the environment's included, are read when services open
    assert rt.secrets.get_secret("api_key") == "from-env"
    assert isinstance(rt.secrets.SecretError("x"), rt.server.AnvilWrappedError)


def test_secrets_file_is_private_and_names_never_values(rt: Any, app: AppDir) -> None:
    services.current().secrets.set_secret("webhook_token", "s3cr3t-value")
    path = app.data_dir / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert services.current().secrets.list_secret_names() == ["webhook_token"]
    assert "s3cr3t-value" not in repr(services.current().secrets.list_secret_names())


def test_missing_secrets_names_unset_ones_only(app: AppDir, monkeypatch: pytest.MonkeyPatch) -> None:
    assert services.current().secrets.missing_secrets() == ["api_key", "webhook_token"]
    line = services.current().secrets.missing_secrets_message()
    assert line is not None and "api_key, webhook_token" in line and "anvil-dev secrets set NAME" in line
    services.current().secrets.set_secret("api_key", "v")
    monkeypatch.setenv("ANVIL_DEV_SECRET_webhook_token", "w")
    services.open(app.path)
    assert services.current().secrets.missing_secrets() == []
    assert services.current().secrets.missing_secrets_message() is None


def test_encrypt_with_key_is_aes_gcm_with_iv_prefix(rt: Any, app: AppDir, monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(range(16))
    monkeypatch.setenv("ANVIL_DEV_ENCRYPTION_KEY_mykey", base64.b64encode(key).decode())
    services.open(app.path)  # settings are read from the environment when services open
    token = rt.secrets.encrypt_with_key("mykey", "hello wörld")
    raw = base64.b64decode(token)
    # The App Server's format: 12-byte IV, then ciphertext with its 16-byte tag.
    assert len(raw) == 12 + len("hello wörld".encode()) + 16
    assert AESGCM(key).decrypt(raw[:12], raw[12:], None).decode() == "hello wörld"
    assert rt.secrets.decrypt_with_key("mykey", token) == "hello wörld"
    assert rt.secrets.encrypt_with_key("mykey", "hello wörld") != token  # a fresh IV each time


def test_decrypt_refuses_other_keys_and_tampering(rt: Any, app: AppDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANVIL_DEV_ENCRYPTION_KEY_a", base64.b64encode(b"A" * 16).decode())
    monkeypatch.setenv("ANVIL_DEV_ENCRYPTION_KEY_b", base64.b64encode(b"B" * 16).decode())
    services.open(app.path)
    token = rt.secrets.encrypt_with_key("a", "payload")
    with pytest.raises(rt.secrets.SecretError, match="different key, or has been altered"):
        rt.secrets.decrypt_with_key("b", token)
    raw = bytearray(base64.b64decode(token))
    raw[-1] ^= 1
    with pytest.raises(rt.secrets.SecretError, match="altered"):
        rt.secrets.decrypt_with_key("a", base64.b64encode(bytes(raw)).decode())
    with pytest.raises(rt.secrets.SecretError, match="^No such encryption key 'nokey'$"):
        rt.secrets.encrypt_with_key("nokey", "x")


def test_declared_key_is_made_once_and_kept(rt: Any, app: AppDir) -> None:
    token = rt.secrets.encrypt_with_key("data_key", "kept")
    stored = json.loads((app.data_dir / "secrets.json").read_text())["keys"]["data_key"]
    assert len(base64.b64decode(stored)) == 16
    assert rt.secrets.decrypt_with_key("data_key", token) == "kept"
    assert services.current().secrets.missing_secrets() == ["api_key", "webhook_token"]  # keys are not "missing"


# ---------------------------------------------------------------------------------------------
# anvil.email: outbox


def test_send_keeps_mail_in_outbox_and_prints_one_line(rt: Any, app: AppDir, capfd: pytest.CaptureFixture[str]) -> None:
    report = rt.email.send(
        to="Ann <ann@x.org>",
        cc=["bob@y.org"],
        bcc="eve@z.org",
        from_name="Shop",
        subject="Your order",
        text="Thanks!",
        html="<p>Thanks!</p>",
        attachments=[rt.anvil.BlobMedia("application/pdf", b"%PDF-1.4 fake", name="invoice.pdf")],
    )
    out, err = capfd.readouterr()
    assert err.strip().splitlines() == ["[email] to ann@x.org: Your order"]
    assert out == ""
    assert report.message_id.startswith("<") and report.message_id.endswith("@localhost>")

    [listed] = services.current().outbox.list_messages()
    assert listed["to"] == ["Ann <ann@x.org>"] and listed["cc"] == ["bob@y.org"] and listed["bcc"] == ["eve@z.org"]
    assert listed["subject"] == "Your order" and listed["status"] == "outbox" and listed["attachments"] == 1
    assert listed["from"] == "Shop <no-reply@localhost>"
    msg = services.current().outbox.get_message(listed["id"])
    assert msg is not None
    assert (msg["text"], msg["html"], msg["message_id"]) == ("Thanks!", "<p>Thanks!</p>", report.message_id)
    [att] = msg["attachments"]
    assert (att["name"], att["content_type"], att["content"]) == ("invoice.pdf", "application/pdf", b"%PDF-1.4 fake")
    eml = services.current().outbox.message_eml(listed["id"])
    assert eml is not None and b"Bcc" not in eml and b"eve@z.org" not in eml
    assert services.current().outbox.get_message(999) is None
    # The console's way: no app_dir where services are configured, ids as text.
    assert services.current().outbox.list_messages(limit=1)[0]["id"] == listed["id"]
    assert services.current().outbox.get_message(str(listed["id"]))["subject"] == "Your order"
    assert services.current().outbox.get_message("nonsense") is None


def test_send_refuses_bad_recipients_with_send_failure(rt: Any, app: AppDir) -> None:
    with pytest.raises(rt.email.SendFailure, match="at least one recipient"):
        rt.email.send(subject="nobody")
    with pytest.raises(rt.email.SendFailure, match="'not-an-address' in to is not an email address"):
        rt.email.send(to="not-an-address", subject="x")
    with pytest.raises(TypeError, match="attachments must be Media"):
        rt.email.send(to="a@b.org", attachments=["file.txt"])
    assert services.current().outbox.list_messages() == []
    assert isinstance(rt.email.SendFailure("x"), rt.server.AnvilWrappedError)


class _Inbox:
    """An aiosmtpd handler that keeps what it receives, and refuses recipients at refuse.example."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.endswith("@refuse.example"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.original_content,
                "login": session.auth_data,
            }
        )
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mailer", b"pw")
    return AuthResult(success=ok, auth_data=auth_data.login if ok else None)


@pytest.fixture
def smtp(app: AppDir, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Inbox]:
    inbox = _Inbox()
    port = _free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_authenticate, auth_require_tls=False)
    ctl.start()
    monkeypatch.setenv("ANVIL_DEV_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ANVIL_DEV_SMTP_PORT", str(port))
    monkeypatch.setenv("ANVIL_DEV_SMTP_ENCRYPTION", "none")
    services.open(app.path)
    try:
        yield inbox
    finally:
        ctl.stop()


def test_send_relays_through_smtp_with_login(
    rt: Any, app: AppDir, smtp: _Inbox, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANVIL_DEV_SMTP_USER", "mailer")
    monkeypatch.setenv("ANVIL_DEV_SMTP_PASSWORD", "pw")
    services.open(app.path)
    rt.email.send(
        to="ann@x.org",
        bcc="eve@z.org",
        from_address="shop@example.com",
        subject="Relayed",
        html='<img src="cid:logo">',
        inline_attachments={"logo": rt.anvil.BlobMedia("image/png", b"PNG!")},
    )
    [got] = smtp.received
    assert got["from"] == "shop@example.com" and got["to"] == ["ann@x.org", "eve@z.org"]
    assert got["login"] == b"mailer"
    parsed = rt.email.message_from_eml(got["data"])
    assert parsed.subject == "Relayed" and parsed.get_header("Bcc") is None
    assert parsed.inline_attachments["logo"].get_bytes() == b"PNG!"
    # Bcc recipients get the mail but are not shown, as they are not in the headers.
    assert "[email] to ann@x.org: Relayed (relayed via 127.0.0.1:" in capfd.readouterr().err
    assert services.current().outbox.list_messages()[0]["status"] == "relayed"


def test_smtp_settings_can_come_from_anvil_yaml(
    rt: Any, app: AppDir, smtp: _Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = os.environ["ANVIL_DEV_SMTP_PORT"]
    for var in ("HOST", "PORT", "ENCRYPTION"):
        monkeypatch.delenv("ANVIL_DEV_SMTP_" + var)
    config = dict(
        APP_YAML,
        services=[
            {
                "source": "/runtime/services/anvil/email.yml",
                "server_config": {
                    "custom_smtp": True,
                    "smtp_host": "127.0.0.1",
                    "smtp_port": int(port),
                    "smtp_encryption": "none",
                },
            }
        ],
    )
    (app.path / "anvil.yaml").write_text(yaml.safe_dump(config))
    services.open(app.path)
    rt.email.send(to="ann@x.org", subject="Via yaml")
    assert [r["to"] for r in smtp.received] == [["ann@x.org"]]


def test_refused_relay_raises_send_failure_and_is_marked(rt: Any, app: AppDir, smtp: _Inbox) -> None:
    with pytest.raises(rt.email.SendFailure, match="550"):
        rt.email.send(to="nobody@refuse.example", subject="Bounce")
    [listed] = services.current().outbox.list_messages()
    assert listed["status"] == "failed" and "550" in listed["error"]
    assert smtp.received == []


def test_unreachable_smtp_server_says_where(rt: Any, app: AppDir, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv("ANVIL_DEV_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ANVIL_DEV_SMTP_PORT", str(port))
    services.open(app.path)
    with pytest.raises(rt.email.SendFailure, match=f"Could not send email via SMTP server 127.0.0.1:{port}"):
        rt.email.send(to="ann@x.org", subject="Lost")
    assert services.current().outbox.list_messages()[0]["status"] == "failed"


def test_bad_smtp_encryption_is_named(app: AppDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANVIL_DEV_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ANVIL_DEV_SMTP_ENCRYPTION", "tls")
    services.open(app.path)
    with pytest.raises(outbox.OutboxError, match="'tls' is not one of ssl, starttls, none"):
        services.current().outbox.smtp_config()


# ---------------------------------------------------------------------------------------------
# anvil.email: incoming


@pytest.fixture
def no_handler(rt: Any) -> Iterator[None]:
    rt.server.registrations.pop(rt.email.INBOUND_NAME, None)
    yield
    rt.server.registrations.pop(rt.email.INBOUND_NAME, None)


def test_handle_message_receives_a_delivered_eml(rt: Any, app: AppDir, no_handler: None) -> None:
    rt.email.send(
        to="Support <support@app.example>",
        from_address="ann@x.org",
        from_name="Ann",
        subject="Help",
        text="It broke",
        html="<b>It broke</b>",
        attachments=[rt.anvil.BlobMedia("text/csv", b"a,b\n1,2\n", name="data.csv")],
        inline_attachments={"pic": rt.anvil.BlobMedia("image/png", b"\x89PNG")},
    )
    eml = services.current().outbox.message_eml(services.current().outbox.list_messages()[0]["id"])
    got: list[Any] = []

    @rt.email.handle_message
    def incoming(msg: Any) -> None:
        got.append(msg)

    assert rt.email.get_inbound_handler() is incoming
    rt.email.deliver_eml(eml)
    [msg] = got
    assert (msg.subject, msg.text.strip(), msg.html.strip()) == ("Help", "It broke", "<b>It broke</b>")
    assert msg.envelope.from_address == "ann@x.org" and msg.envelope.recipient == "support@app.example"
    assert msg.addressees.from_address.raw_value == "Ann <ann@x.org>"
    assert [a.address for a in msg.addressees.to_addresses] == ["support@app.example"]
    assert [(a.name, a.get_bytes()) for a in msg.attachments] == [("data.csv", b"a,b\n1,2\n")]
    assert msg.inline_attachments["pic"].get_bytes() == b"\x89PNG"
    assert msg.get_header("subject") == "Help" and msg.dkim.valid_from_sender is False


def test_reply_threads_to_the_sender(rt: Any, app: AppDir, no_handler: None) -> None:
    eml = (
        b"From: Ann <ann@x.org>\r\nTo: help@app.example\r\nSubject: Question\r\nMessage-ID: <q1@x.org>\r\n\r\nHow?\r\n"
    )

    @rt.email.handle_message
    def incoming(msg: Any) -> None:
        msg.reply(text="Like this.")

    rt.email.deliver_eml(eml)
    [sent] = services.current().outbox.list_messages()
    assert sent["to"] == ["Ann <ann@x.org>"] and sent["subject"] == "Question"
    full = services.current().outbox.get_message(sent["id"])
    assert full is not None and full["from_address"] == "help@app.example"
    assert full["headers"]["In-Reply-To"] == "<q1@x.org>"


def test_require_dkim_rejects_unsigned_mail(rt: Any, app: AppDir, no_handler: None) -> None:
    eml = b"From: mallory@evil.example\r\nTo: a@app.example\r\nSubject: hi\r\n\r\nbody\r\n"
    seen: list[str] = []

    @rt.email.handle_message(require_dkim=True)
    def incoming(msg: Any) -> None:
        seen.append(msg.subject)

    with pytest.raises(rt.email.DeliveryFailure, match="No valid DKIM signature for mallory@evil.example"):
        rt.email.deliver_eml(eml)
    rt.email.deliver_eml(eml, dkim_valid=True)
    assert seen == ["hi"]


def test_registered_handler_takes_raw_eml_as_the_engine_passes_it(rt: Any, app: AppDir, no_handler: None) -> None:
    subjects: list[str] = []

    @rt.email.handle_message
    def incoming(msg: Any) -> None:
        subjects.append(msg.subject)

    registered = rt.server.lookup("email:handle_message").fn
    registered(rt.anvil.BlobMedia("message/rfc822", b"Subject: as media\r\n\r\nx"))
    registered(b"Subject: as bytes\r\n\r\nx")
    assert subjects == ["as media", "as bytes"]


def test_deliver_without_handler_says_how_to_add_one(rt: Any, app: AppDir, no_handler: None) -> None:
    with pytest.raises(rt.server.NoServerFunctionError, match="@anvil.email.handle_message"):
        rt.email.deliver_eml(b"Subject: x\r\n\r\ny")


# ---------------------------------------------------------------------------------------------
# anvil.http


class _Handler(http.server.BaseHTTPRequestHandler):
    release = threading.Event()

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/missing":
            self._reply(404, b"nope", "text/plain")
        elif self.path == "/slow":
            self.release.wait(10)
            self._reply(200, b"late", "text/plain")
        elif self.path == "/file":
            self._reply(200, b"col\n1\n", "text/csv", {"Content-Disposition": 'attachment; filename="r.csv"'})
        else:
            echo = {
                "method": self.command,
                "path": self.path,
                "body": body.decode(),
                "content_type": self.headers.get("Content-Type"),
                "authorization": self.headers.get("Authorization"),
            }
            self._reply(200, json.dumps(echo).encode(), "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = _any


@pytest.fixture
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    _Handler.release.clear()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _Handler.release.set()
        server.shutdown()
        server.server_close()


def test_request_returns_media(rt: Any, web: str) -> None:
    resp = rt.http.request(web + "/file")
    assert isinstance(resp, rt.anvil.Media)
    assert (resp.content_type, resp.name, resp.get_bytes()) == ("text/csv", "r.csv", b"col\n1\n")


def test_request_json_sends_and_parses_json(rt: Any, web: str) -> None:
    echo = rt.http.request(
        web + "/api?q=1",
        method="POST",
        data={"n": [1, 2]},
        json=True,
        username="ann",
        password="pw",
        headers={"X-Test": "1"},
    )
    assert echo["method"] == "POST" and echo["path"] == "/api?q=1"
    assert json.loads(echo["body"]) == {"n": [1, 2]} and echo["content_type"] == "application/json"
    assert echo["authorization"] == "Basic " + base64.b64encode(b"ann:pw").decode()
    media_echo = rt.http.request(web, method="PUT", data=rt.anvil.BlobMedia("text/csv", b"x,y"), json=True)
    assert (media_echo["body"], media_echo["content_type"]) == ("x,y", "text/csv")
    # A dict without json=True is form-encoded (issue 21; Anvil's platform http handler).
    form = json.loads(rt.http.request(web, method="POST", data={"n": 1}).get_bytes())
    assert (form["body"], form["content_type"]) == ("n=1", "application/x-www-form-urlencoded")


def test_request_data_encoded_as_anvil(rt: Any, web: str) -> None:
    # server/core/src/anvil/dispatcher/native_rpc_handlers/http.clj lines 84-90: a dict is form-encoded
    # with ring's url-encode (a space is %20, values as Clojure's str), or JSON when a Content-Type is
    # given; lines 41-49 and 96: a GET's data becomes the query string unless the URL has one.
    form = json.loads(rt.http.request(web, method="POST", data={"a": "x y", "b": True, "c": None}).get_bytes())
    assert form["body"] == "a=x%20y&b=true&c="
    as_json = json.loads(
        rt.http.request(web, method="POST", data={"n": 1}, headers={"Content-Type": "application/json"}).get_bytes()
    )
    assert (json.loads(as_json["body"]), as_json["content_type"]) == ({"n": 1}, "application/json")
    got = json.loads(rt.http.request(web + "/q#top", data={"k": "v w"}).get_bytes())
    assert (got["method"], got["path"], got["body"]) == ("GET", "/q?k=v%20w", "")
    kept = json.loads(rt.http.request(web + "/q?already=1", data={"k": "v"}).get_bytes())
    assert kept["path"] == "/q?already=1"
    as_str = rt.http.request(web + "/q", data="raw=1", json=True)
    assert as_str["path"] == "/q?raw=1"
    with pytest.raises(rt.anvil.server.AnvilWrappedError, match="^Cannot use a list as the body of an HTTP request$"):
        rt.http.request(web, method="POST", data=[1])
    listed = json.loads(rt.http.request(web, method="POST", data=[1], json=True)["body"])  # json=True: JSON
    assert listed == [1]


def test_http_error_has_status_and_content(rt: Any, web: str) -> None:
    with pytest.raises(rt.http.HttpError) as info:
        rt.http.request(web + "/missing")
    assert info.value.status == 404 and info.value.content.get_bytes() == b"nope"
    assert str(info.value) == "HTTP error 404"


def test_no_response_errors_say_why(rt: Any, web: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(rt.http.HttpRequestFailed, match="no response within 0.3 seconds") as info:
        rt.http.request(web + "/slow", timeout=0.3)
    assert not hasattr(info.value, "status")  # Anvil's http.py line 22: no response, no status
    closed = f"http://127.0.0.1:{_free_port()}/"
    with pytest.raises(rt.http.HttpRequestFailed, match="connection refused"):
        rt.http.request(closed)

    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(rt.http.HttpRequestFailed, match="may have no network access") as info:
        rt.http.request("https://api.example.com/v1")
    assert not hasattr(info.value, "status")  # Anvil's http.py line 22: no response, no status

    def no_route(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_route)
    with pytest.raises(rt.http.HttpRequestFailed, match="no network access from this machine"):
        rt.http.request("http://93.184.216.34/")


def test_url_encode_and_decode(rt: Any) -> None:
    assert rt.http.url_encode("a b&c/é") == "a%20b%26c%2F%C3%A9"
    assert rt.http.url_decode("a%20b%26c%2F%C3%A9") == "a b&c/é"
    with pytest.raises(rt.http.UrlEncodingError, match="^This is not a valid URL-encoded string$"):
        rt.http.url_decode("100%zz")
    # ring-codec 1.2.0's percent-decode, which Anvil's http.clj line 153 calls: only "%" and two
    # letters or digits is an escape; "%g1" is one that is not hex, "%" alone and "+" stay.
    assert rt.http.url_decode("100% a+b %4") == "100% a+b %4"
    assert rt.http.url_decode("%ff") == "\ufffd"  # not UTF-8: replaced, as Java's String decoding does
    for bad in ("%g1", "%C3%zz", 5, None):
        with pytest.raises(rt.http.UrlEncodingError):
            rt.http.url_decode(bad)
