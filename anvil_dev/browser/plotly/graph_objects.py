"""plotly.graph_objects for client code: traces (go.Scatter, go.Bar, ...), go.Layout, go.Figure and
the nested classes (go.layout.XAxis, go.scatter.Marker, go.Marker, ...), each a dict whose keys are
also attributes. Reading a missing attribute makes an empty object there, so
`plot.layout.xaxis.title = "time"` works as on Anvil; `xaxis_title="time"` (plotly's magic
underscores) sets the nested key too."""

# plotly.js names that hold an underscore themselves: not paths.
_UNDERSCORED = ("error_x", "error_y", "error_z", "paper_bgcolor", "plot_bgcolor", "copy_xstyle",
                "copy_ystyle", "copy_zstyle")


def _path(key):
    if key.startswith("_") or "_" not in key or key in _UNDERSCORED:
        return [key]
    for name in _UNDERSCORED:
        key = key.replace(name, name.replace("_", "-"))
    return [p.replace("-", "_") for p in key.split("_")]


def _wrap(value):
    if isinstance(value, Obj):
        return value
    if isinstance(value, dict):
        return Obj(value)
    if isinstance(value, (list, tuple)):
        return [_wrap(v) for v in value]
    return value


class Obj(dict):
    """A plotly object: a dict with attribute access, nested objects made on first use."""

    def __init__(self, arg=None, **kwargs):
        dict.__init__(self)
        if arg is not None:
            if not isinstance(arg, dict):
                raise TypeError("%s() takes a dict of properties, not %s" % (type(self).__name__,
                                                                             type(arg).__name__))
            for k, v in arg.items():
                self[k] = v
        for k, v in kwargs.items():
            self[k] = v

    def __setitem__(self, key, value):
        path = _path(str(key))
        target = self
        for p in path[:-1]:
            target = target._child(p)
        if path[-1] == "title" and isinstance(value, str):
            value = {"text": value}  # plotly.js 3 reads titles only as {text: ...}; plotly.py converts too
        dict.__setitem__(target, path[-1], _wrap(value))

    def __getitem__(self, key):
        path = _path(str(key))
        target = self
        for p in path[:-1]:
            target = target._child(p)
        return dict.__getitem__(target, path[-1])

    def _child(self, key):
        found = self.get(key)
        if not isinstance(found, dict):
            found = Obj()
            dict.__setitem__(self, key, found)
        return found

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._child(name) if name not in self else dict.__getitem__(self, name)

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name)

    def update(self, arg=None, **kwargs):
        """Merge properties in, nested dicts into nested objects (plotly's update)."""
        for k, v in list((arg or {}).items()) + list(kwargs.items()):
            current = self.get(k)
            if isinstance(current, Obj) and isinstance(v, dict):
                current.update(v)
            else:
                self[k] = v
        return self

    def to_plotly_json(self):
        return _plain(self)

    to_dict = to_plotly_json

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, dict.__repr__(self))


def _plain(value):
    """Plain dicts, lists and scalars (dates as plotly's strings), ready for JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return str(value)
    return value


class _Trace(Obj):
    _trace_type = None

    def __init__(self, arg=None, **kwargs):
        Obj.__init__(self, arg, **kwargs)
        dict.__setitem__(self, "type", self._trace_type)


_TRACES = ("Bar Barpolar Box Candlestick Carpet Choropleth Choroplethmap Choroplethmapbox Cone Contour "
           "Contourcarpet Densitymap Densitymapbox Funnel Funnelarea Heatmap Histogram Histogram2d "
           "Histogram2dContour Icicle Image Indicator Isosurface Mesh3d Ohlc Parcats Parcoords Pie Quiver "
           "Sankey Scatter Scatter3d Scattercarpet Scattergeo Scattergl Scattermap Scattermapbox "
           "Scatterpolar Scatterpolargl Scattersmith Scatterternary Splom Streamtube Sunburst Surface Table "
           "Treemap Violin Volume Waterfall").split()

_OBJECTS = ("AngularAxis Annotation ColorBar Contours ErrorX ErrorY ErrorZ Font Frame Legend Line Margin "
            "Marker RadialAxis Scene Title XAxis YAxis ZAxis XBins YBins").split()

for _name in _TRACES:
    globals()[_name] = type(_name, (_Trace,), {"_trace_type": _name.lower(), "__module__": __name__})
for _name in _OBJECTS:
    globals()[_name] = type(_name, (Obj,), {"__module__": __name__})
Histogram2dcontour = globals()["Histogram2dContour"]


class Layout(Obj):
    pass


class Figure(Obj):
    """data (a list of traces) and layout, as Plot.figure takes and gives them."""

    def __init__(self, data=None, layout=None, **kwargs):
        if isinstance(data, dict) and ("data" in data or "layout" in data):
            data, layout = data.get("data"), data.get("layout", layout)
        if data is None:
            data = []
        elif isinstance(data, dict):
            data = [data]
        Obj.__init__(self, **kwargs)
        dict.__setitem__(self, "data", [_wrap(t) for t in data])
        dict.__setitem__(self, "layout", layout if isinstance(layout, Layout) else Layout(layout or {}))

    def add_trace(self, trace, row=None, col=None):
        self["data"].append(_wrap(trace))
        return self

    def add_traces(self, traces):
        for t in traces:
            self.add_trace(t)
        return self

    def update_layout(self, arg=None, **kwargs):
        self["layout"].update(arg, **kwargs)
        return self

    def update_traces(self, arg=None, **kwargs):
        for t in self["data"]:
            t.update(arg, **kwargs)
        return self


class _Namespace:
    """go.layout, go.scatter, go.layout.xaxis, ...: nested classes by name, made on first use."""

    def __init__(self, path):
        self._path = path

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        made = (type(name, (Obj,), {"__module__": __name__ + "." + self._path}) if name[:1].isupper()
                else _Namespace(self._path + "." + name))
        setattr(self, name, made)
        return made


layout = _Namespace("layout")
for _name in _TRACES:
    globals()[_name.lower()] = _Namespace(_name.lower())
