"""Services over the app's database: plain Python used by workers, the host and the CLI alike.

A process opens its app's services once, `ctx = open(app_dir, settings)`, and reaches them as that
context's objects: `ctx.tables`, `.users`, `.sessions`, `.cookies`, `.outbox`, `.secrets`, `.tasks`
and `.media`, each bound to the context (its databases, app directory and settings). Later code
gets the same context with `current()`. Opening connects to nothing: each service object is made
on first use, and its database connections are opened lazily, per thread, so that a zygote can
open its services before it forks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from anvil_dev import config
from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.services.db import AnyDatabase, Database, PostgresDatabase

if TYPE_CHECKING:
    from anvil_dev.services.cookies import Cookies
    from anvil_dev.services.mediastore import MediaStore
    from anvil_dev.services.outbox import Outbox
    from anvil_dev.services.secrets import Secrets
    from anvil_dev.services.sessions import Sessions
    from anvil_dev.services.tables import TablesStore
    from anvil_dev.services.tasks import Tasks
    from anvil_dev.services.users import Users

_T = TypeVar("_T")


@dataclass
class AppContext:
    """One app's services in this process."""

    app_dir: AppDir
    settings: Settings
    db: Database
    secret_key: bytes
    # Records that must never wait for an app's own data transaction (background tasks: server
    # code may launch one inside `with Transaction()`) live in a database file of their own.
    runtime_db: Database
    # `--database postgresql://...`: data tables (users with them), sessions, cookies, mail and tasks
    # live there, shared by every host pointed at it, and so does the signing key.
    shared_db: PostgresDatabase | None = None
    _made: dict[str, object] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def _once(self, name: str, make: Callable[[], _T]) -> _T:
        # One object per context, even when threads ask at once: the tables store caches the
        # schema and each thread's transaction marker, and two stores would split that state. Reentrant:
        # making one service may make another (users needs the tables store).
        made = self._made.get(name)
        if made is None:
            with self._lock:
                made = self._made.get(name)
                if made is None:
                    made = self._made[name] = make()
        return made  # type: ignore[return-value]

    @property
    def records_db(self) -> AnyDatabase:
        """Where sessions, cookies, mail and login failures are kept."""
        return self.shared_db if self.shared_db is not None else self.db

    @property
    def tables(self) -> TablesStore:
        from anvil_dev.services.tables import TablesStore

        return self._once("tables", lambda: TablesStore(self.tables_db, self.app_dir, self.secret_key))

    @property
    def tables_db(self) -> AnyDatabase:
        """Where the data tables live: the shared database when there is one. On PostgreSQL a
        database object of their own, so a data tables transaction never takes in the session,
        task and mail records written on the same thread."""
        if self.shared_db is None:
            return self.db
        return self._once("tables_db", lambda: PostgresDatabase(self.shared_db.url))  # type: ignore[union-attr]

    @property
    def users(self) -> Users:
        from anvil_dev.services.users import Users

        return self._once("users", lambda: Users(self.app_dir, self.records_db, self.settings, self.tables))

    @property
    def sessions(self) -> Sessions:
        from anvil_dev.services.sessions import Sessions

        return self._once("sessions", lambda: Sessions(self.records_db))

    @property
    def cookies(self) -> Cookies:
        from anvil_dev.services.cookies import Cookies

        return self._once("cookies", lambda: Cookies(self.records_db))

    @property
    def outbox(self) -> Outbox:
        from anvil_dev.services.outbox import Outbox

        return self._once("outbox", lambda: Outbox(self.app_dir, self.records_db, self.settings))

    @property
    def secrets(self) -> Secrets:
        from anvil_dev.services.secrets import Secrets

        return self._once("secrets", lambda: Secrets(self.app_dir, self.settings, self.shared_db))

    @property
    def tasks(self) -> Tasks:
        from anvil_dev.services.tasks import Tasks

        return self._once("tasks", lambda: Tasks(self.shared_db if self.shared_db is not None else self.runtime_db))

    @property
    def media(self) -> MediaStore:
        from anvil_dev.services.mediastore import MediaStore

        return self._once("media", lambda: MediaStore(self.app_dir.media_dir, self.shared_db))

    def begin_call(self) -> None:
        """Before each call: the data tables schema is checked once for it (`TablesStore.begin_call`)."""
        if "tables" in self._made:
            self.tables.begin_call()

    def end_call(self) -> None:
        """After each call: roll back a data tables transaction it left open on this thread (a
        persistent worker's thread would otherwise keep the write lock). Cheap when no call
        used the tables."""
        if "tables" in self._made:
            self.tables.end_call()

    def warm(self) -> None:
        """Work every child of a zygote would repeat, done once before it forks: the tables
        schema synced and cached. No connection stays open across the fork."""
        self.tables.warm()


_context: AppContext | None = None


def open(app_dir: AppDir | str | Path, settings: Settings | None = None) -> AppContext:
    """Point this process's services at an app and return them; nothing is connected yet.
    Without `settings`, they are built from the environment and defaults (CLI commands)."""
    global _context
    if not isinstance(app_dir, AppDir):
        app_dir = AppDir(app_dir)
    if settings is None:
        settings = config.build(app_dir.path, yaml_database=config.yaml_database(app_dir.config))
    if settings.data_dir is not None and app_dir.data_dir != Path(settings.data_dir).resolve():
        app_dir = AppDir(app_dir.path, data_dir=settings.data_dir)
    app_dir.ensure_data_dir()
    shared = PostgresDatabase(settings.database) if settings.database else None
    key = app_dir.secret_key() if shared is None else _shared_key(shared, app_dir.secret_key())
    _context = AppContext(
        app_dir=app_dir,
        settings=settings,
        db=Database(app_dir.db_path),
        secret_key=key,
        runtime_db=Database(app_dir.data_dir / "runtime.sqlite3"),
        shared_db=shared,
    )
    return _context


def current() -> AppContext:
    """The services this process opened."""
    if _context is None:
        raise RuntimeError("anvil_dev.services.open(app_dir) has not been called in this process")
    return _context


def is_open() -> bool:
    return _context is not None


def forget() -> None:
    """This process's services point at no app any more (the next `open` chooses again). For
    processes that serve one app after another, such as a test session."""
    global _context
    _context = None


SHARED_SCHEMA = """
CREATE TABLE IF NOT EXISTS anvil_shared (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def shared_value(db: AnyDatabase, name: str, proposed: str) -> str:
    """A value every host on this database agrees on: the first one proposed is kept."""
    from anvil_dev.services.db import ensure_schema

    ensure_schema(db, "shared", SHARED_SCHEMA)
    with db.write() as conn:
        conn.execute("INSERT INTO anvil_shared (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, proposed))
        row = conn.execute("SELECT value FROM anvil_shared WHERE name = ?", (name,)).fetchone()
    return str(row[0])


def _shared_key(db: PostgresDatabase, local: bytes) -> bytes:
    """The signing key of every host on one database (a session cookie made by one is good on all):
    the first host's own key, stored there. Its connection is closed again: a zygote forks after this."""
    try:
        return shared_value(db, "secret_key", local.decode()).encode()
    finally:
        db.close()
