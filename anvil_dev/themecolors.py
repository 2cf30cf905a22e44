"""The theme's colour scheme (theme/parameters.yaml `color_scheme.colors`) as CSS variables.

As Anvil's server does it (runtime/app_data.clj, app->style): the dependencies' colours, then the
app's (later ones win), each a variable on `:root`; `%color:Primary 500%` in theme.css becomes
`var(--anvil-color-Primary-500)`, and a component's `theme:Primary 500` colour is that variable
too (browser/anvil/_components/base.py). Anvil adds a random suffix to each variable's name; ours
have none, so a theme.css that names them (the M3 theme's do not) keeps working here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from anvil_dev.appdir import AppDir

_UNSAFE = re.compile(r"[^A-Za-z0-9]")
# A colour value goes into a stylesheet: refuse anything that could close the rule.
_VALUE = re.compile(r"^[^;{}<>]*$")


class ThemeError(Exception):
    """theme/parameters.yaml that cannot be read; the message names the file and what to fix."""


def css_var(name: str) -> str:
    return "--anvil-color-" + _UNSAFE.sub("-", name)


def _colors_of(path: Path, rel: str) -> list[tuple[str, str]]:
    if not path.is_file():
        return []
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ThemeError(f"{rel} cannot be read as YAML: {e} (fix the file and save)") from None
    scheme = params.get("color_scheme") if isinstance(params, dict) else None
    colors = scheme.get("colors") if isinstance(scheme, dict) else None
    out = []
    for c in colors if isinstance(colors, list) else []:
        if isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("color"), str):
            if not _VALUE.match(c["color"]):
                raise ThemeError(f"{rel}: colour {c['name']!r} is {c['color']!r}, which is not a CSS colour")
            out.append((c["name"], c["color"].strip()))
    return out


def theme_colors(app_dir: AppDir, deps: Iterable[AppDir] = ()) -> dict[str, str]:
    """Colour name -> CSS colour, dependencies' first and the app's last (so the app's win)."""
    out: dict[str, str] = {}
    for d in [*deps, app_dir]:
        rel = "theme/parameters.yaml" if d is app_dir else f"{d.path.name}/theme/parameters.yaml"
        out.update(_colors_of(d.path / "theme" / "parameters.yaml", rel))
    return out


def root_css(colors: dict[str, str]) -> str:
    """`:root { --anvil-color-Primary-500: #2196F3; ... }`, or "" for no colours."""
    if not colors:
        return ""
    return ":root {\n" + "".join(f"  {css_var(n)}: {c};\n" for n, c in colors.items()) + "}\n"


def substitute(css: str, colors: dict[str, str]) -> str:
    """theme.css with each `%color:NAME%` of a known colour as its variable."""
    for name in colors:
        css = css.replace(f"%color:{name}%", f"var({css_var(name)})")
    return css
