"""/_/media/<token>: download a media a reply gave a signed URL for."""

from __future__ import annotations

from flask import Blueprint, Response, abort, send_file

from anvil_dev.host.state import current

bp = Blueprint("media", __name__)


@bp.get("/_/media/<token>")
def media(token: str) -> Response:
    state = current()
    found = state.media.resolve(token)
    if found is None:
        abort(404)
    media_id, mime, name = found
    mime = mime if isinstance(mime, str) else None  # a Media's content_type and name are server code's
    name = name if isinstance(name, str) else None
    try:
        path = state.media.store.path(media_id)
    except ValueError:
        abort(404)
    if not path.is_file():
        abort(404)
    return send_file(
        path,
        mimetype=mime or "application/octet-stream",
        download_name=name or media_id,
        as_attachment=False,
        conditional=True,
        max_age=0,
    )
