"""`anvil.email`: send mail through anvil-dev's outbox, and handle incoming mail."""

from __future__ import annotations

import functools
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr, getaddresses
from typing import Any

from anvil import BlobMedia, Media, server
from anvil._errors import AnvilWrappedError, register_exception_type
from anvil_dev import services
from anvil_dev.services import outbox as _outbox

__all__ = [
    "Address",
    "DeliveryFailure",
    "Message",
    "SendFailure",
    "SendReport",
    "deliver_eml",
    "get_inbound_handler",
    "handle_message",
    "message_from_eml",
    "send",
]

INBOUND_NAME = "email:handle_message"


class SendFailure(AnvilWrappedError):
    """The email could not be sent (bad address, no recipient, SMTP server refused it)."""


register_exception_type("anvil.email.SendFailure", SendFailure)


class DeliveryFailure(Exception):
    """Raise in an inbound handler to reject the message, optionally with an SMTP code."""

    def __init__(self, message: str | None = None, smtp_code: int | None = None) -> None:
        # As Anvil's (services/anvil/email.py line 16): DeliveryFailure("x", 552) reads "552: x".
        self.smtp_code = smtp_code
        self.message = message
        if message is None:
            super().__init__()
        else:
            super().__init__(f"{smtp_code}: {message}" if smtp_code is not None else message)


# ---------------------------------------------------------------------------------------------
# Sending


@server.portable_class
class SendReport:
    """What send() returns: `message_id`, the Message-ID header of the outgoing message."""

    message_id: str | None

    def __init__(self) -> None:
        raise Exception("Cannot construct a SendReport manually")

    @classmethod
    def _made(cls, message_id: str | None) -> SendReport:
        report = cls.__new__(cls)
        report.message_id = message_id
        return report

    def __repr__(self) -> str:
        return f"<anvil.email.SendReport message_id={self.message_id!r}>"


def _attachment(media: Any, what: str, cid: str | None = None) -> _outbox.Attachment:
    if not isinstance(media, Media):
        raise TypeError(f"anvil.email.send(): {what} must be Media objects, not {type(media).__name__}")
    return _outbox.Attachment(
        content_type=media.content_type or "application/octet-stream",
        content=media.get_bytes(),
        name=media.name,
        cid=cid,
    )


def _text(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"anvil.email.send(): {name} must be a string, not {type(value).__name__}")


def send(
    *,
    to: str | list[str] | None = None,
    cc: str | list[str] | None = None,
    bcc: str | list[str] | None = None,
    from_address: str = "no-reply",
    from_name: str | None = None,
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    attachments: list[Media] | Media | None = None,
    inline_attachments: dict[str, Media] | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    **kw: Any,
) -> SendReport:
    """Send an email; without an SMTP server configured it goes to the local outbox only."""
    if isinstance(attachments, Media):
        attachments = [attachments]
    if inline_attachments is not None and not isinstance(inline_attachments, dict):
        raise TypeError("anvil.email.send(): inline_attachments must be a dict of {content_id: Media}")
    try:
        result = services.current().outbox.send(
            to=to,
            cc=cc,
            bcc=bcc,
            from_address=from_address,
            from_name=_text(from_name, "from_name"),
            subject=_text(subject, "subject"),
            text=_text(text, "text"),
            html=_text(html, "html"),
            attachments=[_attachment(m, "attachments") for m in attachments or []],
            inline_attachments=[
                _attachment(m, "inline_attachments", str(cid)) for cid, m in (inline_attachments or {}).items()
            ],
            in_reply_to=in_reply_to,
            references=references,
        )
    except _outbox.OutboxError as e:
        raise SendFailure(str(e)) from None
    return SendReport._made(result.message_id)


# ---------------------------------------------------------------------------------------------
# Incoming mail


@server.portable_class
class Address:
    """One address from a header: `address`, `name` and `raw_value`."""

    def __init__(self, address: dict[str, Any]) -> None:
        self.address = address.get("address")
        self.name = address.get("name")
        self.raw_value = address.get("raw")

    def __repr__(self) -> str:
        return f"<anvil.email.Address {self.raw_value!r}>"


