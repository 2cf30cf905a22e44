"""The host's HTTP routes through Flask's test client, over a stub engine (no processes).

What a browser or client would notice: status codes, Anvil-shaped error replies, the session
cookie, media URLs, and the refusals that keep other sites and other users out.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import ClientDisconnected

from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.host.app import create_app
from anvil_dev.host.events import EventBus
from anvil_dev.host.keepalive import _CountedBody
from anvil_dev.host.routes import call as call_route
from anvil_dev.host.security import COOKIE_NAME, TOKEN_HEADER
from anvil_dev.host.state import HostState, build_state
from anvil_dev.protocol import Caller, Message, Reply, no_such_function
from anvil_dev.scaffold import scaffold


class StubEngine:
    """Answers every call itself: echoes the call back, or what `reply` says."""

    def __init__(self, functions: list[str] | None = None) -> None:
        self.functions = functions or ["hello"]
        self.calls: list[tuple[Message, Caller]] = []
        self.reply: Message | None = None
        self.events: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {"functions": [{"name": n} for n in self.functions]}

    def reload(self, paths: list[str] | None = None) -> None:
        pass

    def hold_replacements(self) -> Callable[[], None]:
        self.events.append("hold")
        return lambda: self.events.append("release")

    def call(self, msg: Message, caller: Caller, raw: bytes | None = None, offer: object = None) -> Reply:
        self.calls.append((msg, caller))
        self.events.append("call")
        if self.reply is not None:
            message = dict(self.reply)
            # As the engine's replies do, a new session id travels beside the body, not in it.
            session_id = message.pop("session_id", None)
            return Reply.from_message(message, session_id=session_id)
        if msg["command"] not in self.functions:
            return Reply.from_message(no_such_function(msg["command"]))
        return Reply.from_message(
            {
                "response": {"args": msg["args"]},
                "objects": [dict(e, path=["response", *e["path"]]) for e in msg.get("objects", [])],
            }
        )


@pytest.fixture
def engine() -> StubEngine:
    return StubEngine()


@pytest.fixture
def state(tmp_path: Path, engine: StubEngine) -> HostState:
    app_dir = AppDir(scaffold(tmp_path / "App"))
    return build_state(app_dir, engine, EventBus(), Settings(host="localhost", port=80))


@pytest.fixture
def app(state: HostState) -> Flask:
    return create_app(state)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _call(client: FlaskClient, command: str = "hello", *args: Any, **headers: str) -> Any:
    return client.post(
        "/_/call",
        data=json.dumps({"command": command, "args": list(args)}),
        content_type="application/json",
        headers=headers,
    )


def _error_type(resp: Any) -> str:
    return str(resp.get_json()["error"]["type"])


def test_call_reaches_the_engine_and_answers_its_reply(client: FlaskClient, engine: StubEngine) -> None:
    resp = _call(client, "hello", 1, "two")
    assert resp.status_code == 200
    assert resp.get_json()["response"] == {"args": [1, "two"]}
    msg, caller = engine.calls[0]
    assert msg["command"] == "hello"
    assert caller.client_type == "browser" and not caller.trusted and caller.ip == "127.0.0.1"


def test_a_calls_spare_is_replaced_once_its_response_is_closed(client: FlaskClient, engine: StubEngine) -> None:
    resp = client.post(
        "/_/call", json={"command": "hello", "args": [1]}, headers={"Origin": "http://localhost"}, buffered=False
    )
    assert resp.status_code == 200 and engine.events == ["hold", "call"]  # not while the response is out
    resp.close()
    assert engine.events == ["hold", "call", "release"]


def test_no_such_function_is_a_404_in_anvils_shape(client: FlaskClient) -> None:
    resp = _call(client, "missing")
    assert resp.status_code == 404
    assert _error_type(resp) == "anvil.server.NoServerFunctionError"


def test_malformed_json_is_refused_before_the_engine(client: FlaskClient, engine: StubEngine) -> None:
    resp = client.post("/_/call", data=b'{"command": "hello", ', content_type="application/json")
    assert resp.status_code == 400
    assert _error_type(resp) == "anvil.server.InternalError"
    assert "Malformed JSON" in resp.get_json()["error"]["message"]
    assert engine.calls == []


def test_objects_outside_the_arguments_are_refused(client: FlaskClient) -> None:
    body = {"command": "hello", "objects": [{"path": ["command"], "type": ["DataMedia"], "id": "x"}]}
    resp = client.post("/_/call", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 400 and _error_type(resp) == "anvil.server.SerializationError"


def test_other_content_types_get_415(client: FlaskClient) -> None:
    resp = client.post("/_/call", data="command=hello", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415
    assert "multipart/form-data" in resp.get_json()["error"]["message"]


def test_a_foreign_origin_is_refused(client: FlaskClient, engine: StubEngine) -> None:
    resp = _call(client, Origin="https://evil.example")
    assert resp.status_code == 403 and _error_type(resp) == "anvil.server.PermissionDenied"
    assert engine.calls == []
    assert _call(client, Origin="http://localhost").status_code == 200


def test_a_foreign_host_on_loopback_is_refused(client: FlaskClient, engine: StubEngine) -> None:
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 is not this server's origin."""
    rebound = {"HTTP_HOST": "evil.example"}
    resp = client.post(
        "/_/call", data=json.dumps({"command": "hello"}), content_type="application/json", environ_overrides=rebound
    )
    assert resp.status_code == 403 and "loopback only" in resp.get_json()["error"]["message"]
    assert engine.calls == []
    # The console has an error handler of its own; the refusal is the same there.
    resp = client.get("/_/console", environ_overrides=rebound)
    assert resp.status_code == 403 and _error_type(resp) == "anvil.server.PermissionDenied"


