"""The modules the page needs as one script: Brython's virtual file system (VFS), trimmed to use.

Brython's brython_stdlib.js is 5 MB of stdlib the browser parses on every load, and each module
Brython finds on the path is one synchronous request. The page loads one bundle instead: the
stdlib modules the client code can reach at import time, the browser's `anvil` package, and the
app's modules with their Form designers, in groups whose `$timestamp` changes only with their
content (Brython's indexedDB cache keeps each module's compiled JS until its group changes).

What the stdlib part holds is worked out from the code itself: the imports of the app's and the
`anvil` package's modules (anywhere in them), then, through the stdlib, only the imports a module
runs when it is imported (module and class level, not inside functions), which is what keeps
`json` from pulling in 240 modules. A module imported later, from inside a function, is still
found: /_/py/ answers stdlib names too (see ClientCode.module).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

# name -> [ext, source, imports, (is_package)] as Brython's VFS holds it
VfsEntry = list

MARK = "var scripts = "


@functools.lru_cache(maxsize=4)
def load_stdlib(path: Path) -> dict[str, VfsEntry]:
    """brython_stdlib.js's modules, read once per process."""
    text = path.read_text(encoding="utf-8")
    start = text.index(MARK) + len(MARK)
    end = text.rindex("__BRYTHON__.update_VFS")
    scripts = json.loads(text[start:end].rstrip().rstrip(";"))
    scripts.pop("$timestamp", None)
    return scripts


def _absolute(name: str, level: int, module: str, is_package: bool) -> str:
    if level == 0:
        return name
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _nodes(tree: ast.AST, import_time_only: bool) -> Iterator[ast.AST]:
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if import_time_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                stack.extend(child.orelse)  # imports for the type checker never run
                continue
            stack.append(child)


def imports_of(source: str, module: str, is_package: bool, import_time_only: bool) -> set[str]:
    """The absolute module names `source` imports (with `from X import y`, both X and X.y)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return _scan_imports(source, module, is_package, import_time_only)
    out: set[str] = set()
    for node in _nodes(tree, import_time_only):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module or "", node.level, module, is_package)
            if base:
                out.add(base)
            out.update(f"{base}.{a.name}" if base else a.name for a in node.names if a.name != "*")
    return out


_IMPORT = re.compile(r"^(\s*)import\s+([\w., ]+)")
_FROM = re.compile(r"^(\s*)from\s+(\.*)([\w.]*)\s+import\s+\(?([\w, ]*)")
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s|^(\s*)lambda\b")


def _scan_imports(source: str, module: str, is_package: bool, import_time_only: bool) -> set[str]:
    """imports_of by lines, for source CPython cannot parse (Brython's stdlib has syntax newer
    than some Pythons): a line indented under a `def` is inside a function."""
    out: set[str] = set()
    def_indent: int | None = None
    for line in source.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if def_indent is not None and indent <= def_indent:
            def_indent = None
        if def_indent is not None and import_time_only:
            continue
        d = _DEF.match(line)
        if d and def_indent is None:
            def_indent = indent
            continue
        m = _IMPORT.match(line)
        if m:
            out.update(n.strip().split(" ")[0] for n in m.group(2).split(",") if n.strip())
            continue
        m = _FROM.match(line)
        if m:
            base = _absolute(m.group(3), len(m.group(2)), module, is_package)
            if base:
                out.add(base)
            out.update(
                f"{base}.{n.strip().split(' ')[0]}" if base else n.strip().split(" ")[0]
                for n in m.group(4).split(",")
                if n.strip()
            )
    return out


_STAR = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+\*", re.M)


def stdlib_closure(stdlib: dict[str, VfsEntry], roots: Iterable[str]) -> set[str]:
    """The stdlib modules importing `roots` runs, with their parent packages.

    A root's functions are what the client code calls, so what they import when called is
    needed too (datetime.strptime imports _strptime); so are those of a module a root
    re-exports with `from X import *` (datetime is _pydatetime's names)."""
    seen: set[str] = set()
    whole_done: set[str] = set()
    todo = [(name, True) for name in roots]
    while todo:
        name, whole = todo.pop()
        if name in (whole_done if whole else seen):
            continue
        parts = name.split(".")
        todo.extend((".".join(parts[:i]), False) for i in range(1, len(parts)))
        entry = stdlib.get(name)
        if entry is None:
            continue
        seen.add(name)
        if whole:
            whole_done.add(name)
        if entry[0] != ".py":
            continue
        is_package = len(entry) > 3 and bool(entry[3])
        todo.extend((n, False) for n in _cached_imports(name, entry[1], is_package, not whole))
        if whole:
            todo.extend((n, True) for n in _STAR.findall(entry[1]))
    return seen


@functools.lru_cache(maxsize=8192)
def _cached_imports(name: str, source: str, is_package: bool, import_time_only: bool) -> set[str]:
    return imports_of(source, name, is_package, import_time_only=import_time_only)


def group_timestamp(entries: dict[str, VfsEntry]) -> int:
    """A number that changes when any module of the group does (Brython compares it for its cache)."""
    digest = hashlib.sha1(json.dumps(entries, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:6], "big")


def script(groups: Iterable[dict[str, VfsEntry]]) -> bytes:
    """One JS file that adds every group to Brython's VFS."""
    out = ["__BRYTHON__.use_VFS = true;\n"]
    for entries in groups:
        if not entries:
            continue
        data = dict(entries)
        data["$timestamp"] = group_timestamp(entries)  # type: ignore[assignment]
        out.append("__BRYTHON__.update_VFS(" + json.dumps(data, ensure_ascii=True) + ");\n")
    return "".join(out).encode()
