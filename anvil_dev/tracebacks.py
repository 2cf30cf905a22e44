"""Server-side tracebacks worth reading: each frame's file, line, function and source line.

Anvil's wire trace (`[[file, line], ...]`, innermost first, app frames only) is what clients get and
stays as it is. Where a call ran, `extract` also takes the whole traceback as frames (outermost
first, as Python prints them); they travel to the host only (a REPLY frame's header, `Reply.frames`),
and `format_lines` prints them for the serve terminal, `anvil-dev call` and the console's JSON.
Imports nothing of the project, like `wire.py`.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

Frame = dict[str, Any]

# A frame's "kind": the app's code (its server_code/ and its dependencies'), anvil-dev's own, any other.
APP = "app"
ANVIL_DEV = "anvil_dev"
LIBRARY = "library"

MAX_FRAMES = 100  # a RecursionError's thousand frames: the outermost 20 and the innermost 80 are kept
_KEEP_OUTER = 20
MAX_SOURCE = 200

# As the pytest plugin heads a server trace: "Server", so that no one takes it for anvil-dev failing.
HEADER = "Server traceback (most recent call last):"

_OWN_ROOT = os.path.dirname(os.path.abspath(__file__)) + os.sep


def extract(tb: Any, roots: Sequence[tuple[str, str]] = ()) -> list[Frame]:
    """The frames of traceback `tb`, outermost first: {"file", "line", "name", "source", "kind"}.

    `roots` are (directory, label) pairs of the app's code: a file under one is shown relative to
    it, after its label ("" for the app itself, "DepName/" for a dependency), and is of kind "app".
    Over MAX_FRAMES the middle is left out, as one {"omitted": N} entry.
    """
    frames: list[Frame] = []
    for fs in traceback.extract_tb(tb):
        file, kind = _where(fs.filename, roots)
        source = (fs.line or "").strip()
        if len(source) > MAX_SOURCE:
            source = source[:MAX_SOURCE] + "..."
        frames.append({"file": file, "line": fs.lineno, "name": fs.name, "source": source, "kind": kind})
    if len(frames) > MAX_FRAMES:
        inner = MAX_FRAMES - _KEEP_OUTER
        frames = [*frames[:_KEEP_OUTER], {"omitted": len(frames) - MAX_FRAMES}, *frames[-inner:]]
    return frames


def _where(filename: str, roots: Sequence[tuple[str, str]]) -> tuple[str, str]:
    for root, label in roots:
        if filename.startswith(root.rstrip(os.sep) + os.sep):
            return label + filename[len(root.rstrip(os.sep)) + 1 :], APP
    if filename.startswith(_OWN_ROOT):
        return filename, ANVIL_DEV
    return filename, LIBRARY


def from_wire_trace(trace: Any) -> list[Frame]:
    """Frames from Anvil's wire trace ([[file, line], ...] innermost first) where no richer ones came
    (an uplink's error, a module that failed to import): outermost first, without names or source."""
    frames: list[Frame] = []
    for item in reversed(trace if isinstance(trace, list) else []):
        if isinstance(item, (list, tuple)) and len(item) == 2:
            frames.append({"file": str(item[0]), "line": item[1], "name": None, "source": None, "kind": APP})
    return frames


def format_lines(
    error: Mapping[str, Any] | None,
    frames: Sequence[Frame] | None,
    *,
    internal: bool = False,
    hint: str = "",
) -> list[str]:
    """A traceback as Python prints one, outermost first, ending with the error's line.

    Only the app's frames unless `internal`: anvil-dev's and libraries' frames between or after them
    become one line saying how many were left out (and `hint`, how to see them); those before the
    app's first frame (the runtime calling the function) are left out silently. No frames to show:
    the error's line alone.
    """
    error = error or {}
    if frames is None:
        frames = from_wire_trace(error.get("trace"))
    shown: list[str] = []
    hidden: list[Frame] = []
    seen_app = False
    for frame in frames:
        if "omitted" in frame:
            shown.append(f"  [... {frame['omitted']} frames left out ...]")
            continue
        if not internal and frame.get("kind") != APP:
            if seen_app:
                hidden.append(frame)
            continue
        if hidden:
            shown.append(_hidden_line(hidden, hint))
            hidden = []
        seen_app = True
        where = f'  File "{frame.get("file")}", line {frame.get("line")}'
        shown.append(where + (f", in {frame['name']}" if frame.get("name") else ""))
        if frame.get("source"):
            shown.append(f"    {frame['source']}")
    if hidden:
        shown.append(_hidden_line(hidden, hint))
    message = str(error.get("message") or "")
    last = f"{error.get('type') or 'Error'}" + (f": {message}" if message else "")
    if not any(line.startswith("  File") for line in shown):
        return [last]
    return [HEADER, *shown, last]


def _hidden_line(hidden: Sequence[Frame], hint: str) -> str:
    whose = sorted({"anvil-dev" if f.get("kind") == ANVIL_DEV else "libraries" for f in hidden})
    n = len(hidden)
    text = f"  [{n} frame{'s' if n != 1 else ''} of {' and '.join(whose)} hidden"
    return text + (f": {hint}]" if hint else "]")
