"""`anvil.util` (client/py/anvil/util.py, served to server code too): WrappedObject and WrappedList,
the dict and list whose nested dicts and lists are wrapped too, with attribute access."""

from __future__ import annotations

from typing import Any

from anvil.server import serializable_type

__all__ = ["WrappedList", "WrappedObject", "serializable_type"]


def _wrap(value: Any) -> Any:
    if isinstance(value, (WrappedObject, WrappedList)):
        return value
    if isinstance(value, dict):
        return WrappedObject(value)
    if isinstance(value, list):
        return WrappedList(value)
    return value


@serializable_type
class WrappedObject(dict):  # type: ignore[type-arg]
    """A dict whose keys read as attributes too; a missing key reads as an empty WrappedObject."""

    _name: str | None = None
    _module: str | None = None

    def __init__(self, d: Any = None, **kwargs: Any) -> None:
        if d and isinstance(d, dict):
            for k in d:
                self[k] = d[k]
        for k, v in kwargs.items():
            self[k] = v

    def __getattr__(self, key: str) -> Any:
        return self[key]

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, _wrap(value))

    def __getitem__(self, key: Any) -> Any:
        missing = object()
        value = dict.get(self, key, missing)
        if value is missing:
            value = WrappedObject()
            dict.__setitem__(self, key, value)
        return value

    def update(self, *args: Any, **new_items: Any) -> None:  # type: ignore[override]
        if len(args) > 1:
            raise TypeError(f"expected at most 1 argument, got {len(args)}")
        if args:
            new_items = dict(args[0], **new_items)
        for k, v in new_items.items():
            self[k] = v

    def __repr__(self) -> str:
        name = self._name or "WrappedObject"
        module = self._module + "." if self._module else ""
        return f"{module}{name}<{', '.join(f'{k}={self[k]!r}' for k in self)}>"

    def __serialize__(self, info: Any) -> dict[str, Any]:
        return dict(self)

    def __deserialize__(self, data: Any, info: Any) -> None:
        self.__init__(data)  # type: ignore[misc]

    def __copy__(self) -> WrappedObject:
        return self.__class__(dict.copy(self))

    def __deepcopy__(self, memo: Any) -> WrappedObject:
        from copy import deepcopy

        return self.__class__(deepcopy(dict(self)))


@serializable_type
class WrappedList(list):  # type: ignore[type-arg]
    """A list whose dicts and lists are wrapped as they go in."""

    def __init__(self, lst: Any = []) -> None:  # noqa: B006 - Anvil's signature; never mutated
        super().__init__()
        for x in lst:
            self.append(x)

    def append(self, item: Any) -> None:
        list.append(self, _wrap(item))

    def extend(self, items: Any) -> None:
        for i in items:
            self.append(i)

    def insert(self, offset: Any, item: Any) -> None:
        list.insert(self, offset, _wrap(item))

    def __serialize__(self, info: Any) -> list[Any]:
        return list(self)

    def __deserialize__(self, data: Any, info: Any) -> None:
        self.__init__(data)  # type: ignore[misc]

    def __copy__(self) -> WrappedList:
        return self.__class__(list.copy(self))

    def __deepcopy__(self, memo: Any) -> WrappedList:
        from copy import deepcopy

        return self.__class__(deepcopy(list(self)))
