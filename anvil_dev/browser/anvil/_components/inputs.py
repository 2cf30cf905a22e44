"""Components the user types or picks in: TextBox, TextArea, CheckBox, RadioButton, DropDown,
DatePicker, FileLoader."""

import datetime

from anvil._components.base import Component, _P, _el
from anvil._components.text import _text_style

from anvil import _replay


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
