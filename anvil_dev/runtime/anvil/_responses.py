"""What endpoints and routes return: HttpResponse with Anvil's header object, FormResponse and
AppResponder (downlink/python/anvil/_server.py lines 1283-1384)."""

from __future__ import annotations

from typing import Any


def _lower(s: Any) -> Any:
    return s.lower() if isinstance(s, str) else s


class HttpHeaders:
    """Response headers: names case-insensitive, `add()` for a header sent more than once."""

    def __init__(self, headers: dict[str, Any] | None = None) -> None:
        headers = headers or {}
        if not isinstance(headers, dict):
            raise TypeError("headers should be a dict")
        self._headers: list[tuple[Any, Any]] = list({_lower(h): v for h, v in headers.items()}.items())

    def __setitem__(self, name: str, val: Any) -> None:
        del self[name]
        self.add(name, val)

    def __delitem__(self, name: str) -> None:
        name = _lower(name)
        self._headers = [(h, v) for h, v in self._headers if h != name]

    def __getitem__(self, name: str) -> Any:
        name = _lower(name)
        for h, v in reversed(self._headers):
            if h == name:
                return v
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(h == _lower(name) for h, _ in self._headers)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def items(self) -> list[tuple[Any, Any]]:
        return list(self._headers)

    def keys(self) -> list[Any]:
        return [h for h, _ in self._headers]

    def add(self, name: str, val: Any) -> None:
        self._headers.append((_lower(name), val))

    def clear(self) -> None:
        self._headers = []

    def copy(self) -> HttpHeaders:
        new = HttpHeaders()
        new._headers = list(self._headers)
        return new

    def __repr__(self) -> str:
        return f"HttpHeaders({self._headers!r})"


class HttpResponse:
    """An endpoint's response: status, body (str, bytes or Media) and headers."""

    def __init__(self, status: int = 200, body: Any = "", headers: Any = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def headers(self) -> HttpHeaders:
        return self._headers

    @headers.setter
    def headers(self, value: Any) -> None:
        if value is None or isinstance(value, dict):
            self._headers = HttpHeaders(value)
        elif isinstance(value, HttpHeaders):
            self._headers = value.copy()
        else:
            raise TypeError("headers should be set to a dictionary")


class _LoadAppResponse:
    """What a route returns to open the app at a form or module (portable as Anvil's name)."""

    def __init__(self, **kws: Any) -> None:
        self.__dict__.update(kws)


def FormResponse(form_name: Any, *args: Any, **kwargs: Any) -> _LoadAppResponse:  # Anvil's name
    """Open `form_name` as a new page from a route, with these arguments to its constructor."""
    return _LoadAppResponse(form=form_name, args=args, kwargs=kwargs)


class AppResponder:
    """AppResponder(data=..., meta=...).load_form(name, ...) / .load_module(name) / .load_app()."""

    def __init__(self, *args: Any, **kws: Any) -> None:
        if args:
            raise TypeError("AppResponder() takes keyword arguments only")
        for key in kws:
            if key not in ("data", "meta"):
                raise TypeError(f"AppResponder() got an unexpected keyword argument '{key}'")
        self.data = kws.get("data")
        self.meta = kws.get("meta")

    def load_form(self, form_name: Any, *args: Any, **kwargs: Any) -> _LoadAppResponse:
        return _LoadAppResponse(data=self.data, meta=self.meta, form=form_name, args=args, kwargs=kwargs)

    def load_module(self, module_name: Any) -> _LoadAppResponse:
        return _LoadAppResponse(data=self.data, meta=self.meta, module=module_name)

    def load_app(self) -> _LoadAppResponse:
        return _LoadAppResponse(data=self.data, meta=self.meta)
