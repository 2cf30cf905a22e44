"""`anvil.server` for server modules: registration, calls, portable classes, session, context."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from anvil import _context
from anvil._capability import (
    Capability,
    _on_invalidate_client_objects,  # noqa: F401 - Anvil's private hook, used by anvil.users
    invalidate_client_objects,
    unwrap_capability,
)
from anvil._errors import AnvilWrappedError, MaybeWrappedError, _anvil_error, register_exception_type
from anvil._events import (
    get_client_session,
    get_subscriptions,
    list_client_sessions,
    raise_event,
    subscribe,
    unsubscribe,
)
from anvil._registry import REGISTRY
from anvil._responses import AppResponder, FormResponse, HttpHeaders, HttpResponse
from anvil_dev import protocol as _protocol

__all__ = [
    "AnvilWrappedError", "AppResponder", "Capability", "FormResponse", "HttpHeaders", "LazyMedia",
    "MaybeWrappedError", "Serializable", "get_client_session", "get_subscriptions", "invalidate_client_objects",
    "list_client_sessions", "live_object_backend", "raise_event", "server_method", "subscribe", "unsubscribe",
    "unwrap_capability", "wellknown_endpoint", "BackgroundTaskError", "BackgroundTaskKilled", "BackgroundTaskNotFound",
    "ExecutionTerminatedError", "HttpResponse", "InternalError", "NoServerFunctionError", "PermissionDenied",
    "SerializationError", "Task", "TimeoutError", "UplinkDisconnectedError", "background_task", "call", "callable",
    "context", "cookies", "get_app_origin", "get_background_task", "launch_background_task", "list_background_tasks",
    "portable_class", "session", "task_state",
]

SerializationError = REGISTRY.error_class
register_exception_type("anvil.server.SerializationError", SerializationError)
InternalError = _anvil_error("anvil.server.InternalError")
InvalidResponseError = _anvil_error("anvil.server.InvalidResponseError")
RuntimeUnavailableError = _anvil_error("anvil.server.RuntimeUnavailableError")
UplinkDisconnectedError = _anvil_error("anvil.server.UplinkDisconnectedError")
ExecutionTerminatedError = _anvil_error("anvil.server.ExecutionTerminatedError")
TimeoutError = _anvil_error("anvil.server.TimeoutError")  # Anvil's name
QuotaExceededError = _anvil_error("anvil.server.QuotaExceededError")
BackgroundTaskError = _anvil_error("anvil.server.BackgroundTaskError")
BackgroundTaskNotFound = _anvil_error("anvil.server.BackgroundTaskNotFound")
BackgroundTaskKilled = _anvil_error("anvil.server.BackgroundTaskKilled")
PermissionDenied = _anvil_error("anvil.server.PermissionDenied")
ServiceNotAdded = _anvil_error("anvil.server.ServiceNotAdded")
StackOverflow = _anvil_error("anvil.server.StackOverflow")
NoServerFunctionError = _anvil_error("anvil.server.NoServerFunctionError", AnvilWrappedError)
CookieError = _anvil_error("anvil.server.CookieError", AnvilWrappedError)



def _register_exception_type(name: str, cls: type[BaseException]) -> None:
    """Give an exception class a name on the wire (Anvil's _server.py line 578): raised by a server
    function, it reaches anvil.server.call() callers as this very class again."""
    register_exception_type(name, cls)


# ---------------------------------------------------------------------------------------------
# Registration


@dataclass
class Registration:
    name: str
    fn: Callable[..., Any]
    require_user: Any = None


registrations: dict[str, Registration] = {}
_pattern_registrations: list[tuple[Any, Registration]] = []


def register(fn: Callable[..., Any], name: str | None = None, name_prefix: str | None = None,
             require_user: Any = None) -> Callable[..., Any]:
    """Register fn under name (default: its __name__); returns fn unchanged, as Anvil does."""
    if name is None:
        name = fn.__name__
    if name_prefix:
        name = name_prefix + name
    old = registrations.get(name)
    if old is not None and old.fn is not fn:
        print(f"Warning: a callable with the name '{name}' has already been registered "
              f"(previously by '{_where(old.fn)}' now by '{_where(fn)}').", file=sys.__stderr__)
    registrations[name] = Registration(name, fn, require_user)

    def reregister(new_f: Callable[..., Any]) -> None:
        registrations[name] = Registration(name, new_f, require_user)

    try:
        fn._anvil_reregister = reregister  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass
    return fn


def _where(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def callable(fn_or_name: Any = None, require_user: Any = None) -> Any:  # Anvil's name
    """@anvil.server.callable, @callable(), @callable("name"), @callable(require_user=...)."""
    if fn_or_name is None or isinstance(fn_or_name, str):
        name = fn_or_name

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            return register(fn, name, require_user=require_user)

        return decorator
    return register(fn_or_name, require_user=require_user)


def callable_as(name: str) -> Any:
    return callable(name)


def background_task(fn_or_name: Any = None) -> Any:
    """Register a background task as "task:<name>"; launch it with launch_background_task."""
    if fn_or_name is None or isinstance(fn_or_name, str):
        name = fn_or_name

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            return _register_task(fn, name or fn.__name__)

        return decorator
    return _register_task(fn_or_name, fn_or_name.__name__)


def _register_task(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Registers a wrapper that sets up task_state when the call is the task itself; returns fn."""
    from anvil import _tasks

    full_name = "task:" + name
    register(_tasks.entry(fn), full_name)

    def reregister(new_f: Callable[..., Any]) -> None:
        registrations[full_name] = Registration(full_name, _tasks.entry(new_f))

    try:
        fn._anvil_reregister = reregister  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass
    return fn


def lookup(name: str) -> Registration | None:
    reg = registrations.get(name)
    if reg is None:
        for pattern, preg in _pattern_registrations:
            if pattern.fullmatch(name):
                return preg
    return reg


# ---------------------------------------------------------------------------------------------
# Portable classes


def portable_class(cls: Any, name: str | None = None) -> Any:
    """@anvil.server.portable_class or @portable_class("explicit.name")."""
    if name is None and isinstance(cls, str):
        explicit = cls
        return lambda c: portable_class(c, explicit)
    if name is not None and not isinstance(name, str):
        raise TypeError("The second argument to portable_class must be a str")
    type_name = name or f"{cls.__module__}.{cls.__name__}"
    cls.SERIALIZATION_INFO = (type_name, cls)
    REGISTRY.register(cls, type_name)
    for method_name, method in _server_methods.pop(cls, []):
        _register_server_method(type_name, method_name, method, cls)
    return cls


serializable_type = portable_class


class Serializable:
    """Anvil's old base class for portable classes (no longer needed): __dict__ travels."""

    SERIALIZATION_INFO: Any = None

    def __serialize__(self, info: Any) -> dict[str, Any]:
        return self.__dict__

    def __deserialize__(self, from_data: Any, info: Any) -> None:
        self.__dict__.update(from_data)

    @classmethod
    def __new_deserialized__(cls, from_data: Any, info: Any) -> Any:
        obj = cls.__new__(cls)
        obj.__dict__.update(from_data)
        return obj


_server_methods: dict[type, list[tuple[str, Any]]] = {}


class server_method:  # Anvil's name
    """@anvil.server.server_method on a method of a portable class: callable from client code as
    "anvil.server_side/<class name>.<method>" with the instance (or class) first, as on Anvil
    (downlink/python/anvil/_server.py lines 440 and 1776)."""

    _kws: dict[str, Any]

    def __new__(cls, func: Any = None, **kws: Any) -> Any:
        self = object.__new__(cls)
        self._kws = kws
        if func is None:
            return self._decorator_call
        return self

    def __init__(self, func: Any = None, **kws: Any) -> None:
        import builtins
        import functools

        functools.update_wrapper(self, func)
        self._server_name: str | None = None
        self._is_class_method = isinstance(func, classmethod)
        if self._is_class_method:
            func = func.__func__
        if not builtins.callable(func):
            raise TypeError(f"server_method must decorate a callable, got {type(func).__name__}")
        self._func = func

    def _decorator_call(self, func: Any) -> server_method:
        self.__init__(func)  # type: ignore[misc]
        return self

    def _check_register(self) -> None:
        if self._server_name is None:
            raise RuntimeError(
                "server_method must be used as the top-level decorator on a method within a portable class")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._check_register()
        return self._func(*args, **kwargs)

    def __set_name__(self, owner: type, name: str) -> None:
        _server_methods.setdefault(owner, []).append((name, self))

    def __get__(self, instance: Any, owner: Any) -> Any:
        import types

        self._check_register()
        if self._is_class_method:
            self_arg = owner if owner is not None else type(instance)
        elif instance is None:
            return self
        else:
            self_arg = instance
        return types.MethodType(self._func, self_arg)


def _register_server_method(type_name: str, method_name: str, method: server_method, cls: type) -> None:
    server_name = f"anvil.server_side/{type_name}.{method_name}"
    method._server_name = server_name

    def server_method_func(*args: Any, **kwargs: Any) -> Any:
        self_or_cls, rest = args[0], args[1:]
        if method._is_class_method:
            if not (isinstance(self_or_cls, type) and issubclass(self_or_cls, cls)):
                raise TypeError(f"Expected the first argument to be a class of type {cls.__name__} "
                                f"(got {self_or_cls}) when calling {method_name}()")
        elif not isinstance(self_or_cls, cls):
            raise TypeError(f"'self' argument to method must be an instance of {cls.__name__} "
                            f"(got {self_or_cls}) when calling {method_name}()")
        return getattr(self_or_cls, method_name)(*rest, **kwargs)

    register(server_method_func, server_name, require_user=method._kws.get("require_user"))


def live_object_backend(cls: Any) -> Any:
    """Anvil's decorator for live-object backends (its own services use it); anvil-dev's data tables
    do not need it, so it registers nothing and returns the class."""
    return cls


from anvil import LazyMedia  # noqa: E402 - anvil.LazyMedia is defined with the other Media classes

# ---------------------------------------------------------------------------------------------
# Calling other server functions


_outbound: Callable[[str, tuple[Any, ...], dict[str, Any]], Any] | None = None


def set_outbound(fn: Callable[[str, tuple[Any, ...], dict[str, Any]], Any] | None) -> None:
    """The engine's way to route a call this process cannot answer (e.g. to an uplink)."""
    global _outbound
    _outbound = fn


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


# ---------------------------------------------------------------------------------------------
# Session and context


class _Session(MutableMapping[str, Any]):
    """anvil.server.session: the caller's session, loaded when first touched, saved after the call."""

    def _data(self) -> dict[str, Any]:
        from anvil import _sessions

        return _sessions.current_data()

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        from anvil import _sessions

        _sessions.check_storable(value)
        self._data()[key] = value
        _sessions.mark_dirty()

    def __delitem__(self, key: str) -> None:
        from anvil import _sessions

        del self._data()[key]
        _sessions.mark_dirty()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data()))

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return repr(self._data())


