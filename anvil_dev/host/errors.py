"""Refusals: a request the host answers itself with an error in Anvil's shape, never reaching server code."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from anvil_dev.protocol import TOO_MUCH_DATA_MESSAGE, error


class Refusal(HTTPException):
    """Raised anywhere in a request to answer `status` with `{"error": {"type", "message"}}`.

    An HTTPException that renders itself, so the answer is the same wherever it is raised: even
    under a blueprint's catch-all error handler (the console's), which passes HTTPExceptions on.
    """

    def __init__(self, status: int, type_name: str, message: str) -> None:
        super().__init__(message)
        self.code = status
        self.type_name = type_name
        self.message = message

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        return Response(json.dumps(error(self.type_name, self.message)), status=self.code, mimetype="application/json")


def too_much_data() -> Refusal:
    return Refusal(413, "anvil.server.SerializationError", TOO_MUCH_DATA_MESSAGE)


def init_app(app: Flask) -> None:
    """A body over the app's MAX_CONTENT_LENGTH (werkzeug's 413) is Anvil's too-much-data error."""

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_e: RequestEntityTooLarge) -> Response:
        return too_much_data().get_response()
