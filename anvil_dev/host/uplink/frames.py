"""What uplink frames mean: the handshake, the checks and limits on frames, and the shapes of calls.

Pure functions over parsed JSON, with no socket and no thread, so the protocol's rules can be
tested without a server; `connection.py` holds a connection's state and threads. The protocol is
the one anvil-uplink 0.7.0 speaks (reference/anvil-runtime.md section 3).
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from anvil_dev.host.uplink.rows import ROW_TYPE
from anvil_dev.protocol import Caller, Message, error

PROTOCOL_VERSION = 8
MAX_PATTERNS = 10000
MAX_PATTERN_LEN = 2000
MAX_ID_LEN = 200
APP_INFO: dict[str, Any] = {"id": "", "branch": "master", "environment": {"description": "anvil-dev", "tags": []}}

OUTDATED = (
    "You are using an outdated version of the uplink library. "
    "Please use 'pip install --upgrade anvil-uplink' to get a new one."
)
DEPRECATED = (
    "You are using a deprecated version of the uplink library. "
    "Please use 'pip install --upgrade anvil-uplink' to get a new one."
)


class ProtocolError(Exception):
    """The uplink broke the protocol; the message says how. The connection is dropped."""


class Refused(Exception):
    """The uplink may not connect; the message is Anvil's fatal error text, sent to the uplink."""


class WrongKey(Refused):
    """The uplink's key is not this app's (worth a line in the serve terminal: the user can fix it)."""


# ---- the handshake -------------------------------------------------------------------------


def hello(frame: str | bytes, key: str, client_key: str | None = None) -> list[Message]:
    """The frames that answer an uplink's first frame `{"key", "v"}`; raises Refused if it may not connect.

    The key is compared in constant time. Clients older than protocol 5 are refused, older than 7
    warned, as Anvil does. With the client key, the answer says `"priv": "client"`.
    """
    try:
        data = json.loads(frame)
    except (ValueError, TypeError, RecursionError):  # RecursionError: nested too deep to hold a key
        data = None
    given = data.get("key") if isinstance(data, dict) else None
    given_bytes = given.encode("utf-8", "surrogatepass") if isinstance(given, str) else None
    is_client = (
        given_bytes is not None and client_key is not None and hmac.compare_digest(given_bytes, client_key.encode())
    )
    if not is_client and (given_bytes is None or not hmac.compare_digest(given_bytes, key.encode())):
        raise WrongKey("Incorrect uplink key")
    v = data.get("v") if isinstance(data, dict) else None
    if not isinstance(v, int) or v < 5:
        raise Refused(OUTDATED)
    frames: list[Message] = [{"output": DEPRECATED}] if v < 7 else []
    frames.append({"auth": "OK", "priv": "client" if is_client else "uplink", "app-info": APP_INFO})
    return frames


# ---- checking incoming frames --------------------------------------------------------------


def parse_text(frame: str) -> Message:
    """A text frame as a JSON object; anything else breaks the protocol."""
    try:
        data = json.loads(frame)
    except ValueError:
        raise ProtocolError("a text frame that is not JSON") from None
    except RecursionError:
        raise ProtocolError("a text frame nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError("a JSON frame that is not an object")
    return data


def check_id(value: Any, what: str) -> str:
    """`value` if it is a usable message or request id (a short non-empty string)."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LEN:
        raise ProtocolError(f"{what} without a valid id: {value!r:.80}")
    return value


def compile_pattern(name: Any) -> re.Pattern[str] | None:
    """The regular expression a REGISTER names, or None if it is not one (Anvil then closes the uplink)."""
    try:
        if not isinstance(name, str) or len(name) > MAX_PATTERN_LEN:
            return None
        return re.compile(name)
    except (re.error, RecursionError, OverflowError):
        return None


def is_reply(data: Message) -> bool:
    """A frame answering a call we sent (it has no "type")."""
    return data.get("type") is None and "id" in data and ("response" in data or "error" in data)


def reply_result(data: Message) -> Message:
    """A reply from the uplink in the shape the host's callers read (`{"response", "objects", "output"}`
    or `{"error", "objects"}`, plus "taskState" for a background task)."""
    if "error" in data:
        err = dict(data["error"]) if isinstance(data["error"], dict) else {"message": str(data["error"])}
        err.setdefault("type", None)
        err.setdefault("message", "")
        err["trace"] = err.get("trace") or []
        result: Message = {"error": err, "objects": []}
    else:
        result = {"response": data.get("response"), "objects": data.get("objects") or [], "output": ""}
    if "taskState" in data:
        result["taskState"] = data["taskState"]
    return result


def media_error(data: Message) -> Message:
    """The error a MEDIA_ERROR frame reports, for the call whose media did not arrive."""
    cause = data.get("cause")
    if not isinstance(cause, dict):
        cause = {}
    return error(
        str(cause.get("type") or "anvil.server.InternalError"),
        str(cause.get("message") or "Error during media transfer"),
    )


# ---- calls from the uplink -----------------------------------------------------------------


def is_heartbeat(data: Message) -> bool:
    """The client's heartbeat: an echo call without media, answered without a thread."""
    return data.get("type") == "CALL" and data.get("command") == "anvil.private.echo" and not data.get("objects")


