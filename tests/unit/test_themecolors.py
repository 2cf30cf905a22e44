"""The theme's colour scheme as CSS variables: parameters.yaml read as Anvil reads it, theme.css's
%color:NAME% placeholders, the page's :root block, and a clear error for a broken file."""

from __future__ import annotations

from pathlib import Path

import pytest

from anvil_dev import themecolors
from anvil_dev.appdir import AppDir
from anvil_dev.clientcode import ClientCode
from anvil_dev.scaffold import scaffold

PARAMS = """
color_scheme:
  preset_groups: [{name: Primary Colour, options: [{name: Blue, colors: [{name: Primary 500, color: '#000'}]}]}]
  colors:
  - {name: Primary 500, color: '#2196F3'}
  - {name: On Surface Variant, color: '#49454F'}
"""


def _app(tmp_path: Path, params: str = PARAMS) -> AppDir:
    app = scaffold(tmp_path / "Themed")
    (app / "theme").mkdir(exist_ok=True)
    (app / "theme" / "parameters.yaml").write_text(params, encoding="utf-8")
    return AppDir(app)


def test_the_colours_become_variables_and_placeholders_use_them(tmp_path: Path) -> None:
    colors = themecolors.theme_colors(_app(tmp_path))
    assert colors == {"Primary 500": "#2196F3", "On Surface Variant": "#49454F"}  # presets are not colours
    assert themecolors.root_css(colors) == (
        ":root {\n  --anvil-color-Primary-500: #2196F3;\n  --anvil-color-On-Surface-Variant: #49454F;\n}\n"
    )
    css = ".a { color: %color:On Surface Variant%; } .b { color: %color:Unknown% }"
    assert themecolors.substitute(css, colors) == (
        ".a { color: var(--anvil-color-On-Surface-Variant); } .b { color: %color:Unknown% }"
    )


def test_a_dependencys_colours_come_first_and_the_apps_win(tmp_path: Path) -> None:
    app = _app(tmp_path)
    dep = _app(tmp_path / "dep", "color_scheme: {colors: [{name: Primary 500, color: red}, {name: Gold, color: gold}]}")
    assert themecolors.theme_colors(app, [dep]) == {
        "Primary 500": "#2196F3",
        "Gold": "gold",
        "On Surface Variant": "#49454F",
    }


def test_the_page_carries_the_variables_and_the_colours_for_anvil_app(tmp_path: Path) -> None:
    page = ClientCode(_app(tmp_path)).page()
    assert '<style id="anvil-theme-colors">' in page and "--anvil-color-Primary-500: #2196F3;" in page
    assert "&quot;theme_colors&quot;: {&quot;Primary 500&quot;: &quot;#2196F3&quot;" in page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("color_scheme: [unclosed", "theme/parameters.yaml cannot be read as YAML"),
        ("color_scheme: {colors: [{name: X, color: 'red; } body { display: none'}]}", "which is not a CSS colour"),
    ],
)
def test_a_broken_parameters_file_is_refused_with_its_name(tmp_path: Path, params: str, message: str) -> None:
    with pytest.raises(themecolors.ThemeError, match=message):
        themecolors.theme_colors(_app(tmp_path, params))
