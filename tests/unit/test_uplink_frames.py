"""The uplink protocol without a server: the handshake, the limits on frames, media chunks, rows.

A connection is driven through a scripted fake websocket and a fake hub, in this process; the
real anvil-uplink client is in tests/test_uplink.py.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from anvil_dev.host.uplink import UplinkHub, connection, frames, media
from anvil_dev.host.uplink.connection import UplinkConnection
from anvil_dev.host.uplink.frames import ProtocolError
from anvil_dev.host.uplink.media import MediaInbox, prepare_outgoing, send_media
from anvil_dev.host.uplink.rows import ROW_TYPE, live_objects_to_rows, rows_to_live_objects
from anvil_dev.protocol import Caller, Message, Reply
from anvil_dev.services.mediastore import MediaStore

KEY = "k" * 32


class FakeWebSocket:
    """Frames to receive, scripted by the test (None: the uplink goes silent); frames sent, kept."""

    def __init__(self, *frames_in: str | bytes | None) -> None:
        self.incoming: queue.Queue[str | bytes | None] = queue.Queue()
        for f in frames_in:
            self.incoming.put(f)
        self.sent: list[Any] = []
        self.closed: tuple[int | None, str | None] | None = None
        self.sock = self
        self._sent_event = threading.Condition()

    def send(self, data: str | bytes) -> None:
        if self.closed is not None:
            raise ConnectionError("closed")
        with self._sent_event:
            self.sent.append(json.loads(data) if isinstance(data, str) else data)
            self._sent_event.notify_all()

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        return None if self.closed is not None else self.incoming.get(timeout=5)

    def close(self, reason: int | None = None, message: str | None = None) -> None:
        self.closed = (reason, message)

    def shutdown(self, how: int) -> None:
        pass

    def wait_sent(self, n: int) -> list[Any]:
        with self._sent_event:
            assert self._sent_event.wait_for(lambda: len(self.sent) >= n, timeout=5), self.sent
            return self.sent


class FakeDispatcher:
    def __init__(self, reply: Message | None = None, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[Message, Caller]] = []
        self.reply = reply or {"response": 3, "objects": []}
        self.gate = gate

    def call(self, msg: Message, caller: Caller) -> Reply:
        self.calls.append((msg, caller))
        if self.gate is not None:
            self.gate.wait(5)
        return Reply.from_message(self.reply)


class FakeHub:
    def __init__(self, store: MediaStore, dispatcher: FakeDispatcher | None = None) -> None:
        self.key = KEY
        self.dispatcher = dispatcher or FakeDispatcher()
        self.media_store = store
        self.attached: list[UplinkConnection] = []
        self.detached: list[UplinkConnection] = []

    def attach(self, conn: UplinkConnection) -> None:
        self.attached.append(conn)

    def detach(self, conn: UplinkConnection) -> None:
        self.detached.append(conn)


HELLO = json.dumps({"key": KEY, "v": 8})


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def serve(
    store: MediaStore,
    *frames_in: str | bytes | None,
    dispatcher: FakeDispatcher | None = None,
) -> tuple[FakeWebSocket, FakeHub, UplinkConnection]:
    """Run a connection over scripted frames until it ends (the script should end with None)."""
    ws = FakeWebSocket(*frames_in)
    hub = FakeHub(store, dispatcher)
    conn = UplinkConnection(hub, ws, "127.0.0.1")
    conn.serve()
    return ws, hub, conn


# ---- the handshake ------------------------------------------------------------------------


def test_the_right_key_is_answered_with_auth_ok_and_the_app_info() -> None:
    assert frames.hello(HELLO, KEY) == [{"auth": "OK", "priv": "uplink", "app-info": frames.APP_INFO}]


def test_an_older_client_is_warned_and_a_much_older_one_refused() -> None:
    warned = frames.hello(json.dumps({"key": KEY, "v": 6}), KEY)
    assert warned[0] == {"output": frames.DEPRECATED} and warned[1]["auth"] == "OK"
    with pytest.raises(frames.Refused) as refused:
        frames.hello(json.dumps({"key": KEY, "v": 4}), KEY)
    assert str(refused.value) == frames.OUTDATED and not isinstance(refused.value, frames.WrongKey)


@pytest.mark.parametrize(
    "frame",
    [
        json.dumps({"key": KEY[:-1], "v": 8}),
        json.dumps({"key": KEY + "x", "v": 8}),
        json.dumps({"v": 8}),
        json.dumps({"key": 5, "v": 8}),
        json.dumps([KEY]),
        "not json",
        b"\xff",
    ],
)
def test_anything_but_the_exact_key_is_refused(frame: str | bytes) -> None:
    with pytest.raises(frames.WrongKey, match="Incorrect uplink key"):
        frames.hello(frame, KEY)


def test_a_connection_with_the_right_key_is_attached_and_detached_when_it_goes_silent(store: MediaStore) -> None:
    ws, hub, conn = serve(store, HELLO, None)
    assert ws.sent == [{"auth": "OK", "priv": "uplink", "app-info": frames.APP_INFO}]
    assert hub.attached == [conn] and hub.detached == [conn] and conn.closed


def test_a_connection_with_a_wrong_key_gets_anvils_error_and_is_never_attached(store: MediaStore) -> None:
    ws, hub, _ = serve(store, json.dumps({"key": "wrong", "v": 8}))
    assert ws.sent == [{"error": "Incorrect uplink key"}] and ws.closed is not None
    assert hub.attached == []


# ---- checks and limits on frames ----------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ("nope", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[1]", "not an object"),
    ],
)
def test_text_frames_must_be_json_objects(frame: str, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        frames.parse_text(frame)


def test_ids_must_be_short_non_empty_strings() -> None:
    assert frames.check_id("x" * frames.MAX_ID_LEN, "a message") == "x" * frames.MAX_ID_LEN
    for bad in ["", "x" * (frames.MAX_ID_LEN + 1), 5, None, ["a"]]:
        with pytest.raises(ProtocolError, match="a message without a valid id"):
            frames.check_id(bad, "a message")


def test_registered_names_are_regular_expressions_of_bounded_length() -> None:
    pattern = frames.compile_pattern("task:.*")
    assert pattern is not None and pattern.fullmatch("task:count")
    assert frames.compile_pattern("x" * frames.MAX_PATTERN_LEN) is not None
    for bad in ["x" * (frames.MAX_PATTERN_LEN + 1), "(", None, 5]:
        assert frames.compile_pattern(bad) is None


def test_an_invalid_registration_gets_anvils_error_and_closes(store: MediaStore) -> None:
    ws, _, conn = serve(store, HELLO, json.dumps({"type": "REGISTER", "name": "("}))
    assert ws.sent[-1] == {"error": "Invalid function name specification"} and conn.closed


def test_registrations_beyond_the_limit_break_the_protocol(store: MediaStore, monkeypatch: Any) -> None:
    monkeypatch.setattr(connection, "MAX_PATTERNS", 2)
    ws, _, conn = serve(store, HELLO, *[json.dumps({"type": "REGISTER", "name": f"f{i}"}) for i in range(3)])
    assert ws.closed == (1002, "Protocol error") and list(conn.patterns) == ["f0", "f1"]


@pytest.mark.parametrize(
    "script",
    [
        [b"bytes"],  # a binary frame without its CHUNK_HEADER
        [json.dumps({"type": "CHUNK_HEADER", "requestId": "r"}), json.dumps({"type": "REGISTER", "name": "f"})],
        [json.dumps({"type": "CHUNK_HEADER", "requestId": ""})],
        [json.dumps({"type": "CALL", "id": "", "command": "f", "args": [], "kwargs": {}})],
        [json.dumps({"type": "CHUNK_HEADER", "requestId": "nobody"}), b"bytes"],
    ],
)
def test_malformed_frame_sequences_break_the_protocol(store: MediaStore, script: list[str | bytes]) -> None:
    ws, hub, _ = serve(store, HELLO, *script)
    assert ws.closed == (1002, "Protocol error") and hub.detached


def test_the_heartbeat_is_answered_without_the_dispatcher(store: MediaStore) -> None:
    echo = {"type": "CALL", "id": "h1", "command": "anvil.private.echo", "args": ["ping"], "kwargs": {}}
    ws, hub, _ = serve(store, HELLO, json.dumps(echo), None)
    assert ws.sent[1] == {"id": "h1", "response": "ping", "objects": []}
    assert hub.dispatcher.calls == []


def test_a_call_from_the_uplink_reaches_the_dispatcher_as_a_trusted_uplink_caller(store: MediaStore) -> None:
    ws = FakeWebSocket(
        HELLO,
        json.dumps(
            {
                "type": "CALL",
                "id": "c1",
                "command": "add",
                "args": [1, 2],
                "kwargs": {},
                "vt_global": {"x": 1},
                "extra": "ignored",
            }
        ),
    )
    hub = FakeHub(store)
    conn = UplinkConnection(hub, ws, "10.0.0.1")
    thread = threading.Thread(target=conn.serve)
    thread.start()
    sent = ws.wait_sent(2)
    ws.incoming.put(None)
    thread.join(5)
    assert sent[1] == {"id": "c1", "response": 3, "objects": []}
    [(msg, caller)] = hub.dispatcher.calls
    assert msg == {"command": "add", "args": [1, 2], "kwargs": {}, "objects": [], "vt_global": {"x": 1}}
    assert (caller.client_type, caller.ip, caller.trusted, caller.call_stack) == (
        "uplink",
        "10.0.0.1",
        True,
        [{"type": "uplink"}],
    )
    assert caller.session_id == conn.session_id


def test_calls_in_flight_beyond_the_limit_break_the_protocol(store: MediaStore, monkeypatch: Any) -> None:
    monkeypatch.setattr(connection, "MAX_CALLS_IN_FLIGHT", 2)
    gate = threading.Event()
    calls = [json.dumps({"type": "CALL", "id": f"c{i}", "command": "slow", "args": [], "kwargs": {}}) for i in range(3)]
    try:
        ws, _, _ = serve(store, HELLO, *calls, dispatcher=FakeDispatcher(gate=gate))
    finally:
        gate.set()
    assert ws.closed == (1002, "Protocol error")


def test_malformed_calls_and_row_methods_are_answered_without_server_code() -> None:
    malformed = frames.local_answer({"type": "CALL", "id": "c", "command": "f", "args": {}, "kwargs": {}})
    assert malformed is not None and "Malformed call from the uplink" in malformed["error"]["message"]
    get_id = {"liveObjectCall": {"backend": ROW_TYPE, "method": "get_id", "id": "[1,2]"}, "args": [], "kwargs": {}}
    assert frames.local_answer(get_id) == {"response": "[1,2]", "objects": [], "output": ""}
    update = {"liveObjectCall": {"backend": ROW_TYPE, "method": "update"}, "args": [], "kwargs": {}}
    answer = frames.local_answer(update)
    assert answer is not None and "cannot run anvil.tables.Row.update" in answer["error"]["message"]
    assert frames.local_answer({"command": "f", "args": [], "kwargs": {}}) is None


def test_replies_from_the_uplink_take_the_shape_callers_read() -> None:
    assert frames.reply_result({"id": "x", "response": 1}) == {"response": 1, "objects": [], "output": ""}
    assert frames.reply_result({"id": "x", "error": "boom", "taskState": {"n": 1}}) == {
        "error": {"message": "boom", "type": None, "trace": []},
        "objects": [],
        "taskState": {"n": 1},
    }
    assert frames.media_error({"cause": "junk"})["error"]["message"] == "Error during media transfer"


def test_calls_to_the_uplink_carry_the_call_stack_innermost_first() -> None:
    caller = Caller(
        client_type="browser",
        ip="1.2.3.4",
        session_id="s",
        background_task_id="t1",
        call_stack=[{"type": "browser"}, {"type": "server_module"}],
    )
    out = frames.call_frame("CALL", {"command": "f", "args": [1]}, caller, "m1")
    assert out["call-stack"] == [
        {"type": "server_module", "protocol-version": frames.PROTOCOL_VERSION},
        {"type": "browser", "protocol-version": frames.PROTOCOL_VERSION},
    ]
    assert out["client"] == {"type": "browser", "ip": "1.2.3.4", "location": None, "background-task-id": "t1"}
    assert (out["call-stack-id"], out["kwargs"], out["objects"], out["session-id"]) == ("m1", {}, [], "s")


def test_the_hub_says_which_functions_are_gone_and_which_never_were(store: MediaStore) -> None:
    hub = UplinkHub(FakeDispatcher(), KEY, store)
    conn = UplinkConnection(hub, FakeWebSocket(), "127.0.0.1")
    conn.patterns["up_.*"] = re.compile("up_.*")
    hub.attach(conn)
    assert hub.match("up_add") == "live" and hub.match("other") is None
    hub.detach(conn)
    assert hub.match("up_add") == "stale"
    gone = hub.call({"command": "up_add"}, Caller())
    assert gone["error"]["type"] == "anvil.server.UplinkDisconnectedError"
    never = hub.call({"command": "other"}, Caller())
    assert never["error"] == {
        "type": "anvil.server.NoServerFunctionError",
        "trace": [],
        "message": 'No server function matching "other" has been registered',
    }


# ---- media chunks -------------------------------------------------------------------------


def media_entry(media_id: str, path: list[Any]) -> dict[str, Any]:
    return {"path": path, "type": ["DataMedia"], "id": media_id, "mime-type": "text/plain", "name": "a.txt"}


def chunk(inbox: MediaInbox, request_id: str, media_id: str, index: int, data: bytes, last: bool) -> Message | None:
    inbox.header(
        {"type": "CHUNK_HEADER", "requestId": request_id, "mediaId": media_id, "chunkIndex": index, "lastChunk": last}
    )
    return inbox.chunk(data)


def test_chunks_are_assembled_into_a_new_store_file_and_the_message_then_delivered(store: MediaStore) -> None:
    inbox = MediaInbox(store)
    msg = {
        "id": "c1",
        "type": "CALL",
        "args": [None, None],
        "objects": [media_entry("up1", ["args", 0]), media_entry("up1", ["args", 1])],
    }
    assert inbox.receive("c1", msg) is None
    assert chunk(inbox, "c1", "up1", 0, b"hello ", False) is None
    assert inbox.expects_binary() is False
    done = chunk(inbox, "c1", "up1", 1, b"world", True)
    assert done is msg
    store_id = done["objects"][0]["id"]
    assert store_id != "up1" and done["objects"][1]["id"] == store_id
    assert store.path(store_id).read_bytes() == b"hello world"
    assert [p.name for p in store.dir.iterdir()] == [store_id]


def test_a_message_without_media_is_delivered_at_once(store: MediaStore) -> None:
    msg = {"id": "r1", "response": 1, "objects": [{"path": ["response"], "type": ["DateTime"], "value": "x"}]}
    assert MediaInbox(store).receive("r1", msg) is msg


@pytest.mark.parametrize(
    ("index", "media_id", "why"),
    [
        (1, "up1", "chunk 1 arrived where chunk 0 was expected"),
        (0, "other", "a chunk for unknown media 'other'"),
        (0, ["unhashable"], "a chunk for unknown media"),
    ],
)
def test_chunks_out_of_order_or_for_unknown_media_break_the_protocol(
    store: MediaStore, index: int, media_id: Any, why: str
) -> None:
    inbox = MediaInbox(store)
    inbox.receive("c1", {"id": "c1", "objects": [media_entry("up1", ["args", 0])]})
    with pytest.raises(ProtocolError, match=why):
        chunk(inbox, "c1", media_id, index, b"x", True)


def test_a_chunk_after_the_last_breaks_the_protocol(store: MediaStore) -> None:
    inbox = MediaInbox(store)
    inbox.receive("c1", {"id": "c1", "objects": [media_entry("a", ["args", 0]), media_entry("b", ["args", 1])]})
    chunk(inbox, "c1", "a", 0, b"x", True)
    with pytest.raises(ProtocolError, match="a chunk after the last one for media 'a'"):
        chunk(inbox, "c1", "a", 1, b"x", True)


def test_messages_waiting_for_media_are_bounded_and_unique(store: MediaStore, monkeypatch: Any) -> None:
    monkeypatch.setattr(media, "MAX_AWAITING_MEDIA", 2)
    inbox = MediaInbox(store)
    for msg_id in ["a", "b"]:
        inbox.receive(msg_id, {"id": msg_id, "objects": [media_entry("m", ["args", 0])]})
    with pytest.raises(ProtocolError, match="two messages with the id 'a'"):
        inbox.receive("a", {"id": "a", "objects": [media_entry("m", ["args", 0])]})
    with pytest.raises(ProtocolError, match="more than 2 messages waiting"):
        inbox.receive("c", {"id": "c", "objects": [media_entry("m", ["args", 0])]})


@pytest.mark.parametrize(
    ("objects", "why"),
    [
        ("nope", "'objects' is not a list"),
        ([media_entry("", ["args", 0])], "a DataMedia entry has no valid id"),
        ([media_entry(f"m{i}", ["args", i]) for i in range(media.MAX_MEDIA_PER_MESSAGE + 1)], "more than 1000 media"),
    ],
)
def test_media_entries_are_checked(store: MediaStore, objects: Any, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        MediaInbox(store).receive("c1", {"id": "c1", "objects": objects})


def test_a_media_error_or_a_close_deletes_half_received_files(store: MediaStore) -> None:
    inbox = MediaInbox(store)
    for msg_id in ["a", "b"]:
        inbox.receive(msg_id, {"id": msg_id, "objects": [media_entry("m", ["args", 0])]})
        chunk(inbox, msg_id, "m", 0, b"part", False)
    assert len(list(store.dir.iterdir())) == 2
    failed = inbox.failed("a")
    assert failed is not None and failed.id == "a"
    assert inbox.failed("a") is None and inbox.failed(["unhashable"]) is None
    assert len(list(store.dir.iterdir())) == 1
    inbox.discard_all()
    assert list(store.dir.iterdir()) == []


def test_outgoing_media_get_an_id_per_entry_and_travel_in_64k_chunks(store: MediaStore) -> None:
    big = store.put_bytes(b"x" * (media.CHUNK_SIZE + 1))
    empty = store.put_bytes(b"")
    msg = {
        "id": "r",
        "response": [None] * 4,
        "objects": [
            media_entry(big, ["response", 0]),
            media_entry(big, ["response", 1]),
            media_entry(empty, ["response", 2]),
            media_entry("../../etc/passwd", ["response", 3]),
        ],
    }
    out, files = prepare_outgoing(msg, store)
    assert [e["id"] for e in out["objects"]] == ["m0", "m1", "m2", "m3"]
    assert msg["objects"][0]["id"] == big  # the message itself is left alone
    assert files[3] == ("m3", None)
    pairs: list[tuple[dict[str, Any], bytes]] = []
    texts: list[dict[str, Any]] = []
    send_media("r", files, lambda header, data: pairs.append((header, data)), texts.append)
    assert [(h["mediaId"], h["chunkIndex"], h["lastChunk"], len(d)) for h, d in pairs] == [
        ("m0", 0, False, media.CHUNK_SIZE),
        ("m0", 1, True, 1),
        ("m1", 0, False, media.CHUNK_SIZE),
        ("m1", 1, True, 1),
        ("m2", 0, True, 0),
    ]
    assert [(t["type"], t["mediaIds"]) for t in texts] == [("MEDIA_ERROR", ["m3"])]


# ---- rows ---------------------------------------------------------------------------------


def row_value(row_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": row_id, "table": "t", "mac": "mac-" + row_id, "data": data}


def test_rows_reach_the_uplink_as_live_objects_caching_their_columns() -> None:
    owner = row_value("[2,1]", {"name": "Ann"})
    ticket = row_value("[1,7]", {"title": "Help", "when": "2024-01-02", "owner": owner, "file": None})
    msg = {
        "id": "r",
        "response": ticket,
        "objects": [
            {"path": ["response"], "type": ["ValueType"], "typeName": ROW_TYPE},
            {"path": ["response", "data", "when"], "type": ["Date"], "value": "2024-01-02"},
            {"path": ["response", "data", "owner"], "type": ["ValueType"], "typeName": ROW_TYPE},
            media_entry("m", ["response", "data", "file"]),
        ],
    }
    before = json.dumps(msg)
    out = rows_to_live_objects(msg)
    assert json.dumps(msg) == before  # the caller's message is not changed
    assert out["response"] is None
    [live] = out["objects"]
    assert {k: live[k] for k in ("type", "path", "backend", "id", "mac")} == {
        "type": ["LiveObject"],
        "path": ["response"],
        "backend": ROW_TYPE,
        "id": "[1,7]",
        "mac": "mac-[1,7]",
    }
    cache = live["itemCache"]
    assert set(cache) == {"title", "when", "owner"}  # media cannot live in an item cache
    assert cache["title"] == {"type": ["Primitive"], "value": "Help"}
    assert cache["when"] == {"type": ["Date"], "value": "2024-01-02"}
    assert cache["owner"]["type"] == ["LiveObject"] and cache["owner"]["id"] == "[2,1]"
    assert cache["owner"]["itemCache"] == {"name": {"type": ["Primitive"], "value": "Ann"}}


def test_a_message_without_rows_is_sent_as_it_is() -> None:
    msg = {"id": "r", "response": 1, "objects": [{"path": ["response"], "type": ["Date"], "value": "x"}]}
    assert rows_to_live_objects(msg) is msg


def test_rows_coming_back_from_the_uplink_become_row_references() -> None:
    msg = {
        "id": "c",
        "args": [None],
        "objects": [
            {
                "path": ["args", 0],
                "type": ["LiveObject"],
                "backend": ROW_TYPE,
                "id": "[1,7]",
                "mac": "m",
                "itemCache": {"title": {"type": ["Primitive"], "value": "Help"}},
            },
            {"path": ["args", 1], "type": ["LiveObject"], "backend": "other.Backend", "id": "x"},
        ],
    }
    live_objects_to_rows(msg)
    assert msg["args"] == [{"id": "[1,7]", "mac": "m"}]
    assert msg["objects"][0] == {"path": ["args", 0], "type": ["ValueType"], "typeName": ROW_TYPE}
    assert msg["objects"][1]["backend"] == "other.Backend"
