"""The app's pages: / (the theme's index.html, else the console), theme assets, the browser client, health."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_from_directory

from anvil_dev import themecolors
from anvil_dev.appdir import AppDir
from anvil_dev.host import console
from anvil_dev.host.routes import client
from anvil_dev.host.state import CONSOLE_KEY, current

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"

bp = Blueprint("theme", __name__)


@bp.get("/")
def index() -> Response:
    app_dir = current().app_dir
    if client.has_app_page():  # anvil.yaml names a startup form or module: the app itself
        return client.app_page()
    if (app_dir.theme_assets / "index.html").is_file():
        return _asset(app_dir, "index.html")
    if not current_app.config.get(CONSOLE_KEY, True):
        return Response(
            "This app has no page at / (anvil.yaml names no startup form, and theme/assets has no index.html).\n",
            status=404,
            mimetype="text/plain",
        )
    return console.console_page()


@bp.get("/_/theme/<path:name>")
def theme(name: str) -> Response:
    app_dir = current().app_dir
    if name == "theme.css" and (app_dir.theme_assets / name).is_file():
        return _theme_css(app_dir)
    return _asset(app_dir, name)


def _theme_css(app_dir: AppDir) -> Response:
    """theme.css with its `%color:NAME%` placeholders as the colour scheme's CSS variables."""
    css = (app_dir.theme_assets / "theme.css").read_text(encoding="utf-8", errors="replace")
    deps, _missing = app_dir.dependencies(current().deps)
    try:
        css = themecolors.substitute(css, themecolors.theme_colors(app_dir, deps))
    except themecolors.ThemeError as e:
        comment = str(e).replace("*/", "* /")
        css = f"/* anvil-dev: {comment} */\n{css}"
    return client.send_bytes(css.encode("utf-8"), "text/css")  # an ETag, so a reload gets 304


@bp.get("/_/anvil.js")
def anvil_js() -> Response:
    return send_from_directory(STATIC_DIR, "anvil.js", mimetype="text/javascript", max_age=0)


@bp.get("/_/health")
def health() -> Response:
    return Response(json.dumps({"ok": True, "app": current().app_dir.path.name}), mimetype="application/json")


def _asset(app_dir: AppDir, name: str) -> Response:
    root = app_dir.theme_assets.resolve()
    # send_from_directory refuses '..' and absolute paths; resolve() also stops symlinks out of assets/.
    try:
        target = (root / name).resolve()
    except (OSError, ValueError):
        abort(404)
    if not target.is_relative_to(root) or not target.is_file():
        abort(404)
    return send_from_directory(root, str(target.relative_to(root)), max_age=0)
