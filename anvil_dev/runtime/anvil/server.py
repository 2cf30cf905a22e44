"""`anvil.server` for server modules: registration, calls, portable classes, session, context.

Each part lives in a private module beside this one (anvil._registration, anvil._portable,
anvil._server_context, anvil._cookies, anvil._routes, anvil._tasks, anvil._server_errors); this
module is the one place server code imports them from, as on Anvil.
"""

from __future__ import annotations

from typing import Any

from anvil import LazyMedia, _context
from anvil._capability import (
    Capability,
    _on_invalidate_client_objects,  # noqa: F401 - Anvil's private hook, used by anvil.users
    invalidate_client_objects,
    unwrap_capability,
)
from anvil._cookies import AnvilCookie as AnvilCookie
from anvil._cookies import cookies
from anvil._errors import AnvilWrappedError, MaybeWrappedError, register_exception_type
from anvil._events import (
    get_client_session,
    get_subscriptions,
    list_client_sessions,
    raise_event,
    subscribe,
    unsubscribe,
)
from anvil._portable import Serializable, live_object_backend, portable_class, server_method
from anvil._portable import serializable_type as serializable_type
from anvil._registration import Registration as Registration
from anvil._registration import background_task, callable
from anvil._registration import callable_as as callable_as
from anvil._registration import lookup as lookup
from anvil._registration import register as register
from anvil._registration import registrations as registrations
from anvil._registration import signature_of as signature_of
from anvil._responses import AppResponder, FormResponse, HttpHeaders, HttpResponse
from anvil._routes import http_endpoint as http_endpoint
from anvil._routes import request as request
from anvil._routes import route as route
from anvil._routes import wellknown_endpoint
from anvil._server_context import ClientInfo as ClientInfo
from anvil._server_context import StackFrame as StackFrame
from anvil._server_context import context, get_app_origin, session
from anvil._server_context import get_api_origin as get_api_origin
from anvil._server_context import get_session_id as get_session_id
from anvil._server_errors import (
    BackgroundTaskError,
    BackgroundTaskKilled,
    BackgroundTaskNotFound,
    ExecutionTerminatedError,
    InternalError,
    NoServerFunctionError,
    PermissionDenied,
    SerializationError,
    StackOverflow,
    TimeoutError,
    UplinkDisconnectedError,
)
from anvil._server_errors import CookieError as CookieError
from anvil._server_errors import InvalidResponseError as InvalidResponseError
from anvil._server_errors import QuotaExceededError as QuotaExceededError
from anvil._server_errors import RuntimeUnavailableError as RuntimeUnavailableError
from anvil._server_errors import ServiceNotAdded as ServiceNotAdded
from anvil._tasks import (
    Task,
    get_background_task,
    launch_background_task,
    list_background_tasks,
    task_state,
)
from anvil_dev import protocol as _protocol

__all__ = [
    "AnvilWrappedError",
    "AppResponder",
    "Capability",
    "FormResponse",
    "HttpHeaders",
    "LazyMedia",
    "MaybeWrappedError",
    "Serializable",
    "get_client_session",
    "get_subscriptions",
    "invalidate_client_objects",
    "list_client_sessions",
    "live_object_backend",
    "raise_event",
    "server_method",
    "subscribe",
    "unsubscribe",
    "unwrap_capability",
    "wellknown_endpoint",
    "BackgroundTaskError",
    "BackgroundTaskKilled",
    "BackgroundTaskNotFound",
    "ExecutionTerminatedError",
    "HttpResponse",
    "InternalError",
    "NoServerFunctionError",
    "PermissionDenied",
    "SerializationError",
    "Task",
    "TimeoutError",
    "UplinkDisconnectedError",
    "background_task",
    "call",
    "callable",
    "context",
    "cookies",
    "get_app_origin",
    "get_background_task",
    "launch_background_task",
    "list_background_tasks",
    "portable_class",
    "session",
    "task_state",
]


def _register_exception_type(name: str, cls: type[BaseException]) -> None:
    """Give an exception class a name on the wire (Anvil's _server.py line 578): raised by a server
    function, it reaches anvil.server.call() callers as this very class again."""
    register_exception_type(name, cls)


# ---------------------------------------------------------------------------------------------
# Calling other server functions


def call(*args: Any, **kwargs: Any) -> Any:
    """Call a server function by name, with the same serialization rules as a client call."""
    # Anvil's two messages, spelling included (downlink/python/anvil/server.py lines 62-66).
    if not args:
        raise TypeError("anvil.server.call() expects atleast 1 argument")
    fn_name, fn_args = args[0], args[1:]
    if not isinstance(fn_name, str):
        raise TypeError("first argument to anvil.server.call() must be as str, got '" + type(fn_name).__name__ + "'")
    state = _context.current()
    if state.depth + 1 > _protocol.MAX_CALL_DEPTH:
        raise StackOverflow(_protocol.STACK_OVERFLOW_MESSAGE)
    from anvil import _engine_hooks

    return _engine_hooks.nested_call(fn_name, fn_args, kwargs)


def call_s(*args: Any, **kwargs: Any) -> Any:
    return call(*args, **kwargs)
