"""Read report records out of a serial byte stream: boot logs, REPL echo and damaged lines around them.

Every line becomes one `Line`: a good record, a damaged record (the reason from `selftest.record`, or
`bad-schema` from `authprobe.report.record_schema` for a CRC-valid record whose fields break the contract), a
boot event (ROM log, soft reboot, panic, REPL banner: what tells a reset apart from a run) or plain
noise. Nothing in the stream is fatal: a port that disappears ends the stream with a `vanished` line
after whatever partial line was pending."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from authprobe.report import record_schema
from selftest import record as wire

# Lines a board prints when it (re)starts. The ROM log line ("rst:0x...") and a panic are what a
# reset loop repeats; the REPL banner follows every clean boot.
BOOT_PATTERNS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("rom", re.compile(rb"^rst:0x[0-9a-f]+ \(")),
    ("rom", re.compile(rb"^ESP-ROM:")),
    ("panic", re.compile(rb"Guru Meditation Error|^abort\(\) was called|^Backtrace: 0x")),
    ("soft-reboot", re.compile(rb"^MPY: soft reboot|^soft reboot$")),
    ("banner", re.compile(rb"^MicroPython v\S+ on \S+; |^Adafruit CircuitPython \S+ on \S+; ")),
    ("safe-mode", re.compile(rb"You are in safe mode|^Auto-reload is off")),
)
# Boot events that mean the chip itself restarted (a banner alone may follow a clean program end).
RESTARTS = ("rom", "panic", "soft-reboot")
MAX_LINE = 16384


@dataclass
class Line:
    kind: str                  # record | damaged | boot | noise | vanished
    raw: bytes
    t: float                   # wall-clock seconds when the line ended
    record: dict[str, Any] | None = None
    reason: str | None = None  # damaged: why; boot: which pattern; vanished: the error text
    detail: str | None = None  # damaged by its schema: which field is wrong

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")


def classify(raw: bytes, t: float | None = None) -> Line:
    """One complete line (without its line ending) -> a Line."""
    t = time.time() if t is None else t
    rec, damage = wire.decode(raw)
    if rec is not None:
        problem = record_schema.record_problem(rec)
        if problem is None:
            return Line("record", raw, t, record=rec)
        return Line("damaged", raw, t, reason=record_schema.BAD_SCHEMA, detail=problem)
    if damage is not None:
        return Line("damaged", raw, t, reason=damage)
    stripped = raw.strip(b"\r\n >")
    for name, pattern in BOOT_PATTERNS:
        if pattern.search(stripped):
            return Line("boot", raw, t, reason=name)
    return Line("noise", raw, t)


@dataclass
class LineSplitter:
    """Bytes in, complete lines out; \\r\\n, \\n and lone \\r (REPL echo) all end a line, the moment
    they arrive (a record ending in a lone \\r is not held back waiting for a \\n). Empty lines are
    dropped, so the \\n of a \\r\\n split across two reads adds nothing."""

    pending: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[bytes]:
        # Only the new bytes are searched: what is pending holds no line end.
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        out: list[bytes] = []
        if end >= 0:
            self.pending += data[:end + 1]
            out = _split_lines(bytes(self.pending))
            self.pending = bytearray(data[end + 1:])
        else:
            self.pending += data
        if len(self.pending) > MAX_LINE:
            # A line without end (binary garbage): cut it so memory stays bounded.
            out.append(bytes(self.pending))
            self.pending.clear()
        return out

    def flush(self) -> bytes:
        rest = bytes(self.pending)
        self.pending.clear()
        return rest


def _split_lines(chunk: bytes) -> list[bytes]:
    return [line for line in chunk.replace(b"\r", b"\n").split(b"\n") if line]


def port_errors() -> tuple[type[BaseException], ...]:
    """What a port that vanished or failed raises. pyserial lets termios.error through from
    tcdrain (a native-USB board re-enumerating while we flush the reset), and it is no OSError."""
    import serial

    try:
        import termios
    except ImportError:  # Windows: no termios, pyserial raises SerialException/OSError only
        return (serial.SerialException, OSError)
    return (serial.SerialException, OSError, termios.error)


class RecordReader:
    """Lines from an open pyserial-like object (`read(n)`, `in_waiting`), until told to stop."""

    def __init__(self, ser: Any, *, on_bytes: Callable[[bytes], None] | None = None):
        self.ser = ser
        self.splitter = LineSplitter()
        self.on_bytes = on_bytes
        self.vanished = False

    def lines(self, deadline: float, stop: Callable[[], bool] = lambda: False,
              on_idle: Callable[[], None] | None = None) -> Iterator[Line]:
        """Lines until `deadline` (time.monotonic()), `stop()` or the port vanishes. A partial line
        pending at the end comes out as one more line (a truncated record is 'damaged').
        `on_idle()` runs whenever a read times out with nothing (for retries and watchdogs)."""
        errors = port_errors()
        while not stop() and time.monotonic() < deadline:
            try:
                waiting = self.ser.in_waiting
                data = self.ser.read(waiting or 1)
            except errors as exc:
                yield from self.finish()
                self.vanished = True
                yield Line("vanished", b"", time.time(), reason=str(exc) or type(exc).__name__)
                return
            if not data:
                if on_idle:
                    on_idle()
                continue
            if self.on_bytes:
                self.on_bytes(data)
            now = time.time()
            for raw in self.splitter.feed(data):
                yield classify(raw, now)
                if stop():
                    return

    def finish(self) -> Iterator[Line]:
        rest = self.splitter.flush()
        if rest:
            yield classify(rest)


def read_records(url: str, *, timeout: float = 30.0, baudrate: int = 115200,
                 until_end: bool = True) -> Iterator[Line]:
    """Open any pyserial URL (a device, a pty, loop://, socket://, rfc2217://) and yield its lines
    until the end record (when `until_end`), the timeout, or the port vanishing."""
    import serial

    ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
    try:
        reader = RecordReader(ser)
        done = False

        def stop() -> bool:
            return done

        for line in reader.lines(time.monotonic() + timeout, stop):
            yield line
            if until_end and line.kind == "record" and line.record and line.record.get("k") == "end":
                done = True
        if not reader.vanished:
            yield from reader.finish()
    finally:
        ser.close()