def heartbeat_reply(msg_id: str, data: Message) -> Message:
    args = data.get("args")
    return {"id": msg_id, "response": args[0] if isinstance(args, list) and args else None, "objects": []}


def local_answer(data: Message) -> Message | None:
    """The reply to a CALL from the uplink that runs no server code (it is malformed, or a row method),
    else None."""
    args, kwargs = data.get("args", []), data.get("kwargs", {})
    if (
        not isinstance(args, list)
        or not isinstance(kwargs, dict)
        or (not isinstance(data.get("command"), str) and "liveObjectCall" not in data)
    ):
        return error(
            "anvil.server.InternalError",
            "Malformed call from the uplink (needs a command string, an args list and a kwargs object)",
        )
    if "liveObjectCall" in data:
        return _live_object_call(data["liveObjectCall"])
    return None


def call_message(data: Message) -> Message:
    """The call the dispatcher runs for a CALL from the uplink (one `local_answer` did not answer)."""
    msg: Message = {
        "command": data.get("command"),
        "args": data.get("args", []),
        "kwargs": data.get("kwargs", {}),
        "objects": data.get("objects") or [],
    }
    if "vt_global" in data:
        msg["vt_global"] = data["vt_global"]
    return msg


def _live_object_call(spec: Any) -> Message:
    """A method call on a LiveObject the uplink holds; only rows' get_id() is answered here."""
    spec = spec if isinstance(spec, dict) else {}
    if spec.get("backend") == ROW_TYPE and spec.get("method") == "get_id":
        return {"response": spec.get("id"), "objects": [], "output": ""}
    what = f"{spec.get('backend')}.{spec.get('method')}"
    return error(
        "anvil.server.InternalError",
        f"anvil-dev cannot run {what} for uplink code: rows reach uplinks as read-only copies of the "
        "columns sent with them. Call a server function to read or change data tables.",
    )


# ---- calls to the uplink -------------------------------------------------------------------


def call_frame(kind: str, msg: Message, caller: Caller, msg_id: str) -> Message:
    """A CALL (or LAUNCH_BACKGROUND) of a registered function, in the shape the client reads."""
    frames = list(reversed(caller.call_stack)) or [{"type": caller.client_type}]
    client: dict[str, Any] = {"type": caller.client_type, "ip": caller.ip, "location": None}
    if caller.background_task_id:
        client["background-task-id"] = caller.background_task_id
    return {
        "type": kind,
        "call-stack-id": msg_id,
        "command": msg.get("command"),
        "args": msg.get("args") or [],
        "kwargs": msg.get("kwargs") or {},
        "objects": msg.get("objects") or [],
        # Innermost frame first: the client takes call-stack[0] as the remote caller.
        "call-stack": [{**f, "protocol-version": PROTOCOL_VERSION} for f in frames],
        "client": client,
        "sessionData": {"session": {}, "objects": []},
        "session-id": caller.session_id,
        "app-info": APP_INFO,
    }
