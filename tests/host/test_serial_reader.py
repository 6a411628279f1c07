"""The record stream reader against recorded byte streams: boot noise, REPL echo, records split
across reads, wrong CRCs, truncated lines, binary garbage and a port that disappears."""

from __future__ import annotations

import io
import time

import pytest
import serial
from rich.console import Console

from authprobe.board.run_log import RunTracker, report_from_lines
from authprobe.board.serial_reader import Line, LineSplitter, RecordReader, classify
from authprobe.report.render import render_report
from selftest import record

BEGIN = record.encode({"k": "begin", "run": "r1", "board": "esp32", "runtime": "micropython", "uid": "a4cf12000001"})
STEP = record.encode({"k": "step", "run": "r1", "seq": 1, "step": "config", "code": 100, "name": "config_ok",
                      "status": "pass", "ms": 3, "d": {"note": "has } and \" inside"}})
END = record.encode({"k": "end", "run": "r1", "verdict": "pass", "counts": {"pass": 1}, "ms": 9})

ROM = (b"ets Jul 29 2019 12:21:46\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
       b"configsip: 0, SPIWP:0xee\r\nentry 0x400805cc\r\n")


class Recorded:
    """A pyserial-like port replaying recorded chunks, then (optionally) vanishing like an unplugged
    USB device does in pyserial."""

    def __init__(self, chunks: list[bytes], vanish: bool = False):
        self.chunks = list(chunks)
        self.vanish = vanish
        self.drained = False

    @property
    def in_waiting(self) -> int:
        return len(self.chunks[0]) if self.chunks else 0

    def read(self, n: int) -> bytes:
        if not self.chunks:
            if self.vanish:
                raise serial.SerialException("device reports readiness to read but returned no data "
                                             "(device disconnected or multiple access on port?)")
            self.drained = True
            return b""
        chunk = self.chunks.pop(0)
        if len(chunk) > n:
            self.chunks.insert(0, chunk[n:])
            chunk = chunk[:n]
        return chunk


def read_all(chunks: list[bytes], vanish: bool = False, timeout: float = 0.3) -> list[Line]:
    port = Recorded(chunks, vanish)
    reader = RecordReader(port)
    # Stop once the recording is played out (unless the port is to vanish after it).
    lines = list(reader.lines(time.monotonic() + timeout, lambda: port.drained))
    if not reader.vanished:
        lines += list(reader.finish())
    return lines


def kinds(lines: list[Line]) -> list[str]:
    return [ln.kind for ln in lines]


def test_records_survive_boot_noise_and_echo():
    stream = ROM + b">>> import machine; machine.reset()\r\n" + (BEGIN + "\r\n" + STEP + "\r\n" + END + "\r\n").encode()
    lines = read_all([stream])
    recs = [ln.record for ln in lines if ln.kind == "record"]
    assert [r["k"] for r in recs] == ["begin", "step", "end"]
    assert recs[1]["d"]["note"] == 'has } and " inside'
    assert [ln.reason for ln in lines if ln.kind == "boot"] == ["rom"]
    assert kinds(lines).count("noise") == 4


def test_record_split_across_reads_at_every_byte():
    data = (STEP + "\r\n").encode()
    for cut in range(1, len(data)):
        lines = read_all([data[:cut], data[cut:]])
        assert kinds(lines) == ["record"], cut


