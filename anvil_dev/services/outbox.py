"""Outgoing email: every message is kept in the app database (the outbox) and, when an SMTP
server is configured, relayed through it.

SMTP settings come from `Settings.smtp` (`serve --smtp-*`, `ANVIL_DEV_SMTP_HOST`, `_PORT`, `_USER`,
`_PASSWORD` and `_ENCRYPTION`: ssl | starttls | none), else from anvil.yaml's email service
`server_config` (`smtp_host`, `smtp_port`, `smtp_username`, `smtp_password`, `smtp_encryption`).
Without a host, mail stays in the outbox: `anvil-dev outbox` lists it. `Outbox` is the service of
one app (`services.current().outbox`); building and relaying MIME messages are plain functions.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import smtplib
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid
from typing import Any

from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.services.db import AnyDatabase, ensure_schema

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

ENCRYPTIONS = ("ssl", "starttls", "none")
SMTP_TIMEOUT = 20.0
# Status of a stored message: kept only here, being relayed, handed to the SMTP server, or not.
KEPT, SENDING, RELAYED, FAILED = "outbox", "sending", "relayed", "failed"


class OutboxError(Exception):
    """The message cannot be sent; the runtime re-raises it as anvil.email.SendFailure."""


@dataclass
class Attachment:
    content_type: str
    content: bytes
    name: str | None = None
    cid: str | None = None  # set for inline attachments (<img src="cid:...">)


@dataclass
class SmtpConfig:
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    encryption: str = "none"

    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class SendResult:
    id: int
    message_id: str
    status: str


# ---------------------------------------------------------------------------------------------
# Configuration


def smtp_config(app_dir: AppDir, given: Mapping[str, str]) -> SmtpConfig | None:
    """The SMTP relay to use, or None to keep mail in the outbox only: `given` (Settings.smtp, keys
    host, port, user, password, encryption) over anvil.yaml's email service."""
    svc = app_dir.service_config("/runtime/services/anvil/email.yml") or {}
    yml = svc.get("server_config") or {}
    if not isinstance(yml, dict) or yml.get("custom_smtp") is False:
        yml = {}

    def pick(setting: str, *keys: str) -> Any:
        value = given.get(setting)
        if value not in (None, ""):
            return value
        for k in keys:
            # An encrypted hosted-Anvil value ({"$encrypted": ...}) cannot be used here.
            if isinstance(yml.get(k), (str, int)) and yml.get(k) != "":
                return yml[k]
        return None

    host = pick("host", "smtp_host")
    if not host:
        return None
    encryption = str(pick("encryption", "smtp_encryption") or "").lower() or None
    if encryption is not None and encryption not in ENCRYPTIONS:
        raise OutboxError(
            f"SMTP encryption {encryption!r} is not one of ssl, starttls, none "
            "(set --smtp-encryption / ANVIL_DEV_SMTP_ENCRYPTION)"
        )
    port_text = pick("port", "smtp_port")
    try:
        port = int(port_text) if port_text is not None else None
    except ValueError:
        raise OutboxError(f"SMTP port {port_text!r} is not a number (set --smtp-port / ANVIL_DEV_SMTP_PORT)") from None
    if encryption is None:
        encryption = {465: "ssl", 587: "starttls"}.get(port or 0, "none")
    if port is None:
        port = {"ssl": 465, "starttls": 587}.get(encryption, 25)
    return SmtpConfig(
        str(host), port, pick("user", "smtp_username", "smtp_user"), pick("password", "smtp_password"), encryption
    )


# ---------------------------------------------------------------------------------------------
# Sending


def _addresses(value: Any, field_name: str) -> list[str]:
    """A str ("a@x.org, Bob <b@y.org>") or list of them, as formatted addresses; checked."""
    if value is None or value == "":
        return []
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise OutboxError(
                f"anvil.email.send(): {field_name} must be a string or a list of strings, not {type(item).__name__}"
            )
        for name, addr in getaddresses([item]):
            if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
                raise OutboxError(f"anvil.email.send(): {item!r} in {field_name} is not an email address")
            out.append(formataddr((name, addr)) if name else addr)
    return out


def _bare(address: str) -> str:
    return getaddresses([address])[0][1]


def _from_address(from_address: str | None, cfg: SmtpConfig | None) -> str:
    """Anvil completes a bare local part ("no-reply") with the app's domain; here, a local one."""
    addr = (from_address or "no-reply").strip()
    if "@" in addr:
        return addr
    domain = "localhost"
    if cfg is not None and cfg.user and "@" in cfg.user:
        domain = cfg.user.rsplit("@", 1)[1]
    return f"{addr}@{domain}"


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
    line = f"[email] to {', '.join(_bare(r) for r in recipients)}: {subject or '(no subject)'}"
    if cfg is not None:
        line += f" (NOT sent: {error})" if error else f" (relayed via {cfg.where()})"
    stream = sys.__stderr__
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            print(line, file=stream, flush=True)


