"""Components that repeat a Form per item: RepeatingPanel, DataGrid and its DataRowPanel rows."""

from anvil._components.base import Container, _P, _el


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
