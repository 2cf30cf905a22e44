"""Outgoing email: every message is kept in the app database (the outbox) and, when an SMTP
server is configured, relayed through it.

Without a host, mail stays in the outbox: `anvil-dev outbox` lists it. `Outbox` is the service of
one app (`services.current().outbox`); checking addresses, building the MIME message and relaying it
are plain functions in `services/mail.py` (where the SMTP settings are read).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import sys
from dataclasses import dataclass
from email.utils import formataddr, make_msgid
from typing import Any

from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.services.db import AnyDatabase, ensure_schema
from anvil_dev.services.mail import (
    Attachment,
    OutboxError,
    SmtpConfig,
    addresses,
    bare,
    build_mime,
    relay,
    sender_address,
    smtp_config,
)

__all__ = ["Attachment", "Outbox", "OutboxError", "SendResult", "SmtpConfig", "smtp_config"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    message_id TEXT NOT NULL,
    from_address TEXT NOT NULL,
    from_name TEXT,
    to_json TEXT NOT NULL,
    cc_json TEXT NOT NULL,
    bcc_json TEXT NOT NULL,
    subject TEXT,
    text TEXT,
    html TEXT,
    headers_json TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS outbox_attachments (
    message INTEGER NOT NULL REFERENCES outbox_messages(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT,
    content_type TEXT NOT NULL,
    cid TEXT,
    content BLOB NOT NULL,
    PRIMARY KEY (message, position)
);
"""

# Status of a stored message: kept only here, being relayed, handed to the SMTP server, or not.
KEPT, SENDING, RELAYED, FAILED = "outbox", "sending", "relayed", "failed"


@dataclass
class SendResult:
    id: int
    message_id: str
    status: str


def _insert(conn: Any, rec: dict[str, Any], status: str) -> int:
    cur = conn.execute(
        "INSERT INTO outbox_messages (time, message_id, from_address, from_name, to_json, cc_json, bcc_json,"
        " subject, text, html, headers_json, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
        (
            rec["time"],
            rec["message_id"],
            rec["from_address"],
            rec["from_name"],
            json.dumps(rec["to"]),
            json.dumps(rec["cc"]),
            json.dumps(rec["bcc"]),
            rec["subject"],
            rec["text"],
            rec["html"],
            json.dumps(rec["headers"]),
            status,
        ),
    )
    row_id = int(cur.fetchone()[0])
    for pos, a in enumerate(rec["attachments"] + rec["inline_attachments"]):
        conn.execute(
            "INSERT INTO outbox_attachments (message, position, name, content_type, cid, content) VALUES (?,?,?,?,?,?)",
            (row_id, pos, a.name, a.content_type, a.cid, a.content),
        )
    return row_id


def _announce(recipients: list[str], subject: str | None, cfg: SmtpConfig | None, error: str | None) -> None:
    """One line in the serve terminal; stderr because stdout is the call's own output."""
    line = f"[email] to {', '.join(bare(r) for r in recipients)}: {subject or '(no subject)'}"
    if cfg is not None:
        line += f" (NOT sent: {error})" if error else f" (relayed via {cfg.where()})"
    stream = sys.__stderr__
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            print(line, file=stream, flush=True)


# ---------------------------------------------------------------------------------------------
# The outbox of one app


