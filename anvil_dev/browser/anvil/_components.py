"""Anvil's components, with Anvil's property names and defaults, over the page's DOM."""

import datetime
from anvil import _json as json

from browser import document, window

from anvil import _replay


def _el(tag, cls=None, parent=None):
    e = document.createElement(tag)
    if cls:
        e.className = cls
    if parent is not None:
        parent.appendChild(e)
    return e


class _P:
    """A component property: stored on the instance, applied to the DOM when set."""

    def __init__(self, default=None, apply=None):
        self.default = default
        self.apply = apply
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj._props.get(self.name, self.default)

    def __set__(self, obj, value):
        obj._props[self.name] = value
        if self.apply is not None:
            self.apply(obj, value)


def _css(prop, fmt=None):
    def apply(self, v):
        setattr(self._dom.style, prop, "" if v in (None, "") else (fmt(v) if fmt else str(v)))
    return apply


def _color(v):
    v = str(v)
    if v.startswith("theme:"):
        return "var(--anvil-color-%s, #2a6edc)" % v[6:].replace(" ", "-")
    return v


def _spacing(v):
    return {"none": "0", "small": "4px", "medium": "8px", "large": "16px"}.get(str(v), str(v) if v else "")


class ComponentTag:
    pass


class Component:
    """The base of every component: events, roles, visibility, parent, show/hide."""

    _tag = "div"
    _events = ("show", "hide")

    visible = _P(True, lambda s, v: s._dom.classList.toggle("anvil-hidden", not v))
    role = _P(None, lambda s, v: s._set_role(v))
    tooltip = _P("", lambda s, v: s._dom.setAttribute("title", v or ""))
    background = _P("", _css("backgroundColor", _color))
    foreground = _P("", _css("color", _color))
    spacing_above = _P("small", _css("marginTop", _spacing))
    spacing_below = _P("small", _css("marginBottom", _spacing))

    def __init__(self, **properties):
        self._props = {}
        self._handlers = {}
        self._roles = []
        self.parent = None
        self._shown = False
        self.layout_properties = {}
        self.tag = ComponentTag()
        self._dom = self._make_dom()
        self._dom.classList.add("anvil-component")
        self._dom.classList.add("anvil-" + type(self)._anvil_name().lower())
        self._init_defaults()
        for k, v in properties.items():
            if k != "item":
                setattr(self, k, v)

    @classmethod
    def _anvil_name(cls):
        for c in cls.__mro__:
            if c.__module__ in ("anvil._components", "anvil"):
                return c.__name__
        return cls.__name__

    def _make_dom(self):
        return _el(self._tag)

    def _init_defaults(self):
        seen = set()
        for klass in reversed(type(self).__mro__):
            for name, v in vars(klass).items():
                if isinstance(v, _P) and v.apply is not None and name not in seen and v.default not in (None, ""):
                    seen.add(name)
                    v.apply(self, v.default)

    def _set_role(self, v):
        for r in self._roles:
            self._dom.classList.remove("anvil-role-" + r)
        self._roles = [v] if isinstance(v, str) and v else list(v or [])
        for r in self._roles:
            self._dom.classList.add("anvil-role-" + r)

    # ---- events ----
    def set_event_handler(self, event_name, handler):
        self._handlers[event_name] = [handler] if handler is not None else []

    def add_event_handler(self, event_name, handler):
        self._handlers.setdefault(event_name, []).append(handler)

    def remove_event_handler(self, event_name, handler=None):
        if handler is None:
            self._handlers.pop(event_name, None)
        elif handler in self._handlers.get(event_name, []):
            self._handlers[event_name].remove(handler)

    def get_event_handlers(self, event_name):
        return tuple(self._handlers.get(event_name, ()))

    def raise_event(self, event_name, **event_args):
        event_args["sender"] = self
        event_args["event_name"] = event_name
        result = None
        for h in list(self._handlers.get(event_name, ())):
            result = h(**event_args)
        return result

    def _dom_event(self, dom_event, event_name, extra=None, prevent=False):
        def fire(ev):
            if prevent:
                ev.preventDefault()
            if self._handlers.get(event_name):
                _replay.run(self.raise_event, event_name, **(extra(ev) if extra else {}))
        self._dom_target().bind(dom_event, fire)

    def _dom_target(self):
        return self._dom

    # ---- tree ----
    def remove_from_parent(self):
        if self.parent is not None:
            self.parent._remove_child(self)

    def _set_shown(self, shown):
        if shown == self._shown:
            return
        self._shown = shown
        kids = self.get_components() if hasattr(self, "get_components") else []
        if shown:
            self._on_show()
            self.raise_event("show")
            for c in kids:
                c._set_shown(True)
        else:
            for c in kids:
                c._set_shown(False)
            self.raise_event("hide")

    def _on_show(self):
        pass

    def scroll_into_view(self, smooth=False):
        self._dom.scrollIntoView()

    def focus(self):
        self._dom_target().focus()

    def get_dom_node(self):
        return self._dom


