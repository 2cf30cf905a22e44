"""Hot reload: watchdog events on the app's code, debounced, checked for syntax, then the engine reloads
and the terminal and the console get one line."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import click
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from anvil_dev._units import duration
from anvil_dev.appdir import AppDir
from anvil_dev.host.state import HostState

DEBOUNCE_S = 0.05
# After a file is closed from writing, or renamed into place, the editor has finished that file:
# only a moment is left for the other files of a save-all (or vim's backup being deleted) to come.
SETTLE_S = 0.01
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


def import_failure(description: Mapping[str, Any]) -> dict[str, Any] | None:
    """What failed when the new code was imported, from the engine's description of it: the exception's
    type and message, and the innermost frame of its trace ({"type", "message", "file", "line"}), or None."""
    err = description.get("import_error")
    if not isinstance(err, Mapping):
        return None
    trace = [t for t in err.get("trace") or [] if isinstance(t, (list, tuple)) and len(t) == 2]
    file, line = trace[-1] if trace else (None, None)
    return {
        "type": str(err.get("type") or "Exception"),
        "message": str(err.get("message") or ""),
        "file": file,
        "line": line,
    }


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
        dest = str(getattr(event, "dest_path", "") or "")
        # A write that ended (close after writing, or a rename onto the file) settles sooner than
        # one that may go on (created, modified: an editor may write a file in several steps).
        done = event.event_type == "closed" or (event.event_type == "moved" and is_relevant(self.watcher.app, dest))
        for path in (str(event.src_path), dest):
            if path and is_relevant(self.watcher.app, path):
                self.watcher.changed(path, settled=done)


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

    def changed(self, path: str, settled: bool = False) -> None:
        """`path` changed; the batch fires once no change has come for DEBOUNCE_S (SETTLE_S when
        this change finished a write)."""
        with self._lock:
            self._pending.add(path)
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(SETTLE_S if settled else DEBOUNCE_S, self._fire)
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


# A batch whose files all hold what they held at a reload this recent is the same save's events
# split in two (the watcher's thread ran late), not a save of its own: a person re-saving a file
# to reload it takes longer.
REPEAT_WITHIN_S = 1.0
_UNSEEN = object()


class SaveRepeats:
    """What each file held when it was last reloaded, to tell a batch that changes nothing."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, tuple[bytes | None, float]] = {}  # path -> its digest, and when

    def repeated(self, paths: list[str]) -> bool:
        """Whether every path holds what it held at its reload of under REPEAT_WITHIN_S ago (a deleted
        file: that it was gone then too). Either way, the paths' contents are now the last seen."""
        now = self._clock()
        same = True
        for path in paths:
            digest = _digest(path)
            seen, at = self._last.get(path, (_UNSEEN, now - REPEAT_WITHIN_S))
            same = same and seen == digest and now - at < REPEAT_WITHIN_S
            self._last[path] = (digest, now)
        return same


def _digest(path: str) -> bytes | None:
    try:
        return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).digest()
    except OSError:  # gone, a directory, unreadable
        return None


class _Reloadable(Protocol):
    """The scheduler, as the reloader sees it: told when anvil.yaml changes."""

    def reload(self) -> None: ...


class Reloader:
    """Watches the app and, on each debounced batch of changes, reloads the engine and says so."""

    def __init__(self, state: HostState, poll: bool = False, scheduler: _Reloadable | None = None) -> None:
        self.state = state
        self.scheduler = scheduler
        self._watcher = Watcher(state.app_dir, self.on_change, poll=poll)
        self._lock = threading.Lock()
        self._repeats = SaveRepeats()

    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        self._watcher.stop()

    def on_change(self, paths: list[str]) -> None:
        state, app_dir = self.state, self.state.app_dir
        with self._lock:
            if self._repeats.repeated(paths):
                return  # the last reload's save, its events come late: nothing changed since
            start = time.perf_counter()
            files = [Path(p) for p in paths]
            err = syntax_error(app_dir, [f for f in files if f.suffix == ".py"])
            if err is None and state.syntax_error is not None:
                # A fix elsewhere must not hide an error still standing in another file.
                err = syntax_error(app_dir, app_dir.server_module_files())
            state.engine.reload(paths)
            failed = None if err is not None else import_failure(state.engine.describe())
            took = duration(time.perf_counter() - start)
            names = ", ".join(app_dir.relpath(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
            if err is not None:
                click.secho(
                    f"SyntaxError in {err['file']} line {err['line']}: {err['message']} "
                    "(calls will fail until it is fixed)",
                    fg="red",
                    err=True,
                )
                state.bus.publish("syntax_error", err)
            elif failed is not None:
                where = f" at {failed['file']} line {failed['line']}" if failed.get("file") else ""
                click.secho(
                    f"reload of {names} failed: {failed['type']}: {failed['message']}{where} "
                    "(calls will fail until it is fixed)",
                    fg="red",
                    err=True,
                )
                state.bus.publish("reload_failed", dict(failed, changed=names, time=time.time()))
            else:
                click.echo(f"reloaded {names} in {took}", err=True)
                if state.syntax_error is not None:
                    state.bus.publish("syntax_ok", {})
                state.bus.publish(
                    "reload", {"file": names, "ms": round((time.perf_counter() - start) * 1000, 1), "time": time.time()}
                )
            state.syntax_error = err
        if any(Path(p).name == "anvil.yaml" for p in paths):
            if self.scheduler is not None:
                self.scheduler.reload()
            _refresh_stubs(state.app_dir)


def _refresh_stubs(app_dir: AppDir) -> None:
    """Rewrite the app's type stubs (`anvil-dev stubs`) when anvil.yaml changed, where they exist."""
    from anvil_dev import stubs

    try:
        target = stubs.refresh(app_dir)
    except Exception as e:  # noqa: BLE001 - a half-edited anvil.yaml must never stop the reload
        click.secho(f"type stubs not updated: {e}", fg="yellow", err=True)
        return
    if target is not None:
        click.echo(f"updated type stubs in {app_dir.relpath(target)}", err=True)
