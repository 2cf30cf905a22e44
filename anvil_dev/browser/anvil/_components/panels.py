"""Containers that lay out components: ColumnPanel, FlowPanel, LinearPanel, GridPanel, XYPanel,
HtmlPanel and HtmlTemplate (with slots)."""

from anvil import _json as json

from browser import document, window

from anvil._components.base import Container, _P, _el, _spacing


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
