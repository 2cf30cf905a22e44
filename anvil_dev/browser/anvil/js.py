"""`anvil.js` in the browser: the page's JavaScript."""

from browser import window  # noqa: F401


def call(fn, *args):
    f = getattr(window, fn) if isinstance(fn, str) else fn
    return f(*args)


call_js = call


def get_dom_node(component):
    return component.get_dom_node()