# ---- text components ----------------------------------------------------------------------

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


class _Input(Component):
    enabled = _P(True, lambda s, v: s._input.toggleAttribute("disabled", not v))
    placeholder = _P("", lambda s, v: s._input.setAttribute("placeholder", v or ""))
    border = _P("")

    def _dom_target(self):
        return self._input

    def _text_el(self):
        return self._input

    def _writeback_events(self):
        return ("lost_focus", "pressed_enter", "change")


def _set_text(self, v):
    self._input.value = "" if v is None else str(v)


def _get_text(self):
    return self._input.value


@_text_style
class TextBox(_Input):
    _events = ("change", "pressed_enter", "focus", "lost_focus", "show", "hide")
    type = _P("text", lambda s, v: s._input.setAttribute("type", {"number": "number", "email": "email",
                                                                   "tel": "tel", "url": "url"}.get(v, "text")))
    hide_text = _P(False, lambda s, v: s._input.setAttribute("type", "password") if v else None)

    def _make_dom(self):
        self._input = _el("input", "form-control")
        return self._input

    def __init__(self, **properties):
        _Input.__init__(self, **properties)
        self._dom_event("input", "change")
        self._dom_event("focus", "focus")
        self._dom_event("blur", "lost_focus")

        def key(ev):
            if ev.key == "Enter" and self._handlers.get("pressed_enter"):
                _replay.run(self.raise_event, "pressed_enter")
        self._input.bind("keydown", key)

    @property
    def text(self):
        v = _get_text(self)
        if self.type == "number":
            if v == "":
                return None
            try:
                return int(v)
            except ValueError:
                return float(v)
        return v

    @text.setter
    def text(self, v):
        _set_text(self, v)

    def select(self, start=None, end=None):
        self._input.select()


@_text_style
class TextArea(_Input):
    _events = ("change", "focus", "lost_focus", "show", "hide")
    height = _P(None, lambda s, v: setattr(s._input.style, "height", "%spx" % v if v else ""))
    auto_expand = _P(False)

    def _make_dom(self):
        self._input = _el("textarea", "form-control")
        return self._input

    def __init__(self, **properties):
        _Input.__init__(self, **properties)
        self._dom_event("input", "change")
        self._dom_event("focus", "focus")
        self._dom_event("blur", "lost_focus")

    text = property(_get_text, _set_text)


@_text_style
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


@_text_style
class CheckBox(Component):
    _events = ("change", "show", "hide")
    text = _P("", lambda s, v: setattr(s._label, "textContent", "" if v is None else str(v)))
    enabled = _P(True, lambda s, v: s._input.toggleAttribute("disabled", not v))
    allow_indeterminate = _P(False)

    def _make_dom(self):
        d = _el("label", "checkbox")
        self._input = _el("input", None, d)
        self._input.setAttribute("type", "checkbox")
        self._label = _el("span", None, d)
        return d

    def __init__(self, **properties):
        Component.__init__(self, **properties)
        self._dom_event("change", "change")

    def _dom_target(self):
        return self._input

    def _text_el(self):
        return self._label

    def _writeback_events(self):
        return ("change",)

    @property
    def checked(self):
        return bool(self._input.checked)

    @checked.setter
    def checked(self, v):
        self._input.checked = bool(v)


_radio_groups = {}


