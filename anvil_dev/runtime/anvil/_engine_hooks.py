"""Running one server call inside a child: decode, check, call, encode. Also nested calls."""

from __future__ import annotations

import copy
import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anvil import _context, server
from anvil._errors import error_dict, exception_from_error
from anvil._registry import REGISTRY
from anvil_dev import protocol, tracebacks, wire
from anvil_dev.protocol import Caller, Message, Reply

app_root: str | None = None
# (directory, label) of the app's code and its dependencies': their frames are the app's in tracebacks.
code_roots: list[tuple[str, str]] = []
# Where a failed call's frames wait in CallState.cache: for `execute`, or for the nested_call that ran it.
_FRAMES = "_error_frames"
# Set by the engine: sends a call this process has no function for to the host, returns the reply.
outbound: Callable[[Message, Caller], Reply] | None = None
# Set by the users service when it loads: raises if the current caller may not call `reg`.
require_user_check: Callable[[server.Registration], None] | None = None


def no_such_function(name: str) -> Message:
    """Anvil's error for a name nothing registered, with the registered names it may have meant."""
    message = protocol.no_such_function(name)
    close = did_you_mean(name)
    if close:
        message["error"]["message"] += " - did you mean " + " or ".join(f'"{n}"' for n in close) + "?"
    return message


def did_you_mean(name: str) -> list[str]:
    """Registered names close to `name` (a misspelling, a different case), of the same kind: a
    callable for a callable, a task for a task; anvil's own names never."""
    import difflib

    prefix = name.partition(":")[0] + ":" if ":" in name else ""
    names = [
        n
        for n in server.registrations
        if not n.startswith("anvil.") and (n.startswith(prefix) if prefix else ":" not in n)
    ]
    by_lower = {n.lower(): n for n in names}
    exact_case = by_lower.get(name.lower())
    if exact_case is not None and exact_case != name:
        return [exact_case]
    return difflib.get_close_matches(name, names, n=3, cutoff=0.75)


@dataclass
class Outcome:
    """What a call made: the reply message for its caller, and what only the host needs to know."""

    message: Message
    session_id: str | None = None  # a login moved the caller to this session: the host sends its cookie
    user: str | None = None  # the email of the user the call looked up, for the dev console's log
    frames: list[tracebacks.Frame] | None = None  # a failed call's traceback (tracebacks.extract), host-only


def execute(call: Message, caller: Caller, output: list[str] | None = None) -> Outcome:
    """Run the call `call` ({"command","args","kwargs","objects"}, and "id") for `caller`."""
    command = call.get("command")
    reg = server.lookup(command) if isinstance(command, str) else None
    if reg is None:
        return Outcome(no_such_function(str(command)))
    state = _context.CallState.for_call(caller, call.get("id") or uuid.uuid4().hex[:10], str(command))
    if output is not None:
        state.output = output
    message = _run(reg, call, state, None)
    outcome = Outcome(
        message, session_id=state.cache.get("session_rotated_to") or None, frames=state.cache.pop(_FRAMES, None)
    )
    user = state.cache.get("anvil.users.user")  # only when the call looked its user up
    if user is not None:
        try:
            outcome.user = str(user["email"])
        except Exception:  # noqa: BLE001 - a users table without an email column
            pass
    return outcome


