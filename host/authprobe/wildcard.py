"""IAM-style wildcard matching in time linear in the value, for policy resources, actions and
`*Like` conditions: `*` matches any run of characters (newlines included), `?` exactly one, every
other character itself (IAM reference, "Using wildcards in resource ARNs"; fnmatch's `[...]` classes
are not IAM's).

Why not a regex: `*` written as `.*` backtracks. `topic/a*a*a*a*a*a*a*a*a*a*b` against 48 `a`s took
18 s, `*/*/*/*/*/*/*/*/end` against 64 slashes 32 s, and in the stand-in the regex holds the GIL,
so one device's PUBLISH froze every other connection (issue 12). Here a pattern is a small NFA run
bit-parallel ("shift-and"): bit i of one integer says "the first i pattern tokens can match what
has been read", and each character of the value advances every state at once with two shifts and
masks. Time is O(len(value) x len(pattern) / machine word), no input can make it explode, and a
pattern that can no longer match stops at the first character that rules it out.

A pattern is a sequence of tokens: one-character strings match themselves, ANY_RUN and ANY_ONE are
the wildcards. A policy variable's value is spliced in as literal characters, so a `*` in a client
id never acts as a wildcard, whatever characters (U+0000 included) the value holds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

ANY_RUN = 0  # `*`: ints, never equal to a one-character string token
ANY_ONE = 1  # `?`
Token = str | int


def tokens(text: str) -> tuple[Token, ...]:
    """Pattern text as tokens: `*` and `?` are wildcards, everything else literal."""
    return tuple(ANY_RUN if c == "*" else ANY_ONE if c == "?" else c for c in text)


def literal(text: str) -> tuple[Token, ...]:
    """Text whose `*` and `?` match only themselves (a substituted policy variable)."""
    return tuple(text)


class Glob:
    """A compiled pattern. Bits: state i (0..k) = the first i non-`*` tokens have matched."""

    __slots__ = ("_accept", "_any_one", "_by_char", "_fold", "_loops")

    def __init__(self, pattern: Iterable[Token], case_sensitive: bool = True) -> None:
        self._fold = not case_sensitive
        by_char: dict[str, int] = {}
        any_one = loops = 0
        state = 0
        for token in pattern:
            if token == ANY_RUN:
                loops |= 1 << state  # `*` after token `state`: that state may consume anything
                continue
            if token == ANY_ONE:
                state += 1
                any_one |= 1 << state
                continue
            assert isinstance(token, str)
            # str.lower() may turn one character into two (U+0130); each becomes a literal token.
            for c in token.lower() if self._fold else token:
                state += 1
                by_char[c] = by_char.get(c, 0) | 1 << state
        self._accept = 1 << state
        self._any_one = any_one
        self._loops = loops
        self._by_char = {c: bits | any_one for c, bits in by_char.items()}

    def matches(self, value: str) -> bool:
        if self._fold:
            value = value.lower()
        by_char, any_one, loops = self._by_char, self._any_one, self._loops
        states = 1
        for c in value:
            states = ((states << 1) & by_char.get(c, any_one)) | (states & loops)
            if not states:
                return False
        return bool(states & self._accept)


@lru_cache(maxsize=512)  # a pattern is at most a policy document (2,048 characters)
def _compiled(pattern: tuple[Token, ...], case_sensitive: bool) -> Glob:
    return Glob(pattern, case_sensitive)


def match_tokens(pattern: Sequence[Token], value: str, case_sensitive: bool = True) -> bool:
    """True when `value` matches the token sequence as a whole."""
    return _compiled(tuple(pattern), case_sensitive).matches(value)


@lru_cache(maxsize=512)
def _compiled_text(pattern: str, case_sensitive: bool) -> Glob:
    return Glob(tokens(pattern), case_sensitive)


def match(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    """IAM-style match of pattern text: `*` any run of characters, `?` exactly one."""
    return _compiled_text(pattern, case_sensitive).matches(value)


__all__ = ["ANY_ONE", "ANY_RUN", "Glob", "Token", "literal", "match", "match_tokens", "tokens"]
