"""An email as plain functions: its checked addresses, its MIME form, and where and how it is relayed by SMTP.

SMTP settings come from `Settings.smtp` (`serve --smtp-*`, `ANVIL_DEV_SMTP_HOST`, `_PORT`, `_USER`,
`_PASSWORD` and `_ENCRYPTION`: ssl | starttls | none), else from anvil.yaml's email service
`server_config` (`smtp_host`, `smtp_port`, `smtp_username`, `smtp_password`, `smtp_encryption`).
"""

from __future__ import annotations

import datetime as _dt
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses
from typing import Any

from anvil_dev.appdir import AppDir

ENCRYPTIONS = ("ssl", "starttls", "none")
SMTP_TIMEOUT = 20.0


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
# Addresses and MIME


def addresses(value: Any, field_name: str) -> list[str]:
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


def bare(address: str) -> str:
    return getaddresses([address])[0][1]


def sender_address(from_address: str | None, cfg: SmtpConfig | None) -> str:
    """Anvil completes a bare local part ("no-reply") with the app's domain; here, a local one."""
    addr = (from_address or "no-reply").strip()
    if "@" in addr:
        return addr
    domain = "localhost"
    if cfg is not None and cfg.user and "@" in cfg.user:
        domain = cfg.user.rsplit("@", 1)[1]
    return f"{addr}@{domain}"


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


# ---------------------------------------------------------------------------------------------
# Relaying


def relay(cfg: SmtpConfig, msg: EmailMessage, sender: str, recipients: list[str]) -> None:
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
