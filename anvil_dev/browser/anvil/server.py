"""`anvil.server` in the browser: server calls that block the calling code, as on Anvil.

A call is one synchronous POST to /_/call (the same route, codec and engine as every other
caller), so `anvil.server.call` returns the value or raises the server's exception type. The page
cannot repaint while the request is out, so the loading spinner is drawn by a frame in another
process (see _spinner.py); `call_s` and `no_loading_indicator` leave it alone.
"""

import builtins
from anvil import _json as json

from browser import window

from anvil import _replay
from anvil import _spinner
from anvil import _wire

_registry_classes = {}
_exception_types = {}


class AnvilWrappedError(Exception):
    """An error raised by server code, with Anvil's type name and message."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], dict) and "message" in args[0]:
            self.error_obj = dict(args[0])
            message = str(args[0].get("message", ""))
            Exception.__init__(self, message)
        else:
            Exception.__init__(self, *args)
            message = str(args[0]) if args else ""
            self.error_obj = {"type": _type_name(type(self)), "message": message}
        self.message = message

    def __str__(self):
        return self.message


def _type_name(cls):
    for name, c in _exception_types.items():
        if c is cls:
            return name
    return cls.__name__


def _error_class(name, base=AnvilWrappedError, module="anvil.server"):
    cls = type(name.rsplit(".", 1)[-1], (base,), {"__module__": module})
    _exception_types[name] = cls
    return cls


for _n in ("NoServerFunctionError", "PermissionDenied", "SerializationError", "TimeoutError",
           "ExecutionTerminatedError", "InternalError", "RuntimeUnavailableError", "UplinkDisconnectedError",
           "StackOverflow", "SessionExpiredError", "AppOfflineError", "InvalidResponseError",
           "QuotaExceededError", "DeserializationError", "BackgroundTaskNotFound", "BackgroundTaskKilled",
           "BackgroundTaskError"):
    globals()[_n] = _error_class("anvil.server." + _n)
NoServerFunctionError = globals()["NoServerFunctionError"]
SerializationError = globals()["SerializationError"]


def register_exception_type(name, cls):
    _exception_types[name] = cls


_TABLE_TYPES = ("anvil.tables.Row", "anvil.tables.Table", "anvil.tables.SearchIterator")


class _Registry(_wire.TypeRegistry):
    """Portable classes of client code, Rows, and Media that arrive as download URLs."""

    error_class = SerializationError

    def lookup(self, name, may_import=True):
        # Only the one fixed name imports a module (ours), so a sender cannot choose what loads.
        cls = self.classes.get(name)
        if cls is None and name in _TABLE_TYPES:
            import anvil.tables  # noqa: F401 - registers Row, Table, SearchIterator
            cls = self.classes.get(name)
        return cls

    def encode_other(self, obj, path):
        from anvil import media
        if isinstance(obj, media.Media):
            return media._wire_entry(obj)
        return None

    def decode_other(self, entry, path):
        if entry.get("type") == ["DataMedia"]:
            from anvil import media
            return media.URLMedia(entry.get("url"), entry.get("mime-type"), entry.get("name"))
        return _wire.TypeRegistry.decode_other(self, entry, path)


REGISTRY = _Registry()


def portable_class(cls=None, name=None):
    """@anvil.server.portable_class: the class travels between client and server code."""
    if isinstance(cls, str):
        cls, name = None, cls

    def register(c):
        full = name or (c.__module__ + "." + c.__name__)
        REGISTRY.register(c, full)
        if isinstance(c, type) and issubclass(c, BaseException):
            _exception_types[full] = c
        return c

    return register(cls) if cls is not None else register


def _exception_from(err):
    name = str(err.get("type") or "")
    cls = _exception_types.get(name)
    if cls is None and "." not in name and isinstance(getattr(builtins, name, None), type) and issubclass(
            getattr(builtins, name), Exception):
        exc = getattr(builtins, name)(err.get("message", ""))
    elif cls is not None and issubclass(cls, AnvilWrappedError):
        exc = cls(dict(err))
    elif cls is not None:
        exc = cls(err.get("message", ""))
    else:
        exc = type(name.rsplit(".", 1)[-1] or "AnvilWrappedError", (AnvilWrappedError,), {})(dict(err))
    exc.trace = err.get("trace") or []
    return exc


def _post(body, content_type):
    xhr = window.XMLHttpRequest.new()
    xhr.open("POST", "/_/call", False)
    if content_type:
        xhr.setRequestHeader("Content-Type", content_type)
    xhr.send(body)
    return xhr.status, xhr.responseText


def _call(indicator, fn_name, args, kwargs):
    if not isinstance(fn_name, str):
        raise TypeError("anvil.server.call() needs the function's name as its first argument")
    recorded = _replay.next_result()
    if recorded is not _replay.NOTHING:
        return recorded
    msg = _wire.encode({"args": list(args), "kwargs": dict(kwargs)}, REGISTRY)
    msg["command"] = fn_name
    media_entries = [e for e in msg["objects"] if e.get("type") == ["DataMedia"]]
    spinning = _spinner.start() if indicator else False
    try:
        if media_entries:
            form = window.FormData.new()
            for i, entry in enumerate(media_entries):
                blob = entry.pop("_blob")
                entry["id"] = "m%d" % i
                form.append(entry["id"], blob, entry.get("name") or "media")
            form.append("json", json.dumps(msg))
            status, text = _post(form, None)
        else:
            status, text = _post(json.dumps(msg), "application/json")
    finally:
        if spinning:
            _spinner.stop()
    try:
        reply = json.loads(text)
    except Exception:
        raise _exception_types["anvil.server.InternalError"](
            "The server's reply to %s was not JSON (HTTP %s)" % (fn_name, status))
    if "error" in reply:
        exc = _exception_from(reply["error"] or {})
        _replay.record_error(exc)
        raise exc
    output = reply.get("output")
    if output:
        window.console.log(str(output).rstrip("\n"))
    value = _wire.decode(reply, REGISTRY, trusted=False)["response"]
    _replay.record(value)
    return value


def call(fn_name, *args, **kwargs):
    """Call a server function; shows the loading indicator while it runs."""
    return _call(True, fn_name, args, kwargs)


def call_s(fn_name, *args, **kwargs):
    """Call a server function without the loading indicator."""
    return _call(False, fn_name, args, kwargs)


no_loading_indicator = _spinner.NoLoadingIndicator()


def get_app_origin(environment=None):
    return str(window.location.origin)


def get_api_origin(environment=None):
    return str(window.location.origin) + "/_/api"


def reset_session():
    return call_s("anvil.private.echo", None)


def callable(*a, **kw):
    raise RuntimeError("anvil.server.callable is for server code: put this function in server_code/")


class _Context:
    type = "browser"
    remote_caller = None


context = _Context()