session = _Session()


class StackFrame:
    def __init__(self, frame: dict[str, Any]) -> None:
        self.type = frame.get("type")
        self.is_trusted = self.type in ("server_module", "uplink", "background_task")
        self.protocol_version = frame.get("protocol-version", 8)

    def __repr__(self) -> str:
        return f"<StackFrame {self.type}>"


class ClientInfo:
    def __init__(self, type: str | None, ip: str | None) -> None:  # Anvil's name
        self.type = type
        self.ip = ip
        self.location = None

    def __repr__(self) -> str:
        return f"<ClientInfo type={self.type!r} ip={self.ip!r}>"


class _Context:
    """anvil.server.context: who called the running function."""

    @property
    def type(self) -> str:
        return "server_module"

    @property
    def client(self) -> ClientInfo:
        s = _context.current()
        return ClientInfo(s.client_type, s.client_ip)

    @property
    def call_stack(self) -> list[StackFrame]:
        return [StackFrame(f) for f in _context.current().call_stack]

    @property
    def remote_caller(self) -> StackFrame | None:
        stack = _context.current().call_stack
        return StackFrame(stack[-1]) if stack else None

    @property
    def background_task_id(self) -> str | None:
        return _context.current().background_task_id

    def __repr__(self) -> str:
        return f"<anvil.server.context client={self.client!r}>"


