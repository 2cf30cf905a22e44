"""Start the app in the page: print() to the console and the live log, errors shown with file and
line, the startup Form or module, and a page reload when a client file is saved."""

from anvil import _json as json
import sys

from browser import document, window

from anvil import _replay

_boot = {}
error_handler = [None]


def package():
    return _boot.get("package", "")


def _send(kind, data):
    xhr = window.XMLHttpRequest.new()
    xhr.open("POST", "/_/client/log", True)
    xhr.setRequestHeader("Content-Type", "application/json")
    data["kind"] = kind
    xhr.send(json.dumps(data))


class _Out:
    """sys.stdout for client code: each line to the browser console, and to the console's live log."""

    def __init__(self, err=False):
        self.err = err
        self.buf = ""

    def write(self, text):
        self.buf += str(text)
        if "\n" in self.buf:
            lines, _, self.buf = self.buf.rpartition("\n")
            (window.console.error if self.err else window.console.log)(lines)
            _send("print", {"text": lines + "\n", "stream": "stderr" if self.err else "stdout"})
        return len(text)

    def flush(self):
        if self.buf:
            text, self.buf = self.buf, ""
            window.console.log(text)
            _send("print", {"text": text})


def client_file(filename):
    """`/_/py/Pkg/Form1/__init__.py` or `VFS.Pkg.Form1/__init__.py` (as Brython names a module's
    file) as client_code/Form1/__init__.py."""
    f = str(filename or "")
    if "VFS." in f:
        # A module from the bundle: Brython names it VFS.Pkg.Form1/__init__.py or VFS.Pkg.Module1.py.
        f = f.split("VFS.", 1)[1]
        if f.endswith("/__init__.py"):
            f = f[:-len("/__init__.py")].replace(".", "/") + "/__init__.py"
        elif f.endswith(".py"):
            f = f[:-3].replace(".", "/") + ".py"
        f = "/_/py/" + f
    if "/_/py/" in f:
        f = f.split("/_/py/", 1)[1]
        pkg = package()
        if f.startswith(pkg + "/"):
            return "client_code/" + f[len(pkg) + 1:]
        if f.startswith("anvil/"):
            return None
        return f
    return None


def trace_of(exc):
    """[[file, line], ...] of the app's frames, innermost first (as the server's traces are)."""
    out = []
    tb = getattr(exc, "__traceback__", None)
    while tb is not None:
        try:
            f = client_file(tb.tb_frame.f_code.co_filename)
            if f is not None:
                out.append([f, tb.tb_lineno])
        except Exception:
            pass
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and getattr(exc, "filename", None):
        f = client_file(exc.filename)
        if f is not None:
            out.append([f, exc.lineno])
    out.reverse()
    return out


def report(exc):
    """An exception no client code caught: show it in the page and the live log."""
    if error_handler[0] is not None:
        try:
            error_handler[0](exc)
            return
        except Exception as e:
            exc = e
    type_name = getattr(exc, "error_obj", {}).get("type") if hasattr(exc, "error_obj") else None
    type_name = type_name or type(exc).__name__
    message = getattr(exc, "message", None) if hasattr(exc, "error_obj") else None
    message = str(message if message is not None else (exc.args[0] if isinstance(exc, SyntaxError) and exc.args
                                                        else exc))
    trace = trace_of(exc)
    server_trace = getattr(exc, "trace", None) or []
    where = " at %s line %s" % tuple(trace[0]) if trace else ""
    window.console.error("%s: %s%s" % (type_name, message, where))
    box = document.getElementById("anvil-error")
    if box is None:
        box = document.createElement("div")
        box.id = "anvil-error"
        document.body.appendChild(box)
        close = document.createElement("button")
        close.className = "anvil-error-close"
        close.textContent = "×"
        close.bind("click", lambda ev: box.remove())
        box.appendChild(close)
    item = document.createElement("div")
    item.className = "anvil-error-item"
    head = document.createElement("div")
    head.className = "anvil-error-head"
    head.textContent = "%s: %s" % (type_name, message)
    item.appendChild(head)
    for f, line in trace + [t for t in server_trace if isinstance(t, list) and len(t) == 2]:
        row = document.createElement("div")
        row.className = "anvil-error-frame"
        row.textContent = "%s, line %s" % (f, line)
        item.appendChild(row)
    box.appendChild(item)
    _send("error", {"type": type_name, "message": message, "trace": trace, "server_trace": server_trace})


def _watch_reloads():
    """Saving a client file (or the theme, or anvil.yaml) reloads the page; a server file keeps it."""
    es = window.EventSource.new("/_/console/events?after=%s" % _boot.get("last_event", ""))

    def changed(ev):
        try:
            data = json.loads(ev.data).get("data") or {}
        except Exception:
            return
        names = str(data.get("file") or "")
        if any(k in names for k in ("client_code/", "theme/", "anvil.yaml")):
            es.close()
            window.location.reload()

    es.addEventListener("reload", changed)
    es.addEventListener("syntax_error", changed)
    window.addEventListener("beforeunload", lambda ev: es.close())


def _open_startup(start):
    import anvil
    name = package() + "." + start["module"]
    module = __import__(name, fromlist=["x"])
    if start["type"] == "form":
        anvil.open_form(getattr(module, start["module"].rsplit(".", 1)[-1])())
    window.anvilFormShown = window.performance.now()


def _time_call(name, *args):
    """For bench/client_page.py: the milliseconds one anvil.server.call takes from client Python."""
    import anvil.server
    t0 = window.performance.now()
    anvil.server.call_s(name, *args)
    return window.performance.now() - t0


def start():
    window.anvilDevTimeCall = _time_call
    _boot.update(json.loads(document.getElementById("anvil-root").getAttribute("data-boot")))
    sys.stdout = _Out()
    sys.stderr = _Out(err=True)
    _replay._reporter[0] = report
    try:
        _watch_reloads()
    except Exception:
        pass
    if _boot.get("startup"):
        _replay.run(_open_startup, _boot["startup"])
    document.body.setAttribute("data-anvil-ready", "1")
    try:
        window.setTimeout(window.anvilSpinnerFrame, 0)  # after the first Form is painted
    except AttributeError:
        pass
