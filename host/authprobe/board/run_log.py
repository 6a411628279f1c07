"""The pure run-log logic: one run followed line by line (attempts, restarts, noise), its report, its
run id and times. Shared by live collection (authprobe.board.collect) and by re-reading a stored run
(authprobe.store), so neither needs the other."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from authprobe.board import line_sample
from authprobe.board.serial_reader import RESTARTS, Line, classify
from authprobe.report.json_report import build_report


def new_run_id(now: float | None = None) -> str:
    """Sortable by time, unique across hosts: 20261126T091502Z-3f9a1c07. A line of stations starts many
    runs each second: 32 random bits keep two of them apart (the PostgreSQL store also refuses a
    second run under one id and draws again)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(4)}"


def iso_utc(t: float) -> str:
    """Epoch seconds as ISO-8601 UTC with milliseconds: 2026-11-26T09:15:02.417Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class RunRecorder(Protocol):
    """Where a collection writes each line as it arrives (authprobe.store.RunStore is one)."""

    def begin_run(self, *, port: str | None, board: str | None = None, identity: dict[str, Any] | None = None,
                  run_id: str | None = None, started: float | None = None) -> str: ...

    def add_line(self, run_id: str, raw: bytes, *, t: float, kind: str, reason: str | None = None,
                 record: dict[str, Any] | None = None) -> int: ...

    def finish_run(self, run_id: str, report: dict[str, Any], *, status: str, reason: str | None = None,
                   ended: float | None = None) -> None: ...


# Restarts tolerated inside one run before calling it a reset loop (the reset we cause is not counted).
RESET_LOOP_LIMIT = 3

HINTS = {
    "timeout-silent": "nothing arrived from the board: check the port, the baud rate, and that it is powered",
    "timeout-no-records": "the board talks but sent no report record: deploy the self-test with "
                          "`authprobe flash --port PORT --config device.toml`",
    "timeout": "the self-test started but did not finish in time: raise --timeout, or look at the last "
               "step (a hang there is the finding)",
    "vanished": "the port disappeared mid-run (unplugged, or a native-USB board re-enumerated and did not "
                "come back in time): reconnect it and run again",
    "reset-loop": "the board keeps restarting (brown-out, crash or watchdog): read the stored raw lines "
                  "with `authprobe runs show RUN --raw`",
    "interrupted": "the run was stopped from the host",
    "tool-error": "authprobe failed while collecting (a bug: please report it); the lines received so far "
                  "are stored",
}


class RunTracker:
    """Follows one run line by line: attempts (a begin record starts one), restarts, noise. Pure
    logic, shared by live collection and by re-reading a stored run."""

    def __init__(self, reset_loop_limit: int = RESET_LOOP_LIMIT):
        self.limit = reset_loop_limit
        self.attempts: list[list[dict[str, Any]]] = [[]]
        self.noise_lines = 0
        self.damaged: Counter[str] = Counter()
        self.boots: Counter[str] = Counter()
        self.restarts = 0
        self.restarts_in_run = 0
        self.lines = 0
        self.stale = 0              # records from the run already going before our reset
        self.bytes_seen = False
        self.outcome: str | None = None   # complete | reset-loop | vanished (set when done)

    @property
    def begun(self) -> bool:
        return any(r.get("k") == "begin" for a in self.attempts for r in a)

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def add(self, line: Line) -> bool:
        """Take one line; True when the run is over (end record, reset loop or vanished port)."""
        self.lines += 1
        if line.kind == "vanished":
            self.outcome = "vanished"
            return True
        self.bytes_seen = True
        if line.kind == "record" and line.record is not None:
            rec = line.record
            current = self.attempts[-1]
            if rec.get("k") == "begin" and current:
                if any(r.get("k") == "begin" for r in current):
                    self.restarts_in_run = max(self.restarts_in_run, len(self.attempts))
                self.attempts.append([])
            self.attempts[-1].append(rec)
            if rec.get("k") == "end":
                self.outcome = "complete"
        elif line.kind == "damaged":
            self.damaged[line.reason or "damaged"] += 1
        else:
            self.noise_lines += 1
            if line.kind == "stale":
                self.stale += 1
            if line.kind == "boot":
                self.boots[line.reason or "boot"] += 1
                if line.reason in RESTARTS:
                    self.restarts += 1
                    if self.begun:
                        self.restarts_in_run += 1
        begins_without_end = sum(1 for a in self.attempts if a and a[0].get("k") == "begin")
        if (self.restarts_in_run >= self.limit or begins_without_end > self.limit
                or self.restarts > self.limit + 1):
            self.outcome = "reset-loop"
        return self.done

    def count_omitted(self, kind: str, reason: str | None, count: int) -> None:
        """Lines the store only counted (authprobe.board.line_sample): noise, damaged or stale, never a
        record or a restart, so only the counts move."""
        self.lines += count
        self.bytes_seen = True
        if kind == "damaged":
            self.damaged[reason or "damaged"] += count
            return
        self.noise_lines += count
        if kind == "stale":
            self.stale += count
        if kind == "boot":
            self.boots[reason or "boot"] += count

    def records(self) -> list[dict[str, Any]]:
        """The attempt the report describes: the last one that reported anything."""
        for attempt in reversed(self.attempts):
            if attempt:
                return attempt
        return []

    def noise(self) -> dict[str, Any]:
        return {"lines": self.noise_lines, "damaged": dict(self.damaged), "boots": dict(self.boots),
                "restarts": self.restarts, "attempts": sum(1 for a in self.attempts if a), "stale": self.stale}

    def status(self, ended_by: str | None = None) -> tuple[str, str | None]:
        """(complete | incomplete, reason)."""
        if self.outcome == "complete":
            return "complete", None
        if self.outcome in ("reset-loop", "vanished"):
            return "incomplete", self.outcome
        return "incomplete", ended_by or "timeout"

    def hint(self, reason: str | None) -> str | None:
        if reason == "timeout":
            if not self.bytes_seen:
                return HINTS["timeout-silent"]
            if not any(self.attempts):
                return HINTS["timeout-no-records"]
        return HINTS.get(reason or "")


def finish_report(tracker: RunTracker, run_id: str, *, reason_if_open: str | None,
                  collection: dict[str, Any]) -> tuple[dict[str, Any], str, str | None]:
    status, reason = tracker.status(reason_if_open)
    report = build_report(tracker.records(), noise=tracker.noise(), run_id=run_id)
    collection = dict(collection, status=status, reason=reason, hint=tracker.hint(reason))
    report["collection"] = collection
    return report, status, reason


def report_from_lines(run_id: str, lines: Iterable[dict[str, Any]], run: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """Rebuild a report from stored raw lines (a run whose host stopped before finishing it)."""
    tracker = RunTracker()
    for row in lines:
        if row["kind"] == "vanished":
            tracker.add(Line("vanished", b"", row["t"], reason=row.get("reason")))
        elif row["kind"] == "stale":
            tracker.add(Line("stale", row["raw"], row["t"], reason=row.get("reason")))
        elif row["kind"] == line_sample.OMITTED:
            for kind, reason, count in line_sample.counts_of(row.get("reason")):
                tracker.count_omitted(kind, reason, count)
        else:
            tracker.add(classify(row["raw"], row["t"]))
    run = run or {}
    report, _, _ = finish_report(tracker, run_id, reason_if_open="interrupted", collection={
        "run_id": run_id, "port": run.get("port"), "board": run.get("board"),
        "started": run.get("started"), "ended": run.get("ended")})
    return report
