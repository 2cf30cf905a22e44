"""Components that draw or tick: Image, Canvas, Timer."""

from browser import window

from anvil._components.base import Component, _P, _el

from anvil import _replay


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


class Canvas(Component):
    height = _P(300, lambda s, v: s._canvas.setAttribute("height", str(v)))

    def _make_dom(self):
        d = _el("div")
        self._canvas = _el("canvas", None, d)
        return d

    def get_context(self):
        return self._canvas.getContext("2d")


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
