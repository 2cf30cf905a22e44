"""Plot: a plotly.js chart, with Anvil's properties (data, layout, config, figure, interactive) and
events (click, double_click, hover, unhover, select, afterplot).

plotly.js is the `plotly` package's own copy (plotly/package_data/plotly.min.js), served by the
host at /_/client/plotly.min.js; it is loaded the first time a Plot is drawn, so a page without a
Plot never downloads it. (Preloading it with the page was measured slower, for the Form and the
plot both: fetching and compiling 4.8 MB of JavaScript competed with Brython's start.)"""

from browser import document, window

from anvil import _json as json
from anvil import _replay
from anvil._components.base import Component, _P, _el

PLOTLY_URL = "/_/client/plotly.min.js"
_loader = {"state": "idle", "waiting": []}


def _plotly():
    try:
        return window.Plotly
    except AttributeError:
        return None


def _when_loaded(ready, failed):
    """Call ready() once plotly.js is in the page (loading it the first time), failed() if it
    cannot load."""
    if _loader["state"] == "ready" or _plotly() is not None:
        _loader["state"] = "ready"
        ready()
        return
    _loader["waiting"].append((ready, failed))
    if _loader["state"] == "loading":
        return
    _loader["state"] = "loading"
    script = document.createElement("script")
    script.src = PLOTLY_URL

    def done(ok):
        _loader["state"] = "ready" if ok else "idle"
        waiting, _loader["waiting"] = _loader["waiting"], []
        for r, f in waiting:
            (r if ok else f)()

    script.bind("load", lambda ev: done(True))
    script.bind("error", lambda ev: done(False))
    document.head.appendChild(script)


def _js(value):
    from plotly.graph_objects import _plain
    return window.JSON.parse(json.dumps(_plain(value)))


_POINT_KEYS = (("curveNumber", "curve_number"), ("pointNumber", "point_number"),
               ("pointNumbers", "point_numbers"), ("x", "x"), ("y", "y"), ("z", "z"), ("lat", "lat"),
               ("lon", "lon"))


def _points(data):
    out = []
    if data is None:
        return out
    try:
        points = data.points
    except AttributeError:
        return out
    for p in points:
        d = {}
        for js_name, name in _POINT_KEYS:
            try:
                v = getattr(p, js_name)
            except AttributeError:
                continue
            if v is not None:
                d[name] = list(v) if name == "point_numbers" else v
        out.append(d)
    return out


class Plot(Component):
    _events = ("click", "double_click", "hover", "unhover", "select", "afterplot", "show", "hide")

    height = _P(450, lambda s, v: setattr(s._dom.style, "height", "%spx" % v if v else ""))
    interactive = _P(True, lambda s, v: s.redraw())

    def _make_dom(self):
        d = _el("div")
        self._graph = _el("div", "anvil-plot-graph", d)
        self._graph.style.height = "100%"
        return d

    def __init__(self, **properties):
        self._data = []
        self._layout = None
        self._config = {}
        self._bound = False
        Component.__init__(self, **properties)

    # ---- properties ----
    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, v):
        from plotly.graph_objects import _wrap
        if v is None:
            v = []
        elif isinstance(v, dict):
            v = [v]
        self._data = [_wrap(t) for t in v]
        self.redraw()

    @property
    def layout(self):
        from plotly.graph_objects import Layout
        if self._layout is None:
            self._layout = Layout()
        return self._layout

    @layout.setter
    def layout(self, v):
        from plotly.graph_objects import Layout
        self._layout = v if isinstance(v, Layout) else Layout(v or {})
        self.redraw()

    @property
    def config(self):
        return self._config

    @config.setter
    def config(self, v):
        self._config = dict(v or {})
        self.redraw()

    @property
    def figure(self):
        from plotly.graph_objects import Figure
        return Figure(data=self.data, layout=self.layout)

    @figure.setter
    def figure(self, v):
        from plotly.graph_objects import Figure
        fig = v if isinstance(v, Figure) else Figure(v)
        self._layout = fig["layout"]
        self.data = fig["data"]

    # ---- drawing ----
    def _on_show(self):
        self.redraw()

    def redraw(self):
        """Draw the data and layout as they are now (after changing them in place)."""
        if not getattr(self, "_shown", False) or not hasattr(self, "_data"):
            return
        _when_loaded(self._draw, self._failed)

    def _failed(self):
        self._graph.textContent = ("plotly.js could not be loaded from %s: is the plotly package installed "
                                   "where anvil-dev runs? (pip install plotly)" % PLOTLY_URL)
        self._graph.classList.add("anvil-plot-error")

    def _draw(self):
        config = dict(self._config)
        config.setdefault("responsive", True)
        if not self.interactive:
            config["staticPlot"] = True
        window.Plotly.react(self._graph, _js(self._data), _js(self.layout), _js(config))
        if not self._bound:
            self._bound = True
            for js_event, name in (("plotly_click", "click"), ("plotly_hover", "hover"),
                                   ("plotly_unhover", "unhover"), ("plotly_selected", "select")):
                self._graph.on(js_event, self._relay(name))
            self._graph.on("plotly_doubleclick", lambda *a: self._fire("double_click", {}))
            self._graph.on("plotly_afterplot", lambda *a: self._fire("afterplot", {}))

    def _relay(self, name):
        return lambda data=None, *a: self._fire(name, {"points": _points(data)})

    def _fire(self, name, args):
        if self._handlers.get(name):
            _replay.run(self.raise_event, name, **args)
        return False

    # ---- plotly.js's own updates ----
    def _call(self, method, *args):
        _when_loaded(lambda: getattr(window.Plotly, method)(self._graph, *[_js(a) for a in args]),
                     self._failed)

    def extend_traces(self, data, indices):
        self._call("extendTraces", data, indices)

    def prepend_traces(self, data, indices):
        self._call("prependTraces", data, indices)

    def restyle(self, update, indices=None):
        if indices is None:
            self._call("restyle", update)
        else:
            self._call("restyle", update, indices)

    def relayout(self, update):
        self._call("relayout", update)

    def to_image(self, options=None):
        raise NotImplementedError("Plot.to_image() needs to wait for a promise, which client code cannot "
                                  "do here: use anvil.js.window.Plotly.toImage from JavaScript instead")
