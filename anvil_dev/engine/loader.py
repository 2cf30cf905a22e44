"""Import an app as Anvil does: one package over server_code/ and client_code/, every server module first."""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

from anvil_dev.appdir import AppDir


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _AppAliasFinder(importlib.abc.MetaPathFinder):
    """`import Logic` or `import Pkg.Sub` in app code gives the module `<package>.Logic` itself,
    as on Anvil, so one module never exists twice under two names."""

    def __init__(self, package: str, roots: list[Path]) -> None:
        self.package = package
        self.roots = roots

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        top, _, rest = fullname.partition(".")
        if top == self.package:
            return None
        if rest:
            # A submodule of an aliased module (`import model.portable`): the same module as
            # `<package>.model.portable`, not a second copy found through model's __path__.
            parent = sys.modules.get(top)
            if parent is None or not getattr(parent, "__name__", "").startswith(self.package + "."):
                return None
            return importlib.util.spec_from_loader(fullname, _AliasLoader(f"{self.package}.{fullname}"))
        if not any((r / (top + ".py")).is_file() or (r / top / "__init__.py").is_file() for r in self.roots):
            return None
        # As on Anvil, the standard library and installed packages win over an app module of the
        # same name (an app's `email.py` must not hide `email.mime`).
        if (
            top in sys.builtin_module_names
            or importlib.machinery.FrozenImporter.find_spec(top) is not None
            or importlib.machinery.PathFinder.find_spec(top) is not None
        ):
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(f"{self.package}.{fullname}"))


def install_app_package(app: AppDir, aliases: bool = True) -> str:
    """Create the app's package module (and, for the main app, the alias finder); returns its name."""
    package = app.package_name
    if package in sys.modules:
        return package
    roots = [app.server_code, app.client_code]
    mod = types.ModuleType(package)
    mod.__path__ = [str(r) for r in roots]
    mod.__package__ = package
    mod.__file__ = None
    spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
    spec.submodule_search_locations = mod.__path__
    mod.__spec__ = spec
    sys.modules[package] = mod
    if aliases:
        sys.meta_path.insert(0, _AppAliasFinder(package, roots))
    return package


class ModuleLoadError(Exception):
    """A server module failed to import; carries a message that names the file and what to do."""


def import_server_modules(app: AppDir) -> None:
    """Import the dependencies' server modules, then the app's, packages before submodules, as Anvil does."""
    deps, _missing = app.dependencies(_explicit_deps())
    for dep in deps:
        install_app_package(dep, aliases=False)
    for dep in deps:
        _import_all(dep)
    install_app_package(app)
    _import_all(app)


def _import_all(app: AppDir) -> None:
    package = app.package_name
    for file in app.server_module_files():
        name = app.module_name(file)
        if not name:
            continue
        try:
            importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as e:
            missing = (e.name or "").split(".")[0]
            where = _importer(e, app) or app.relpath(file)
            if missing == "anvil":
                raise ModuleNotFoundError(
                    f"No module named '{e.name}' (imported by {where}): anvil-dev does not provide "
                    "this part of Anvil's server API",
                    name=e.name,
                ) from e
            dep = next((d for d in app.declared_dependencies() if d["package"] == missing), None)
            if dep is not None:
                title = f"{dep['name']} ({dep['app_id']})" if dep["name"] else dep["app_id"] or missing
                raise ModuleNotFoundError(
                    f"No module named '{e.name}' (imported by {where}): {missing} is the package of the "
                    f"dependency app {title} in anvil.yaml, which anvil-dev cannot find - "
                    f"{app.dependency_hint(dep)}",
                    name=e.name,
                ) from e
            if missing and missing != package and not _is_app_module(app, missing):
                raise ModuleNotFoundError(
                    f"No module named '{e.name}' (imported by {where}). It is not installed in "
                    f"the Python that runs anvil-dev: `pip install {missing}` there, then save any file to reload.",
                    name=e.name,
                ) from e
            raise


def _importer(e: BaseException, app: AppDir) -> str | None:
    """The app file and line whose import failed: the innermost frame inside the app (the module
    being loaded may have imported the one that failed), or None when no frame is the app's."""
    frame = None
    tb = e.__traceback__
    while tb is not None:
        path = Path(tb.tb_frame.f_code.co_filename)
        if path.is_relative_to(app.path) and path.suffix == ".py":
            frame = (path, tb.tb_lineno)
        tb = tb.tb_next
    return f"{app.relpath(frame[0])} line {frame[1]}" if frame else None


def _is_app_module(app: AppDir, name: str) -> bool:
    return any((r / (name + ".py")).is_file() or (r / name).is_dir() for r in (app.server_code, app.client_code))


def third_party_imports(app: AppDir) -> list[str]:
    """Top-level modules the server code imports that are not the app's own: the zygote preloads them."""
    names: set[str] = set()
    for file in app.server_module_files():
        try:
            tree = ast.parse(file.read_bytes(), str(file))
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    own = {app.package_name, "anvil", "__future__"} | {d.package_name for d in app.dependencies(_explicit_deps())[0]}
    return sorted(n for n in names if n not in own and not _is_app_module(app, n))


def _explicit_deps() -> dict[str, str]:
    """Dependencies given with --dep, where this process has opened the app's services."""
    from anvil_dev import services

    return dict(services.current().settings.deps) if services.is_open() else {}
