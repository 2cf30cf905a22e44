"""Hot reload: watchdog events on the app's code, debounced, checked for syntax, then one log line."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from anvil_dev.appdir import AppDir

DEBOUNCE_S = 0.05
_WRITES = ("created", "modified", "deleted", "moved", "closed")
_TEMP_SUFFIXES = ("~", ".swp", ".swx", ".swo", ".tmp", ".part", ".crdownload", ".kate-swp")


def is_relevant(app: AppDir, path: str) -> bool:
    """Whether a changed path can change what the app serves (not caches, dotfiles or editor temporaries)."""
    p = Path(path)
    try:
        rel = p.relative_to(app.path)
    except ValueError:
        return False
    parts = rel.parts
    if not parts:
        return False
    if any(part.startswith(".") or part == "__pycache__" or part.endswith(".egg-info") for part in parts):
        return False
    name = parts[-1]
    if name.endswith(_TEMP_SUFFIXES) or name.startswith("#") or name == "4913" or name.endswith(".pyc"):
        return False
    if len(parts) == 1:
        return name == "anvil.yaml"
    return parts[0] in ("server_code", "client_code", "theme")


def syntax_error(app: AppDir, files: list[Path]) -> dict[str, Any] | None:
    """The first SyntaxError among these .py files, as {"file", "line", "message"}, or None."""
    for f in files:
        if f.suffix != ".py" or not f.is_file():
            continue
        try:
            compile(f.read_bytes(), str(f), "exec", dont_inherit=True)
        except SyntaxError as e:
            return {"file": app.relpath(f), "line": e.lineno, "message": e.msg}
        except (ValueError, OSError):
            continue
    return None


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Reads (opened, closed_no_write) are ours and the editor's; directory events repeat file ones.
        if event.event_type not in _WRITES or event.is_directory:
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path and is_relevant(self.watcher.app, str(path)):
                self.watcher.changed(str(path))


class Watcher:
    """Watches server_code/, client_code/, theme/ and anvil.yaml (never .git, venvs or .anvil-dev/)."""

    def __init__(self, app: AppDir, on_change: Callable[[list[str]], None], poll: bool = False) -> None:
        self.app = app
        self.on_change = on_change
        self._observer = PollingObserver(timeout=0.5) if poll else Observer()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        handler = _Handler(self)
        for sub in ("server_code", "client_code", "theme"):
            d = self.app.path / sub
            if d.is_dir():
                self._observer.schedule(handler, str(d), recursive=True)
        self._observer.schedule(handler, str(self.app.path), recursive=False)
        self._observer.daemon = True
        self._observer.start()

    def changed(self, path: str) -> None:
        with self._lock:
            self._pending.add(path)
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(DEBOUNCE_S, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            paths, self._pending = sorted(self._pending), set()
            self._timer = None
        if paths:
            self.on_change(paths)

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        self._observer.stop()
        self._observer.join(2)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000
