"""Which serial lines a run keeps in the store: every line a report is built from, and a bounded
sample of the rest.

A board stuck printing garbage (a wrong baud rate, a crash dump loop) can send megabytes a minute;
storing every byte made 100 MB of noise cost 103 MB of store. Records, a vanished port and the boot
lines that mark a restart are always kept (the report and the reset-loop verdict depend on them,
and a reset loop ends the run after a few). Noise, other boot lines, damaged lines and records from
before the reset are kept up to `NOISE_SAMPLE_BYTES` per run; past that they are only counted, by
kind and reason, in one `omitted` line of the run whose `reason` holds the counts as JSON:

    {"lines": 120345, "bytes": 98765432, "counts": [["noise", null, 120000], ["damaged", "crc-mismatch", 345]]}

`counts_of()` reads that back (a report rebuilt from stored lines keeps its noise counts)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from authprobe.board.serial_reader import RESTARTS

NOISE_SAMPLE_BYTES = 256 * 1024
OMITTED = "omitted"
# How often the running counts are written while lines are being left out: a host killed mid-run
# loses at most this much of the count, never a stored line.
FLUSH_EVERY_LINES = 512
FLUSH_EVERY_S = 1.0


def always_kept(kind: str, reason: str | None) -> bool:
    if kind in ("record", "vanished"):
        return True
    return kind == "boot" and (reason in RESTARTS or (reason or "").startswith("reconnect"))


class NoiseSample:
    """One run's budget: `keep()` says whether to store a line, and counts the ones left out."""

    def __init__(self, budget: int = NOISE_SAMPLE_BYTES):
        self.budget = budget
        self.sampled = 0
        self.omitted: Counter[tuple[str, str | None]] = Counter()
        self.omitted_lines = 0
        self.omitted_bytes = 0
        self.row_seq: int | None = None     # the run's `omitted` line, once written
        self.unflushed = 0
        self.flushed_at = 0.0

    def keep(self, kind: str, reason: str | None, size: int) -> bool:
        if always_kept(kind, reason):
            return True
        if self.sampled + size <= self.budget:
            self.sampled += size
            return True
        self.omitted[(kind, reason)] += 1
        self.omitted_lines += 1
        self.omitted_bytes += size
        self.unflushed += 1
        return False

    def flush_due(self) -> bool:
        return self.unflushed >= FLUSH_EVERY_LINES or time.monotonic() - self.flushed_at >= FLUSH_EVERY_S

    def summary(self) -> str:
        """The `omitted` line's reason, and mark the counts written."""
        self.unflushed = 0
        self.flushed_at = time.monotonic()
        counts = [[kind, reason, n] for (kind, reason), n in sorted(self.omitted.items(), key=str)]
        return json.dumps({"lines": self.omitted_lines, "bytes": self.omitted_bytes, "counts": counts})


def counts_of(summary: Any) -> list[tuple[str, str | None, int]]:
    """(kind, reason, lines) from an `omitted` line's reason; nothing when it cannot be read (a
    damaged store loses the counts, not the report)."""
    try:
        data = json.loads(summary)
    except (TypeError, ValueError, RecursionError):
        return []
    out = []
    for item in data.get("counts", []) if isinstance(data, dict) and isinstance(data.get("counts"), list) else []:
        if (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and (item[1] is None or isinstance(item[1], str))
                and isinstance(item[2], int) and not isinstance(item[2], bool) and 0 < item[2] < 2 ** 53):
            out.append((item[0], item[1], item[2]))
    return out


def describe(summary: Any) -> str:
    """One line for `runs show --raw`."""
    try:
        data = json.loads(summary)
        return (f"{int(data['lines'])} more lines ({int(data['bytes'])} bytes) of noise were counted, "
                f"not stored")
    except (TypeError, ValueError, KeyError, RecursionError, OverflowError):
        return "more lines of noise were counted, not stored"
