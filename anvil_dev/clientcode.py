"""The app's client code as Python modules for the browser: sources, Form designers, the app page.

The browser runs client code in Brython (a PyPI package whose wheel carries brython.js). Brython
imports a module it does not hold by fetching `/_/py/<dotted/path>.py` (or `.../__init__.py`), so
this module answers those paths: the app's `client_code/` as its package (as on Anvil, where
`client_code/Form1` is `<package_name>.Form1`), each dependency's as its package, the browser's
`anvil` package, and for each Form a generated `_anvil_designer.py` that builds `Form1Template`
from `form_template.yaml` (Anvil generates that file too; it is never in a repo).
"""

from __future__ import annotations

import functools
import hashlib
import html
import importlib.util
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from anvil_dev import clientbundle, themecolors
from anvil_dev.appdir import AppDir

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
PAGE_FILE = Path(__file__).resolve().parent / "static" / "page.html"  # str.format: {{ }} are braces
WIRE_FILE = Path(__file__).resolve().parent / "wire.py"


class ClientCodeError(Exception):
    """A form template that cannot be read; the message names the file and what to fix."""


def brython_dir() -> Path | None:
    """Where the installed brython package keeps brython.js and brython_stdlib.js, or None."""
    try:
        import brython
    except ImportError:
        return None
    data = Path(brython.__file__).resolve().parent / "data"
    return data if (data / "brython.js").is_file() else None


def plotly_js() -> Path | None:
    """The installed plotly package's plotly.min.js (what a Plot draws with), or None. Found without
    importing plotly, which takes a second."""
    spec = importlib.util.find_spec("plotly")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    return None


@dataclass
class Bundle:
    script: bytes  # the JS that fills Brython's VFS
    etag: str


_bundles: dict[tuple[Any, ...], Bundle] = {}
_bundles_lock = threading.Lock()


@dataclass
class Module:
    source: bytes
    file: str  # what tracebacks and the live log call it: client_code/Form1/__init__.py