@_text_style
class RadioButton(CheckBox):
    _events = ("clicked", "change", "show", "hide")
    value = _P("")

    def _make_dom(self):
        d = CheckBox._make_dom(self)
        self._input.setAttribute("type", "radio")
        return d

    def __init__(self, **properties):
        self._group = "radioGroup1"
        CheckBox.__init__(self, **properties)
        self._input.setAttribute("name", self._group)
        _radio_groups.setdefault(self._group, []).append(self)
        self._dom_event("change", "clicked")

    @property
    def group_name(self):
        return self._group

    @group_name.setter
    def group_name(self, v):
        if self in _radio_groups.get(self._group, []):
            _radio_groups[self._group].remove(self)
        self._group = v or "radioGroup1"
        _radio_groups.setdefault(self._group, []).append(self)
        self._input.setAttribute("name", self._group)

    @property
    def selected(self):
        return bool(self._input.checked)

    @selected.setter
    def selected(self, v):
        self._input.checked = bool(v)

    def get_group_value(self):
        for rb in _radio_groups.get(self._group, []):
            if rb.selected:
                return rb.value
        return None


class DropDown(Component):
    _events = ("change", "show", "hide")
    enabled = _P(True, lambda s, v: s._select.toggleAttribute("disabled", not v))
    include_placeholder = _P(False, lambda s, v: s._render())
    placeholder = _P("", lambda s, v: s._render())
    align = _P("full")
    font_size = _P(None)
    bold = _P(False)

    def _make_dom(self):
        self._select = _el("select", "form-control")
        return self._select

    def __init__(self, **properties):
        self._items = []
        self._values = []
        self._selected = None
        Component.__init__(self, **properties)

        def changed(ev):
            i = self._select.selectedIndex - (1 if self.include_placeholder else 0)
            self._selected = self._values[i] if 0 <= i < len(self._values) else None
            if self._handlers.get("change"):
                _replay.run(self.raise_event, "change")
        self._select.bind("change", changed)

    def _writeback_events(self):
        return ("change",)

    @property
    def items(self):
        return list(self._items)

    @items.setter
    def items(self, v):
        if isinstance(v, str):
            v = [x for x in v.split("\n") if x]
        self._items = list(v or [])
        self._values = [x[1] if isinstance(x, (list, tuple)) and len(x) == 2 else x for x in self._items]
        if self._selected not in self._values:
            self._selected = None if self.include_placeholder or not self._values else self._values[0]
        self._render()

    def _render(self):
        if not hasattr(self, "_items"):
            return
        self._select.innerHTML = ""
        if self.include_placeholder:
            o = _el("option", None, self._select)
            o.textContent = self.placeholder or ""
        for x in self._items:
            o = _el("option", None, self._select)
            o.textContent = str(x[0] if isinstance(x, (list, tuple)) and len(x) == 2 else x)
        self._sync()

    def _sync(self):
        off = 1 if self.include_placeholder else 0
        if self._selected in self._values:
            self._select.selectedIndex = self._values.index(self._selected) + off
        else:
            self._select.selectedIndex = 0 if off else (0 if self._values else -1)

    @property
    def selected_value(self):
        return self._selected

    @selected_value.setter
    def selected_value(self, v):
        self._selected = v if v in self._values else (None if self.include_placeholder else self._selected)
        self._sync()


class DatePicker(_Input):
    _events = ("change", "show", "hide")
    pick_time = _P(False, lambda s, v: s._input.setAttribute("type", "datetime-local" if v else "date"))
    format = _P("")
    min_date = _P(None)
    max_date = _P(None)

    def _make_dom(self):
        self._input = _el("input", "form-control")
        self._input.setAttribute("type", "date")
        return self._input

    def __init__(self, **properties):
        _Input.__init__(self, **properties)
        self._dom_event("change", "change")

    def _writeback_events(self):
        return ("change",)

    @property
    def date(self):
        v = str(self._input.value or "")
        if not v:
            return None
        if self.pick_time:
            return datetime.datetime.fromisoformat(v)
        return datetime.date.fromisoformat(v)

    @date.setter
    def date(self, v):
        if v is None or v == "":
            self._input.value = ""
        elif isinstance(v, str):
            self._input.value = v
        elif isinstance(v, datetime.datetime):
            self._input.value = v.strftime("%Y-%m-%dT%H:%M") if self.pick_time else v.date().isoformat()
        else:
            self._input.value = v.isoformat()


class Image(Component):
    display_mode = _P("shrink_to_fit")
    height = _P(None, lambda s, v: setattr(s._img.style, "height", "%spx" % v if v else ""))
    horizontal_align = _P("center")

    def _make_dom(self):
        d = _el("div")
        self._img = _el("img", None, d)
        self._img.style.maxWidth = "100%"
        return d

    @property
    def source(self):
        return self._props.get("source")

    @source.setter
    def source(self, v):
        self._props["source"] = v
        if v is None or v == "":
            self._img.removeAttribute("src")
        elif isinstance(v, str):
            self._img.setAttribute("src", v)
        else:
            self._img.setAttribute("src", v.get_url())