class Outbox:
    """One app's outgoing email (`services.current().outbox`): sent by workers, read by the host and the CLI."""

    def __init__(self, app_dir: AppDir, db: AnyDatabase, settings: Settings) -> None:
        self.app_dir = app_dir
        self.db = db
        self.settings = settings

    def _db(self) -> AnyDatabase:
        ensure_schema(self.db, "outbox", SCHEMA)
        return self.db

    def smtp_config(self) -> SmtpConfig | None:
        """The SMTP relay to use, or None to keep mail in the outbox only."""
        return smtp_config(self.app_dir, self.settings.smtp)

    def send(
        self,
        *,
        to: Any = None,
        cc: Any = None,
        bcc: Any = None,
        from_address: str | None = "no-reply",
        from_name: str | None = None,
        subject: str | None = None,
        text: str | None = None,
        html: str | None = None,
        attachments: list[Attachment] | None = None,
        inline_attachments: list[Attachment] | None = None,
        reply_to: Any = None,
        in_reply_to: str | None = None,
        references: str | None = None,
    ) -> SendResult:
        """Store one message in the outbox and relay it if SMTP is configured; raises OutboxError."""
        cfg = self.smtp_config()
        to_l, cc_l, bcc_l = addresses(to, "to"), addresses(cc, "cc"), addresses(bcc, "bcc")
        if not (to_l or cc_l or bcc_l):
            raise OutboxError("anvil.email.send() needs at least one recipient (to, cc or bcc)")
        sender = sender_address(from_address, cfg)
        if "@" not in bare(sender):
            raise OutboxError(f"anvil.email.send(): from_address {from_address!r} is not an email address")
        headers = {
            k: v
            for k, v in (
                ("Reply-To", ", ".join(addresses(reply_to, "reply_to"))),
                ("In-Reply-To", in_reply_to),
                ("References", references),
            )
            if v
        }
        rec: dict[str, Any] = {
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "message_id": make_msgid(domain=bare(sender).rsplit("@", 1)[1]),
            "from_address": sender,
            "from_name": from_name,
            "to": to_l,
            "cc": cc_l,
            "bcc": bcc_l,
            "subject": subject,
            "text": text,
            "html": html,
            "headers": headers,
            "attachments": list(attachments or []),
            "inline_attachments": list(inline_attachments or []),
        }
        mime = build_mime(rec)  # before storing: a message that cannot be built is refused, not kept
        db = self._db()
        with db.write() as conn:
            row_id = _insert(conn, rec, KEPT if cfg is None else SENDING)
        status, error = KEPT, None
        if cfg is not None:
            try:
                relay(cfg, mime, bare(sender), [bare(a) for a in to_l + cc_l + bcc_l])
                status = RELAYED
            except OutboxError as e:
                status, error = FAILED, str(e)
            with db.write() as conn:
                conn.execute("UPDATE outbox_messages SET status = ?, error = ? WHERE id = ?", (status, error, row_id))
        _announce(to_l or cc_l or bcc_l, subject, cfg, error)
        if error is not None:
            raise OutboxError(error)
        return SendResult(row_id, rec["message_id"], status)

    def list_messages(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored messages, newest first: id, time, from, to, cc, bcc, subject, status, error, attachments."""
        sql = (
            "SELECT m.id, m.time, m.from_address, m.from_name, m.to_json, m.cc_json, m.bcc_json, m.subject,"
            " m.status, m.error, (SELECT COUNT(*) FROM outbox_attachments a WHERE a.message = m.id)"
            " FROM outbox_messages m ORDER BY m.id DESC"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (int(limit),)
        return [
            {
                "id": r[0],
                "time": r[1],
                "from": formataddr((r[3] or "", r[2])),
                "to": json.loads(r[4]),
                "cc": json.loads(r[5]),
                "bcc": json.loads(r[6]),
                "subject": r[7],
                "status": r[8],
                "error": r[9],
                "attachments": r[10],
            }
            for r in self._db().connection().execute(sql, params)
        ]

    def get_message(self, id: int | str) -> dict[str, Any] | None:
        """One message with its text, HTML and attachments (bytes included), or None if there is none.

        Each attachment is a dict: name, content_type, size, content (bytes) and, for inline ones, cid.
        """
        try:
            row_id = int(id)
        except (TypeError, ValueError):
            return None
        conn = self._db().connection()
        r = conn.execute(
            "SELECT id, time, message_id, from_address, from_name, to_json, cc_json, bcc_json, subject,"
            " text, html, headers_json, status, error FROM outbox_messages WHERE id = ?",
            (row_id,),
        ).fetchone()
        if r is None:
            return None
        atts = [
            {"name": a[0], "content_type": a[1], "cid": a[2], "size": len(a[3]), "content": bytes(a[3])}
            for a in conn.execute(
                "SELECT name, content_type, cid, content FROM outbox_attachments WHERE message = ? ORDER BY position",
                (r[0],),
            )
        ]
        return {
            "id": r[0],
            "time": r[1],
            "message_id": r[2],
            "from_address": r[3],
            "from_name": r[4],
            "from": formataddr((r[4] or "", r[3])),
            "to": json.loads(r[5]),
            "cc": json.loads(r[6]),
            "bcc": json.loads(r[7]),
            "subject": r[8],
            "text": r[9],
            "html": r[10],
            "headers": json.loads(r[11]),
            "status": r[12],
            "error": r[13],
            "attachments": [a for a in atts if a["cid"] is None],
            "inline_attachments": [a for a in atts if a["cid"] is not None],
        }

    def message_eml(self, id: int) -> bytes | None:
        """A stored message as a .eml file (what was, or would have been, relayed), or None."""
        rec = self.get_message(id)
        if rec is None:
            return None
        for kind in ("attachments", "inline_attachments"):
            rec[kind] = [Attachment(a["content_type"], a["content"], a["name"], a["cid"]) for a in rec[kind]]
        return build_mime(rec).as_bytes()

    def clear_messages(self) -> int:
        """Delete every stored message; returns how many there were."""
        with self._db().write() as conn:
            conn.execute("DELETE FROM outbox_attachments")
            return int(conn.execute("DELETE FROM outbox_messages").rowcount)