class ClientCode:
    """One app's client code (and its dependencies') as the browser's modules."""

    def __init__(self, app_dir: AppDir, deps: Mapping[str, str] | None = None) -> None:
        self.app_dir = app_dir
        found, _missing = app_dir.dependencies(deps)
        self.deps = found
        self.dep_ids: dict[str, str] = {}
        for dep in app_dir.config.get("dependencies") or []:
            if isinstance(dep, dict):
                app_id = str(dep.get("app_id") or dep.get("dep_id") or "")
                hints = dep.get("resolution_hints") or {}
                package = hints.get("package_name") or dep.get("package_name")
                if app_id and package:
                    self.dep_ids[app_id] = str(package)

    # ---- what opens -------------------------------------------------------------------------

    def has_client_code(self) -> bool:
        return self.startup() is not None

    def startup(self) -> dict[str, str] | None:
        """What opens at /: {"type": "form"|"module", "module": dotted name in the package}, or None."""
        cfg = self.app_dir.config
        start = cfg.get("startup")
        if isinstance(start, dict) and start.get("module"):
            kind = "module" if start.get("type") == "module" else "form"
            return {"type": kind, "module": str(start["module"])}
        form = cfg.get("startup_form")
        if isinstance(form, str) and form:
            return {"type": "form", "module": form}
        return None

    def title(self) -> str:
        meta = self.app_dir.config.get("metadata") or {}
        title = meta.get("title") if isinstance(meta, dict) else None
        return str(title or self.app_dir.config.get("name") or self.app_dir.path.name)

    # ---- modules ----------------------------------------------------------------------------

    def _roots(self) -> dict[str, Path]:
        roots = {self.app_dir.package_name: self.app_dir.client_code}
        for dep in self.deps:
            roots.setdefault(dep.package_name, dep.client_code)
        return roots

    def module(self, url_path: str) -> Module | None:
        """The source Brython asked for at /_/py/<url_path>, or None (a 404: Brython tries the next)."""
        parts = [p for p in url_path.split("/") if p]
        if not parts or any(p.startswith(".") or p == "__pycache__" for p in parts) or not parts[-1].endswith(".py"):
            return None
        if parts[0] in ("anvil", "plotly"):
            return self._runtime_module(parts)
        roots = self._roots()
        if parts[0] in roots:
            return self._app_module(roots[parts[0]], parts[0], parts[1:])
        # Anvil also lets client code import its own top-level modules by bare name (`import Module1`).
        found = self._app_module(self.app_dir.client_code, self.app_dir.package_name, parts)
        return found if found is not None else self._stdlib_module(parts)

    def _stdlib_module(self, parts: list[str]) -> Module | None:
        """A stdlib module the bundle left out (imported only inside a function), from Brython's."""
        data = brython_dir()
        if data is None:
            return None
        is_package = parts[-1] == "__init__.py"
        name = ".".join(parts[:-1] if is_package else parts[:-1] + [parts[-1][:-3]])
        entry = clientbundle.load_stdlib(data / "brython_stdlib.js").get(name)
        if entry is None or entry[0] != ".py" or (len(entry) > 3 and bool(entry[3])) != is_package:
            return None
        return Module(entry[1].encode(), "/".join(parts))

    def _runtime_module(self, parts: list[str]) -> Module | None:
        if parts == ["anvil", "_wire.py"]:
            return Module(WIRE_FILE.read_bytes(), "anvil/_wire.py")
        target = (BROWSER_DIR.joinpath(*parts)).resolve()
        if not target.is_relative_to(BROWSER_DIR) or not target.is_file():
            return None
        return Module(target.read_bytes(), "/".join(parts))

    def _app_module(self, root: Path, package: str, parts: list[str]) -> Module | None:
        if not parts:
            return None
        if parts == ["__init__.py"]:
            # The package itself: client_code/ has no __init__.py of its own on Anvil.
            init = root / "__init__.py"
            return Module(init.read_bytes() if init.is_file() else b"", self._rel(init))
        if parts[-1] == "_anvil_designer.py":
            return self._designer(root, package, parts[:-1])
        target = root.joinpath(*parts).resolve()
        if not target.is_relative_to(root.resolve()) or not target.is_file():
            return None
        return Module(target.read_bytes(), self._rel(target))

    def _rel(self, path: Path) -> str:
        try:
            return self.app_dir.relpath(path)
        except ValueError:
            return str(path)

    # ---- the bundle: every module the page needs, in one script ----------------------------

    def _runtime_files(self) -> list[tuple[str, Path]]:
        files = [("anvil._wire", WIRE_FILE)]
        for f in sorted([*(BROWSER_DIR / "anvil").rglob("*.py"), *(BROWSER_DIR / "plotly").rglob("*.py")]):
            if "__pycache__" in f.parts:
                continue
            rel = f.relative_to(BROWSER_DIR).with_suffix("").parts
            files.append((".".join(rel), f))
        return files

    def _app_files(self) -> list[tuple[str, Path, Path, str]]:
        """(dotted name, file, package root, package) for every .py of the app and its dependencies."""
        out = []
        for package, root in self._roots().items():
            if not root.is_dir():
                continue
            for f in sorted(root.rglob("*.py")):
                rel = f.relative_to(root).with_suffix("").parts
                if any(p.startswith(".") or p == "__pycache__" for p in rel):
                    continue
                out.append((".".join((package, *rel)), f, root, package))
        return out

    def _fingerprint(self) -> tuple[Any, ...]:
        paths = [f for _, f in self._runtime_files()]
        for root in self._roots().values():
            if root.is_dir():
                paths.extend(
                    p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts
                )
        paths.append(self.app_dir.path / "anvil.yaml")
        stats = []
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            stats.append((str(p), st.st_mtime_ns, st.st_size))
        return (self.app_dir.package_name, tuple(sorted(self.dep_ids.items())), tuple(stats))

    def bundle(self) -> Bundle | None:
        """The script that loads every module the page needs (None without Brython installed);
        built once per change of the app's, the dependencies' or the runtime's files."""
        data = brython_dir()
        if data is None:
            return None
        key = self._fingerprint()
        with _bundles_lock:
            found = _bundles.get(key)
            if found is None:
                found = self._build_bundle(data / "brython_stdlib.js")
                _bundles.clear()  # one app per host: the newest generation is the one asked for
                _bundles[key] = found
        return found

    def _build_bundle(self, stdlib_js: Path) -> Bundle:
        stdlib = clientbundle.load_stdlib(stdlib_js)
        runtime: dict[str, list[Any]] = {}
        for name, f in self._runtime_files():
            is_package = f.name == "__init__.py"
            if is_package:
                name = name[: -len(".__init__")]
            runtime[name] = (
                [".py", f.read_text(encoding="utf-8"), [], 1]
                if is_package
                else [".py", f.read_text(encoding="utf-8"), []]
            )
        app: dict[str, list[Any]] = {}
        for package in self._roots():
            app[package] = [".py", "", [], 1]
        for name, f, _root, _package in self._app_files():
            if f.name == "__init__.py":
                name = name[: -len(".__init__")]
                app[name] = [".py", f.read_text(encoding="utf-8", errors="replace"), [], 1]
            else:
                app[name] = [".py", f.read_text(encoding="utf-8", errors="replace"), []]
        for name, entry in list(app.items()):
            if len(entry) > 3:  # a package: its Forms' designer
                package = name.split(".", 1)[0]
                root = self._roots()[package]
                folder = name.split(".")[1:]
                try:
                    designer = self._designer(root, package, folder)
                except ClientCodeError as e:
                    designer = Module(f"raise SyntaxError({str(e)!r})\n".encode(), "")
                if designer is not None:
                    app[name + "._anvil_designer"] = [".py", designer.source.decode(), []]
        wanted: set[str] = set()
        for name, entry in {**runtime, **app}.items():
            found = clientbundle.imports_of(entry[1], name, len(entry) > 3, import_time_only=False)
            wanted |= {n for n in found if n in stdlib and n not in runtime and n not in app}
        names = clientbundle.stdlib_closure(stdlib, wanted)
        std = {n: stdlib[n] for n in sorted(names)}
        script = clientbundle.script([std, runtime, app])
        return Bundle(script, hashlib.sha1(script).hexdigest()[:16])

    # ---- forms ------------------------------------------------------------------------------

    def _designer(self, root: Path, package: str, folder: list[str]) -> Module | None:
        """`_anvil_designer.py` for a package Form (Form1/form_template.yaml), or for the old
        layout's top-level Forms (Form1.py beside Form1.yaml) when asked at the package's root."""
        base = root.joinpath(*folder)
        templates: dict[str, Path] = {}
        if (base / "form_template.yaml").is_file():
            templates[folder[-1] if folder else package] = base / "form_template.yaml"
        elif base.is_dir():
            for y in sorted(base.glob("*.yaml")):
                if (base / (y.stem + ".py")).is_file():
                    templates[y.stem] = y
        if not templates:
            return None
        lines = ["from anvil._forms import make_template as _make", ""]
        for name, path in templates.items():
            spec = self.template_spec(path, package)
            lines.append(f"{name}Template = _make({name!r}, {json.dumps(json.dumps(spec))}, __name__)")
        return Module("\n".join(lines).encode(), self._rel(base / "_anvil_designer.py"))

    def template_spec(self, path: Path, package: str) -> dict[str, Any]:
        """The parsed form_template.yaml, with `form:` types resolved to dotted module names."""
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ClientCodeError(f"{self._rel(path)} cannot be read as YAML: {e} (fix the file and save)") from None
        if not isinstance(spec, dict):
            raise ClientCodeError(f"{self._rel(path)} must hold a mapping (container, components)")
        self._resolve(spec, package)
        return spec

    def _resolve(self, node: Any, package: str) -> None:
        if isinstance(node, dict):
            t = node.get("type")
            if isinstance(t, str) and t.startswith("form:"):
                node["type"] = "form:" + self.form_module(t[5:], package)
            item_template = (
                (node.get("properties") or {}).get("item_template")
                if isinstance(node.get("properties"), dict)
                else None
            )
            if isinstance(item_template, str) and item_template:
                node["properties"]["item_template"] = self.form_module(item_template, package)
            for v in node.values():
                self._resolve(v, package)
        elif isinstance(node, list):
            for v in node:
                self._resolve(v, package)

    def form_module(self, ref: str, package: str) -> str:
        """`Name`, `Pkg.Name` or `dep_<id>:Name` (a dependency's Form) as an importable dotted name."""
        if ":" in ref:
            dep, name = ref.split(":", 1)
            dep_id = dep[4:] if dep.startswith("dep_") else dep
            return f"{self.dep_ids.get(dep_id, dep_id)}.{name}"
        return f"{package}.{ref}"

    # ---- the page ---------------------------------------------------------------------------

    def page(self, last_event: str = "") -> str:
        """The app's HTML page: Brython, the theme's CSS, the app's head_html, and the boot script.

        `last_event` is the event stream's id ("boot-seq") when the page was made: the page
        listens for reloads after it, never for the one that made it reload."""
        cfg = self.app_dir.config
        head_html = ""
        native = cfg.get("native_deps")
        if isinstance(native, dict) and isinstance(native.get("head_html"), str):
            head_html = native["head_html"]
        try:
            colors = themecolors.theme_colors(self.app_dir, self.deps)
        except themecolors.ThemeError:
            colors = {}  # /_/theme/theme.css says what is wrong, in the stylesheet
        theme_css = f'<style id="anvil-theme-colors">\n{themecolors.root_css(colors)}</style>' if colors else ""
        if (self.app_dir.theme_assets / "theme.css").is_file() and "theme.css" not in head_html:
            theme_css += '\n<link rel="stylesheet" href="/_/theme/theme.css">'
        boot = json.dumps(
            {
                "package": self.app_dir.package_name,
                "startup": self.startup(),
                "standard_page": (self.app_dir.theme_assets / "standard-page.html").is_file(),
                "last_event": last_event,
                "theme_colors": colors,
            }
        )
        bundle = self.bundle()
        modules = f'<script src="/_/client/modules.js?v={bundle.etag}"></script>' if bundle else ""
        return _page_template().format(
            title=html.escape(self.title()),
            theme_css=theme_css,
            head_html=head_html,
            boot=html.escape(boot, quote=True),
            modules=modules,
        )


@functools.lru_cache(maxsize=1)
def _page_template() -> str:
    return PAGE_FILE.read_text(encoding="utf-8")
