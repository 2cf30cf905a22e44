"""Anvil's exception classes and how errors travel on the wire ({"type","message","trace"})."""

from __future__ import annotations

import traceback
from typing import Any

_registered: dict[str, type[BaseException]] = {}
_names: dict[type[BaseException], str] = {}


def register_exception_type(name: str, cls: type[BaseException]) -> None:
    _registered[name] = cls
    _names[cls] = name


class AnvilWrappedError(Exception):
    """An error whose type name and message travel on the wire as Anvil sends them."""

    def __init__(self, *args: Any) -> None:
        if len(args) == 1 and isinstance(args[0], dict) and "message" in args[0]:
            self.error_obj: dict[str, Any] = dict(args[0])
            message = str(args[0].get("message", ""))
            super().__init__(message)
        else:
            super().__init__(*args)
            message = str(args[0]) if args else ""
            self.error_obj = {"type": _names.get(type(self), type(self).__name__), "message": message}
        self.message = message

    def __str__(self) -> str:
        return self.message


class MaybeWrappedError(AnvilWrappedError):
    pass


def _anvil_error(name: str, base: type[AnvilWrappedError] = MaybeWrappedError) -> type[AnvilWrappedError]:
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
    if isinstance(exc, AnvilWrappedError) and "type" in exc.error_obj and type(exc) not in _names:
        return str(exc.error_obj["type"])
    return type(exc).__name__


def app_trace(tb: Any, app_root: str | None) -> list[list[Any]]:
    """[[file, line], ...] innermost first, only frames in the app, paths relative to it."""
    out = []
    for frame in traceback.extract_tb(tb):
        fname = frame.filename
        if app_root and fname.startswith(app_root + "/"):
            out.append([fname[len(app_root) + 1:], frame.lineno])
    out.reverse()
    return out


def error_dict(exc: BaseException, app_root: str | None) -> dict[str, Any]:
    if isinstance(exc, SyntaxError) and not isinstance(exc, AnvilWrappedError):
        fname = exc.filename or ""
        if app_root and fname.startswith(app_root + "/"):
            fname = fname[len(app_root) + 1:]
        return {"type": "SyntaxError", "message": f"{exc.msg} ({fname}, line {exc.lineno})",
                "trace": [[fname, exc.lineno]]}
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
    if cls is not None and issubclass(cls, AnvilWrappedError):
        exc: BaseException = cls(dict(err))
    elif cls is not None:
        exc = cls(err.get("message", ""))
    else:
        exc = AnvilWrappedError(dict(err))
    return exc
