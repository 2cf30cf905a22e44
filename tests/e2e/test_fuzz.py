"""Fuzzed /_/call bodies, HTTP endpoint requests and uplink frames against a real server (hypothesis, bounded).

What must hold for every input: the reply is never a 5xx and never names an error type that is not
Anvil's (an `OverflowError` or `TypeError` from our internals), unless app code raised it; nothing
is printed as a traceback; the server serves on. The app's functions here raise nothing
themselves, so any 5xx or foreign error type is ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import simple_websocket
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from anvil_dev.scaffold import scaffold

from helpers import ServerProcess, write_module

FUZZ_MODULE = """
    import anvil.server

    @anvil.server.callable
    def fuzz_echo(*args, **kwargs):
        return [args, kwargs]

    @anvil.server.callable
    def fuzz_kinds(*args, **kwargs):
        return [type(a).__name__ for a in args], sorted(kwargs)

    @anvil.server.http_endpoint("/thing/:name", methods=["GET", "POST", "PUT", "DELETE"])
    def thing(name, **params):
        r = anvil.server.request
        return {"name": name, "params": sorted(params), "method": r.method,
                "body": len(r.body.get_bytes()) if r.body is not None else 0}
"""

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
KINDS = ["Long", "Float", "Date", "DateTime", "ValueType", "ClassType", "DataMedia", "Primitive", "Nope"]
TYPE_NAMES = [
    "anvil.tables.Row",
    "anvil.tables.Table",
    "anvil.tables.SearchIterator",
    "anvil.tables.Transaction",
    "anvil.server.Task",
    "anvil.email.Message",
    "anvil.Media",
    "anvil.tz.tzoffset",
    "this.Nope",
    "",
]
paths = st.one_of(
    st.lists(st.one_of(st.integers(-2, 3), st.text(max_size=4)), max_size=3).map(lambda p: ["args", *p]), json_values
)
entries = st.fixed_dictionaries(
    {"path": paths, "type": st.one_of(st.lists(st.sampled_from(KINDS), max_size=2), json_values)},
    optional={
        "typeName": st.one_of(st.sampled_from(TYPE_NAMES), json_values),
        "value": json_values,
        "id": json_values,
        "mac": st.text(max_size=34),
        "mime-type": json_values,
        "name": json_values,
    },
)
call_bodies = st.fixed_dictionaries(
    {
        "command": st.one_of(
            st.sampled_from(["fuzz_echo", "fuzz_kinds", "nope", "anvil.private.users.login_with_email"]), json_values
        ),
        "args": st.one_of(st.lists(json_values, max_size=4), json_values),
    },
    optional={
        "kwargs": st.one_of(st.dictionaries(st.text(max_size=6), json_values, max_size=3), json_values),
        "objects": st.one_of(st.lists(entries, max_size=4), json_values),
        "caller": json_values,
        "session": json_values,
    },
)


def app_error(reply: Any) -> bool:
    return isinstance(reply, dict) and isinstance(reply.get("error"), dict)


def assert_anvils(error: dict[str, Any], what: object) -> None:
    assert str(error.get("type", "")).startswith("anvil."), (error, what)


@pytest.fixture(scope="module", params=["fresh", "persistent"])
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    app = scaffold(tmp_path_factory.mktemp(request.param) / "FuzzApp")
    write_module(app, "Fuzz", FUZZ_MODULE)
    srv = ServerProcess(app, "--fresh" if request.param == "fresh" else "--keep-server-running", "--timeout", "10")
    yield srv
    try:
        assert "Traceback" not in srv.output, srv.output[-3000:]
        assert srv.client().call("fuzz_echo", 1) == [[1], {}]
    finally:
        srv.stop()


def _ref(type_name: str, **data: Any) -> dict[str, Any]:
    return {
        "command": "fuzz_echo",
        "args": [data],
        "objects": [{"path": ["args", 0], "type": ["ValueType"], "typeName": type_name}],
    }


@FUZZ
@given(body=call_bodies)
# What the fuzz run found, always tried: infinities in a row id, a non-ASCII MAC, arity.
@example(body=_ref("anvil.tables.Row", id=[float("inf"), 1], mac="0" * 32))
@example(body=_ref("anvil.tables.Row", id="[1,-1e999]", mac="0" * 32))
@example(body=_ref("anvil.tables.Row", id="[1,1]", mac="\u00e9" * 32))
@example(body=_ref("anvil.tables.Table", id=1, mac="\u2603"))
@example(body={"command": "anvil.private.users.login_with_email", "args": [1, 2, 3, 4, 5]})
def test_fuzzed_call_bodies(fuzz_server: ServerProcess, body: dict[str, Any]) -> None:
    text = json.dumps(body, allow_nan=True)
    r = requests.post(fuzz_server.url + "/_/call", data=text, headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code < 500, (r.status_code, r.text[:500], text[:500])
    if r.status_code >= 400:
        assert r.headers["Content-Type"] == "application/json", r.text[:300]
        assert_anvils(r.json()["error"], text[:500])


@FUZZ
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        json_values.map(lambda v: json.dumps(v).encode()),
    ),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]
    ),
)
def test_fuzzed_raw_call_bodies(fuzz_server: ServerProcess, raw: bytes, content_type: str) -> None:
    r = requests.post(fuzz_server.url + "/_/call", data=raw, headers={"Content-Type": content_type}, timeout=60)
    assert r.status_code < 500, (r.status_code, r.text[:500], raw[:200])
    if r.headers.get("Content-Type") == "application/json" and app_error(r.json()):
        assert_anvils(r.json()["error"], raw[:200])


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    name=st.text(min_size=1, max_size=20),
    tail=st.lists(st.text(max_size=6), max_size=2),
    query=st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=3),
    body=st.one_of(st.binary(max_size=100), json_values.map(lambda v: json.dumps(v).encode())),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz", ""]
    ),
)
def test_fuzzed_endpoint_requests(
    fuzz_server: ServerProcess,
    method: str,
    name: str,
    tail: list[str],
    query: dict[str, str],
    body: bytes,
    content_type: str,
) -> None:
    path = "/".join(requests.utils.quote(p, safe="") for p in [name, *tail])
    headers = {"Content-Type": content_type} if content_type else {}
    r = requests.request(
        method, f"{fuzz_server.url}/_/api/thing/{path}", params=query, data=body, headers=headers, timeout=60
    )
    assert r.status_code < 500, (r.status_code, r.text[:500], method, path, body[:100])


frames = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["CALL", "REGISTER", "RESPONSE", "CHUNK_HEADER", "MEDIA_ERROR", "PROGRESS", "GET_APP_INFO", "Nope"]
            ),
            "id": st.one_of(st.text(max_size=8), json_values),
        },
        optional={
            "command": st.one_of(st.sampled_from(["fuzz_echo", "fuzz_kinds", "nope"]), json_values),
            "name": json_values,
            "args": st.one_of(st.lists(json_values, max_size=3), json_values),
            "kwargs": json_values,
            "objects": st.one_of(st.lists(entries, max_size=3), json_values),
            "response": json_values,
            "error": json_values,
            "call-stack-id": json_values,
        },
    ).map(lambda d: json.dumps(d, allow_nan=True)),
    json_values.map(json.dumps),
    st.text(max_size=50),
    st.binary(max_size=50),
)


def _uplink(srv: ServerProcess) -> simple_websocket.Client:
    key = (srv.app_dir / ".anvil-dev" / "uplink.key").read_text().strip()
    ws = simple_websocket.Client.connect(f"ws://127.0.0.1:{srv.port}/_/uplink")
    ws.send(json.dumps({"key": key, "v": 8}))
    assert json.loads(ws.receive(timeout=30))["auth"] == "OK"
    return ws


@FUZZ
@given(sent=st.lists(frames, min_size=1, max_size=4))
def test_fuzzed_uplink_frames(fuzz_server: ServerProcess, sent: list[str | bytes]) -> None:
    ws = _uplink(fuzz_server)
    try:
        for frame in sent:
            ws.send(frame)
        # A final call the uplink waits for: everything before it has been answered or dropped.
        ws.send(json.dumps({"type": "CALL", "id": "last", "command": "fuzz_echo", "args": [7], "kwargs": {}}))
        while (m := ws.receive(timeout=60)) is not None:
            if isinstance(m, bytes):
                continue
            assert "HTTP/1" not in m and "Traceback" not in m, m[:300]
            reply = json.loads(m)
            if app_error(reply):
                assert_anvils(reply["error"], sent)
            if isinstance(reply, dict) and reply.get("id") == "last":
                assert reply.get("response") == [[7], {}], reply
                break
        else:
            raise AssertionError(f"no answer to a call after {sent!r:.300}")
    except (simple_websocket.ConnectionClosed, OSError):
        pass  # a frame that broke the protocol ends the connection: allowed, as long as nothing else broke
    finally:
        try:
            ws.close()
        except (simple_websocket.ConnectionClosed, OSError):
            pass