def _run(
    reg: server.Registration, call: Message, state: _context.CallState, parent: _context.CallState | None
) -> Message:
    """Decode, check, call, encode: the reply message; a nested call (`parent`) shares its caches."""
    command = str(state.command)
    if parent is not None:
        state.depth = parent.depth + 1
        state.output = parent.output
        state.cache = parent.cache
        state.http_request = parent.http_request
    prev = _context.push(state)
    try:
        if parent is None:
            _begin_call()
        try:
            wire.decode(call, REGISTRY, trusted=state.remote_trusted)
        except server.SerializationError as e:
            raise server.SerializationError(f"Cannot deserialize arguments to function. {e}") from None
        args = call.get("args") or []
        kwargs = call.get("kwargs") or {}
        if reg.require_user is not None and reg.require_user is not False:
            check_require_user(reg)
        if getattr(reg, "endpoint", None) is not None:
            from anvil import _endpoints

            result = _endpoints.run(reg, command, kwargs)
        else:
            _check_arguments(reg, command, args, kwargs)
            result = reg.fn(*args, **kwargs)
        if isinstance(result, (bytes, bytearray)):
            raise UnicodeError(
                "This function returned a binary string (not text). If you want to return "
                "binary data, use a BlobMedia object instead."
            )
        if parent is None:
            # The session is saved before the reply goes, so a value it cannot hold fails the call
            # (as on Anvil) instead of being lost after the caller has its answer.
            check = state.cache.get("session_check")
            if check is not None:
                check()
        # What goes to an untrusted caller is encoded for one (rows drop client_hidden columns).
        reply = wire.encode(
            {"response": result},
            REGISTRY,
            info=wire.SerializationInfo(remote_is_trusted=state.remote_trusted),
            error_prefix="Cannot serialize return value from function. ",
        )
    except BaseException as e:  # noqa: BLE001 - every failure of user code goes back to the caller
        # KeyboardInterrupt and SystemExit too: here they can only come from server code (workers
        # ignore SIGINT), and re-raising them would end the process (fresh) or the call's thread
        # without a reply (persistent), leaving the caller to wait for the timeout.
        reply = {"error": error_dict(_storage_error(e), app_root), "objects": []}
        state.cache[_FRAMES] = error_frames(e)
    finally:
        if parent is None:
            _finish_call(state)
        _context.pop(prev)
    return reply


def error_frames(e: BaseException) -> list[tracebacks.Frame]:
    """The traceback of a call's error, with a nested call's own frames after the call that made it."""
    try:
        frames = tracebacks.extract(e.__traceback__, code_roots)
    except Exception:  # noqa: BLE001 - a traceback we cannot read must not cost the caller the error
        return []
    inner = getattr(e, "_anvil_dev_frames", None)
    return frames + inner if isinstance(inner, list) else frames


def _storage_error(e: BaseException) -> BaseException:
    """A write that failed because the app's disk is full or read-only, as anvil.tables.TableError
    saying so (not a bare sqlite3.OperationalError); any other error as it is."""
    from anvil_dev import services
    from anvil_dev.services.db import storage_problem
    from anvil_dev.services.tables import TableError

    if not services.is_open() or isinstance(e, TableError):
        return e
    problem = storage_problem(e, services.current().app_dir.data_dir)
    return TableError(problem) if problem else e


def _check_arguments(reg: Any, command: str, args: Any, kwargs: Any) -> None:
    """Arguments that do not fit one of this runtime's own functions (anvil.private.*) are the
    caller's mistake, refused as a SerializationError (400), not a TypeError from inside anvil-dev.
    An app's own functions get Python's TypeError, as on Anvil."""
    if not str(getattr(reg.fn, "__module__", "")).startswith("anvil."):
        return
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise server.SerializationError(f"Malformed call to {command}: args must be a list, kwargs an object")
    try:
        inspect.signature(reg.fn).bind(*args, **kwargs)
    except TypeError as e:
        raise server.SerializationError(f"Wrong arguments to {command}: {e}") from None


def _begin_call() -> None:
    from anvil_dev import services

    if services.is_open():
        services.current().begin_call()


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


def check_require_user(reg: server.Registration) -> None:
    if require_user_check is None:
        try:
            import anvil.users  # noqa: F401 - loading it installs require_user_check
        except ImportError:
            pass
    if require_user_check is None:
        raise server.PermissionDenied(
            f"You do not have permission to call server function '{reg.name}' (the Users service is not available)"
        )
    require_user_check(reg)


def nested_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """anvil.server.call from server code: same serialization rules as any call, in this process when it can."""
    parent = _context.current()
    call = wire.encode(
        {"args": list(args), "kwargs": kwargs}, REGISTRY, error_prefix="Cannot serialize arguments to function. "
    )
    call["command"] = name
    caller = parent.caller().nested("server_module")
    reg = server.lookup(name)
    frames = None
    if reg is not None:
        state = _context.CallState.for_call(caller, uuid.uuid4().hex[:10], name)
        reply = _run(reg, call, state, parent if _context.in_call() else None)
        frames = state.cache.pop(_FRAMES, None)  # state.cache is the caller's when in a call
    elif outbound is not None:
        call["call_depth"] = parent.depth + 1
        reply = outbound(call, caller).message()
    else:
        reply = no_such_function(name)
    if "error" in reply:
        exc = exception_from_error(reply["error"])
        if frames:
            try:
                exc._anvil_dev_frames = frames  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
        raise exc
    reply = copy.copy(reply)
    wire.decode(reply, REGISTRY, trusted=True)
    return reply.get("response")
