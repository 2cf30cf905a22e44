"""`anvil.regex` (downlink/python/anvil/regex.py): the one helper Anvil ships, re.sub in its order."""

from __future__ import annotations

import re


def replace(val: str, pattern: str, newval: str) -> str:
    return re.sub(pattern, newval, val)
