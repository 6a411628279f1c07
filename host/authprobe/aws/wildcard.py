"""IAM-style wildcard matching in time linear in the value, for policy resources, actions and
`*Like` conditions: `*` matches any run of characters (newlines included), `?` exactly one, every
other character itself (IAM reference, "Using wildcards in resource ARNs"; fnmatch's `[...]` classes
are not IAM's).

Why not a regex: `*` written as `.*` backtracks. `topic/a*a*a*a*a*a*a*a*a*a*b` against 48 `a`s took
18 s, `*/*/*/*/*/*/*/*/end` against 64 slashes 32 s, and in the stand-in the regex holds the GIL,
so one device's PUBLISH froze every other connection (issue 12). Here the `*`s cut a pattern into
segments, matched in order with no going back: the first segment at the start of the value, the
last at its end, each one between at its leftmost place after the one before (leftmost is always
safe: a later place only leaves less room for what follows). A segment of plain characters is found
by str.find; one holding `?` by a bit-parallel "shift-and" scan (bit i of one integer: the last
characters read match the segment's first i+1 tokens). Time is about linear in the value, times the
segment length over the machine word for `?` segments; no input can make it explode.

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


class _Segment:
    """Pattern tokens between two `*`: plain text, or tokens with `?` (searched by shift-and)."""

    __slots__ = ("_masks", "size", "text", "tokens")

    def __init__(self, segment: list[Token]) -> None:
        self.size = len(segment)
        wild = ANY_ONE in segment
        self.tokens = segment if wild else []  # plain text is kept once, as `text`
        self.text = None if wild else "".join(segment)
        self._masks: tuple[dict[str, int], int] | None = None

    def _shift_and_masks(self) -> tuple[dict[str, int], int]:
        """Per character, the bits of the tokens it matches (`?` matches all); built once, in time
        linear in the segment (bytes, not repeated big-integer ORs, which would be quadratic)."""
        if self._masks is None:
            width = (self.size + 7) // 8
            rows: dict[object, bytearray] = {}
            for i, t in enumerate(self.tokens):
                row = rows.setdefault(t, bytearray(width))
                row[i >> 3] |= 1 << (i & 7)
            any_one = int.from_bytes(rows.pop(ANY_ONE, bytes(width)), "little")
            self._masks = ({c: int.from_bytes(row, "little") | any_one for c, row in rows.items()},
                           any_one)
        return self._masks

    def fits(self, value: str, start: int) -> bool:
        """Whether the segment matches value[start:start + size] (the caller checked the room)."""
        if self.text is not None:
            return value.startswith(self.text, start)
        return all(t == ANY_ONE or value[start + i] == t for i, t in enumerate(self.tokens))

    def find(self, value: str, start: int, end: int) -> int:
        """The leftmost place >= start where the segment matches within value[:end]; -1 if none."""
        if self.text is not None:
            return value.find(self.text, start, end)
        by_char, any_one = self._shift_and_masks()
        accept = 1 << (self.size - 1)
        states = 0
        for j in range(start, end):
            states = ((states << 1) | 1) & by_char.get(value[j], any_one)
            if states & accept:
                return j - self.size + 1
        return -1


class Glob:
    """A compiled pattern: the segment before the first `*`, the one after the last, those between."""

    __slots__ = ("_fold", "_head", "_middle", "_tail")

    def __init__(self, pattern: Iterable[Token], case_sensitive: bool = True) -> None:
        self._fold = not case_sensitive
        segments: list[list[Token]] = [[]]
        for token in pattern:
            if token == ANY_RUN:
                segments.append([])
            elif token == ANY_ONE or not self._fold:
                segments[-1].append(token)
            else:
                # str.lower() may turn one character into two (U+0130); each becomes a literal token.
                segments[-1].extend(token.lower())
        self._head = _Segment(segments[0])
        self._tail = _Segment(segments[-1]) if len(segments) > 1 else None
        self._middle = [_Segment(seg) for seg in segments[1:-1] if seg]

    def matches(self, value: str) -> bool:
        if self._fold:
            value = value.lower()
        head, tail = self._head, self._tail
        if tail is None:  # no `*`: the whole value, exactly
            return len(value) == head.size and head.fits(value, 0)
        end = len(value) - tail.size
        if end < head.size or not head.fits(value, 0) or not tail.fits(value, end):
            return False
        start = head.size
        for segment in self._middle:
            found = segment.find(value, start, end)
            if found < 0:
                return False
            start = found + segment.size
        return True


CACHED_PATTERN_MAX = 4096  # tokens; a policy document is 2,048 characters, a spliced value may be more


@lru_cache(maxsize=512)
def _compiled(pattern: tuple[Token, ...], case_sensitive: bool) -> Glob:
    return Glob(pattern, case_sensitive)


def match_tokens(pattern: Sequence[Token], value: str, case_sensitive: bool = True) -> bool:
    """True when `value` matches the token sequence as a whole."""
    if len(pattern) > CACHED_PATTERN_MAX:  # a huge spliced client id is not kept: compiling is linear
        return Glob(pattern, case_sensitive).matches(value)
    return _compiled(tuple(pattern), case_sensitive).matches(value)


@lru_cache(maxsize=512)  # pattern text comes from policy documents: at most 2,048 characters each
def _compiled_text(pattern: str, case_sensitive: bool) -> Glob:
    return Glob(tokens(pattern), case_sensitive)


def match(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    """IAM-style match of pattern text: `*` any run of characters, `?` exactly one."""
    return _compiled_text(pattern, case_sensitive).matches(value)


__all__ = ["ANY_ONE", "ANY_RUN", "Glob", "Token", "literal", "match", "match_tokens", "tokens"]
