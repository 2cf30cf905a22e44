"""Replay of logged calls: the ring of recent calls (host/replay.py) and the routes that rerun them,
the CLI's (token-guarded) and the console's (loopback-only), through Flask's test client over a stub engine."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.host.app import create_app
from anvil_dev.host.events import EventBus
from anvil_dev.host.replay import CallRing, ReplayRefused, find, run_again
from anvil_dev.host.routes.replay import REPLAY_HEADER
from anvil_dev.host.security import COOKIE_NAME, TOKEN_HEADER
from anvil_dev.host.state import HostState, build_state
from anvil_dev.protocol import Caller, Message, Reply
from anvil_dev.scaffold import scaffold


class CountingEngine:
    """Answers `add` with the sum times `factor` (an "edit" changes the factor); records every call."""

    def __init__(self) -> None:
        self.factor = 1
        self.calls: list[tuple[Message, Caller]] = []
        self.rotate_to: str | None = None
        self.user: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"functions": [{"name": "add"}, {"name": "size"}]}

    def reload(self, paths: list[str] | None = None) -> None:
        pass

    def hold_replacements(self) -> Callable[[], None]:
        return lambda: None

    def call(self, msg: Message, caller: Caller, raw: bytes | None = None, offer: object = None) -> Reply:
        self.calls.append((msg, caller))
        msg["args"].append("changed by the handler")  # the ring must have kept its own copy
        if msg["command"] == "size":
            return Reply.from_message({"response": len(msg["objects"]), "objects": []}, user=self.user)
        a, b = msg["args"][:2]
        return Reply.from_message(
            {"response": (a + b) * self.factor, "objects": []},
            session_id=self.rotate_to,
            user=self.user or caller.user_email_override,
        )


def _caller(session: str = "S1", user: str | None = None) -> Caller:
    return Caller(
        client_type="browser", session_id=session, call_stack=[{"type": "browser"}], user_email_override=user, via="cli"
    )


# ---- the ring -------------------------------------------------------------------------------------


def test_the_ring_keeps_a_copy_of_the_call_and_caller() -> None:
    ring = CallRing()
    msg = {"command": "add", "args": [1, [2, 3]], "kwargs": {"k": "v"}, "objects": []}
    caller = _caller(user="ann@example.org")
    entry = ring.record(msg, caller)
    msg["args"][1].append(4)
    caller.call_stack.append({"type": "server_module"})
    assert ring.get(entry.id) is entry
    assert entry.message == {"command": "add", "args": [1, [2, 3]], "kwargs": {"k": "v"}, "objects": []}
    assert entry.caller.call_stack == [{"type": "browser"}]
    assert entry.caller.user_email_override == "ann@example.org" and entry.caller.session_id == "S1"


def test_the_ring_keeps_a_calls_raw_json_and_parses_it_only_for_a_replay() -> None:
    ring = CallRing(max_entry_bytes=1_000)
    raw = b'{"command": "add", "args": [1, 2], "kwargs": {}, "objects": [], "extra": 1}'
    msg = {"command": "add", "args": [1, 2], "kwargs": {}, "objects": []}
    entry = ring.record(msg, _caller(), raw=raw)
    msg["args"].append(3)  # what a handler does to its message does not reach the log
    assert entry.message is None and entry.raw == raw and entry.size == len(raw) and entry.replayable
    assert entry.call_message() == {"command": "add", "args": [1, 2], "kwargs": {}, "objects": []}
    too_big = ring.record({"command": "big"}, _caller(), raw=b'{"command": "big", "args": ["' + b"x" * 2_000 + b'"]}')
    assert not too_big.replayable and too_big.call_message() is None and too_big.size == 0


def test_the_ring_is_bounded_by_count_and_drops_the_oldest() -> None:
    ring = CallRing(size=3)
    ids = [ring.record({"command": f"f{i}", "args": []}, _caller()).id for i in range(5)]
    assert len(ring) == 3
    assert ring.get(ids[0]) is None and ring.get(ids[1]) is None
    assert [e.id for e in ring.recent()] == ids[:1:-1]
    with pytest.raises(ReplayRefused) as refused:
        find(ring, ids[0])
    assert refused.value.status == 404 and f"No call #{ids[0]}" in refused.value.message


def test_the_ring_is_bounded_by_bytes() -> None:
    ring = CallRing(size=100, max_bytes=10_000, max_entry_bytes=5_000)
    big = ring.record({"command": "big", "args": ["x" * 6_000]}, _caller())
    assert big.message is None  # logged, not kept
    for _ in range(10):
        ring.record({"command": "mid", "args": ["y" * 2_000]}, _caller())
    assert len(ring) < 10 and ring._bytes <= 10_000
    assert ring.get(big.id) is None


def test_a_call_too_large_to_keep_is_refused_with_the_reason(state: HostState) -> None:
    entry = state.dispatcher.recent.record({"command": "add", "args": ["x" * (2 << 20)]}, _caller())
    with pytest.raises(ReplayRefused) as refused:
        run_again(state.dispatcher, entry, state.media.store)
    assert refused.value.status == 413 and "too large to keep for replay" in refused.value.message


def test_last_finds_the_newest_call_of_a_name() -> None:
    ring = CallRing()
    ring.record({"command": "add", "args": [1, 1]}, _caller())
    newest = ring.record({"command": "add", "args": [2, 2]}, _caller())
    ring.record({"command": "other", "args": []}, _caller())
    assert find(ring, last="add") is newest
    with pytest.raises(ReplayRefused, match='No call of "missing"'):
        find(ring, last="missing")
    with pytest.raises(ReplayRefused, match="Say which call"):
        find(ring)


def test_logins_that_moved_a_session_are_followed() -> None:
    ring = CallRing()
    first = ring.record({"command": "login", "args": []}, _caller("S1"))
    ring.finish(first, Reply.from_message({"response": None, "objects": []}, session_id="S2"))
    second = ring.record({"command": "login", "args": []}, _caller("S2"))
    ring.finish(second, Reply.from_message({"response": None, "objects": []}, session_id="S3"))
    assert ring.session_now("S1") == "S3"
    assert ring.session_now("S3") is None and ring.session_now(None) is None


def test_a_small_result_is_kept_and_a_large_one_is_not() -> None:
    ring = CallRing()
    small = ring.record({"command": "a", "args": []}, _caller())
    ring.finish(small, Reply.from_message({"response": 5, "objects": []}))
    large = ring.record({"command": "b", "args": []}, _caller())
    ring.finish(large, Reply.from_message({"response": "z" * (100 << 10), "objects": []}))
    assert small.result is not None and json.loads(small.result)["response"] == 5 and small.ok
    assert large.result is None and large.result_size > 100 << 10


# ---- the routes -----------------------------------------------------------------------------------


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine()


@pytest.fixture
def state(tmp_path: Path, engine: CountingEngine) -> HostState:
    return build_state(AppDir(scaffold(tmp_path / "App")), engine, EventBus(), Settings(host="localhost", port=80))


@pytest.fixture
def app(state: HostState) -> Flask:
    return create_app(state)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _add(client: FlaskClient, a: int, b: int, **headers: str) -> Any:
    return client.post(
        "/_/call", data=json.dumps({"command": "add", "args": [a, b]}), content_type="application/json", headers=headers
    )


def _replay(client: FlaskClient, body: dict[str, Any], **headers: str) -> Any:
    return client.post("/_/dev/replay", data=json.dumps(body), content_type="application/json", headers=headers)


def _only_id(state: HostState) -> int:
    (entry,) = state.dispatcher.recent.recent()
    return entry.id


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_the_cli_replay_route_needs_the_apps_token(
    client: FlaskClient, state: HostState, engine: CountingEngine, token: str | None
) -> None:
    assert _add(client, 2, 3).get_json()["response"] == 5
    headers = {} if token is None else {TOKEN_HEADER: token}
    for resp in (_replay(client, {"id": _only_id(state)}, **headers), client.get("/_/dev/replay", headers=headers)):
        assert resp.status_code == 403
        assert resp.get_json()["error"]["type"] == "anvil.server.PermissionDenied"
        assert ".anvil-dev/" in resp.get_json()["error"]["message"]
    assert len(engine.calls) == 1  # nothing ran again


def test_a_replay_runs_as_the_same_caller_with_the_new_code(
    client: FlaskClient, state: HostState, engine: CountingEngine
) -> None:
    first = _add(
        client,
        2,
        3,
        **{"X-Anvil-Dev-As": "ann@example.org", TOKEN_HEADER: state.cli_token, "X-Anvil-Dev-Client": "cli"},
    )
    assert first.get_json()["response"] == 5
    original_id = _only_id(state)
    engine.factor = 10  # the edit
    resp = _replay(client, {"id": original_id}, **{TOKEN_HEADER: state.cli_token})
    assert resp.status_code == 200 and resp.get_json()["response"] == 50
    about = json.loads(resp.headers[REPLAY_HEADER])
    assert about["of"] == original_id and about["id"] > original_id and about["command"] == "add"
    (msg1, caller1), (msg2, caller2) = engine.calls
    assert msg2["args"][:2] == [2, 3] and len(msg2["args"]) == 3  # the handler's own change did not stick
    assert caller2.session_id == caller1.session_id and caller2.user_email_override == "ann@example.org"
    assert caller2.via == "cli" and not caller2.trusted
    by_last = _replay(client, {"last": "add"}, **{TOKEN_HEADER: state.cli_token})
    assert by_last.get_json()["response"] == 50
    assert json.loads(by_last.headers[REPLAY_HEADER])["of"] == about["id"]
    events = [e.data for e in state.bus.history() if e.kind == "call"]
    assert [e["replay_of"] for e in events] == [None, original_id, about["id"]]
    listed = client.get("/_/dev/replay", headers={TOKEN_HEADER: state.cli_token}).get_json()["calls"]
    assert [c["id"] for c in listed] == [e["id"] for e in reversed(events)]


def test_a_replay_never_hands_out_the_original_callers_session(
    client: FlaskClient, state: HostState, engine: CountingEngine
) -> None:
    _add(client, 1, 1)
    session = engine.calls[0][1].session_id
    engine.rotate_to = "NEWSESSION"  # the replayed call logs in
    resp = _replay(client, {"id": _only_id(state)}, **{TOKEN_HEADER: state.cli_token})
    assert resp.status_code == 200
    assert COOKIE_NAME not in resp.headers.get("Set-Cookie", "")
    notes = json.loads(resp.headers[REPLAY_HEADER])["notes"]
    assert any("The replay logged in" in n for n in notes)
    assert state.dispatcher.recent.session_now(session) == "NEWSESSION"


def test_a_replay_after_a_login_runs_in_the_session_the_login_made(
    client: FlaskClient, state: HostState, engine: CountingEngine
) -> None:
    engine.rotate_to = "AFTERLOGIN"
    _add(client, 1, 1)
    engine.rotate_to = None
    resp = _replay(client, {"id": _only_id(state)}, **{TOKEN_HEADER: state.cli_token})
    assert engine.calls[1][1].session_id == "AFTERLOGIN"
    assert any("moved its caller to a new session" in n for n in json.loads(resp.headers[REPLAY_HEADER])["notes"])


def test_a_replay_whose_media_expired_is_refused_with_the_reason(
    client: FlaskClient, state: HostState, engine: CountingEngine
) -> None:
    body = {
        "command": "size",
        "args": [None],
        "objects": [
            {"path": ["args", 0], "type": ["DataMedia"], "id": "part0", "mime-type": "text/plain", "name": "a.txt"}
        ],
    }
    resp = client.post(
        "/_/call",
        data={"json": json.dumps(body), "part0": (io.BytesIO(b"hello"), "a.txt")},
        content_type="multipart/form-data",
    )
    assert resp.get_json()["response"] == 1
    entry = state.dispatcher.recent.recent()[0]
    media_id = entry.message["objects"][0]["id"]
    assert state.media.store.exists(media_id)
    again = _replay(client, {"id": entry.id}, **{TOKEN_HEADER: state.cli_token})
    assert again.status_code == 200 and again.get_json()["response"] == 1
    state.media.store.path(media_id).unlink()  # what the day-old sweep does
    gone = _replay(client, {"id": entry.id}, **{TOKEN_HEADER: state.cli_token})
    assert gone.status_code == 410
    message = gone.get_json()["error"]["message"]
    assert "a.txt" in message and "args[0]" in message and "no longer in the media store" in message
    assert len(engine.calls) == 2


def test_unknown_ids_and_bad_bodies_get_clear_errors(client: FlaskClient, state: HostState) -> None:
    token = {TOKEN_HEADER: state.cli_token}
    missing = _replay(client, {"id": 999}, **token)
    assert missing.status_code == 404 and "No call #999" in missing.get_json()["error"]["message"]
    bad = _replay(client, {"id": "seven"}, **token)
    assert bad.status_code == 400 and "a number" in bad.get_json()["error"]["message"]
    not_json = client.post("/_/dev/replay", data="id=1", content_type="text/plain", headers=token)
    assert not_json.status_code == 400 and '{"id": N}' in not_json.get_json()["error"]["message"]


def test_the_console_replays_and_shows_the_original_beside_it(
    client: FlaskClient, state: HostState, engine: CountingEngine
) -> None:
    _add(client, 2, 3)
    call_id = _only_id(state)
    listed = client.get("/_/console/api/calls").get_json()["calls"]
    assert listed[0]["id"] == call_id and listed[0]["replayable"] and listed[0]["ok"]
    engine.factor = 10
    resp = client.post(f"/_/console/api/calls/{call_id}/replay", json={})
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["of"] == call_id and data["reply"]["response"] == 50
    assert data["original"]["reply"]["response"] == 5 and data["original"]["ok"] is True
    assert COOKIE_NAME not in resp.headers.get("Set-Cookie", "")


def test_the_console_replay_is_for_this_machine_and_this_site_only(
    client: FlaskClient, state: HostState, engine: CountingEngine
) -> None:
    _add(client, 2, 3)
    url = f"/_/console/api/calls/{_only_id(state)}/replay"
    remote = client.post(url, json={}, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert remote.status_code == 403
    foreign = client.post(url, json={}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    form = client.post(url, data="x=1", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415
    assert client.get("/_/console/api/calls", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
    assert len(engine.calls) == 1
    missing = client.post("/_/console/api/calls/999/replay", json={})
    assert missing.status_code == 404 and "No call #999" in missing.get_json()["error"]