class FileLoader(Component):
    _events = ("change", "show", "hide")
    text = _P("Upload", lambda s, v: setattr(s._label, "textContent", v or ""))
    multiple = _P(False, lambda s, v: s._input.toggleAttribute("multiple", bool(v)))
    file_types = _P(None, lambda s, v: s._input.setAttribute("accept", v or ""))
    enabled = _P(True, lambda s, v: s._input.toggleAttribute("disabled", not v))

    def _make_dom(self):
        d = _el("label", "file-loader btn")
        self._label = _el("span", None, d)
        self._input = _el("input", None, d)
        self._input.setAttribute("type", "file")
        self._input.style.display = "none"
        return d

    def __init__(self, **properties):
        self.files = []
        Component.__init__(self, **properties)

        def changed(ev):
            from anvil.media import _read_files
            def done(files):
                self.files = files
                if self._handlers.get("change"):
                    _replay.run(self.raise_event, "change", file=files[0] if files else None, files=files)
            _read_files(self._input.files, done)
        self._input.bind("change", changed)

    @property
    def file(self):
        return self.files[0] if self.files else None

    def clear(self):
        self.files = []
        self._input.value = ""


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


class Timer(Component):
    _events = ("tick", "show", "hide")

    def __init__(self, **properties):
        self._handle = None
        self._interval = 0
        Component.__init__(self, **properties)
        self._dom.style.display = "none"

    @property
    def interval(self):
        return self._interval

    @interval.setter
    def interval(self, v):
        self._interval = v or 0
        if self._handle is not None:
            window.clearInterval(self._handle)
            self._handle = None
        if self._interval and self._interval > 0:
            def tick(*a):
                if self._handlers.get("tick"):
                    _replay.run(self.raise_event, "tick")
            self._handle = window.setInterval(tick, int(self._interval * 1000))


# ---- containers -----------------------------------------------------------------------------

class Container(Component):
    """A component that holds others: add_component, get_components, clear."""

    def __init__(self, **properties):
        self._children = []
        Component.__init__(self, **properties)

    def _adopt(self, component, layout_properties):
        if not isinstance(component, Component):
            raise TypeError("add_component() needs a component, not %s" % type(component).__name__)
        if component.parent is not None:
            raise ValueError("This component is already added to a container: call remove_from_parent() first")
        component.parent = self
        component.layout_properties = dict(layout_properties)
        index = layout_properties.get("index")
        if index is None or index >= len(self._children):
            self._children.append(component)
        else:
            self._children.insert(index, component)

    def add_component(self, component, index=None, **layout_properties):
        if index is not None:
            layout_properties["index"] = index
        self._adopt(component, layout_properties)
        self._place(component, layout_properties)
        if self._shown:
            component._set_shown(True)

    def _place(self, component, layout_properties):
        index = layout_properties.get("index")
        body = self._body()
        if index is not None and index + 1 < len(self._children):
            body.insertBefore(component._dom, self._children[index + 1]._dom)
        else:
            body.appendChild(component._dom)

    def _body(self):
        return self._dom

    def _remove_child(self, c):
        if c in self._children:
            self._children.remove(c)
        holder = getattr(c, "_holder", None)
        node = holder if holder is not None else c._dom
        if node.parentNode is not None:
            node.parentNode.removeChild(node)
        c._holder = None
        c.parent = None
        if c._shown:
            c._set_shown(False)

    def get_components(self):
        return list(self._children)

    def clear(self):
        for c in list(self._children):
            c.remove_from_parent()

    def raise_event_on_children(self, event_name, **event_args):
        for c in list(self._children):
            c.raise_event(event_name, **event_args)


