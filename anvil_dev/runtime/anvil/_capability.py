"""anvil.server.Capability, unwrap_capability and invalidate_client_objects, as Anvil's behave
(downlink/python/anvil/_server.py lines 159-287).

A Capability travels as a portable class whose scope is signed with the app's secret key: one sent
back by a client is accepted only with a valid signature (a narrowed one keeps its base's), so a
browser cannot make up a capability it was never given.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

_n_invalidations = 0
_invalidation_callbacks: list[Callable[[], Any]] = []


def invalidate_client_objects() -> None:
    """Make every Capability made before now invalid (`is_valid` False), as a logout does on Anvil."""
    global _n_invalidations
    _n_invalidations += 1
    for f in _invalidation_callbacks:
        f()


def _on_invalidate_client_objects(f: Callable[[], Any]) -> None:
    _invalidation_callbacks.append(f)


class _CapAny:
    def __repr__(self) -> str:
        return "ANY"


def _check_valid_scope(scope: Any, name: str = "scope") -> list[Any]:
    if type(scope) is not list:
        raise TypeError(f"The {name} of a Capability must be a list")
    try:
        return json.loads(json.dumps(scope))
    except TypeError as e:
        raise TypeError(f"The {name} provided is not valid JSON data. {e}") from None


def _mac(scope: list[Any]) -> str:
    from anvil_dev import services

    key = services.current().secret_key if services.is_open() else b"anvil-dev"
    return hmac.new(key, b"cap:" + json.dumps(scope, sort_keys=True).encode(), hashlib.sha256).hexdigest()


class Capability:
    """A scope (a list) a server function can hand out and later check with unwrap_capability."""

    ANY = _CapAny()

    def __init__(self, scope: Any, mac: Any = None, narrow: Any = None) -> None:
        scope = _check_valid_scope(scope)
        if mac is None:
            if not len(scope):
                raise ValueError("Cannot construct a capability with an empty scope")
            if scope[0] == "_":
                raise ValueError("To construct a Capability from scratch, its scope cannot start with ['_']")
        self._scope = scope
        self._mac = mac
        self._narrow = list(narrow or [])
        self._apply: Callable[[Any], Any] | None = None
        self._get: Callable[[], Any] | None = None
        self._queued_update: Any = {}
        self._n_invalidations = _n_invalidations

    @property
    def scope(self) -> list[Any]:
        return self._scope + self._narrow

    @property
    def is_valid(self) -> bool:
        return self._n_invalidations == _n_invalidations

    def narrow(self, narrowing_suffix: Any) -> Capability:
        suffix = _check_valid_scope(narrowing_suffix, "narrow argument")
        return Capability(self._scope, self._mac or "local", self._narrow + suffix)

    def set_update_handler(
        self, apply_update: Callable[[Any], Any], get_update: Callable[[], Any] | None = None
    ) -> None:
        self._apply, self._get = apply_update, get_update

    def send_update(self, update: Any) -> None:
        if self._apply is not None:
            self._apply(update)
        if self._get is None:
            if isinstance(update, dict) and isinstance(self._queued_update, dict):
                self._queued_update.update(**update)
            else:
                self._queued_update = update

    def __repr__(self) -> str:
        return f"<anvil.server.Capability:{self.scope}>"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Capability:
            return NotImplemented
        return self.scope == other.scope

    def __hash__(self) -> int:
        return hash(json.dumps(self.scope))

    def __serialize__(self, info: Any) -> dict[str, Any]:
        return {"scope": self._scope, "narrow": self._narrow, "mac": _mac(self._scope)}

    @classmethod
    def __new_deserialized__(cls, data: Any, info: Any) -> Capability:
        from anvil.server import PermissionDenied

        if not isinstance(data, dict) or not isinstance(data.get("scope"), list):
            raise PermissionDenied("Invalid Capability")
        scope, mac = data["scope"], data.get("mac")
        trusted = getattr(info, "remote_is_trusted", False)
        if not trusted and not (isinstance(mac, str) and hmac.compare_digest(mac, _mac(scope))):
            raise PermissionDenied("Invalid Capability: its signature does not match its scope")
        return Capability(scope, mac or "local", data.get("narrow") or [])


def unwrap_capability(cap: Any, scope_pattern: Any) -> list[Any]:
    """Check that `cap` is a Capability whose scope matches the pattern; the matched elements."""
    if type(cap) is not Capability:
        raise TypeError(f"Not a valid Capability: found {type(cap).__name__}")
    if type(scope_pattern) is not list:
        raise TypeError(f"scope_pattern should be a list, not {type(scope_pattern).__name__}")
    scope = cap.scope
    if len(scope) > len(scope_pattern):
        raise ValueError(f"Capability is too narrow: required {scope_pattern}; got {scope}")
    ret: list[Any] = [None] * len(scope_pattern)
    for i, got in enumerate(scope):
        want = scope_pattern[i]
        if want is Capability.ANY or got == want or (type(want) is tuple and got == list(want)):
            ret[i] = got
        else:
            raise ValueError(f"Incorrect Capability: required {scope_pattern}; got {scope}")
    return ret


Capability.require = staticmethod(unwrap_capability)  # type: ignore[attr-defined]  # Anvil's old name
