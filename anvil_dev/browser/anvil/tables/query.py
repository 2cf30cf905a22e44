"""`anvil.tables.query` (imported as `q`) in client code: the query operators a search takes. They
travel to the server under Anvil's names, where the search is compiled and checked."""

from anvil import server


def _operator(name, fields):
    def __init__(self, *args):
        for f, v in zip(fields, args):
            setattr(self, f, v)

    def __repr__(self):
        return "q.%s(%s)" % (name, ", ".join(repr(getattr(self, f, None)) for f in fields))

    cls = type(name, (), {"__init__": __init__, "__repr__": __repr__, "__module__": "anvil.tables.query"})
    server.REGISTRY.register(cls, "anvil.tables.query." + name)
    return cls


like = _operator("like", ("pattern",))
ilike = _operator("ilike", ("pattern",))
greater_than = _operator("greater_than", ("value",))
less_than = _operator("less_than", ("value",))
greater_than_or_equal_to = _operator("greater_than_or_equal_to", ("value",))
less_than_or_equal_to = _operator("less_than_or_equal_to", ("value",))
page_size = _operator("page_size", ("rows",))


class full_text_match:
    def __init__(self, query, raw=False):
        self.query = query
        self.raw = raw


class _Of:
    def __init__(self, *args, **kwargs):
        self.args = list(args)
        self.kwargs = kwargs


class all_of(_Of):
    pass


class any_of(_Of):
    pass


class none_of(_Of):
    pass


not_ = none_of


class only_cols:
    def __init__(self, *cols):
        self.cols = sorted(cols)


for _c in (full_text_match, all_of, any_of, none_of, only_cols):
    _c.__module__ = "anvil.tables.query"
    server.REGISTRY.register(_c, "anvil.tables.query." + _c.__name__)


def between(min, max, min_inclusive=True, max_inclusive=False):
    """Values from `min` to `max` (min included, max excluded unless told otherwise)."""
    low = greater_than_or_equal_to(min) if min_inclusive else greater_than(min)
    high = less_than_or_equal_to(max) if max_inclusive else less_than(max)
    return all_of(low, high)


def fetch_only(*only_cols, **linked_cols):
    from anvil.tables import fetch_only as _f
    return _f(*only_cols, **linked_cols)
