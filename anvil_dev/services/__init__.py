"""Services over the app's database: plain Python used by workers, the host and the CLI alike.

A process opens its app's services once with `open(app_dir, settings)` (after any fork, connections
are opened lazily, per thread) and services reach them through `current()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anvil_dev import config
from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.services.db import Database


@dataclass
class AppContext:
    app_dir: AppDir
    settings: Settings
    db: Database
    secret_key: bytes
    # Records that must never wait for an app's own data transaction (background tasks: server
    # code may launch one inside `with Transaction()`) live in a database file of their own.
    runtime_db: Database


_context: AppContext | None = None


def open(app_dir: AppDir | str | Path, settings: Settings | None = None) -> AppContext:  # noqa: A001
    """Point this process's services at an app and return them; connections are opened lazily, per
    thread. Without `settings`, they are built from the environment and defaults (CLI commands)."""
    global _context
    if not isinstance(app_dir, AppDir):
        app_dir = AppDir(app_dir)
    if settings is None:
        settings = config.build(app_dir.path)
    app_dir.ensure_data_dir()
    _context = AppContext(app_dir=app_dir, settings=settings, db=Database(app_dir.db_path),
                          secret_key=app_dir.secret_key(), runtime_db=Database(app_dir.data_dir / "runtime.sqlite3"))
    return _context


def current() -> AppContext:
    """The services this process opened."""
    if _context is None:
        raise RuntimeError("anvil_dev.services.open(app_dir) has not been called in this process")
    return _context


def is_open() -> bool:
    return _context is not None
