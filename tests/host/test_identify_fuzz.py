"""A board's answer to the identification snippet is untrusted bytes (line noise, a half-booted
board, another program's output): parse_identity either understands it or says so, never crashes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authprobe.board.identify import BoardIdentity, parse_identity
from authprobe.errors import AuthprobeError

pytestmark = pytest.mark.fuzz

TEXT = st.text(max_size=40)


@given(st.binary(max_size=300))
def test_any_answer_is_understood_or_refused_clearly(answer):
    try:
        who = parse_identity(answer, "/dev/ttyACM0")
    except AuthprobeError as exc:
        assert "/dev/ttyACM0" in str(exc) and exc.exit_code == 3
        return
    assert isinstance(who, BoardIdentity) and who.uid == who.uid.lower()


@given(st.tuples(TEXT, TEXT, TEXT, TEXT), st.binary(max_size=80).filter(lambda b: b"\n" not in b and b"\r" not in b))
def test_the_last_line_is_what_counts_whatever_came_before(fields, noise):
    answer = noise + b"\r\n" + repr(fields).encode() + b"\r\n"   # repr escapes line breaks in fields
    who = parse_identity(answer)
    assert (who.uid, who.runtime, who.version, who.machine) == (fields[0].lower(), *fields[1:])
