"""The `anvil` package of client code in the browser: components, Forms, dialogs, navigation."""

from browser import document, window

from anvil import _replay
from anvil._components import (  # noqa: F401
    Button, Canvas, CheckBox, ColumnPanel, Component, ComponentTag, Container, DataGrid, DataRowPanel,
    DatePicker, DropDown, FileLoader, FlowPanel, GridPanel, HtmlPanel, HtmlTemplate, Image, Label, LinearPanel,
    Link, Plot, RadioButton, RepeatingPanel, RichText, Spacer, TextArea, TextBox, Timer, XYPanel,
)
from anvil.media import BlobMedia, Media, URLMedia  # noqa: F401

_open = [None]


class _App:
    """`anvil.app`: what client code can ask about the app it is part of."""

    @property
    def theme_colors(self):
        """The theme's colour scheme (theme/parameters.yaml): name -> CSS colour."""
        from anvil import _boot
        return dict(_boot._boot.get("theme_colors") or {})

    @property
    def package_name(self):
        from anvil import _boot
        return _boot.package()


app = _App()


class Notification:
    """A message shown for `timeout` seconds (None: until clicked) at the top right."""

    def __init__(self, message, title="", style="info", timeout=2):
        self.message = message
        self.title = title
        self.style = style
        self.timeout = timeout
        self._el = None

    def show(self):
        box = document.getElementById("anvil-notifications")
        if box is None:
            box = document.createElement("div")
            box.id = "anvil-notifications"
            document.body.appendChild(box)
        el = document.createElement("div")
        el.className = "anvil-notification anvil-notification-" + str(self.style)
        if self.title:
            t = document.createElement("div")
            t.className = "anvil-notification-title"
            t.textContent = str(self.title)
            el.appendChild(t)
        m = document.createElement("div")
        m.className = "anvil-notification-message"
        m.textContent = str(self.message)
        el.appendChild(m)
        el.bind("click", lambda ev: self.hide())
        box.appendChild(el)
        self._el = el
        if self.timeout:
            window.setTimeout(lambda *a: self.hide(), int(self.timeout * 1000))
        return self

    def hide(self):
        if self._el is not None and self._el.parentNode is not None:
            self._el.parentNode.removeChild(self._el)
        self._el = None

    def __enter__(self):
        return self.show()

    def __exit__(self, *exc):
        self.hide()


def _modal(content, title, buttons, large, dismissible, resume):
    overlay = document.createElement("div")
    overlay.className = "anvil-modal-backdrop"
    dialog = document.createElement("div")
    dialog.className = "anvil-modal" + (" anvil-modal-large" if large else "")
    overlay.appendChild(dialog)
    if title:
        h = document.createElement("div")
        h.className = "anvil-modal-title"
        h.textContent = str(title)
        dialog.appendChild(h)
    body = document.createElement("div")
    body.className = "anvil-modal-body"
    dialog.appendChild(body)
    closed = [False]

    def close(value):
        if closed[0]:
            return
        closed[0] = True
        if isinstance(content, Component):
            content._set_shown(False)
            if content._dom.parentNode is not None:
                content._dom.parentNode.removeChild(content._dom)
        if overlay.parentNode is not None:
            overlay.parentNode.removeChild(overlay)
        resume(value)

    if isinstance(content, Component):
        body.appendChild(content._dom)
        content.add_event_handler("x-close-alert", lambda value=None, **kw: close(value))
    else:
        body.textContent = str(content)
    footer = document.createElement("div")
    footer.className = "anvil-modal-footer"
    dialog.appendChild(footer)
    for label, value in buttons:
        b = document.createElement("button")
        b.className = "btn anvil-modal-button"
        b.textContent = str(label)
        b.bind("click", lambda ev, v=value: close(v))
        footer.appendChild(b)
    if dismissible:
        overlay.bind("click", lambda ev: close(None) if ev.target == overlay else None)
    document.body.appendChild(overlay)
    if isinstance(content, Component):
        content._set_shown(True)


def _buttons(buttons, default):
    if buttons is None:
        return default
    return [(b, b) if isinstance(b, str) else tuple(b) for b in buttons]


def _ask(content, title, bs, large, dismissible):
    answer = _replay.wait_for(lambda resume: _modal(content, title, bs, large, dismissible,
                                                    lambda v: resume((v, content))))
    if not isinstance(answer, tuple):
        return answer
    value, shown = answer
    if shown is not content and isinstance(content, Component) and isinstance(shown, Component):
        # A replay built the content Form afresh: give it what the user's edits wrote back into the
        # one that was on screen, so code after the dialog reads what was typed.
        old, new = getattr(shown, "item", None), getattr(content, "item", None)
        if isinstance(old, dict) and isinstance(new, dict) and old is not new:
            new.clear()
            new.update(old)
    return value


def alert(content, title="", buttons=None, large=False, dismissible=True, role=None):
    """Show a dialog; returns the value of the button clicked (None if dismissed)."""
    return _ask(content, title, _buttons(buttons, [("OK", True)]), large, dismissible)


def confirm(content, title="", buttons=None, large=False, dismissible=False, role=None):
    """Ask a yes/no question; returns True, False (or None if dismissed)."""
    return _ask(content, title, _buttons(buttons, [("Cancel", False), ("OK", True)]), large, dismissible)


def _root():
    return document.getElementById("anvil-root")


def open_form(form, *args, **kwargs):
    """Replace the page's Form with `form` (a Form, or the name of one in this app)."""
    if isinstance(form, str):
        from anvil import _boot
        module = __import__(_boot.package() + "." + form, fromlist=["x"])
        form = getattr(module, form.rsplit(".", 1)[-1])(*args, **kwargs)
    old = _open[0]
    root = _root()
    if old is not None:
        old._set_shown(False)
        if old._dom.parentNode is not None:
            old._dom.parentNode.removeChild(old._dom)
    _open[0] = form
    root.appendChild(form._dom)
    form._set_shown(True)
    return form


def get_open_form():
    return _open[0]


def set_url_hash(h):
    window.location.hash = str(h)


def get_url_hash():
    h = str(window.location.hash or "")
    return h[1:] if h.startswith("#") else h


def set_default_error_handling(handler):
    from anvil import _boot
    _boot.error_handler[0] = handler


def download(media):
    from anvil import media as _media
    _media.download(media)
