"""The layer order of docs/architecture.md, checked on the source: cli -> host -> engine -> child ->
runtime -> services, never an import up a layer (deferred imports included), and no import cycle
among modules at import time."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "anvil_dev"

# Lower number = higher layer; a module may import only its own layer or lower ones (higher numbers).
LAYERS = {"cli": 0, "host": 1, "engine": 2, "child": 3, "runtime": 4, "services": 5}
# engine/ modules the forked child runs with: the frames both sides speak, the response a child may
# write itself (and its claim, shared with the host), the app's loader, pdb and debugpy.
CHILD_SIDE = {f"anvil_dev.engine.{name}" for name in ("child", "frames", "direct", "loader", "breakpoints", "attach")}


def _module_names() -> dict[str, Path]:
    """Dotted name -> file, with the runtime's files under the name server code imports (`anvil`)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ("browser", "templates"):  # client code for the browser, app scaffolds
            continue
        if rel.parts[0] == "runtime":
            parts = list(rel.relative_to("runtime").with_suffix("").parts)
        else:
            parts = ["anvil_dev", *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _module_names()


def _layer(module: str) -> int | None:
    if module == "anvil" or module.startswith("anvil."):
        return LAYERS["runtime"]
    if module in CHILD_SIDE:
        return LAYERS["child"]
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.stmt, module: str) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(max(node.level - 1, 0)):
            base = base.rpartition(".")[0]
        source = node.module or ""
        if node.level:
            source = f"{base}.{source}" if source else base
        names = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]
    else:
        return set()
    return {t for t in map(_resolve, names) if t and t != module}


def _imports(module: str, *, at_import_time: bool) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    if not at_import_time:
        return {t for node in ast.walk(tree) if isinstance(node, ast.stmt) for t in _targets(node, module)}
    found: set[str] = set()

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            found.update(_targets(node, module))
            if isinstance(node, (ast.If, ast.Try)):
                walk(node.body)
                walk(node.orelse)
                for handler in getattr(node, "handlers", []):
                    walk(handler.body)
                walk(getattr(node, "finalbody", []))

    walk(tree.body)
    return found


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{module} -> {target}"
        for module in MODULES
        if (own := _layer(module)) is not None
        for target in _imports(module, at_import_time=False)
        if (theirs := _layer(target)) is not None and theirs < own
    ]
    assert upward == []


def test_no_import_cycle_at_import_time():
    edges = {module: _imports(module, at_import_time=True) for module in MODULES}
    cycles = []
    state: dict[str, str] = {}  # "open" while on the depth-first path, "done" after

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_check_sees_the_layers():
    # Guards the two tests above against passing vacuously (say, after a move of the package).
    assert _layer("anvil_dev.cli.serve") == 0 and _layer("anvil.tables") == LAYERS["runtime"]
    assert "anvil_dev.protocol" in _imports("anvil_dev.engine.engine", at_import_time=True)
    assert len(MODULES) > 80
