"""anvil.server, users, http, media, email and tz behaving as on Anvil, case by case, through a real
`anvil-dev serve`. Each case names the file and line of anvil-works/anvil-runtime v1.17.0 it follows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from anvil_dev.client import ServerError

from helpers import ServerProcess, write_module

CASES = """
    import anvil, anvil.server, anvil.email, anvil.http, anvil.tz, anvil.media
    import anvil.users, anvil.designer, anvil.regex, anvil.util, anvil.history, anvil.tables.v2

    class Custom(anvil.server.AnvilWrappedError):
        pass

    anvil.server._register_exception_type("probe.Custom", Custom)

    @anvil.server.callable
    def raise_custom():
        raise Custom("made here")

    @anvil.server.callable
    def catch_custom():
        try:
            anvil.server.call("raise_custom")
        except Custom as e:
            return [type(e).__name__, str(e)]

    def outcome(f):
        try:
            return ["ok", f()]
        except Exception as e:
            return [type(e).__name__, str(e)]

    @anvil.server.callable
    def cases():
        cap = anvil.server.Capability(["doc", 7])
        return {
            "call_no_args": outcome(lambda: anvil.server.call()),
            "call_not_str": outcome(lambda: anvil.server.call(42)),
            "timeout_not_wrapped": issubclass(anvil.server.TimeoutError, anvil.server.AnvilWrappedError),
            "nsf_wrapped": issubclass(anvil.server.NoServerFunctionError, anvil.server.AnvilWrappedError),
            "message_kw": str(anvil.server.PermissionDenied(message="no")),
            "unwrap": anvil.server.unwrap_capability(cap.narrow(["x"]), ["doc", anvil.server.Capability.ANY, "x"]),
            "unwrap_wrong": outcome(lambda: anvil.server.unwrap_capability(cap, ["other", 7])),
            "empty_cap": outcome(lambda: anvil.server.Capability([])),
            "blob_str": outcome(lambda: anvil.BlobMedia("text/plain", "text")),
            "blob_repr": repr(anvil.BlobMedia("text/plain", b"abc", name="a.txt")),
            "delivery": str(anvil.email.DeliveryFailure("x", 552)),
            "send_report": outcome(lambda: anvil.email.SendReport()),
            "tz_utc": anvil.tz.tzoffset().utcoffset(None).total_seconds(),
            "tz_big": outcome(lambda: anvil.tz.tzoffset(hours=30) is not None),
            "http_error": [str(anvil.http.HttpError(404, None)), issubclass(anvil.http.HttpError, Exception),
                           issubclass(anvil.http.HttpError, anvil.server.AnvilWrappedError)],
            "http_timeout": outcome(lambda: anvil.http.request("http://127.0.0.1:9/", timeout="soon")),
            "http_list": outcome(lambda: anvil.http.request("http://127.0.0.1:9/", method="POST", data=[1, 2])),
            "http_list_get": outcome(lambda: anvil.http.request("http://127.0.0.1:9/", data=("a",))),
            "http_number": outcome(lambda: anvil.http.request("http://127.0.0.1:9/", method="POST", data=5)),
            "url_decode_bad": outcome(lambda: anvil.http.url_decode("%zz")),
            "url_decode_kept": anvil.http.url_decode("100% + a%20b%C3%A9"),
            "url_decode_none": outcome(lambda: anvil.http.url_decode(None)),
            "designer": [anvil.designer.in_designer, outcome(lambda: anvil.designer.start_editing_form())],
            "mfa": issubclass(anvil.users.MFAException, anvil.users.AuthenticationFailed),
            "regex": anvil.regex.replace("a-b-c", "-", "+"),
            "wrapped": anvil.util.WrappedObject(a={"b": 1}).a.b,
            "location": str(anvil.history.Location(path="/x", search="q=1")),
            "v2_same": anvil.tables.v2.app_tables is anvil.tables.app_tables,
            "form_response": anvil.server.FormResponse("Form1", 1).form,
            "responder": outcome(lambda: anvil.server.AppResponder("positional")),
            "raise_event": outcome(lambda: anvil.server.raise_event("x"))[0],
        }

    @anvil.server.callable
    def bad_url_decode():
        return anvil.http.url_decode("a%zzb")

    @anvil.server.callable
    def list_body():
        return anvil.http.request("http://127.0.0.1:9/", method="POST", data=["x"])

    @anvil.server.callable
    def dashed_secret():
        import anvil.secrets
        return anvil.secrets.get_secret("wix-site-id")

    @anvil.server.callable
    def bad_session():
        anvil.server.session["x"] = object()
        return "returned"

    @anvil.server.callable
    def channels():
        anvil.server.subscribe("news")
        anvil.server.subscribe("sport")
        anvil.server.unsubscribe("sport")
        return anvil.server.get_subscriptions()

    @anvil.server.callable
    def task_by_id():
        return outcome(lambda: anvil.server.get_background_task(id="nope"))

    @anvil.server.http_endpoint("/only-post", methods=["POST"])
    def only_post():
        return "posted"

    @anvil.server.http_endpoint("/secret", require_credentials=True)
    def secret():
        return "in"

    @anvil.server.route("/routed", authenticate_users=False, authenticate_user=False)
    def routed():
        r = anvil.server.HttpResponse(200, "routed")
        r.headers.add("X-Twice", "1")
        r.headers.add("X-Twice", "2")
        return r
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from anvil_dev.scaffold import scaffold

    app = scaffold(tmp_path_factory.mktemp("fidelity") / "FidelityApp")
    write_module(app, "Cases", CASES)
    server = ServerProcess(app, "--secret", "wix-site-id=abc")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cases(srv: ServerProcess) -> dict[str, Any]:
    return srv.client().call("cases")  # type: ignore[no-any-return]