context = _Context()


def get_session_id() -> str | None:
    return _context.current().session_id


class AnvilCookie(MutableMapping[str, Any]):
    """`anvil.server.cookies.local` / `.shared`: [k], [k]=v, del, get, set(timeout_days=30, **values), clear().

    anvil-dev keeps them server-side with the caller's session (anvil_dev.services.cookies), not
    in the browser: they last as long as the session does.
    """

    def __init__(self, scope: str) -> None:
        self._scope = scope

    def _session(self) -> str:
        sid = _context.current().session_id
        if not sid or not _context.in_call():
            raise CookieError("Cookies are only available in server calls made from a client session")
        return sid

    def _stored(self) -> dict[str, str]:
        from anvil_dev import services

        return services.current().cookies.load(self._session(), self._scope)

    def __getitem__(self, key: str) -> Any:
        import json

        from anvil_dev import wire

        text = self._stored()[key]
        return wire.decode(json.loads(text), REGISTRY)["v"]

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(**{key: value})

    def set(self, timeout_days: float = 30, **values: Any) -> None:
        """Set cookies that expire after `timeout_days`."""
        import json

        from anvil import Media
        from anvil_dev import wire
        from anvil_dev.services import current

        encoded = {}
        for key, value in values.items():
            if isinstance(value, Media):
                raise CookieError("Cannot store Media objects in cookies")
            encoded[key] = json.dumps(wire.encode({"v": value}, REGISTRY,
                                                  error_prefix="Cannot store this value in a cookie. "))
        current().cookies.store(self._session(), self._scope, encoded, float(timeout_days))

    def __delitem__(self, key: str) -> None:
        from anvil_dev import services

        if key not in self._stored():
            raise KeyError(key)
        services.current().cookies.delete(self._session(), self._scope, key)

    def clear(self) -> None:
        from anvil_dev import services

        services.current().cookies.delete(self._session(), self._scope)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._stored()))

    def __len__(self) -> int:
        return len(self._stored())

    def __repr__(self) -> str:
        return f"<anvil.server.cookies.{self._scope}>"


