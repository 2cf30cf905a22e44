"""Running one server call inside a worker: decode, check, call, encode. Also nested calls."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from anvil import _context, server
from anvil._errors import error_dict, exception_from_error
from anvil._registry import REGISTRY
from anvil_dev import wire

Message = dict[str, Any]

app_root: str | None = None
# Set by the engine: sends a call this process has no function for to the host, returns the reply.
outbound: Callable[[Message, dict[str, Any]], Message] | None = None
# Set by the users service when it loads: raises if the current caller may not call `reg`.
require_user_check: Callable[[Any], None] | None = None


def no_such_function(name: str) -> Message:
    return {"error": {"type": "anvil.server.NoServerFunctionError",
                      "message": f'No server function matching "{name}" has been registered', "trace": []},
            "objects": []}


def execute(msg: Message, caller: dict[str, Any], parent: _context.CallState | None = None,
            output: list[str] | None = None) -> Message:
    """Run the call `msg` ({"command","args","kwargs","objects"}) for `caller`; return the reply."""
    command = msg.get("command")
    reg = server.lookup(command) if isinstance(command, str) else None
    if reg is None:
        return no_such_function(str(command))
    state = _context.CallState(
        call_id=msg.get("id") or uuid.uuid4().hex[:10], command=command,
        session_id=caller.get("session_id"), client_type=caller.get("client_type"),
        client_ip=caller.get("ip"), remote_trusted=bool(caller.get("trusted")),
        call_stack=list(caller.get("call_stack") or []),
        user_email_override=caller.get("user_email_override"),
        background_task_id=caller.get("background_task_id"),
    )
    if output is not None:
        state.output = output
    if parent is not None:
        state.depth = parent.depth + 1
        state.output = parent.output
        state.cache = parent.cache
        state.http_request = parent.http_request
    prev = _context.push(state)
    try:
        try:
            wire.decode(msg, REGISTRY, trusted=state.remote_trusted)
        except server.SerializationError as e:
            raise server.SerializationError(f"Cannot deserialize arguments to function. {e}") from None
        args = msg.get("args") or []
        kwargs = msg.get("kwargs") or {}
        if reg.require_user is not None and reg.require_user is not False:
            check_require_user(reg)
        if getattr(reg, "endpoint", None) is not None:
            from anvil import _endpoints

            result = _endpoints.run(reg, command, kwargs)
        else:
            result = reg.fn(*args, **kwargs)
        if isinstance(result, (bytes, bytearray)):
            raise UnicodeError("This function returned a binary string (not text). If you want to return "
                               "binary data, use a BlobMedia object instead.")
        if parent is None:
            # The session is saved before the reply goes, so a value it cannot hold fails the call
            # (as on Anvil) instead of being lost after the caller has its answer.
            check = state.cache.get("session_check")
            if check is not None:
                check()
        reply = wire.encode({"response": result}, REGISTRY,
                            error_prefix="Cannot serialize return value from function. ")
    except BaseException as e:  # noqa: BLE001 - every failure of user code goes back to the caller
        # KeyboardInterrupt and SystemExit too: here they can only come from server code (workers
        # ignore SIGINT), and re-raising them would end the process (fresh) or the call's thread
        # without a reply (persistent), leaving the caller to wait for the timeout.
        reply = {"error": error_dict(e, app_root), "objects": []}
    finally:
        if parent is None:
            _finish_call(state)
        _context.pop(prev)
    rotated = state.cache.get("session_rotated_to") if parent is None else None
    if rotated:
        reply["session_id"] = rotated  # a login moved the caller to a new session: the host sends its cookie
    if parent is None:
        user = state.cache.get("anvil.users.user")  # only when the call looked its user up
        if user is not None:
            try:
                reply["user"] = str(user["email"])  # for the dev console's log; the host drops it
            except Exception:  # noqa: BLE001 - a users table without an email column
                pass
    return reply


def _finish_call(state: _context.CallState) -> None:
    """At the end of the outermost call: roll back a transaction it left open (a persistent worker's
    thread would otherwise keep the write lock), then save what it changed in its session."""
    from anvil_dev import services

    if services.is_open():
        services.current().end_call()
    flush = state.cache.get("session_flush")
    if flush is not None:
        try:
            flush()
        except Exception:  # noqa: BLE001 - checked before the reply; changed since only by a failing call
            pass


def check_require_user(reg: Any) -> None:
    if require_user_check is None:
        try:
            import anvil.users  # noqa: F401 - loading it installs require_user_check
        except ImportError:
            pass
    if require_user_check is None:
        raise server.PermissionDenied(
            f"You do not have permission to call server function '{reg.name}' (the Users service is not available)")
    require_user_check(reg)


def nested_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """anvil.server.call from server code: same serialization rules as any call, in this process when it can."""
    parent = _context.current()
    msg = wire.encode({"args": list(args), "kwargs": kwargs}, REGISTRY,
                      error_prefix="Cannot serialize arguments to function. ")
    msg["command"] = name
    caller = {
        "session_id": parent.session_id, "client_type": parent.client_type, "ip": parent.client_ip,
        "trusted": True, "call_stack": parent.call_stack + [{"type": "server_module"}],
        "user_email_override": parent.user_email_override, "background_task_id": parent.background_task_id,
    }
    if server.lookup(name) is not None:
        reply = execute(msg, caller, parent=parent if _context.in_call() else None)
    elif outbound is not None:
        msg["call_depth"] = parent.depth + 1
        reply = outbound(msg, caller)
    else:
        reply = no_such_function(name)
    if "error" in reply:
        raise exception_from_error(reply["error"])
    reply = copy.copy(reply)
    wire.decode(reply, REGISTRY, trusted=True)
    return reply.get("response")