def test_registered_custom_exception_comes_back_as_itself(srv: ServerProcess) -> None:
    # _server.py line 578 (_register_exception_type) and server.py line 70 (_deserialise_exception).
    assert srv.client().call("catch_custom") == ["Custom", "made here"]


def test_call_argument_errors(cases: dict[str, Any]) -> None:
    # downlink/python/anvil/server.py lines 62-66, spelling included.
    assert cases["call_no_args"] == ["TypeError", "anvil.server.call() expects atleast 1 argument"]
    assert cases["call_not_str"] == ["TypeError", "first argument to anvil.server.call() must be as str, got 'int'"]


def test_maybe_wrapped_errors_are_not_anvil_wrapped(cases: dict[str, Any]) -> None:
    # _server.py line 639 (MaybeWrappedError(Exception)) and line 679 (NoServerFunctionError(AnvilWrappedError)).
    assert (cases["timeout_not_wrapped"], cases["nsf_wrapped"]) == (False, True)
    assert cases["message_kw"] == "no"  # _server.py line 640: __init__(self, message="")


def test_capabilities(cases: dict[str, Any]) -> None:
    # _server.py lines 187-287.
    assert cases["unwrap"] == ["doc", 7, "x"]
    assert cases["unwrap_wrong"] == ["ValueError", "Incorrect Capability: required ['other', 7]; got ['doc', 7]"]
    assert cases["empty_cap"] == ["ValueError", "Cannot construct a capability with an empty scope"]


def test_media_email_tz_http(cases: dict[str, Any]) -> None:
    assert cases["blob_str"] == ["TypeError", "BlobMedia content must be a byte string."]  # __init__.py line 84
    assert cases["blob_repr"] == "BlobMedia[text/plain,3 bytes,name=a.txt]"  # __init__.py line 97
    assert cases["delivery"] == "552: x"  # services/anvil/email.py line 20
    assert cases["send_report"] == ["Exception", "Cannot construct a SendReport manually"]  # email.py line 189
    assert cases["tz_utc"] == 0.0 and cases["tz_big"] == ["ok", True]  # tz.py line 8
    assert cases["http_error"] == ["HTTP error 404", True, False]  # http.py line 5
    assert cases["http_timeout"] == ["TypeError", "timeout must be a number"]  # http.py line 51


