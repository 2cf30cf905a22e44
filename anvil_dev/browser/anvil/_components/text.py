"""Components that show text: Label, Button, Link, RichText, Spacer."""

from anvil._components.base import Component, Container, _P, _css, _el

from anvil import _replay


def _text_style(cls):
    cls.font_size = _P(None, _css("fontSize", lambda v: "%spx" % v))
    cls.font = _P("", _css("fontFamily"))
    cls.bold = _P(False, lambda s, v: setattr(s._text_el().style, "fontWeight", "bold" if v else ""))
    cls.italic = _P(False, lambda s, v: setattr(s._text_el().style, "fontStyle", "italic" if v else ""))
    cls.underline = _P(False, lambda s, v: setattr(s._text_el().style, "textDecoration", "underline" if v else ""))
    cls.align = _P("left", _css("textAlign"))
    for name in ("font_size", "font", "bold", "italic", "underline", "align"):
        getattr(cls, name).__set_name__(cls, name)
    return cls


def _icon_text(self):
    icon = self._props.get("icon") or ""
    label = self._props.get("text")
    label = "" if label is None else str(label)
    self._label.textContent = label
    if icon:
        self._icon.textContent = ""
        self._icon.setAttribute("data-icon", str(icon))
        self._icon.hidden = False
    else:
        self._icon.hidden = True


@_text_style
class Label(Component):
    text = _P("", lambda s, v: _icon_text(s))
    icon = _P("", lambda s, v: _icon_text(s))
    icon_align = _P("left")

    def _make_dom(self):
        d = _el("div")
        self._icon = _el("i", "anvil-icon", d)
        self._label = _el("span", "label-text", d)
        self._icon.hidden = True
        return d

    def _text_el(self):
        return self._label


@_text_style
class Button(Component):
    _events = ("click", "show", "hide")
    text = _P("", lambda s, v: _icon_text(s))
    icon = _P("", lambda s, v: _icon_text(s))
    icon_align = _P("left")
    enabled = _P(True, lambda s, v: s._button.toggleAttribute("disabled", not v))
    align = _P("center", _css("textAlign"))

    def _make_dom(self):
        d = _el("div")
        self._button = _el("button", "btn", d)
        self._icon = _el("i", "anvil-icon", self._button)
        self._label = _el("span", "button-text", self._button)
        self._icon.hidden = True
        return d

    def __init__(self, **properties):
        Component.__init__(self, **properties)
        self._dom_event("click", "click", lambda ev: {"keys": {}})

    def _dom_target(self):
        return self._button

    def _text_el(self):
        return self._button


class Link(Component):
    _events = ("click", "show", "hide")
    text = _P("", lambda s, v: _icon_text(s))
    icon = _P("", lambda s, v: _icon_text(s))
    url = _P("", lambda s, v: s._a.setAttribute("href", v if isinstance(v, str) and v else "javascript:void(0)"))

    def _make_dom(self):
        d = _el("div")
        self._a = _el("a", "link", d)
        self._icon = _el("i", "anvil-icon", self._a)
        self._label = _el("span", "link-text", self._a)
        self._icon.hidden = True
        return d

    def __init__(self, **properties):
        self._children = []
        Component.__init__(self, **properties)

        def click(ev):
            if not self.url:
                ev.preventDefault()
            if self._handlers.get("click"):
                _replay.run(self.raise_event, "click", keys={})
        self._a.bind("click", click)

    def _text_el(self):
        return self._a

    def add_component(self, component, **layout_properties):
        Container._adopt(self, component, layout_properties)
        self._a.appendChild(component._dom)

    def get_components(self):
        return list(self._children)

    def _remove_child(self, c):
        Container._remove_child(self, c)


class Spacer(Component):
    height = _P(32, lambda s, v: setattr(s._dom.style, "height", "%spx" % v if v else "0"))


class RichText(Component):
    format = _P("markdown", lambda s, v: s._render())
    content = _P("", lambda s, v: s._render())
    enable_slots = _P(True)
    data = _P(None)
    font_size = _P(None, _css("fontSize", lambda v: "%spx" % v))
    align = _P("left", _css("textAlign"))

    def _render(self):
        text = str(self._props.get("content") or "")
        fmt = self._props.get("format", "markdown")
        if fmt == "plain_text":
            self._dom.textContent = text
            return
        if fmt == "markdown":
            import html as _html
            out = []
            for block in text.split("\n\n"):
                b = _html.escape(block.strip())
                if not b:
                    continue
                level = len(b) - len(b.lstrip("#"))
                b = _inline_md(b.lstrip("#").strip())
                out.append("<h%d>%s</h%d>" % (level, b, level) if 0 < level <= 6 else "<p>%s</p>" % b.replace("\n", "<br>"))
            self._dom.innerHTML = "".join(out)
        else:
            self._dom.innerHTML = text


def _inline_md(s):
    import re
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"\*(.+?)\*", r"<em>\1</em>", s)
    s = re.sub(r"`(.+?)`", r"<code>\1</code>", s)
    return s