def build_mime(rec: dict[str, Any]) -> EmailMessage:
    """The MIME message for a stored or new record (Bcc recipients are never in the headers)."""
    msg = EmailMessage()
    msg["From"] = formataddr((rec.get("from_name") or "", rec["from_address"]))
    if rec["to"]:
        msg["To"] = ", ".join(rec["to"])
    if rec["cc"]:
        msg["Cc"] = ", ".join(rec["cc"])
    msg["Subject"] = rec.get("subject") or ""
    msg["Date"] = formatdate(_dt.datetime.fromisoformat(rec["time"]).timestamp(), localtime=True)
    msg["Message-ID"] = rec["message_id"]
    for k, v in (rec.get("headers") or {}).items():
        msg[k] = v
    text, html = rec.get("text"), rec.get("html")
    if text is not None or html is None:
        msg.set_content(text or "")
    if html is not None:
        html_part: EmailMessage
        if text is not None:
            msg.add_alternative(html, subtype="html")
            html_part = msg.get_payload()[-1]  # type: ignore[index,assignment]
        else:
            msg.set_content(html, subtype="html")
            html_part = msg
        for a in rec.get("inline_attachments") or []:
            maintype, subtype = _split_type(a.content_type)
            html_part.add_related(a.content, maintype, subtype, cid=f"<{a.cid}>", filename=a.name)
    for i, a in enumerate(rec.get("attachments") or []):
        maintype, subtype = _split_type(a.content_type)
        msg.add_attachment(a.content, maintype, subtype, filename=a.name or f"attachment-{i + 1}")
    return msg


def _split_type(content_type: str | None) -> tuple[str, str]:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype.count("/") != 1:
        return "application", "octet-stream"
    maintype, subtype = ctype.split("/")
    return maintype, subtype


def _relay(cfg: SmtpConfig, msg: EmailMessage, sender: str, recipients: list[str]) -> None:
    try:
        smtp: smtplib.SMTP
        if cfg.encryption == "ssl":
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=SMTP_TIMEOUT, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=SMTP_TIMEOUT)
        with smtp:
            if cfg.encryption == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.user:
                smtp.login(cfg.user, cfg.password or "")
            refused = smtp.send_message(msg, sender, recipients)
    except smtplib.SMTPAuthenticationError as e:
        raise OutboxError(
            f"SMTP server {cfg.where()} refused the login for {cfg.user!r}: {e.smtp_code} {_smtp_text(e.smtp_error)}"
        ) from None
    except smtplib.SMTPRecipientsRefused as e:
        raise OutboxError(
            f"SMTP server {cfg.where()} refused every recipient: "
            + "; ".join(f"{r}: {c} {_smtp_text(t)}" for r, (c, t) in e.recipients.items())
        ) from None
    except smtplib.SMTPResponseException as e:
        raise OutboxError(
            f"SMTP server {cfg.where()} refused the message: {e.smtp_code} {_smtp_text(e.smtp_error)}"
        ) from None
    except (smtplib.SMTPException, OSError) as e:
        raise OutboxError(
            f"Could not send email via SMTP server {cfg.where()}: {e or type(e).__name__} "
            "(check --smtp-host/--smtp-port/--smtp-encryption)"
        ) from None
    if refused:
        raise OutboxError(
            f"SMTP server {cfg.where()} refused some recipients: "
            + "; ".join(f"{r}: {c} {_smtp_text(t)}" for r, (c, t) in refused.items())
        )


def _smtp_text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


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
        to_l, cc_l, bcc_l = _addresses(to, "to"), _addresses(cc, "cc"), _addresses(bcc, "bcc")
        if not (to_l or cc_l or bcc_l):
            raise OutboxError("anvil.email.send() needs at least one recipient (to, cc or bcc)")
        sender = _from_address(from_address, cfg)
        if "@" not in _bare(sender):
            raise OutboxError(f"anvil.email.send(): from_address {from_address!r} is not an email address")
        headers = {
            k: v
            for k, v in (
                ("Reply-To", ", ".join(_addresses(reply_to, "reply_to"))),
                ("In-Reply-To", in_reply_to),
                ("References", references),
            )
            if v
        }
        rec: dict[str, Any] = {
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "message_id": make_msgid(domain=_bare(sender).rsplit("@", 1)[1]),
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
                _relay(cfg, mime, _bare(sender), [_bare(a) for a in to_l + cc_l + bcc_l])
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
