"""What a server call carries between host, engine and uplinks: the caller, and error replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]


@dataclass
class Caller:
    """Who is calling: travels with a call into workers and uplinks.

    `call_stack` is a list of frames `{"type": "browser"|"server_module"|"uplink"|"http"|...}`,
    outermost first; `trusted` is False for browsers and HTTP clients (their row references must
    carry a valid MAC, and they cannot call names with ':').
    """

    client_type: str = "browser"
    ip: str | None = None
    session_id: str | None = None
    trusted: bool = False
    call_stack: list[dict[str, Any]] = field(default_factory=list)
    user_email_override: str | None = None
    background_task_id: str | None = None
    # What the dev console's log shows as the caller ("cli", "python"), when not its client_type.
    via: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "client_type": self.client_type, "ip": self.ip, "session_id": self.session_id,
            "trusted": self.trusted, "call_stack": self.call_stack,
            "user_email_override": self.user_email_override,
            "background_task_id": self.background_task_id, "via": self.via,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Caller:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def error(type_name: str, message: str, trace: list[Any] | None = None) -> Message:
    return {"error": {"type": type_name, "message": message, "trace": trace or []}, "objects": []}