class ColumnPanel(Container):
    """Rows of columns, placed by the designer's grid_position ("ROW,COL ROW,COL" for nesting)."""

    col_widths = _P("{}")
    col_spacing = _P("medium")
    wrap_on = _P("mobile")
    spacing = _P(None)

    def _place(self, component, layout_properties):
        pos = layout_properties.get("grid_position")
        full = layout_properties.get("full_width_row")
        if not pos:
            pos = "auto%d,auto%d" % (len(self._children), len(self._children))
        parent = self._dom
        for pair in str(pos).split(" "):
            row_id, _, col_id = pair.partition(",")
            row = None
            for r in parent.children:
                if r.getAttribute("data-row") == row_id:
                    row = r
            if row is None:
                row = _el("div", "anvil-cp-row", parent)
                row.setAttribute("data-row", row_id)
                if full:
                    row.classList.add("full-width-row")
            col = None
            for c in row.children:
                if c.getAttribute("data-col") == col_id:
                    col = c
            if col is None:
                col = _el("div", "anvil-cp-col", row)
                col.setAttribute("data-col", col_id)
                try:
                    widths = json.loads(self.col_widths or "{}") if isinstance(self.col_widths, str) else {}
                except ValueError:
                    widths = {}
                if col_id in widths:
                    col.style.flex = "%s 1 0" % widths[col_id]
            parent = col
        parent.appendChild(component._dom)

    def _remove_child(self, c):
        Container._remove_child(self, c)
        for row in list(self._dom.querySelectorAll(".anvil-cp-row")):
            if not row.querySelector(".anvil-component"):
                row.parentNode.removeChild(row)


class FlowPanel(Container):
    align = _P("left", lambda s, v: setattr(s._dom.style, "justifyContent",
                                            {"center": "center", "right": "flex-end",
                                             "justify": "space-between"}.get(v, "flex-start")))
    spacing = _P("medium", lambda s, v: setattr(s._dom.style, "gap", _spacing(v) or "8px"))
    gap = _P(None, lambda s, v: setattr(s._dom.style, "gap", _spacing(v)) if v else None)
    vertical_align = _P("full", lambda s, v: setattr(s._dom.style, "alignItems",
                                                     {"top": "flex-start", "middle": "center",
                                                      "bottom": "flex-end"}.get(v, "stretch")))

    def _place(self, component, layout_properties):
        Container._place(self, component, layout_properties)
        width = layout_properties.get("width")
        if width:
            component._dom.style.width = "%spx" % width if not isinstance(width, str) else width
        if layout_properties.get("expand"):
            component._dom.style.flex = "1 1 auto"


class LinearPanel(Container):
    pass


class GridPanel(Container):
    """A 12-column grid: layout_properties row, col_xs (start), width_xs (span)."""

    def _place(self, component, layout_properties):
        row_id = str(layout_properties.get("row") or "auto%d" % len(self._children))
        row = None
        for r in self._dom.children:
            if r.getAttribute("data-row") == row_id:
                row = r
        if row is None:
            row = _el("div", "anvil-grid-row", self._dom)
            row.setAttribute("data-row", row_id)
        cell = _el("div", "anvil-grid-cell", row)
        start = int(layout_properties.get("col_xs") or 0)
        span = int(layout_properties.get("width_xs") or 12)
        cell.style.gridColumn = "%d / span %d" % (start + 1, span)
        cell.appendChild(component._dom)
        component._holder = cell


class XYPanel(Container):
    height = _P(300, lambda s, v: setattr(s._dom.style, "height", "%spx" % v))

    def _place(self, component, lp):
        Container._place(self, component, lp)
        st = component._dom.style
        st.position = "absolute"
        st.left = "%spx" % (lp.get("x") or 0)
        st.top = "%spx" % (lp.get("y") or 0)
        if lp.get("width"):
            st.width = "%spx" % lp["width"]


def _theme_html(name):
    xhr = window.XMLHttpRequest.new()
    xhr.open("GET", "/_/theme/" + name, False)
    xhr.send()
    if xhr.status != 200:
        raise ValueError("theme/assets/%s not found (HtmlTemplate html '@theme:%s')" % (name, name))
    return xhr.responseText


