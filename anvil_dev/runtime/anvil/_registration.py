"""Server functions by name: `anvil.server.callable`, `background_task`, and the table the engine calls from."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Registration:
    name: str
    fn: Callable[..., Any]
    require_user: Any = None


registrations: dict[str, Registration] = {}
_pattern_registrations: list[tuple[Any, Registration]] = []


def register(
    fn: Callable[..., Any], name: str | None = None, name_prefix: str | None = None, require_user: Any = None
) -> Callable[..., Any]:
    """Register fn under name (default: its __name__); returns fn unchanged, as Anvil does."""
    if name is None:
        name = fn.__name__
    if name_prefix:
        name = name_prefix + name
    old = registrations.get(name)
    if old is not None and old.fn is not fn:
        print(
            f"Warning: a callable with the name '{name}' has already been registered "
            f"(previously by '{_where(old.fn)}' now by '{_where(fn)}').",
            file=sys.__stderr__,
        )
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


def signature_of(fn: Callable[..., Any]) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"