def test_too_large_bodies_get_413(client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(call_route, "MAX_JSON_BODY", 1000)
    resp = _call(client, "hello", "x" * 2000)
    assert resp.status_code == 413 and _error_type(resp) == "anvil.server.SerializationError"
    # Past the app's limit werkzeug stops reading; the answer is the same.
    app.config["MAX_CONTENT_LENGTH"] = 1000
    resp = client.post(
        "/_/call", data={"json": "{}", "m": (io.BytesIO(b"x" * 2000), "big.bin")}, content_type="multipart/form-data"
    )
    assert resp.status_code == 413 and "too much data" in resp.get_json()["error"]["message"]


def test_calling_as_another_user_needs_the_cli_token(client: FlaskClient, engine: StubEngine, state: HostState) -> None:
    resp = _call(client, **{"X-Anvil-Dev-As": "victim@example.org"})
    assert resp.status_code == 403 and "token" in resp.get_json()["error"]["message"]
    resp = _call(client, **{"X-Anvil-Dev-As": "victim@example.org", TOKEN_HEADER: "wrong"})
    assert resp.status_code == 403
    assert engine.calls == []
    resp = _call(client, **{"X-Anvil-Dev-As": "victim@example.org", TOKEN_HEADER: state.cli_token})
    assert resp.status_code == 200
    assert engine.calls[0][1].user_email_override == "victim@example.org"


def test_multipart_media_are_stored_and_come_back_as_urls(client: FlaskClient, engine: StubEngine) -> None:
    call = {
        "command": "hello",
        "args": [None],
        "objects": [{"path": ["args", 0], "type": ["DataMedia"], "id": "part0", "name": "a.txt"}],
    }
    resp = client.post(
        "/_/call",
        content_type="multipart/form-data",
        data={"json": json.dumps(call), "part0": (io.BytesIO(b"media bytes"), "a.txt", "text/plain")},
    )
    assert resp.status_code == 200
    stored = engine.calls[0][0]["objects"][0]
    assert stored["id"] != "part0" and stored["mime-type"] == "text/plain"
    entry = resp.get_json()["objects"][0]
    assert entry["length"] == len(b"media bytes") and entry["url"].startswith("/_/media/")
    download = client.get(entry["url"])
    assert download.status_code == 200 and download.data == b"media bytes"
    assert download.mimetype == "text/plain" and "a.txt" in download.headers["Content-Disposition"]
    assert client.get("/_/media/not-a-token").status_code == 404


def test_media_in_a_json_call_are_refused(client: FlaskClient) -> None:
    body = {"command": "hello", "args": [None], "objects": [{"path": ["args", 0], "type": ["DataMedia"], "id": "x"}]}
    resp = client.post("/_/call", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 400 and "multipart" in resp.get_json()["error"]["message"]


def test_endpoints_and_routes_are_404_without_registrations(client: FlaskClient, engine: StubEngine) -> None:
    resp = client.get("/favicon.ico")
    assert resp.status_code == 404 and resp.data == b"Not found: /favicon.ico\n"
    assert client.post("/_/api/orders", data=b"{}").status_code == 404
    assert client.get("/_/nothing-here").status_code == 404
    assert engine.calls == []  # no worker spent on them


def test_a_registered_endpoint_gets_the_request_and_shapes_the_reply(client: FlaskClient, engine: StubEngine) -> None:
    engine.functions.append("http:/orders/<id>")
    engine.reply = {"response": {"status": 201, "body": "made", "headers": {"X-Made": "yes"}}, "objects": []}
    resp = client.post("/_/api/orders/7?x=1", data=b"payload", content_type="text/plain")
    assert resp.status_code == 201 and resp.data == b"made" and resp.headers["X-Made"] == "yes"
    msg, caller = engine.calls[0]
    assert msg["command"] == "http:/orders/7" and caller.client_type == "http"
    assert msg["kwargs"]["query_params"] == {"x": "1"} and msg["objects"][0]["path"] == ["kwargs", "body"]


def test_theme_assets_never_leave_theme_assets(client: FlaskClient, state: HostState) -> None:
    assets = state.app_dir.theme_assets
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "ok.css").write_text("body {}")
    (assets.parent / "secret.txt").write_text("secret")
    (assets / "link.txt").symlink_to(state.app_dir.yaml_path)
    assert client.get("/_/theme/ok.css").data == b"body {}"
    for path in (
        "/_/theme/../secret.txt",
        "/_/theme/%2E%2E/secret.txt",
        "/_/theme/link.txt",
        "/_/theme/..%2F..%2Fanvil.yaml",
        "/_/theme//etc/passwd",
    ):
        resp = client.get(path)
        assert resp.status_code == 404, path
        assert b"secret" not in resp.data


def test_the_session_cookie_is_set_on_the_first_call_and_kept(client: FlaskClient, engine: StubEngine) -> None:
    first = _call(client)
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    second = _call(client)
    assert second.status_code == 200 and "Set-Cookie" not in second.headers
    sessions = [caller.session_id for _msg, caller in engine.calls]
    assert sessions[0] and sessions[0] == sessions[1]


def test_a_login_moves_the_caller_to_a_new_session(client: FlaskClient, engine: StubEngine) -> None:
    _call(client)
    engine.reply = {"response": None, "objects": [], "session_id": "rotated-id"}
    resp = _call(client)
    assert "session_id" not in resp.get_json()
    engine.reply = None
    _call(client)
    assert engine.calls[-1][1].session_id == "rotated-id"


def test_email_delivery_needs_the_cli_token(client: FlaskClient, engine: StubEngine, state: HostState) -> None:
    resp = client.post("/_/dev/email", data=b"Subject: hi\r\n\r\nbody", content_type="message/rfc822")
    assert resp.status_code == 403 and engine.calls == []
    engine.reply = {"response": None, "objects": []}
    resp = client.post(
        "/_/dev/email",
        data=b"Subject: hi\r\n\r\nbody",
        content_type="message/rfc822",
        headers={TOKEN_HEADER: state.cli_token},
    )
    assert resp.status_code == 200
    msg, caller = engine.calls[0]
    assert msg["command"] == "email:handle_message" and caller.trusted and caller.client_type == "email"


def test_health_and_the_browser_client(client: FlaskClient, state: HostState) -> None:
    assert client.get("/_/health").get_json() == {"ok": True, "app": state.app_dir.path.name}
    resp = client.get("/_/anvil.js")
    assert resp.status_code == 200 and resp.mimetype == "text/javascript"


def _answers(client: FlaskClient) -> list[tuple[int, list[str], Any]]:
    """Status, header names and body of a set of calls that cover the route's outcomes."""
    out = []
    for data, extra in [
        (json.dumps({"command": "hello", "args": [1]}), {}),
        (json.dumps({"command": "missing"}), {}),
        ('{"command": ', {}),
        (json.dumps({"command": "hello"}), {"headers": {"Origin": "https://evil.example"}}),
        (json.dumps({"command": "hello"}), {"environ_overrides": {"HTTP_HOST": "evil.example"}}),
        # The body read without werkzeug's stream: one that ends short of its length, and lengths
        # left to werkzeug (not a number; more digits than read directly, for this 20-byte body).
        (json.dumps({"command": "hello"}), {"environ_overrides": {"CONTENT_LENGTH": "100"}}),
        (json.dumps({"command": "hello"}), {"environ_overrides": {"CONTENT_LENGTH": "5"}}),
        (json.dumps({"command": "hello"}), {"environ_overrides": {"CONTENT_LENGTH": "abc"}}),
        (json.dumps({"command": "hello"}), {"environ_overrides": {"CONTENT_LENGTH": f"{20:011d}"}}),
    ]:
        resp = client.post("/_/call", data=data, content_type="application/json", **extra)
        out.append((resp.status_code, sorted(k for k, _ in resp.headers), resp.get_json()))
    return out


def test_a_json_call_is_served_without_flask_and_answers_as_the_flask_route(app: Flask, state: HostState) -> None:
    app.view_functions["call.call"] = lambda: ("Flask's route", 500)  # not reached by a JSON call
    served_directly = _answers(app.test_client())
    assert [status for status, _, _ in served_directly] == [200, 404, 400, 403, 403, 400, 400, 400, 200]
    assert "Set-Cookie" in served_directly[0][1]  # the first call's new session
    through_flask = create_app(state)
    through_flask.wsgi_app = through_flask.wsgi_app.flask_wsgi  # type: ignore[attr-defined]
    assert _answers(through_flask.test_client()) == served_directly


class _RecordingStream(io.BytesIO):
    """A request's input that notes the size of each read, and can fail as a dropped socket does."""

    def __init__(self, data: bytes, fail: bool = False) -> None:
        super().__init__(data)
        self.asked: list[int] = []
        self.fail = fail

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(-1 if size is None else size)
        if self.fail:
            raise ConnectionResetError("reset by peer")
        return super().read(size)


def test_a_calls_body_is_read_to_its_length_and_no_further() -> None:
    body, following = json.dumps({"command": "hello"}).encode(), b"POST /_/call HTTP/1.1\r\n"
    raw = _RecordingStream(body + following)
    counted = _CountedBody(raw)
    assert call_route._read_body(counted, len(body)) == body
    # Keep-alive counts the body whole, and the next request on the connection is left unread.
    assert counted.read_bytes == len(body) and raw.read() == following
    # A large body in pieces: a client that declares much and sends little holds little memory.
    big = b"x" * (3 * call_route.READ_PIECE + 5)
    raw = _RecordingStream(big)
    assert call_route._read_body(raw, len(big)) == big
    assert max(raw.asked) == call_route.READ_PIECE
    # Short of its length, or a dropped connection: a disconnected client, as werkzeug answers it.
    for stream in (_RecordingStream(body[:-1]), _RecordingStream(body, fail=True)):
        with pytest.raises(ClientDisconnected):
            call_route._read_body(stream, len(body))


def test_multipart_and_chunked_calls_go_through_flask(app: Flask) -> None:
    app.view_functions["call.call"] = lambda: ("Flask's route", 299)
    client = app.test_client()
    multipart = client.post(
        "/_/call", data={"json": json.dumps({"command": "hello"})}, content_type="multipart/form-data"
    )
    chunked = client.post(
        "/_/call",
        data=b'{"command": "hello"}',
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
    )
    assert (multipart.status_code, chunked.status_code) == (299, 299)
    assert _call(client, "hello").status_code == 200
    # gunicorn marks every request's input as terminated: a plain JSON call still skips Flask there.
    terminated = client.post(
        "/_/call",
        data=json.dumps({"command": "hello"}),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert terminated.status_code == 200


def test_an_exception_in_a_call_is_answered_and_logged_as_flask_does(
    app: Flask, state: HostState, engine: StubEngine, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(*_: Any, **__: Any) -> Reply:
        raise RuntimeError("the engine broke")

    engine.call = failing  # type: ignore[method-assign]
    through_flask = create_app(state)
    through_flask.wsgi_app = through_flask.wsgi_app.flask_wsgi  # type: ignore[attr-defined]
    answers = []
    for each in (app, through_flask):
        caplog.clear()
        resp = _call(each.test_client(), "hello")
        logged = [(r.name, r.getMessage(), r.exc_info is not None) for r in caplog.records if r.levelname == "ERROR"]
        answers.append((resp.status_code, resp.headers.get("Connection"), resp.data, logged))
    assert answers[0] == answers[1]
    assert answers[0][0] == 500 and answers[0][3] == [("anvil_dev", "Exception on /_/call [POST]", True)]


class _WrittenElsewhere(StubEngine):
    """Replies as a child does that wrote the response to the client's socket itself."""

    def call(self, msg: Message, caller: Caller, raw: bytes | None = None, offer: object = None) -> Reply:
        super().call(msg, caller, raw, offer)
        return Reply(body=b'{"response": 3}', written=True)


@pytest.mark.parametrize("through_flask", [False, True])
def test_a_response_written_elsewhere_gets_nothing_from_the_host(
    tmp_path: Path, through_flask: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _WrittenElsewhere()
    state = build_state(AppDir(scaffold(tmp_path / "App")), engine, EventBus(), Settings(host="localhost", port=80))
    app = create_app(state)
    if through_flask:  # as a chunked call goes: the route under Flask, not CallsWithoutFlask
        assert isinstance(app.wsgi_app, call_route.CallsWithoutFlask)
        app.wsgi_app = app.wsgi_app.flask_wsgi  # type: ignore[method-assign]
    sent: list[bool] = []
    monkeypatch.setattr(call_route, "response_sent", lambda environ, broken=False: sent.append(broken))
    resp = app.test_client().post("/_/call", json={"command": "hello"}, buffered=False)
    assert resp.status_code == 200
    assert sent == [False] and resp.get_data() == b""  # the body is the child's to write, not the host's
    assert engine.events == ["hold", "call"]  # the spare is replaced once the response is closed
    resp.close()
    assert engine.events == ["hold", "call", "release"]
