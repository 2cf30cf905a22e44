"""A throwaway copy of an app's local data, and this process set up to reach it as server code does.

`TestData(app_dir, root)` points the app's services at a directory of its own (never the app's
.anvil-dev/), builds the database's schema once, keeps it as a template, and `reset()` puts the
template back: each test starts from empty tables, no users, sessions, mail or tasks.

The reset copies the template into the live database files with SQLite's backup API rather than
replacing the files: other processes (the server's workers) keep their connections, SQLite's
locking keeps them out while it runs, and the schema cookie moves, so every process re-reads its
cached table schema.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from anvil_dev import config, services
from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.services import db as db_mod

_DATABASES = ("data.sqlite3", "runtime.sqlite3")


class TestData:
    """One app's local data in `root`, with a template of its empty state to reset to."""

    def __init__(self, app_path: str | Path, root: Path, settings: Settings | None = None) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.template_dir = root / "template"
        self.template_dir.mkdir(parents=True, exist_ok=True)
        base = settings or config.build(app_path)
        self.settings = base.replace(data_dir=str(self.data_dir))
        app = AppDir(app_path, data_dir=self.data_dir)
        self.ctx = services.open(app, self.settings)
        self.app_dir = self.ctx.app_dir
        self._build_template()

    def _build_template(self) -> None:
        """Create every service's tables (a process remembers that it created them, so a reset must
        never take them away) and the app's data tables, then keep a copy of the empty files."""
        from anvil_dev.services import cookies, outbox, sessions, tasks, users

        ctx = self.ctx
        ctx.tables.warm()
        for database, name, sql in (
            (ctx.db, "sessions", sessions.SCHEMA),
            (ctx.db, "cookies", cookies.SCHEMA),
            (ctx.db, "outbox", outbox.SCHEMA),
            (ctx.db, "users_failures", users.FAILURES_SCHEMA),
            (ctx.runtime_db, "tasks", tasks.SCHEMA),
        ):
            db_mod.ensure_schema(database, name, sql)
        for name in _DATABASES:
            src = db_mod.connect(self.data_dir / name)
            dst = sqlite3.connect(str(self.template_dir / name))
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()

    def reset(self) -> None:
        """Back to the template: empty tables, no users, sessions, mail, tasks or stored secrets."""
        self.ctx.end_call()
        for name in _DATABASES:
            src = sqlite3.connect(str(self.template_dir / name))
            dst = db_mod.connect(self.data_dir / name)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
        (self.data_dir / "secrets.json").unlink(missing_ok=True)