def test_wrong_crc_and_truncated_record_are_damaged_not_fatal():
    bad_crc = STEP[:-8] + ("0" * 8 if not STEP.endswith("0" * 8) else "1" * 8)
    truncated = STEP[: len(STEP) // 2]
    stream = (bad_crc + "\r\n" + truncated + "\r\n" + END + "\r\n").encode()
    lines = read_all([stream])
    assert [(ln.kind, ln.reason) for ln in lines] == [("damaged", record.BAD_CRC), ("damaged", record.BAD_FRAME),
                                                      ("record", None)]


def test_flipped_byte_inside_json_is_a_crc_mismatch():
    data = bytearray(STEP.encode())
    data[data.index(b"config_ok")] ^= 0x20
    line = classify(bytes(data))
    assert (line.kind, line.reason) == ("damaged", record.BAD_CRC)


def test_binary_garbage_and_overlong_lines_are_noise():
    garbage = bytes(range(256)) * 80  # no newline for 20 KB
    lines = read_all([garbage, b"\r\n", (END + "\n").encode()])
    assert lines[-1].kind == "record"
    assert all(ln.kind in ("noise", "boot") for ln in lines[:-1])


def test_record_after_noise_on_the_same_line():
    # Boot output without a newline, then the record: the prefix may appear anywhere in a line.
    line = classify(b"I (312) wifi: mode : sta" + BEGIN.encode())
    assert line.kind == "record" and line.record["k"] == "begin"


def test_port_that_disappears_flushes_partial_line_then_reports_vanished():
    partial = STEP[: len(STEP) - 5]
    lines = read_all([(BEGIN + "\r\n").encode(), partial.encode()], vanish=True)
    assert kinds(lines) == ["record", "damaged", "vanished"]
    assert "disconnected" in lines[-1].reason


def test_splitter_treats_lone_cr_as_line_end():
    s = LineSplitter()
    assert s.feed(b">>> \rabc\r\n") == [b">>> ", b"abc"]
    assert s.feed(b"tail") == []
    assert s.flush() == b"tail"


def test_boot_patterns():
    assert classify(b"MicroPython v1.24.1 on 2024-11-29; Generic ESP32 module with ESP32").reason == "banner"
    assert classify(b"Adafruit CircuitPython 9.2.1 on 2024-11-20; Adafruit Feather ESP32S3 with ESP32S3").reason == "banner"
    assert classify(b"MPY: soft reboot").reason == "soft-reboot"
    assert classify(b"Guru Meditation Error: Core  1 panic'ed (LoadProhibited).").reason == "panic"
    assert classify(b"ESP-ROM:esp32s3-20210327").reason == "rom"
    assert classify(b"plain text").kind == "noise"


def feed(tracker: RunTracker, *raws: bytes | str) -> bool:
    done = False
    for raw in raws:
        done = tracker.add(classify(raw.encode() if isinstance(raw, str) else raw))
    return done


def test_tracker_complete_run():
    t = RunTracker()
    assert not feed(t, b"rst:0x1 (POWERON_RESET),boot:0x13", BEGIN, STEP)
    assert feed(t, END)
    assert t.status() == ("complete", None)
    assert [r["k"] for r in t.records()] == ["begin", "step", "end"]


def test_tracker_one_restart_mid_run_keeps_the_later_attempt():
    t = RunTracker()
    feed(t, BEGIN, STEP, b"rst:0xc (SW_CPU_RESET),boot:0x13", BEGIN, STEP)
    assert not t.done
    assert feed(t, END)
    assert t.noise()["attempts"] == 2
    assert len(t.records()) == 3


def test_tracker_reset_loop_from_repeated_begins():
    t = RunTracker(reset_loop_limit=3)
    assert not feed(t, BEGIN, STEP, BEGIN, STEP, BEGIN)
    assert feed(t, b"rst:0xc (SW_CPU_RESET),boot:0x13", BEGIN)
    assert t.status() == ("incomplete", "reset-loop")
    assert t.records()[0]["k"] == "begin"


def test_tracker_reset_loop_before_any_record():
    t = RunTracker(reset_loop_limit=3)
    panic = b"Guru Meditation Error: Core  1 panic'ed (LoadProhibited)."
    rom = b"rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
    assert not feed(t, rom, panic, rom)
    assert feed(t, panic, rom)
    assert t.status()[1] == "reset-loop"


@pytest.mark.parametrize(("raws", "hint_word"), [([], "nothing arrived"), ([b"hello"], "flash")])
def test_tracker_timeout_hints(raws, hint_word):
    t = RunTracker()
    feed(t, *raws)
    status, reason = t.status()
    assert (status, reason) == ("incomplete", "timeout")
    assert hint_word in t.hint(reason)


def test_read_records_from_a_pyserial_url(monkeypatch):
    # loop:// echoes what is written: a recorded stream fed through a real pyserial URL handler.
    from authprobe.board import serial_reader

    opened = []
    real = serial.serial_for_url

    def recording(url, **kw):
        port = real(url, **kw)
        port.write(ROM + (BEGIN + "\r\n" + STEP + "\r\nnoise\r\n" + END + "\r\nafter end\r\n").encode())
        opened.append(port)
        return port

    monkeypatch.setattr(serial, "serial_for_url", recording)
    lines = list(serial_reader.read_records("loop://", timeout=2))
    assert [ln.record["k"] for ln in lines if ln.kind == "record"] == ["begin", "step", "end"]
    assert lines[-1].record["k"] == "end"           # stops at the end record
    assert not opened[0].is_open


def test_a_port_failing_in_tcdrain_counts_as_a_port_error():
    # pyserial's flush() lets termios.error through (EIO from a native-USB board that re-enumerates
    # while the reset is flushed); collection must treat it as the port vanishing, not crash.
    import termios

    from authprobe.board.serial_reader import port_errors

    assert isinstance(termios.error(5, "Input/output error"), port_errors())


# --- hostile records (issue 12) ----------------------------------------------------------------------

GOOD_STEP = {"k": "step", "run": "r1", "seq": 2, "step": "wifi", "code": 300, "name": "wifi_ok", "status": "pass",
             "ms": 5, "d": {}}
WRONG_TYPES = [("code", "x"), ("code", None), ("d", [1]), ("seq", {}), ("status", 5)]


def frame(body: str) -> bytes:
    """A CRC-valid report line around any JSON text."""
    return f"@AP1 {body} {record.crc32_hex(body.encode())}".encode()


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES)
def test_crc_valid_record_with_a_wrongly_typed_field_is_damaged_noise(field, value):
    bad = record.encode(dict(GOOD_STEP, **{field: value})).encode()
    line = classify(bad)
    assert (line.kind, line.reason) == ("damaged", "bad-schema")
    assert field in line.detail
    rows = [{"kind": "record", "raw": raw, "t": 1.0, "reason": None}
            for raw in (BEGIN.encode(), bad, STEP.encode(), END.encode())]
    report = report_from_lines("r1", rows)
    assert report["verdict"] == "pass" and report["noise"]["damaged"] == {"bad-schema": 1}
    assert [s["name"] for s in report["steps"]] == ["config_ok"]
    out = io.StringIO()
    render_report(report, Console(file=out, width=120))
    assert "config_ok" in out.getvalue()


