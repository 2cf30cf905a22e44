"""Portable classes: `anvil.server.portable_class`, their `server_method`s, and Anvil's older `Serializable`."""

from __future__ import annotations

from typing import Any

from anvil._registration import register
from anvil._registry import REGISTRY


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
        import functools

        functools.update_wrapper(self, func)
        self._server_name: str | None = None
        self._is_class_method = isinstance(func, classmethod)
        if self._is_class_method:
            func = func.__func__
        if not callable(func):
            raise TypeError(f"server_method must decorate a callable, got {type(func).__name__}")
        self._func = func

    def _decorator_call(self, func: Any) -> server_method:
        self.__init__(func)  # type: ignore[misc]
        return self

    def _check_register(self) -> None:
        if self._server_name is None:
            raise RuntimeError(
                "server_method must be used as the top-level decorator on a method within a portable class"
            )

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
                raise TypeError(
                    f"Expected the first argument to be a class of type {cls.__name__} "
                    f"(got {self_or_cls}) when calling {method_name}()"
                )
        elif not isinstance(self_or_cls, cls):
            raise TypeError(
                f"'self' argument to method must be an instance of {cls.__name__} "
                f"(got {self_or_cls}) when calling {method_name}()"
            )
        return getattr(self_or_cls, method_name)(*rest, **kwargs)

    register(server_method_func, server_name, require_user=method._kws.get("require_user"))


def live_object_backend(cls: Any) -> Any:
    """Anvil's decorator for live-object backends (its own services use it); anvil-dev's data tables
    do not need it, so it registers nothing and returns the class."""
    return cls
