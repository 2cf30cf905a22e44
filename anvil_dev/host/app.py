"""The Flask app of `anvil-dev serve`: the host's blueprints over one HostState, as flaskr's factory."""

from __future__ import annotations

from flask import Flask

from anvil_dev.host import console, errors, security
from anvil_dev.host.routes import call, client, email, endpoints, media, replay, theme
from anvil_dev.host.state import CONFIG_KEY, CONSOLE_KEY, HostState

# Multipart calls stream their media parts to disk; a JSON body has its own, smaller cap (routes/call.py).
MAX_REQUEST_BODY = 2 << 30


def create_app(state: HostState, with_console: bool = True) -> Flask:
    """The host's app over `state` (the routes reach it as `host.state.current()`)."""
    app = Flask("anvil_dev", static_folder=None)
    app.config[CONFIG_KEY] = state
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BODY
    security.init_app(app)
    errors.init_app(app)
    for blueprint in (call.bp, media.bp, email.bp, replay.bp, theme.bp, client.bp, endpoints.bp):
        app.register_blueprint(blueprint)
    app.config[CONSOLE_KEY] = with_console
    if with_console:  # `serve --production` has none unless asked (--console)
        console.init_app(app)
    app.wsgi_app = call.CallsWithoutFlask(app.wsgi_app, state)  # type: ignore[method-assign]
    return app
