"""/_/dev/replay: `anvil-dev call --replay ID` / `--last NAME` runs a recent call again (host/replay.py).

Only a process that can read .anvil-dev/ has the token: a replay runs as another caller (their session,
their `--as` user), which no one else may do. The console's own replay route is in host/console.py.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from flask import Blueprint, Response, request

from anvil_dev.host import security
from anvil_dev.host.errors import Refusal
from anvil_dev.host.replay import Recorded, Replayed, ReplayRefused, find, run_again
from anvil_dev.host.routes.call import reply_response
from anvil_dev.host.state import HostState, current

REPLAY_HEADER = "X-Anvil-Dev-Replay"

bp = Blueprint("replay", __name__)


def replay(state: HostState, call_id: int | None = None, last: str | None = None) -> Replayed:
    """Find a recent call and run it again; Refusal (Anvil's error shape) when it cannot be."""
    try:
        return run_again(state.dispatcher, find(state.dispatcher.recent, call_id, last), state.media.store)
    except ReplayRefused as e:
        raise Refusal(e.status, "anvil.server.InternalError", e.message) from None


def summaries(entries: list[Recorded]) -> list[dict[str, Any]]:
    return [e.summary() for e in entries]


@bp.post("/_/dev/replay")
def replay_call() -> Response:
    """Body {"id": N} or {"last": NAME}; answers as /_/call does, with the replay's id and notes in a header."""
    state = current()
    security.require_cli_token(
        state.cli_token,
        "Replaying a call needs the token from the app's .anvil-dev/ "
        "directory (use `anvil-dev call --replay ID` on the machine that serves the app)",
    )
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refusal(400, "anvil.server.InternalError", 'A replay takes a JSON body: {"id": N} or {"last": NAME}')
    call_id, last = body.get("id"), body.get("last")
    if call_id is not None and (not isinstance(call_id, int) or isinstance(call_id, bool)):
        raise Refusal(400, "anvil.server.InternalError", f"A call id is a number (got {call_id!r:.40})")
    done = replay(state, call_id, str(last) if last else None)
    # The replay's session is its original caller's: never hand its cookie to whoever asked for the replay.
    resp = reply_response(state, dataclasses.replace(done.reply, session_id=None), None)
    resp.headers[REPLAY_HEADER] = json.dumps(
        {"id": done.id, "of": done.original.id, "command": done.original.command, "notes": done.notes}
    )
    return resp


@bp.get("/_/dev/replay")
def recent_calls() -> Response:
    """The recent calls, newest first (what `anvil-dev call --recent` lists)."""
    state = current()
    security.require_cli_token(
        state.cli_token, "Listing recent calls needs the token from the app's .anvil-dev/ directory"
    )
    return Response(json.dumps({"calls": summaries(state.dispatcher.recent.recent())}), mimetype="application/json")


@bp.get("/_/dev/calls/<int:call_id>")
def call_failure(call_id: int) -> Response:
    """A recent call's error with its traceback's frames (names, source lines): `anvil-dev call` shows it."""
    state = current()
    security.require_cli_token(
        state.cli_token, "A call's traceback needs the token from the app's .anvil-dev/ directory"
    )
    entry = state.dispatcher.recent.get(call_id)
    if entry is None:
        raise Refusal(404, "anvil.server.InternalError", f"No call #{call_id} in the server's recent calls")
    return Response(json.dumps(entry.failure()), mimetype="application/json")
