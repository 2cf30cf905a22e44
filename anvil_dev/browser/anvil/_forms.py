"""Forms from form_template.yaml: the template class `_anvil_designer.py` makes for each Form.

`make_template("Form1", spec, module)` returns `Form1Template`: a subclass of the template's
container type (ColumnPanel, HtmlTemplate, DataRowPanel, ...) whose `init_components` builds the
components, names them as attributes, binds their events to the Form's methods and sets up data
bindings (with write-back). Both layouts are read: the classic `container` + `components`, and the
newer `layout` (a layout Form) + `components_by_slot`.
"""

from anvil import _json as json
import sys

from anvil import _components as C


def component_class(type_name):
    if type_name.startswith("form:"):
        dotted = type_name[5:]
        module = __import__(dotted, fromlist=["x"])
        return getattr(module, dotted.rsplit(".", 1)[-1])
    cls = getattr(C, type_name, None)
    if cls is None or not isinstance(cls, type):
        raise ValueError("Unknown component type %r in a form template" % type_name)
    return cls


class _Binding:
    def __init__(self, component, prop, code, writeback):
        self.component = component
        self.prop = prop
        self.code = code
        self.writeback = writeback


class FormMixin:
    """What every Form has on top of its container: item, init_components, bindings."""

    _anvil_spec = None

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self._bindings = []
        self._form_item = {}
        return self

    def __init__(self, **properties):
        self.init_components(**properties)

    @property
    def item(self):
        return self._form_item

    @item.setter
    def item(self, v):
        self._form_item = v
        fill = getattr(self, "_fill", None)
        if fill is not None and "_cells" in self.__dict__:
            fill()
        self.refresh_data_bindings()

    def init_components(self, **properties):
        if getattr(self, "_components_ready", False):
            return
        self._components_ready = True
        spec = self._anvil_spec
        base = [b for b in type(self).__mro__ if C.is_builtin(b) and issubclass(b, C.Component)]
        container_spec = spec.get("container") or {}
        item = properties.pop("item", {})
        base[0].__init__(self, **dict(container_spec.get("properties") or {}))
        self._dom.classList.add("anvil-form")
        self._dom.setAttribute("data-form", type(self).__name__)
        if "layout" in spec and "container" not in spec:
            self._build_layout(spec)
        else:
            for c in spec.get("components") or []:
                self._build(self, c)
        self._bind_events(self, container_spec)
        for k, v in properties.items():
            setattr(self, k, v)
        self.item = item

    def _build_layout(self, spec):
        layout_spec = spec.get("layout") or {}
        cls = component_class(layout_spec.get("type") or "ColumnPanel")
        self.layout = cls(**dict(layout_spec.get("properties") or {}))
        C.Container.add_component(self, self.layout)
        slots = (getattr(self.layout, "_anvil_spec", None) or {}).get("slots") or {}
        for slot_name, comps in (spec.get("components_by_slot") or {}).items():
            target, extra = self.layout, {"slot": slot_name}
            slot = slots.get(slot_name)
            if isinstance(slot, dict):
                tname = (slot.get("target") or {}).get("name")
                if tname and hasattr(self.layout, tname):
                    target, extra = getattr(self.layout, tname), dict(slot.get("set_layout_properties") or {})
            elif hasattr(self.layout, slot_name) and isinstance(getattr(self.layout, slot_name), C.Container):
                target, extra = getattr(self.layout, slot_name), {}
            for c in comps or []:
                merged = dict(c)
                merged["layout_properties"] = dict(extra, **(c.get("layout_properties") or {}))
                self._build(target, merged)

    def _build(self, parent, spec):
        cls = component_class(spec.get("type") or "Label")
        props = dict(spec.get("properties") or {})
        if issubclass(cls, FormMixin):
            comp = cls(**props)
        else:
            comp = cls(**props)
        name = spec.get("name")
        if name:
            setattr(self, name, comp)
        lp = dict(spec.get("layout_properties") or {})
        parent.add_component(comp, **lp)
        self._bind_events(comp, spec)
        for b in spec.get("data_bindings") or []:
            binding = _Binding(comp, b.get("property"), b.get("code"), b.get("writeback"))
            self._bindings.append(binding)
            if binding.writeback:
                self._writeback_on(binding)
        for child in spec.get("components") or []:
            self._build(comp, child)

    def _bind_events(self, comp, spec):
        for event, handler_name in (spec.get("event_bindings") or {}).items():
            handler = getattr(self, handler_name, None)
            if handler is None:
                raise AttributeError("%s has no method %s for the %s event of %s" % (
                    type(self).__name__, handler_name, event, spec.get("name") or "the form"))
            comp.set_event_handler(event, handler)

    def _namespace(self):
        return vars(sys.modules.get(type(self).__module__)) if type(self).__module__ in sys.modules else {}

    def refresh_data_bindings(self):
        for b in self._bindings:
            try:
                value = eval(b.code, dict(self._namespace()), {"self": self})
            except (KeyError, TypeError, AttributeError, IndexError) as e:
                if self._form_item in ({}, None):
                    continue  # Anvil skips bindings on an item that is not set yet
                raise type(e)("Data binding %s of %s: %s" % (b.code, b.prop, e))
            setattr(b.component, b.prop, value)

    def _writeback_on(self, b):
        def save(**event_args):
            value = getattr(b.component, b.prop)
            exec("%s = __anvil_value" % b.code, dict(self._namespace()), {"self": self, "__anvil_value": value})
        for ev in b.component._writeback_events() if hasattr(b.component, "_writeback_events") else ("change",):
            b.component.add_event_handler(ev, save)


def make_template(name, spec_json, module_name):
    spec = json.loads(spec_json)
    container = (spec.get("container") or {}).get("type") or ("ColumnPanel" if "container" in spec else "LinearPanel")
    base = component_class(container)
    return type(name + "Template", (FormMixin, base), {"_anvil_spec": spec, "__module__": module_name})
