"""How anvil-dev writes a duration, in one style everywhere (the terminal, the CLI, the console's JS mirrors it).

0.0032 -> "3.2 ms"   0.85 -> "850 ms"   12.34 -> "12.3 s"   185 -> "3 min 5 s"   7300 -> "2 h 1 min"
"""

from __future__ import annotations


def duration(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable: ms below a second, then s, min, h."""
    s = max(0.0, float(seconds))
    if s < 0.01:
        return f"{s * 1000:.1f} ms"
    if s < 0.9995:  # what would round to "1000 ms" reads "1.0 s"
        return f"{s * 1000:.0f} ms"
    if s < 59.95:
        return f"{s:.1f} s"
    whole = round(s)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
