"""/_/dev/email: `anvil-dev email deliver` hands a message to the app's @anvil.email.handle_message."""

from __future__ import annotations

from flask import Blueprint, Response, request

from anvil_dev.host import security
from anvil_dev.host.routes.call import reply_response
from anvil_dev.host.state import current
from anvil_dev.protocol import Caller

bp = Blueprint("email", __name__)


@bp.post("/_/dev/email")
def deliver_email() -> Response:
    """Only a process that can read .anvil-dev/ has the token."""
    state = current()
    security.require_cli_token(state.cli_token, "Delivering email needs the app's CLI token")
    media_id = state.media.store.put_bytes(request.get_data())
    msg = {
        "command": "email:handle_message",
        "args": [None],
        "kwargs": {},
        "objects": [
            {
                "path": ["args", 0],
                "type": ["DataMedia"],
                "id": media_id,
                "mime-type": "message/rfc822",
                "name": "message.eml",
            }
        ],
    }
    caller = Caller(client_type="email", ip=request.remote_addr, trusted=True, call_stack=[{"type": "email"}])
    reply = state.dispatcher.call(msg, caller, scoped=True)
    return reply_response(state, reply, None)