def test_http_bodies_anvil_cannot_send(srv: ServerProcess, cases: dict[str, Any]) -> None:
    # server/core/src/anvil/dispatcher/native_rpc_handlers/http.clj line 92 (a list, even for a GET:
    # the body is looked at before the method) and line 94 (any other type); both untyped, so
    # downlink/python/anvil/_server.py line 584 makes them a plain AnvilWrappedError.
    list_body = ["AnvilWrappedError", "Cannot use a list as the body of an HTTP request"]
    assert cases["http_list"] == list_body and cases["http_list_get"] == list_body
    assert cases["http_number"] == ["AnvilWrappedError", "Cannot use 'int' as the body of an HTTP request"]
    with pytest.raises(ServerError) as info:
        srv.client().call("list_body")
    # Anvil sends the error with no type at all (_server.py lines 741-748); anvil-dev names it
    # AnvilWrappedError on the wire (left different: clients here read a type from every error).
    assert (info.value.type, info.value.message) == ("AnvilWrappedError", list_body[1])


def test_url_decode_as_anvil(srv: ServerProcess, cases: dict[str, Any]) -> None:
    # http.clj lines 151-155 over ring-codec 1.2.0's percent-decode (codec.clj lines 41-58): a run
    # of "%" and two letters or digits that is not hex fails with Anvil's message; a lone "%" and
    # "+" are kept as they are.
    not_encoded = ["UrlEncodingError", "This is not a valid URL-encoded string"]
    assert cases["url_decode_bad"] == not_encoded and cases["url_decode_none"] == not_encoded
    assert cases["url_decode_kept"] == "100% + a b\u00e9"
    with pytest.raises(ServerError) as info:
        srv.client().call("bad_url_decode")
    assert (info.value.type, info.value.message) == ("anvil.http.UrlEncodingError", not_encoded[1])


def test_modules_server_code_imports(cases: dict[str, Any]) -> None:
    assert cases["designer"] == [False, ["Exception", "You cannot use anvil.designer in server modules"]]
    assert cases["mfa"] is True  # services/anvil/users/exceptions.py: MFAException(AuthenticationFailed)
    assert (cases["regex"], cases["wrapped"], cases["location"]) == ("a+b+c", 1, "/x?q=1")
    assert cases["v2_same"] is True
    assert cases["form_response"] == "Form1"  # _server.py line 1355
    assert cases["responder"] == ["TypeError", "AppResponder() takes keyword arguments only"]  # line 1338
    assert cases["raise_event"] == "NotImplementedError"  # no push channel to a browser: refused by name


def test_unsaveable_session_value_fails_the_call(srv: ServerProcess) -> None:
    # _threaded_server.py line 297.
    from anvil_dev.client import ServerError

    with pytest.raises(ServerError) as info:
        srv.client().call("bad_session")
    assert info.value.type == "anvil.server.SerializationError"
    assert info.value.message.startswith("Tried to store illegal value in a anvil.server.session. Cannot serialize")


def test_channel_subscriptions_last_in_the_session(srv: ServerProcess) -> None:
    # native_rpc_handlers/core.clj lines 246-262.
    assert srv.client().call("channels") == ["news"]


def test_get_background_task_takes_id(srv: ServerProcess) -> None:
    assert srv.client().call("task_by_id") == ["BackgroundTaskNotFound", "Background Task not found: nope"]


def test_endpoint_405_and_401_bodies(srv: ServerProcess) -> None:
    # _server.py lines 1563 and 1595.
    r = requests.get(srv.url + "/_/api/only-post", timeout=10)
    assert (r.status_code, r.text, r.headers["Allow"]) == (405, "Method not supported", "POST")
    r = requests.get(srv.url + "/_/api/secret", timeout=10)
    assert (r.status_code, r.text) == (401, "Unauthorized")
    r = requests.get(srv.url + "/routed", timeout=10)
    assert (r.status_code, r.text) == (200, "routed")
    # HttpResponse.headers.add() repeats a header, as Anvil's HttpHeaders does.
    assert r.raw.headers.getlist("X-Twice") == ["1", "2"]


def test_secret_with_a_dash_given_on_the_command_line(srv: ServerProcess) -> None:
    # A public Anvil app's name (issue 21, "What real apps hit today"): `serve --secret wix-site-id=abc`.
    assert srv.client().call("dashed_secret") == "abc"
