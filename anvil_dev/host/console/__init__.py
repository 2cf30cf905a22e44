"""The dev console: a page at /_/console, its live event stream and its JSON API.

Only loopback clients get it (it can see every user, session and outbox message), and only
under a loopback Host name, so a web page that rebinds its DNS to 127.0.0.1 cannot read it.
Panels for services (tables, users, sessions, tasks, outbox) read the app's services the way
workers do, `services.current().<service>`; the users panel appears when the app has the service.
"""

from __future__ import annotations

from flask import Flask

from anvil_dev.host.console import pages, panels
from anvil_dev.host.console.pages import console_page

__all__ = ["console_page", "init_app"]


def init_app(app: Flask) -> None:
    """Register the console's routes on the host's Flask app."""
    app.register_blueprint(pages.bp)
    app.register_blueprint(panels.bp)
