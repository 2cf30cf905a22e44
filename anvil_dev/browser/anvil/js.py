"""`anvil.js` in the browser: the page's JavaScript from client Python.

`call(fn_or_name, *args)` calls a JavaScript function (a global's name, dotted names too, or the
function itself); when it returns a Promise, the calling Python code waits for it as on Anvil:
Brython cannot suspend Python code, so the running handler stops there and, once the promise has
settled, runs again from the start with what it already got (server calls, JavaScript results)
returned from the record instead of being made again (see _replay.py). A rejected promise or a
JavaScript exception raises `ExternalError`. Outside a handler (a timer's callback) a promise is
returned as it is.
"""

from browser import document, window  # noqa: F401

from anvil import _replay


class ExternalError(Exception):
    """A JavaScript error (a thrown exception, or a rejected promise), as anvil.js.ExternalError."""

    def __init__(self, original_error=None, message=None):
        self.original_error = original_error
        if message is None:
            try:
                message = str(original_error.message)
            except Exception:
                message = str(original_error)
        Exception.__init__(self, message)


class _Rejected:
    def __init__(self, error):
        self.error = error


def _resolve(fn):
    if not isinstance(fn, str):
        return fn
    target = window
    for part in fn.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AttributeError("anvil.js.call: the page has no JavaScript function %r" % fn)
    return target


def _is_promise(value):
    try:
        return bool(window.Promise.resolve(value) == value) and hasattr(value, "then")
    except Exception:
        return False


def _settle(value):
    if isinstance(value, _Rejected):
        raise ExternalError(value.error)
    return value


def await_promise(promise):
    """The value `promise` resolves to (raising ExternalError if it rejects), waiting as `call` does."""
    recorded = _replay.next_result()
    if recorded is not _replay.NOTHING:
        return _settle(recorded)
    if not _is_promise(promise):
        _replay.record(promise)
        return promise
    if not _replay.running():
        return promise

    def wait(resume):
        promise.then(lambda v=None, *a: resume(v), lambda e=None, *a: resume(_Rejected(e)))

    raise _replay.Suspend(wait)


def call(fn, *args):
    """Call a JavaScript function by name or itself, with Python values as its arguments."""
    recorded = _replay.next_result()
    if recorded is not _replay.NOTHING:
        return _settle(recorded)  # a replay: this call was made already, its result is recorded
    f = _resolve(fn)
    try:
        result = f(*args)
    except (AttributeError, TypeError, NameError, ValueError):
        raise
    except Exception as e:
        raise ExternalError(e)
    if not _is_promise(result) or not _replay.running():
        _replay.record(result)
        return result

    def wait(resume):
        result.then(lambda v=None, *a: resume(v), lambda e=None, *a: resume(_Rejected(e)))

    raise _replay.Suspend(wait)


call_js = call


def new(js_class, *args):
    """`new js_class(*args)`."""
    return js_class.new(*args)


def import_from(url):
    """The JavaScript module at `url` (an ES module import, waited for as `call` waits)."""
    return call(window.Function("url", "return import(url)"), str(url))


def get_dom_node(component):
    """The DOM element of a component (or a DOM element itself)."""
    get = getattr(component, "get_dom_node", None)
    return get() if get is not None else component
