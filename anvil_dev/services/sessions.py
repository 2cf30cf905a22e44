"""Server-side sessions: one row per session, named by the signed cookie the host hands out."""

from __future__ import annotations

import time
from typing import Any

from anvil_dev.services.db import AnyDatabase, ensure_schema

SCHEMA = """
CREATE TABLE IF NOT EXISTS anvil_sessions (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL DEFAULT '{}',
    user_id TEXT,
    remember INTEGER NOT NULL DEFAULT 0,
    client_type TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS anvil_session_channels (
    session_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    PRIMARY KEY (session_id, channel)
);
"""


class Sessions:
    """The app's session records (`services.current().sessions`)."""

    def __init__(self, db: AnyDatabase) -> None:
        self.db = db

    def _db(self) -> AnyDatabase:
        ensure_schema(self.db, "sessions", SCHEMA)
        return self.db

    def load(self, session_id: str) -> dict[str, Any] | None:
        """The session's record ({"data": json text, "user_id"}), or None if it was never saved."""
        row = (
            self._db()
            .connection()
            .execute("SELECT data, user_id FROM anvil_sessions WHERE id = ?", (session_id,))
            .fetchone()
        )
        return {"data": row[0], "user_id": row[1]} if row else None

    def save(
        self,
        session_id: str,
        *,
        data: str | None = None,
        user_id: Any = ...,
        client_type: str | None = None,
        remember: bool | None = None,
    ) -> None:
        """Create or update a session; only the fields given change."""
        now = time.time()
        with self._db().write() as conn:
            conn.execute(
                "INSERT INTO anvil_sessions (id, data, client_type, created, updated) VALUES (?, '{}', ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET updated = excluded.updated",
                (session_id, client_type, now, now),
            )
            if data is not None:
                conn.execute("UPDATE anvil_sessions SET data = ? WHERE id = ?", (data, session_id))
            if user_id is not ...:
                conn.execute("UPDATE anvil_sessions SET user_id = ? WHERE id = ?", (user_id, session_id))
            if remember is not None:
                conn.execute("UPDATE anvil_sessions SET remember = ? WHERE id = ?", (int(remember), session_id))

    def delete(self, session_id: str) -> None:
        with self._db().write() as conn:
            conn.execute("DELETE FROM anvil_sessions WHERE id = ?", (session_id,))
            conn.execute("DELETE FROM anvil_session_channels WHERE session_id = ?", (session_id,))

    def subscribe(self, session_id: str, channel: str) -> None:
        """Add a channel to the session's subscriptions (anvil.server.subscribe)."""
        self.save(session_id)
        with self._db().write() as conn:
            conn.execute(
                "INSERT INTO anvil_session_channels (session_id, channel) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (session_id, channel),
            )

    def unsubscribe(self, session_id: str, channel: str) -> None:
        with self._db().write() as conn:
            conn.execute(
                "DELETE FROM anvil_session_channels WHERE session_id = ? AND channel = ?", (session_id, channel)
            )

    def subscriptions(self, session_id: str) -> list[str]:
        rows = (
            self._db()
            .connection()
            .execute("SELECT channel FROM anvil_session_channels WHERE session_id = ? ORDER BY channel", (session_id,))
        )
        return [r[0] for r in rows.fetchall()]

    def list_sessions(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = (
            self._db()
            .connection()
            .execute(
                "SELECT id, data, user_id, client_type, created, updated FROM anvil_sessions "
                "ORDER BY updated DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [
            {"id": r[0], "data": r[1], "user_id": r[2], "client_type": r[3], "created": r[4], "updated": r[5]}
            for r in rows
        ]
