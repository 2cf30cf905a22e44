"""`anvil.server.cookies` storage: kept server-side, per session, not in the browser.

Anvil keeps these in encrypted browser cookies. anvil-dev keeps them in the app's database next
to the session the signed session cookie names, one row per (session, scope, name), each with its
own expiry. They therefore live as long as the session cookie does (30 days, or until the
browser drops it), which is what an app can observe of real cookies.
"""

from __future__ import annotations

import time

from anvil_dev.services.db import AnyDatabase, ensure_schema

SCOPES = ("local", "shared")

SCHEMA = """
CREATE TABLE IF NOT EXISTS anvil_cookies (
    session_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (session_id, scope, name)
);
"""


class Cookies:
    """The app's sessions' cookies (`services.current().cookies`)."""

    def __init__(self, db: AnyDatabase) -> None:
        self.db = db

    def _db(self) -> AnyDatabase:
        ensure_schema(self.db, "cookies", SCHEMA)
        return self.db

    def load(self, session_id: str, scope: str) -> dict[str, str]:
        """The unexpired cookies of one scope: name -> stored text."""
        rows = (
            self._db()
            .connection()
            .execute(
                "SELECT name, value FROM anvil_cookies WHERE session_id = ? AND scope = ? AND expires > ?",
                (session_id, scope, time.time()),
            )
            .fetchall()
        )
        return {r[0]: r[1] for r in rows}

    def store(self, session_id: str, scope: str, values: dict[str, str], timeout_days: float) -> None:
        """Set some cookies, each expiring `timeout_days` from now."""
        expires = time.time() + timeout_days * 86400
        with self._db().write() as conn:
            conn.executemany(
                "INSERT INTO anvil_cookies (session_id, scope, name, value, expires) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (session_id, scope, name) DO UPDATE SET value = excluded.value, "
                "expires = excluded.expires",
                [(session_id, scope, k, v, expires) for k, v in values.items()],
            )

    def delete(self, session_id: str, scope: str, name: str | None = None) -> None:
        """Delete one cookie, or (name None) every cookie of the scope."""
        with self._db().write() as conn:
            if name is None:
                conn.execute("DELETE FROM anvil_cookies WHERE session_id = ? AND scope = ?", (session_id, scope))
            else:
                conn.execute(
                    "DELETE FROM anvil_cookies WHERE session_id = ? AND scope = ? AND name = ?",
                    (session_id, scope, name),
                )

    def move(self, old_session_id: str, new_session_id: str) -> None:
        """Carry a session's cookies over to the session that replaces it (on login)."""
        with self._db().write() as conn:
            # The old session's cookie wins over one of the same name already on the new session.
            conn.execute(
                "DELETE FROM anvil_cookies WHERE session_id = ? AND (scope, name) IN "
                "(SELECT scope, name FROM anvil_cookies WHERE session_id = ?)",
                (new_session_id, old_session_id),
            )
            conn.execute(
                "UPDATE anvil_cookies SET session_id = ? WHERE session_id = ?", (new_session_id, old_session_id)
            )