@server.portable_class
class Message:
    """An incoming email, as a @handle_message function receives it."""

    @server.portable_class
    class Envelope:
        def __init__(self, envelope: dict[str, Any]) -> None:
            self.from_address = envelope.get("from")
            self.recipient = envelope.get("recipient")

    @server.portable_class
    class DKIM:
        def __init__(self, dkim: dict[str, Any]) -> None:
            self.valid_from_sender = bool(dkim.get("valid_from_sender"))
            self.domains = list(dkim.get("domains") or [])

    @server.portable_class
    class Addressees:
        def __init__(self, addressees: dict[str, Any]) -> None:
            self.to_addresses = [Address(a) for a in addressees.get("to", [])]
            self.cc_addresses = [Address(a) for a in addressees.get("cc", [])]
            froms = addressees.get("from") or []
            self.from_address = Address(froms[0]) if froms else None

    def __init__(self, msg_dict: dict[str, Any]) -> None:
        self.envelope = Message.Envelope(msg_dict.get("envelope") or {})
        self.dkim = Message.DKIM(msg_dict.get("dkim") or {})
        self.addressees = Message.Addressees(msg_dict.get("addressees") or {})
        self.headers = [tuple(h) for h in msg_dict.get("headers") or []]
        self.subject = msg_dict.get("subject")
        self.text = msg_dict.get("text")
        self.html = msg_dict.get("html")
        self.attachments = list(msg_dict.get("attachments") or [])
        self.inline_attachments = dict(msg_dict.get("inline_attachments") or {})

    def get_header(self, header_name: str, default: Any = None) -> Any:
        """The first value of a header (case-insensitive), or default."""
        values = self.list_header(header_name)
        return values[0] if values else default

    def list_header(self, header_name: str) -> list[str]:
        """Every value of a header (case-insensitive)."""
        wanted = header_name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    def reply(self, **kw: Any) -> SendReport:
        """Reply to the sender (Reply-To, else From, else the envelope sender), in the same thread."""
        to = kw.get("to") or self.get_header("Reply-To")
        if to is None and self.addressees.from_address is not None:
            to = self.addressees.from_address.raw_value
        to = to or self.envelope.from_address
        if not to:
            raise SendFailure(
                "Cannot reply to a message with no Reply-To header, From address, or Envelope From address."
            )
        kw["to"] = to
        kw.setdefault("subject", self.subject)
        kw.setdefault("from_address", self.envelope.recipient or "no-reply")
        msg_id = self.get_header("Message-ID")
        if msg_id:
            kw["in_reply_to"] = msg_id
            kw["references"] = (self.get_header("References", "") + " " + msg_id).strip()
        return send(**kw)

    def __str__(self) -> str:
        sender = self.addressees.from_address.raw_value if self.addressees.from_address else None
        to = self.addressees.to_addresses[0].raw_value if self.addressees.to_addresses else None
        text = (self.text or "").replace("\n", " \\ ")
        text = text[:70] + "..." if len(text) > 70 else text
        atts = ", ".join(f"{a.name} ({a.length} bytes)" for a in self.attachments) or None
        return (
            f"anvil.email.Message:\n    from: {sender}\n    to: {to}\n    subject: {self.subject}\n"
            f"    text: {text}\n    attachments: {atts}"
        )


def _address_dicts(values: list[str]) -> list[dict[str, Any]]:
    return [
        {"address": addr, "name": name or None, "raw": formataddr((name, addr)) if name else addr}
        for name, addr in getaddresses(values)
        if addr
    ]