def test_crc_valid_record_nested_a_thousand_deep_is_damaged_noise():
    body = '{"k":"step","run":"r1","seq":1,"code":100,"status":"pass","d":' + "[" * 1000 + "]" * 1000 + "}"
    assert (classify(frame(body)).kind, classify(frame(body)).reason) == ("damaged", record.BAD_JSON)
    shallow_enough_for_json = '{"k":"step","run":"r1","seq":1,"code":100,"status":"pass","d":{"a":' + "[" * 50 + "]" * 50 + "}}"
    line = classify(frame(shallow_enough_for_json))
    assert (line.kind, line.reason) == ("damaged", "bad-schema") and "nests deeper" in line.detail


def test_record_strings_that_cannot_be_printed_or_stored_are_damaged():
    # \ud800 decodes to a lone surrogate: no terminal or SQLite text can hold it.
    line = classify(frame('{"k":"begin","run":"r1","uid":"\\ud800"}'))
    assert (line.kind, line.reason) == ("damaged", "bad-schema")
    line = classify(frame('{"k":"step","run":"r1","seq":1,"code":100,"status":"pass","ms":NaN}'))
    assert (line.kind, line.reason) == ("damaged", "bad-schema")


def test_unknown_record_kind_is_damaged():
    line = classify(frame('{"k":"stop","run":"r1"}'))
    assert (line.kind, line.reason) == ("damaged", "bad-schema") and "kind" in line.detail


def test_final_record_ending_in_a_lone_cr_comes_out_without_a_flush():
    s = LineSplitter()
    assert s.feed((END + "\r").encode()) == [END.encode()]
    assert s.flush() == b""
    # ...and while a run is being read, before the stream ends.
    port = Recorded([(BEGIN + "\r").encode(), (END + "\r").encode()])
    reader = RecordReader(port)
    lines = list(reader.lines(time.monotonic() + 0.3, lambda: port.drained))
    assert [ln.record["k"] for ln in lines if ln.kind == "record"] == ["begin", "end"]


def test_two_records_separated_by_lone_crs_at_the_end_of_a_stream_are_both_read():
    lines = read_all([("noise\r" + STEP + "\r" + END + "\r").encode()])
    assert [ln.record["k"] for ln in lines if ln.kind == "record"] == ["step", "end"]


def test_crlf_split_between_reads_adds_no_line():
    s = LineSplitter()
    assert s.feed((STEP + "\r").encode()) == [STEP.encode()]
    assert s.feed(b"\n" + END.encode() + b"\r") == [END.encode()]


def test_null_is_no_value_for_a_step_field_but_is_for_an_unknown_begin_field():
    # Found by the property tests: `"step": null` passed as "left out" and broke `monitor`'s line.
    line = classify(record.encode(dict(GOOD_STEP, step=None)).encode())
    assert (line.kind, line.reason) == ("damaged", "bad-schema")
    begin = {"k": "begin", "run": "r1", "uid": None, "utc": None, "reset": None, "heap_free": None}
    assert classify(record.encode(begin).encode()).record == begin
