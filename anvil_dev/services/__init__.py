"""Services over the app's database: plain Python used by workers (and, sparingly, the host).

A process calls `configure(app_dir)` once (after any fork) and services reach the app through
`app_context()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anvil_dev.appdir import AppDir
from anvil_dev.services.db import Database


@dataclass
class AppContext:
    app_dir: AppDir
    db: Database
    secret_key: bytes
    # Records that must never wait for an app's own data transaction (background tasks: server
    # code may launch one inside `with Transaction()`) live in a database file of their own.
    runtime_db: Database


_context: AppContext | None = None


def configure(app_dir: AppDir | str | Path) -> AppContext:
    """Point this process's services at an app; connections are opened lazily, per thread."""
    global _context
    if not isinstance(app_dir, AppDir):
        app_dir = AppDir(app_dir)
    app_dir.ensure_data_dir()
    _context = AppContext(app_dir=app_dir, db=Database(app_dir.db_path), secret_key=app_dir.secret_key(),
                          runtime_db=Database(app_dir.data_dir / "runtime.sqlite3"))
    return _context


def app_context() -> AppContext:
    if _context is None:
        raise RuntimeError("anvil_dev.services.configure(app_dir) has not been called in this process")
    return _context


def is_configured() -> bool:
    return _context is not None
