"""The base of every component: properties (`_P`), events, roles, the tree (`Container`)."""

from browser import document

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
        # The theme's colour scheme variable (anvil_dev/themecolors.py); an unknown name sets no
        # colour, as on Anvil.
        return "var(--anvil-color-%s)" % "".join(c if "a" <= c.lower() <= "z" or "0" <= c <= "9" else "-" for c in v[6:])
    return v


def _spacing(v):
    return {"none": "0", "small": "4px", "medium": "8px", "large": "16px"}.get(str(v), str(v) if v else "")


def is_builtin(cls):
    """Whether `cls` is one of Anvil's components rather than a Form or a subclass of the app's."""
    module = cls.__module__ or ""
    return module == "anvil" or module.startswith("anvil._components")


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
            if is_builtin(c):
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
