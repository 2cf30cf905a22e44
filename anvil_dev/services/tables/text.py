"""Text matching for searches: LIKE patterns and full-text match (Postgres-like, simplified)."""

from __future__ import annotations

import functools
import re
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)
# The commonest English stop words; Postgres's 'english' configuration ignores these too.
STOP_WORDS = frozenset(
    """
a about above after again against all am an and any are as at be because been before being below
between both but by can did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my
myself no nor not now of off on once only or other our ours ourselves out over own same she should
so some such than that the their theirs them themselves then there these they this those through to
too under until up very was we were what when where which while who whom why will with you your
yours yourself yourselves
""".split()
)


def like_to_glob(pattern: str) -> str:
    """A LIKE pattern (%, _, backslash escapes) as an equivalent, case-sensitive GLOB pattern."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(_glob_literal(pattern[i + 1]))
            i += 2
            continue
        out.append("*" if c == "%" else "?" if c == "_" else _glob_literal(c))
        i += 1
    return "".join(out)


def _glob_literal(c: str) -> str:
    return f"[{c}]" if c in "*?[" else c


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def ilike_match(value: Any, pattern: str) -> int:
    if not isinstance(value, str):
        return 0
    return int(_like_regex(pattern).fullmatch(value) is not None)


def stem(word: str) -> str:
    """A light English stemmer: the same word forms reduce to the same stem on both sides."""
    w = word.lower()
    if len(w) <= 3:
        return w
    for suffix, repl in (
        ("ies", "y"),
        ("sses", "ss"),
        ("ingly", ""),
        ("edly", ""),
        ("ing", ""),
        ("ed", ""),
        ("ly", ""),
        ("es", ""),
        ("s", ""),
    ):
        keep = 2 if suffix == "ies" else 3  # flies -> fly, but sing stays sing
        if w.endswith(suffix) and len(w) - len(suffix) >= keep and not (suffix == "s" and w.endswith("ss")):
            w = w[: len(w) - len(suffix)] + repl
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]  # running -> runn -> run
    return w


@functools.lru_cache(maxsize=4096)
def _doc_terms(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in _WORD.findall(text) if w.lower() not in STOP_WORDS)


def required_fragments(query: str) -> list[str]:
    """Text that a matching value must contain (ASCII, any case), for a cheap LIKE pre-filter.

    Each stem minus its last letter is a substring of every word it came from ("flies" -> "fly"
    -> "fl", "running" -> "run" -> "ru"), so no match is lost.
    """
    out = []
    for w in _WORD.findall(query):
        if w.lower() in STOP_WORDS:
            continue
        frag = stem(w)[:-1]
        if len(frag) >= 2 and frag.isascii():
            out.append(frag)
    return out


def fts_match(value: Any, query: str, raw: int) -> int:
    if not isinstance(value, str) or not isinstance(query, str):
        return 0
    terms = _doc_terms(value)
    if raw:
        return int(_RawQuery(query).evaluate(terms))
    wanted = [stem(w) for w in _WORD.findall(query) if w.lower() not in STOP_WORDS]
    return int(bool(wanted) and all(w in terms for w in wanted))


class _RawQuery:
    """Postgres tsquery syntax: words, `&`, `|`, `!`, parentheses, and `word:*` for a prefix."""

    _TOKEN = re.compile(r"\s*(?:(\()|(\))|(&)|(\|)|(!)|(\w+)(:\*)?)", re.UNICODE)

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, Any]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = self._TOKEN.match(text, pos)
            if not m or m.end() == pos:
                pos += 1  # Postgres ignores punctuation it does not understand
                continue
            pos = m.end()
            if m.group(6):
                self.tokens.append(("word", (m.group(6).lower(), bool(m.group(7)))))
            else:
                self.tokens.append(("op", next(g for g in m.groups()[:5] if g)))
        self.i = 0

    def evaluate(self, terms: frozenset[str]) -> bool:
        self.terms = terms
        self.i = 0
        if not self.tokens:
            return False
        return bool(self._or())

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _or(self) -> bool:
        result = self._and()
        while self._peek() == ("op", "|"):
            self.i += 1
            right = self._and()
            result = result or right
        return result

    def _and(self) -> bool:
        result = self._not()
        while (tok := self._peek()) is not None and (
            tok == ("op", "&") or tok[0] == "word" or tok == ("op", "!") or tok == ("op", "(")
        ):
            if tok == ("op", "&"):
                self.i += 1
            right = self._not()
            result = result and right
        return result

    def _not(self) -> bool:
        if self._peek() == ("op", "!"):
            self.i += 1
            return not self._not()
        return self._atom()

    def _atom(self) -> bool:
        tok = self._peek()
        if tok is None:
            return False
        self.i += 1
        if tok == ("op", "("):
            result = self._or()
            if self._peek() == ("op", ")"):
                self.i += 1
            return result
        if tok[0] == "word":
            word, prefix = tok[1]
            if prefix:
                return any(t.startswith(word) or t.startswith(stem(word)) for t in self.terms)
            if word in STOP_WORDS:
                return True
            return stem(word) in self.terms
        return False
