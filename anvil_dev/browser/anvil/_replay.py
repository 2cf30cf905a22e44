"""Blocking modals without suspensions: run a handler, stop at the modal, replay it with the answer.

Brython cannot pause Python code while the page waits for a click, so `alert(form)`,
`confirm(...)` and `login_with_form()` stop the running handler (a `Suspend`) and show their
dialog. When it is answered the handler runs again from the start; this time each server call it
made before returns its recorded result (no second call reaches the server) and the dialog returns
the answer, so the code after it sees what a blocking call would have given it.
"""

NOTHING = object()
_current = [None]
_reporter = [None]


class Suspend(BaseException):
    """Not an Exception: `except Exception:` in app code must not swallow it."""

    def __init__(self, show):
        BaseException.__init__(self, "waiting for a dialog")
        self.show = show


class _Run:
    def __init__(self, fn, args, kwargs):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.journal = []
        self.pos = 0


def next_result():
    """The recorded result at this point of a replay (raising a recorded error), or NOTHING."""
    r = _current[0]
    if r is None or r.pos >= len(r.journal):
        return NOTHING
    kind, value = r.journal[r.pos]
    r.pos += 1
    if kind == "error":
        raise value
    return value


def record(value):
    r = _current[0]
    if r is not None:
        r.journal.append(("value", value))
        r.pos += 1


def record_error(exc):
    r = _current[0]
    if r is not None:
        r.journal.append(("error", exc))
        r.pos += 1


def wait_for(show):
    """Block the running handler on a dialog: `show(resume)` displays it and calls resume(value)."""
    value = next_result()
    if value is not NOTHING:
        return value
    if _current[0] is None:
        # Not inside a run (a timer's callback, say): show it and carry on, as a non-blocking alert.
        show(lambda v: None)
        return None
    raise Suspend(show)


def run(fn, *args, **kwargs):
    """Run app code (an event handler, the startup) so that dialogs in it block; report errors."""
    _go(_Run(fn, args, kwargs))


def _go(r):
    prev = _current[0]
    _current[0] = r
    r.pos = 0
    try:
        r.fn(*r.args, **r.kwargs)
    except Suspend as s:
        _current[0] = prev

        def resume(value):
            r.journal.append(("value", value))
            _go(r)

        s.show(resume)
    except Exception as e:
        _current[0] = prev
        if _reporter[0] is not None:
            _reporter[0](e)
        else:
            raise
    finally:
        _current[0] = prev


def running():
    return _current[0] is not None