class HtmlPanel(Container):
    """HTML with anvil-slot / anvil-slot-repeat elements where components go (HtmlTemplate too)."""

    def __init__(self, **properties):
        self._repeat_templates = {}
        Container.__init__(self, **properties)

    @property
    def html(self):
        return self._props.get("html", "")

    @html.setter
    def html(self, v):
        self._props["html"] = v
        text = v or ""
        if text.startswith("@theme:"):
            text = _theme_html(text[7:])
        self._dom.innerHTML = text
        self._repeat_templates = {}
        for el in list(self._dom.querySelectorAll("[anvil-slot-repeat]")):
            name = el.getAttribute("anvil-slot-repeat")
            marker = document.createComment("slot " + name)
            el.parentNode.insertBefore(marker, el)
            el.parentNode.removeChild(el)
            self._repeat_templates.setdefault(name, (el, marker))
        for el in list(self._dom.querySelectorAll("[anvil-drop-slot], [anvil-drop-here], .anvil-designer-only")):
            el.style.display = "none"
        for s in list(self._dom.querySelectorAll("script")):
            # innerHTML does not run scripts; the theme's scripts run as Anvil runs them.
            ns = document.createElement("script")
            ns.textContent = s.textContent
            for attr in ("src", "type"):
                if s.getAttribute(attr):
                    ns.setAttribute(attr, s.getAttribute(attr))
            s.parentNode.replaceChild(ns, s)
        self._update_slot_visibility()

    def _place(self, component, layout_properties):
        slot = layout_properties.get("slot") or "default"
        if slot in self._repeat_templates:
            template, marker = self._repeat_templates[slot]
            holder = template.cloneNode(True)
            holder.removeAttribute("anvil-slot-repeat")
            marker.parentNode.insertBefore(holder, marker)
            holder.appendChild(component._dom)
            component._holder = holder
        else:
            target = self._dom.querySelector('[anvil-slot="%s"]' % slot)
            if target is None and slot != "default":
                target = self._dom.querySelector('[anvil-slot="default"]')
            (target if target is not None else self._dom).appendChild(component._dom)
        self._update_slot_visibility()

    def _remove_child(self, c):
        Container._remove_child(self, c)
        self._update_slot_visibility()

    def _update_slot_visibility(self):
        used = set((c.layout_properties.get("slot") or "default") for c in getattr(self, "_children", []))
        for el in self._dom.querySelectorAll("[anvil-if-slot-empty]"):
            el.style.display = "none" if el.getAttribute("anvil-if-slot-empty") in used else ""
        for el in self._dom.querySelectorAll("[anvil-hide-if-slot-empty]"):
            el.style.display = "" if el.getAttribute("anvil-hide-if-slot-empty") in used else "none"


class HtmlTemplate(HtmlPanel):
    pass


def _template_class(item_template):
    if isinstance(item_template, str):
        module = __import__(item_template, fromlist=["x"])
        return getattr(module, item_template.rsplit(".", 1)[-1])
    return item_template


class RepeatingPanel(Container):
    """One instance of item_template per item, each with its `item`."""

    def __init__(self, **properties):
        self._items = None
        self._item_template = None
        Container.__init__(self, **properties)

    @property
    def item_template(self):
        return self._item_template

    @item_template.setter
    def item_template(self, v):
        self._item_template = v
        if self._items is not None:
            self._render()

    @property
    def items(self):
        return self._items

    @items.setter
    def items(self, v):
        self._items = v
        self._render()

    def _render(self):
        Container.clear(self)
        if self._items is None or self._item_template is None:
            return
        cls = _template_class(self._item_template)
        for item in self._items:
            Container.add_component(self, cls(item=item))
        g = self._grid()
        if g is not None:
            g._paginate()

    def _grid(self):
        p = self.parent
        while p is not None:
            if isinstance(p, DataGrid):
                return p
            p = p.parent
        return None