class _Cookies:
    local = AnvilCookie("local")
    shared = AnvilCookie("shared")


cookies = _Cookies()


def get_app_origin(environment_type: str | None = None, **kwargs: Any) -> str:
    from anvil_dev import services

    return services.current().settings.origin


def get_api_origin(environment_type: str | None = None, **kwargs: Any) -> str:
    return get_app_origin() + "/_/api"


# ---------------------------------------------------------------------------------------------
# Background tasks (anvil._tasks holds the logic)

from anvil._tasks import (  # noqa: E402 - after the error classes it uses
    Task,
    get_background_task,
    launch_background_task,
    list_background_tasks,
    task_state,
)

# ---------------------------------------------------------------------------------------------
# HTTP endpoints


class _RequestProxy:
    def __getattr__(self, name: str) -> Any:
        req = _context.current().http_request
        if req is None:
            raise Exception("anvil.server.request is only available in http_endpoint calls.")
        return getattr(req, name)


request = _RequestProxy()


def _endpoint_pattern(path: str) -> tuple[str, list[str]]:
    import re

    names: list[str] = []
    parts = []
    for seg in path.strip("/").split("/"):
        if seg.startswith(":"):
            names.append(seg[1:])
            parts.append("([^/]*)")
        else:
            parts.append(re.escape(seg))
    return "/" + "/".join(parts), names


_GET_POST = ["GET", "POST"]


def http_endpoint(path: str, require_credentials: bool = False, authenticate_users: bool = False,
                  authenticate_user: bool = False, methods: list[str] = _GET_POST,  # Anvil's default
                  enable_cors: bool = False, cross_site_session: bool = False, *, _task_prefix: str = "http") -> Any:
    return _endpoint(_task_prefix + ":", path, require_credentials, authenticate_users or authenticate_user,
                     methods, enable_cors, cross_site_session)


def route(path: str, require_credentials: bool = False, authenticate_users: bool = False,
          authenticate_user: bool = False, methods: list[str] = _GET_POST,  # Anvil's default
          enable_cors: bool = False, cross_site_session: bool = False) -> Any:
    """As Anvil's (functools.partial(http_endpoint, _task_prefix="route"), _server.py line 1636): every
    keyword http_endpoint takes."""
    return http_endpoint(path, require_credentials, authenticate_users, authenticate_user, methods,
                         enable_cors, cross_site_session, _task_prefix="route")


def wellknown_endpoint(path: str, require_credentials: bool = False, authenticate_users: bool = False,
                       authenticate_user: bool = False, methods: list[str] = _GET_POST,
                       enable_cors: bool = False, cross_site_session: bool = False) -> Any:
    """A route under /.well-known/ (Anvil's _server.py line 1639): `path` "/x" answers /.well-known/x."""
    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if path.startswith("/"):
            route("/.well-known" + path, require_credentials, authenticate_users, authenticate_user, methods,
                  enable_cors, cross_site_session)(fn)
        return fn

    return decorator


def _endpoint(prefix: str, path: str, require_credentials: bool, authenticate_users: bool,
              methods: list[str] | None, enable_cors: bool, cross_site_session: bool) -> Any:
    import re

    pattern, names = _endpoint_pattern(path)

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        reg = Registration(prefix + pattern, fn)
        reg.pattern = re.compile(prefix + pattern)  # type: ignore[attr-defined]
        reg.endpoint = {  # type: ignore[attr-defined]
            "path": path, "params": names, "methods": [m.upper() for m in (methods or ["GET", "POST"])],
            "require_credentials": require_credentials, "authenticate_users": authenticate_users,
            "enable_cors": enable_cors, "cross_site_session": cross_site_session,
        }
        _pattern_registrations.append((reg.pattern, reg))  # type: ignore[attr-defined]
        registrations[prefix + pattern] = reg
        return fn

    return decorator


def signature_of(fn: Callable[..., Any]) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"
