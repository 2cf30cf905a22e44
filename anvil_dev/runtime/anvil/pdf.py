"""`anvil.pdf`: Anvil renders a Form to PDF in a headless browser on its servers
(downlink/python/anvil/pdf.py). anvil-dev has no such renderer, so rendering says so by name."""

from __future__ import annotations

from typing import Any


def _no_renderer(options: dict[str, Any], args: tuple[Any, ...]) -> Any:
    form = args[0] if args else "?"
    raise NotImplementedError(
        f"anvil.pdf.render_form({form!r}): anvil-dev cannot render Forms to PDF (Anvil does it in a "
        "browser on its servers); make the PDF with a library such as reportlab in server code"
    )


def render_form(*args: Any, **kwargs: Any) -> Any:
    """Render a Form to PDF (Anvil only)."""
    return _no_renderer({}, args)


form_to_pdf = render_form


class PDFRenderer:
    """PDFRenderer(filename=..., landscape=..., ...).render_form(form_name, ...)."""

    def __init__(self, **kwargs: Any) -> None:
        self.options = kwargs

    def render_form(self, *args: Any, **kwargs: Any) -> Any:
        return _no_renderer(self.options, args)