def message_from_eml(
    raw: bytes, envelope_from: str | None = None, recipient: str | None = None, dkim_valid: bool = False
) -> Message:
    """Build a Message from the bytes of an .eml file (RFC 5322). anvil-dev checks no DKIM
    signatures: `dkim_valid` says what `msg.dkim.valid_from_sender` should be."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    parsed: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    attachments: list[Media] = []
    inline: dict[str, Media] = {}
    for part in parsed.walk():
        if part.is_multipart() or part is plain or part is html:
            continue
        payload = part.get_payload(decode=True)
        media = BlobMedia(
            part.get_content_type(), payload if isinstance(payload, bytes) else b"", name=part.get_filename()
        )
        cid = (part.get("Content-ID") or "").strip().strip("<>")
        if cid and part.get_content_disposition() != "attachment":
            inline[cid] = media
        else:
            attachments.append(media)
    addressees = {
        k: _address_dicts([str(v) for v in parsed.get_all(h, [])])
        for k, h in (("to", "To"), ("cc", "Cc"), ("from", "From"))
    }
    froms, tos = addressees["from"], addressees["to"]
    domains = [envelope_from.rsplit("@", 1)[-1]] if dkim_valid and envelope_from else []
    return Message(
        {
            "envelope": {
                "from": envelope_from or (froms[0]["address"] if froms else None),
                "recipient": recipient or (tos[0]["address"] if tos else None),
            },
            "dkim": {"valid_from_sender": dkim_valid, "domains": domains},
            "addressees": {k: v for k, v in addressees.items() if v or k != "from"},
            "headers": [(k, str(v)) for k, v in parsed.items()],
            "subject": parsed.get("Subject"),
            "text": plain.get_content() if plain is not None else None,
            "html": html.get_content() if html is not None else None,
            "attachments": attachments,
            "inline_attachments": inline,
        }
    )


def handle_message(fn: Callable[[Message], Any] | None = None, require_dkim: bool = False) -> Any:
    """@anvil.email.handle_message: register the app's handler for incoming email.

    The registered function (name "email:handle_message") accepts a Message, Anvil's message
    dict, or the raw bytes (or Media) of an .eml file.
    """

    def wrapper(fn: Callable[[Message], Any]) -> Callable[[Any], Any]:
        @functools.wraps(fn)
        def handler(msg: Any) -> Any:
            if isinstance(msg, Media):
                msg = msg.get_bytes()
            if isinstance(msg, (bytes, bytearray, str)):
                msg = message_from_eml(bytes(msg) if not isinstance(msg, str) else msg.encode("utf-8"))
            elif isinstance(msg, dict):
                msg = Message(msg)
            if require_dkim and not msg.dkim.valid_from_sender:
                raise DeliveryFailure(f"No valid DKIM signature for {msg.envelope.from_address}")
            return fn(msg)

        return server.register(handler, INBOUND_NAME)

    return wrapper(fn) if fn is not None else wrapper


def get_inbound_handler() -> Callable[[Any], Any] | None:
    """The function @handle_message registered in this process, or None."""
    reg = server.lookup(INBOUND_NAME)
    return reg.fn if reg is not None else None


def deliver_eml(
    raw_bytes: bytes, envelope_from: str | None = None, recipient: str | None = None, dkim_valid: bool = False
) -> Any:
    """Feed one .eml message to the app's @handle_message function (`anvil-dev email deliver`).

    Raises DeliveryFailure when the handler rejects it, and NoServerFunctionError when the app
    has no handler.
    """
    handler = get_inbound_handler()
    if handler is None:
        raise server.NoServerFunctionError(
            f'No server function matching "{INBOUND_NAME}" has been registered '
            "(decorate a server function with @anvil.email.handle_message to receive email)"
        )
    return handler(message_from_eml(raw_bytes, envelope_from, recipient, dkim_valid))


def _send_for_trusted(**kwargs: Any) -> SendReport:
    """anvil.private.email.send.v2: how uplink code sends mail; refused to browsers, as on Anvil."""
    from anvil import _context

    if not _context.current().remote_trusted:
        raise server.PermissionDenied("Client code cannot send email directly; call a server function that does.")
    return send(**kwargs)


server.register(_send_for_trusted, "anvil.private.email.send.v2")
