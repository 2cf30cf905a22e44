"""`anvil-dev init`: copy the app template, filling in the app's name."""

from __future__ import annotations

import re
import shutil
from pathlib import Path


class ScaffoldError(Exception):
    pass


def template_dir() -> Path:
    """The app template, shipped inside the package (a checkout and an installed wheel alike)."""
    installed = Path(__file__).resolve().parent / "templates" / "app"
    if installed.is_dir():
        return installed
    raise ScaffoldError("the app template is missing from this installation of anvil-dev (reinstall it)")


def scaffold(target: Path, name: str | None = None) -> Path:
    target = target.resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not empty - choose a new directory")
    app_name = name or target.name
    package = re.sub(r"\W", "_", app_name) or "App"
    if package[0].isdigit():
        package = "_" + package
    src = template_dir()
    shutil.copytree(src, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    gi = target / "gitignore"
    if gi.exists():
        gi.rename(target / ".gitignore")
    for f in target.rglob("*"):
        if f.is_file() and f.suffix in (".py", ".yaml", ".html", ".md", ".css", ".js"):
            text = f.read_text(encoding="utf-8")
            new = text.replace("__APP_NAME__", app_name).replace("__PACKAGE_NAME__", package)
            if new != text:
                f.write_text(new, encoding="utf-8")
    return target
