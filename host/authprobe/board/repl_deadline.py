"""A hard deadline on every exchange with a board's REPL.

mpremote's `read_until` checks its timeouts only while no byte arrives, and `enter_raw_repl` drains
input until none is waiting: a port that keeps sending bytes but has no REPL (the wrong baud rate, a
firmware that logs nonstop, a board stuck in a boot loop) keeps both busy forever. `DeadlineSerial`
stands between mpremote and the port and raises `ReplDeadline` on the first read or write after the
deadline, whatever the line is doing. It also keeps the last bytes it saw, for the error message."""

from __future__ import annotations

import time
from typing import Any

from authprobe.output import printable

# How much of what the port sent to keep for the message: enough to recognise a boot log or garbage.
TAIL_BYTES = 48


class ReplDeadline(Exception):
    """The board did not finish one REPL exchange in time; `received` and `tail` say what it sent."""

    def __init__(self, seconds: float, received: int, tail: bytes):
        super().__init__(f"no REPL answer within {seconds:g} s")
        self.seconds = seconds
        self.received = received
        self.tail = tail

    def evidence(self) -> str:
        """What the port sent instead, for the user: silence, or a count and the last bytes escaped."""
        if not self.received:
            return "the port stayed silent"
        return f"{self.received} bytes that were no REPL prompt, ending '{printable(self.tail)}'"


class DeadlineSerial:
    """A pyserial port whose read and write raise ReplDeadline once the armed deadline has passed.
    Everything else goes to the port unchanged."""

    def __init__(self, port: Any):
        self._port = port
        self._deadline: float | None = None
        self._seconds = 0.0
        self.received = 0
        self.tail = b""

    def arm(self, seconds: float) -> None:
        """Start one exchange: it must be over within `seconds`."""
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self.received = 0
        self.tail = b""

    def disarm(self) -> None:
        self._deadline = None

    def _check(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise ReplDeadline(self._seconds, self.received, self.tail)

    def read(self, size: int = 1) -> bytes:
        self._check()
        data = self._port.read(size)
        if data:
            self.received += len(data)
            self.tail = (self.tail + data)[-TAIL_BYTES:]
        return data

    def inWaiting(self) -> int:  # noqa: N802 - pyserial's (and mpremote's) spelling
        self._check()
        return self._port.inWaiting()

    @property
    def in_waiting(self) -> int:
        self._check()
        return self._port.in_waiting

    def write(self, data: bytes) -> int | None:
        self._check()
        return self._port.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._port, name)
