"""Anvil's exception classes and how errors travel on the wire ({"type","message","trace"})."""

from __future__ import annotations

import traceback
from typing import Any

_registered: dict[str, type[BaseException]] = {}
_names: dict[type[BaseException], str] = {}


def register_exception_type(name: str, cls: type[BaseException]) -> None:
    """Give `cls` a name on the wire: raised in server code, it reaches callers as that type, and an
    error of that type coming back from anvil.server.call is raised as `cls` again."""
    _registered[name] = cls
    _names[cls] = name
    try:
        cls.registered_type_name = name  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass


class AnvilWrappedError(Exception):
    """An error whose type name and message travel on the wire as Anvil sends them.

    As Anvil's (downlink/python/anvil/_server.py line 539): built from a message, or from the error
    dict a call returned ({"type", "message", "trace"}).
    """

    registered_type_name: str | None = None

    def __init__(self, message: Any = "") -> None:
        if isinstance(message, dict):
            self.manually_created = False
            self.error_obj: dict[str, Any] = dict(message)
        else:
            self.manually_created = True
            self.error_obj = {"message": str(message), "trace": []}
            name = _names.get(type(self)) or type(self).registered_type_name
            if name is not None:
                self.error_obj["type"] = name
        self.message = str(self.error_obj.get("message", ""))
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        r = Exception.__repr__(self)
        eo_type = self.error_obj.get("type")
        if type(self) is not AnvilWrappedError or eo_type is None:
            return r
        return f"AnvilWrappedError({eo_type}{r[len('AnvilWrappedError') :]})"


class MaybeWrappedError(Exception):
    """The errors the platform itself raises (TimeoutError, PermissionDenied, SerializationError...).

    On Anvil these are plain Exceptions, not AnvilWrappedErrors (_server.py line 639), so
    `except anvil.server.AnvilWrappedError` does not catch them.
    """

    registered_type_name: str | None = None

    def __init__(self, message: Any = "") -> None:
        if isinstance(message, dict):
            self.error_obj: dict[str, Any] = dict(message)
            message = message.get("message", "")
        else:
            # Not on Anvil's class; kept so code that reads the wire type off any error still can.
            name = _names.get(type(self)) or type(self).registered_type_name
            self.error_obj = {"message": str(message), "trace": [], **({"type": name} if name else {})}
        Exception.__init__(self, message)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


def _anvil_error(name: str, base: type[Exception] = MaybeWrappedError) -> Any:
    short = name.rsplit(".", 1)[-1]
    cls = type(short, (base,), {"__module__": name.rsplit(".", 1)[0]})
    register_exception_type(name, cls)
    return cls


def type_name(exc: BaseException) -> str:
    """The type name Anvil sends for an exception: registered names, else the class name."""
    for klass in type(exc).__mro__:
        if klass in _names:
            if klass is type(exc) or not isinstance(exc, AnvilWrappedError):
                return _names[klass]
            break
    if type(exc) is AnvilWrappedError and "type" in exc.error_obj:
        return str(exc.error_obj["type"])
    return type(exc).__name__


def app_trace(tb: Any, app_root: str | None) -> list[list[Any]]:
    """[[file, line], ...] innermost first, only frames in the app, paths relative to it."""
    out = []
    for frame in traceback.extract_tb(tb):
        fname = frame.filename
        if app_root and fname.startswith(app_root + "/"):
            out.append([fname[len(app_root) + 1 :], frame.lineno])
    out.reverse()
    return out


def error_dict(exc: BaseException, app_root: str | None) -> dict[str, Any]:
    if isinstance(exc, SyntaxError) and not isinstance(exc, AnvilWrappedError):
        fname = exc.filename or ""
        if app_root and fname.startswith(app_root + "/"):
            fname = fname[len(app_root) + 1 :]
        return {
            "type": "SyntaxError",
            "message": f"{exc.msg} ({fname}, line {exc.lineno})",
            "trace": [[fname, exc.lineno]],
        }
    try:
        message = exc.message if isinstance(exc, AnvilWrappedError) else str(exc)
    except Exception as e:  # noqa: BLE001 - user code's __str__ must not take the reply down with it
        message = f"<the exception's __str__ raised {type(e).__name__}: {_safe_str(e)}>"
    return {"type": type_name(exc), "message": message, "trace": app_trace(exc.__traceback__, app_root)}


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001
        return "?"


def exception_from_error(err: dict[str, Any]) -> BaseException:
    """Rebuild an exception from its wire form: a registered class, else AnvilWrappedError."""
    cls = _registered.get(str(err.get("type")))
    if cls is not None and issubclass(cls, (AnvilWrappedError, MaybeWrappedError)):
        exc: BaseException = cls(dict(err))
    elif cls is not None:
        exc = cls(err.get("message", ""))
    else:
        exc = AnvilWrappedError(dict(err))
    return exc
