"""The loading spinner of `anvil.server.call`, painted while the call blocks the page.

A call is a synchronous request (Brython cannot suspend Python code), and while it is out the
page's main thread neither runs nor paints: an element shown in the page just before it would
appear only after it. So the spinner lives in a sandboxed frame (static/spinner.html) that
Chromium runs in a process of its own, and is told "show" and "hide" over a MessagePort, whose
messages leave at once (a window.postMessage would wait for the blocked page). The frame shows
the spinner after 120 ms, so quick calls do not flash it. Where a browser keeps the frame in the
page's process the messages still arrive, after the call, and the spinner is simply not seen.
"""

from browser import window

_state = {"depth": 0, "off": 0}


def _post(what):
    try:
        port = window.anvilSpinnerPort
    except AttributeError:  # a page without the frame (e.g. a test harness)
        return
    port.postMessage(what)


def start():
    """A call with the loading indicator begins (nested calls show one spinner)."""
    if _state["off"]:
        return False
    _state["depth"] += 1
    if _state["depth"] == 1:
        _post("show")
    return True


def stop():
    _state["depth"] -= 1
    if _state["depth"] <= 0:
        _state["depth"] = 0
        _post("hide")


class NoLoadingIndicator:
    """`with anvil.server.no_loading_indicator:` calls inside show no spinner."""

    def __enter__(self):
        _state["off"] += 1
        return self

    def __exit__(self, *exc):
        _state["off"] -= 1
        return False
