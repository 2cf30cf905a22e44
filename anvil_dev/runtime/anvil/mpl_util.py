"""`anvil.mpl_util.plot_image()`: the current matplotlib figure as PNG Media
(downlink/python/anvil/mpl_util.py). matplotlib is the app's own dependency, imported when called."""

from __future__ import annotations

import io
from typing import Any

import anvil


def plot_image(
    format: str = "png", transparent: bool = True, filename: str = "plot.png", **kwargs: Any
) -> anvil.BlobMedia:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("anvil.mpl_util.plot_image() needs matplotlib: pip install matplotlib") from None
    with io.BytesIO() as buf:
        plt.savefig(buf, format=format, transparent=transparent, **kwargs)
        return anvil.BlobMedia("image/png", buf.getvalue(), name=filename)
