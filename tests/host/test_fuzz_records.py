"""Property-based tests of the serial record path (issue 12): arbitrary bytes, arbitrary split points,
nested JSON and wrongly typed fields. Whatever a board sends, a line is a record, a damaged record,
a boot event or noise; never an exception. And a record that is accepted can be reported, rendered,
stored and written out as JSON."""

from __future__ import annotations

import io
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from authprobe.board.run_log import RunTracker, report_from_lines
from authprobe.board.serial_reader import LineSplitter, RecordReader, classify
from authprobe.report import record_schema
from authprobe.report.json_report import build_report
from authprobe.report.render import junit_xml, record_line, render_report
from selftest import record

pytestmark = pytest.mark.fuzz

KINDS = {"record", "damaged", "boot", "noise"}
REASONS = {record.BAD_VERSION, record.BAD_FRAME, record.BAD_CRC, record.BAD_JSON, record_schema.BAD_SCHEMA}


def frame(body: str) -> bytes:
    return f"@AP1 {body} {record.crc32_hex(body.encode())}".encode()


def strict_console() -> tuple[Console, io.TextIOWrapper]:
    """A console writing UTF-8 strictly, as a real terminal's stdout does (StringIO would accept a
    lone surrogate that stdout refuses)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    return Console(file=out, width=100, color_system=None), out


def use_everywhere(rec: dict) -> None:
    """Every consumer of an accepted record: report, renderers, JUnit, JSON, the run store's encoding."""
    report = build_report([rec])
    console, out = strict_console()
    console.print(record_line(rec))
    render_report(report, console)
    out.flush()
    json.dumps(report, allow_nan=False)
    json.dumps(rec, allow_nan=False).encode("utf-8")

    class Result:
        port, run_id, status, reason, error = "loop://", "r", "complete", None, None

    Result.report = report
    junit_xml([Result()])


# -- arbitrary bytes ----------------------------------------------------------------------------------

@given(st.binary(max_size=600))
def test_any_bytes_classify_without_raising(raw):
    line = classify(raw, 0.0)
    assert line.kind in KINDS
    if line.kind == "damaged":
        assert line.reason in REASONS
    if line.kind == "record":
        assert record_schema.record_problem(line.record) is None
        use_everywhere(line.record)


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_noise_around_a_prefix_never_raises(before, after):
    for middle in (b"@AP", b"@AP1 ", b"@AP1 {", b"@AP1 {} ", b"@AP7 "):
        assert classify(before + middle + after, 0.0).kind in KINDS


# -- JSON of any shape and depth inside a CRC-valid frame -------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
                | st.sampled_from(["\ud800", "a\udfff", "[/x]", "[bold]"]))   # lone surrogates, Rich markup
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)
FIELD_NAMES = sorted({name for fields in record_schema._FIELDS.values() for name in fields} | {"k", "extra"})


@st.composite
def records_with_any_field_values(draw):
    kind = draw(st.sampled_from(["begin", "step", "end", "stop", ""]) | json_values)
    rec = {"k": kind, "run": "r1", "seq": 1, "code": 100, "status": "pass", "verdict": "pass"}
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=4, unique=True)):
        rec[name] = draw(json_values)
    return rec


@given(records_with_any_field_values())
def test_crc_valid_records_with_any_field_values_are_used_or_damaged(rec):
    line = classify(frame(json.dumps(rec)), 0.0)
    assert line.kind in ("record", "damaged")
    if line.kind == "record":
        use_everywhere(line.record)
    else:
        assert line.reason in REASONS


@given(st.integers(min_value=1, max_value=3000), st.booleans())
def test_crc_valid_records_nested_to_any_depth_are_damaged_not_raised(depth, lists):
    nested = "[" * depth + "]" * depth if lists else '{"a":' * depth + "1" + "}" * depth
    body = '{"k":"step","run":"r1","seq":1,"code":100,"status":"pass","d":{"x":' + nested + "}}"
    line = classify(frame(body), 0.0)
    if depth <= 5:
        assert line.kind == "record"
        use_everywhere(line.record)
    elif depth > record_schema.MAX_RECORD_DEPTH:
        assert (line.kind, line.reason) in (("damaged", record_schema.BAD_SCHEMA), ("damaged", record.BAD_JSON))


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40) | st.sampled_from(["[/x]", "[bold]x[/bold]", "[link=file:///etc]y"]))
def test_any_string_in_a_step_is_shown_as_written_never_read_as_markup(text):
    rec = {"k": "step", "run": "r1", "seq": 1, "step": text, "code": 100, "name": text, "status": "pass",
           "d": {"why": text}}
    line = classify(record.encode(rec).encode(), 0.0)
    assert line.kind == "record"
    assert text in record_line(line.record).plain
    use_everywhere(line.record)


# -- the stream: split anywhere, read the same -------------------------------------------------------

GOOD = [
    {"k": "begin", "run": "r1", "board": "esp32", "uid": "a4cf12000001", "reset": 5},
    {"k": "step", "run": "r1", "seq": 1, "step": "config", "code": 100, "name": "config_ok", "status": "pass",
     "ms": 3, "d": {"note": "} 0badf00d \" \\r\\n"}},
    {"k": "end", "run": "r1", "verdict": "pass", "counts": {"pass": 1}, "ms": 9},
]
noise_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30).filter(
    lambda t: "@AP" not in t)
line_ends = st.sampled_from([b"\n", b"\r\n", b"\r", b"\r\r\n"])


@st.composite
def streams(draw):
    """Noise lines and the good records in order, each with some line end, and where to cut it."""
    parts, expected = [], []
    for rec in GOOD:
        for text in draw(st.lists(noise_text, max_size=2)):
            parts.append(text.encode() + draw(line_ends))
        parts.append(record.encode(rec).encode() + draw(line_ends))
        expected.append(rec)
    data = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=8)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return [c for c in chunks if c], expected


class Replay:
    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.drained = False

    @property
    def in_waiting(self):
        return len(self.chunks[0]) if self.chunks else 0

    def read(self, n):
        if not self.chunks:
            self.drained = True
            return b""
        return self.chunks.pop(0)


@given(streams())
def test_records_survive_any_split_of_the_stream(stream):
    chunks, expected = stream
    port = Replay(chunks)
    reader = RecordReader(port)
    lines = list(reader.lines(time.monotonic() + 5, lambda: port.drained))
    lines += list(reader.finish())
    assert [ln.record for ln in lines if ln.kind == "record"] == expected
    assert not [ln for ln in lines if ln.kind == "damaged"]
    tracker = RunTracker()
    for ln in lines:
        tracker.add(ln)
    assert tracker.status() == ("complete", None)


@given(st.lists(st.binary(max_size=300), max_size=12))
def test_splitter_loses_no_byte_but_line_ends(chunks):
    s = LineSplitter()
    out = [line for chunk in chunks for line in s.feed(chunk)]
    out.append(s.flush())
    joined = b"".join(chunks).replace(b"\r", b"").replace(b"\n", b"")
    assert b"".join(out) == joined
    assert all(b"\r" not in line and b"\n" not in line for line in out)


@given(st.lists(st.binary(max_size=120) | st.builds(lambda r: frame(json.dumps(r)), records_with_any_field_values()),
                max_size=6))
def test_reports_rebuilt_from_any_stored_lines_render(raws):
    rows = [{"kind": "record", "raw": raw, "t": float(i), "reason": None} for i, raw in enumerate(raws)]
    report = report_from_lines("r1", rows)
    assert record_schema.report_problem(report) is None
    console, out = strict_console()
    render_report(report, console)
    out.flush()