class DataGrid(Container):
    """Columns, a header, DataRowPanel rows and page controls (rows_per_page)."""

    auto_header = _P(True, lambda s, v: s._render_header())
    show_page_controls = _P(True)
    wrap_on = _P("never")
    rows_per_page = _P(20, lambda s, v: s._paginate())

    def _make_dom(self):
        d = _el("div")
        self._header = _el("div", "data-grid-header data-grid-row", d)
        self._rows = _el("div", "data-grid-body", d)
        self._footer = _el("div", "data-grid-footer", d)
        self._prev = _el("button", "data-grid-prev", self._footer)
        self._prev.textContent = "‹"
        self._page_info = _el("span", "data-grid-page-info", self._footer)
        self._next = _el("button", "data-grid-next", self._footer)
        self._next.textContent = "›"
        return d

    def __init__(self, **properties):
        self._columns = []
        self._page = 0
        Container.__init__(self, **properties)
        self._prev.bind("click", lambda ev: self.previous_page())
        self._next.bind("click", lambda ev: self.next_page())

    @property
    def columns(self):
        return self._columns

    @columns.setter
    def columns(self, v):
        self._columns = list(v or [])
        self._render_header()

    def _render_header(self):
        if not hasattr(self, "_columns"):
            return
        self._header.innerHTML = ""
        self._header.style.display = "" if self.auto_header else "none"
        for col in self._columns:
            cell = _el("div", "data-grid-cell", self._header)
            cell.textContent = str(col.get("title") or "")
            _col_width(cell, col)

    def _body(self):
        return self._rows

    def _row_panels(self):
        out = []

        def walk(c):
            for k in c.get_components():
                if isinstance(k, DataRowPanel) or (isinstance(k, Container) and k._anvil_name() == "DataRowPanel"):
                    out.append(k)
                elif isinstance(k, RepeatingPanel):
                    walk(k)
        walk(self)
        return out

    def _paginate(self):
        if not hasattr(self, "_columns"):
            return
        rows = self._row_panels()
        per = self.rows_per_page
        if not per or per <= 0:
            per = len(rows) or 1
        pages = max(1, (len(rows) + per - 1) // per)
        self._page = min(self._page, pages - 1)
        first = self._page * per
        for i, r in enumerate(rows):
            r._dom.classList.toggle("anvil-page-hidden", not (first <= i < first + per))
        self._footer.style.display = "" if self.show_page_controls and len(rows) > per else "none"
        last = min(first + per, len(rows))
        self._page_info.textContent = "%d-%d of %d" % (first + 1 if rows else 0, last, len(rows))
        self._prev.toggleAttribute("disabled", self._page == 0)
        self._next.toggleAttribute("disabled", self._page >= pages - 1)

    def add_component(self, component, index=None, **layout_properties):
        Container.add_component(self, component, index, **layout_properties)
        self._paginate()

    def _on_show(self):
        self._paginate()

    def get_page(self):
        return self._page

    def set_page(self, n):
        self._page = max(0, int(n))
        self._paginate()

    def next_page(self):
        self.set_page(self._page + 1)

    def previous_page(self):
        self.set_page(self._page - 1)

    def jump_to_first_page(self):
        self.set_page(0)

    def jump_to_last_page(self):
        self.set_page(10 ** 9)


def _col_width(cell, col):
    w = col.get("width")
    if w:
        cell.style.flex = "0 0 %spx" % w
    elif col.get("expand") is not False:
        cell.style.flex = "1 1 0"


class DataRowPanel(Container):
    """A row of its DataGrid: components go in column cells (layout column), else item[data_key]."""

    auto_display_data = _P(True)

    def _make_dom(self):
        return _el("div", "data-grid-row")

    def __init__(self, **properties):
        self._item = properties.pop("item", None)
        self._cells = None
        Container.__init__(self, **properties)

    def _grid(self):
        p = self.parent
        while p is not None:
            if isinstance(p, DataGrid):
                return p
            p = p.parent
        return None

    def _ensure_cells(self):
        grid = self._grid()
        if grid is None or self._cells is not None:
            return self._cells
        self._cells = {}
        for col in grid.columns:
            cell = _el("div", "data-grid-cell", self._dom)
            cell.setAttribute("data-column", str(col.get("id")))
            _col_width(cell, col)
            self._cells[col.get("id")] = (cell, col)
        for c in self._children:
            self._put(c)
        self._fill()
        return self._cells

    def _put(self, component):
        column = component.layout_properties.get("column")
        if self._cells is not None and column in self._cells:
            cell = self._cells[column][0]
            if not cell.getAttribute("data-has-component"):
                cell.textContent = ""
            cell.setAttribute("data-has-component", "1")
            cell.appendChild(component._dom)
        else:
            self._dom.appendChild(component._dom)

    def _place(self, component, layout_properties):
        self._put(component)

    def _fill(self):
        if self._cells is None or not self.auto_display_data:
            return
        item = self.item
        for cell, col in self._cells.values():
            if cell.getAttribute("data-has-component"):
                continue
            key = col.get("data_key")
            value = None
            if item is not None and key:
                try:
                    value = item[key]
                except (KeyError, TypeError, IndexError):
                    value = None
            cell.textContent = "" if value is None else str(value)

    def _on_show(self):
        self._ensure_cells()

    @property
    def item(self):
        return self._item

    @item.setter
    def item(self, v):
        self._item = v
        self._fill()
        if hasattr(self, "refresh_data_bindings"):
            self.refresh_data_bindings()


class Canvas(Component):
    height = _P(300, lambda s, v: s._canvas.setAttribute("height", str(v)))

    def _make_dom(self):
        d = _el("div")
        self._canvas = _el("canvas", None, d)
        return d

    def get_context(self):
        return self._canvas.getContext("2d")
