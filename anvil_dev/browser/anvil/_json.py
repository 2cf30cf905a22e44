"""json for the browser package on the browser's own JSON: Brython's `json` module imports `re`
and `enum`, which cost the first page load about 0.4 s to compile; this costs nothing.

Numbers follow JavaScript's: 2.0 arrives as 2, as it does in Anvil's own client."""

from javascript import JSON


def loads(text):
    return JSON.parse(str(text))


def dumps(value):
    return str(JSON.stringify(value))
