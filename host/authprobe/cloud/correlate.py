"""Join device runs with cloud log events: AWSIotLogsV2 records by client id and the run's window
(what the host saw, widened by a small margin), and the authorizer function's log lines by the
client id they mention, by their request id, or (weakest) by time alone. Every event goes to at
most one run: the one whose reached stage (cloud.stages) could have caused it and whose connection
it follows most closely; authprobe's own TestInvokeAuthorizer replays are labelled, never evidence.
Records that carry no client id (Connection.AuthNError entries, HTTPS publishes) are matched by the
connection (source port, SNI, topic, time: cloud.connection_match) under the same rules.

Log files are streamed line by line: an IoT record whose client id belongs to no run is dropped
before its JSON is parsed, so a million-line export costs one pass and little memory."""

from __future__ import annotations

import bisect
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authprobe.aws import authn_error
from authprobe.aws.lambda_logs import FAILURE_PATTERN, system_line, worth_reading
from authprobe.cloud.base import LogEvent
from authprobe.cloud.connection_match import (
    BY_PORT,
    RunConnection,
    assign,
    joins_without_client_id,
    match,
    run_connection,
)
from authprobe.cloud.logs_insights import Window
from authprobe.cloud.replays import REPLAY_TOLERANCE_MS, Replay
from authprobe.cloud.stages import (
    FULL,
    LEVEL_WORDS,
    OFFLINE,
    SESSION,
    STEP_LEVEL,
    TLS,
    event_level,
    failing_step,
    reached_level,
)
from authprobe.errors import ConfigError
from authprobe.redaction import redact, scrub_fingerprinted, secret_fingerprints

MAX_TIME_ONLY_EVENTS = 20     # function failures attributed to a run by time alone, per run
_CLIENT_IN_TEXT = re.compile(r"""client_?id["']?\s*[:=]\s*["']?([^"',\s}]+)""", re.IGNORECASE)
_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_FAILURE_TEXT = re.compile(FAILURE_PATTERN)  # the same lines the Logs Insights query asks for


def _days(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (civil calendar), without datetime's per-call cost."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


_SECONDS: dict[str, int] = {}  # "YYYY-MM-DD HH:MM:SS" -> epoch ms; log lines share their seconds


def parse_timestamp(value: Any) -> int | None:
    """Epoch ms from an IoT V2 timestamp ("2017-08-10 15:37:23.476", UTC), an ISO-8601 string or an
    epoch number (ms, or seconds when small)."""
    if type(value) is str and len(value) == 23 and value[19] == "." and value[10] == " ":
        base = _SECONDS.get(value[:19])
        if base is not None and value[20:23].isdigit():
            return base + int(value[20:23])
        parsed = _parse_text(value)
        if parsed is not None:
            if len(_SECONDS) > 200_000:
                _SECONDS.clear()
            _SECONDS[value[:19]] = parsed - parsed % 1000
        return parsed
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value if value > 1e11 else value * 1000)
    return _parse_text(str(value).strip())


def _parse_text(text: str) -> int | None:
    try:
        if len(text) >= 19 and text[4] == "-" and text[10] in " T":
            ms = 0
            rest = text[19:]
            if rest.startswith("."):
                digits = ""
                for ch in rest[1:]:
                    if not ch.isdigit():
                        break
                    digits += ch
                ms = int((digits + "000")[:3]) if digits else 0
                rest = rest[1 + len(digits):]
            base = (_days(int(text[0:4]), int(text[5:7]), int(text[8:10])) * 86400 + int(text[11:13]) * 3600
                    + int(text[14:16]) * 60 + int(text[17:19])) * 1000 + ms
            if rest in ("", "Z", "z", "+00:00"):
                return base
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
        if text.isdigit():
            return parse_timestamp(int(text))
    except ValueError:
        return None
    return None


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def client_in_text(message: str) -> str | None:
    m = _CLIENT_IN_TEXT.search(message)
    return m.group(1) if m else None


# Fields whose values repeat across records: one shared string each keeps 10^5 matched records small.
_REPEATING = ("logLevel", "accountId", "status", "eventType", "protocol", "reason", "details", "disconnectReason",
              "principalId", "sourceIp", "clientId", "topicName")


def iot_event(record: dict[str, Any]) -> LogEvent | None:
    ts = parse_timestamp(record.get("timestamp"))
    if ts is None:
        return None
    for key in _REPEATING:
        value = record.get(key)
        if type(value) is str:
            record[key] = sys.intern(value)
    return LogEvent("iot", ts, record.get("clientId"), record)


def lambda_event(ts_ms: int, message: str, request_id: str | None = None, *, stream: str | None = None,
                 replay: bool = False) -> LogEvent:
    """A function log line. `stream`: its log stream (one execution environment, so its lines
    without a request id belong to the invocation its last START opened); `replay`: the stand-in
    marked it as written during a TestInvokeAuthorizer replay."""
    if request_id is None:
        m = _REQUEST_ID.search(message)
        request_id = m.group(0) if m else None
    fields: dict[str, Any] = {"message": redact(message), "requestId": request_id}
    if stream:
        fields["logStream"] = stream
    if replay:
        fields["replay"] = True
    return LogEvent("lambda", ts_ms, client_in_text(message), fields)


def event_from_insights_row(row: dict[str, str], source: str) -> LogEvent | None:
    """A Logs Insights result row (@timestamp, @message[, @requestId, @logStream]) as a LogEvent."""
    message = row.get("@message", "")
    ts = parse_timestamp(row.get("@timestamp"))
    if source == "iot":
        try:
            record = json.loads(message)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        event = iot_event(record)
        if event is None and ts is not None:
            event = LogEvent("iot", ts, record.get("clientId"), record)
        return event
    if ts is None:
        return None
    return lambda_event(ts, message, row.get("@requestId") or None, stream=row.get("@logStream") or None)


def _fast_client_id(line: str) -> str | None:
    """clientId of a compact or spaced JSON line without parsing it; None when absent/unusual."""
    at = line.find('"clientId"')
    if at < 0:
        return None
    i = at + 10
    n = len(line)
    while i < n and line[i] in " :":
        i += 1
    if i >= n or line[i] != '"':
        return None
    end = line.find('"', i + 1)
    if end < 0 or "\\" in line[i + 1:end]:
        return None
    return line[i + 1:end]


def read_log_file(path: str | Path, *, client_ids: set[str] | None = None,
                  source: str | None = None) -> Iterator[LogEvent]:
    """Events from an exported JSON-lines file: AWSIotLogsV2 records, function log lines
    ({"timestamp": ms, "message": str}), or either wrapped as a CloudWatch export
    ({"timestamp", "message": "<IoT record JSON>"}). IoT records of other client ids are skipped."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read log file {path}: {exc.strerror or exc}") from None
    with handle:
        for line in handle:
            if not line.strip():
                continue
            if client_ids is not None and source != "lambda" and '"eventType"' in line:
                cid = _fast_client_id(line)
                if cid is not None and cid not in client_ids:
                    continue
            elif (client_ids is not None and source != "iot" and '"message"' in line
                  and "lient" not in line and not worth_reading(line) and not _FAILURE_TEXT.search(line)):
                continue  # a function line that neither names a client nor tells of a failure
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line of a file still being written
            if not isinstance(record, dict):
                continue
            event = _event_from_record(record, source)
            if event is not None:
                if event.source == "iot" and client_ids is not None and event.client_id not in client_ids \
                        and not _refused_before_mqtt(event):
                    continue
                yield event


def _refused_before_mqtt(event: LogEvent) -> bool:
    """A Connect failure logged before the client sent an id (SNI, domain): kept for time matching;
    an AuthNError entry or an HTTPS publish: kept for matching by connection (connection_match)."""
    if event.client_id is not None:
        return False
    return (event.fields.get("eventType") == "Connect" and event.fields.get("status") == "Failure") \
        or joins_without_client_id(event.fields)


def _event_from_record(record: dict[str, Any], source: str | None) -> LogEvent | None:
    if source != "lambda" and ("eventType" in record or "logLevel" in record):
        return iot_event(record)
    message = record.get("message")
    if not isinstance(message, str):
        return None
    if source != "lambda" and message.startswith("{") and '"eventType"' in message:
        try:
            inner = json.loads(message)
        except ValueError:
            inner = None
        if isinstance(inner, dict):
            return iot_event(inner)
    if source == "iot":
        return None
    ts = parse_timestamp(record.get("timestamp"))
    if ts is None:
        return None
    stream = record.get("logStream") or record.get("logStreamName")
    return lambda_event(ts, message, record.get("requestId"), stream=stream if isinstance(stream, str) else None,
                        replay=record.get("replay") is True)


# --- runs -------------------------------------------------------------------------------------

# A run's window: its own span as the host saw it (first to last record, host clock, NTP-synced
# like AWS's), widened by a small margin; the device's clock anchors it only when the report carries
# no host time at all (a report file from elsewhere): it is evidence about the device, not the window.
HOST_MARGIN_S = 5.0          # around what the host saw: serial latency, AWS's log timestamps
DEVICE_SKEW_S = 120.0        # around the device's own clock (NTP-set clocks drift little)
DEVICE_CLOCK_TRUSTED_MS = 3600_000  # a device clock further than this from the host's is wrong
# An event logged this long before the run's estimated connection may still be the run's. The
# estimate (the host's receive time of the begin record plus the device's step times) is late by the
# serial latency and the host/AWS clock offset at most; the TLS handshake comes on top before
# anything is logged. The steps' own printing time makes the estimate early, the safe way.
SESSION_SLACK_MS = 250
NEARBY_MS = 60_000           # events of the run's client id this far outside the window: "nearby"

DEFAULT_SKEW_S = DEVICE_SKEW_S  # around a device clock; host-timed windows get HOST_MARGIN_S


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _duration_ms(report: dict[str, Any]) -> int:
    end = report.get("end") or {}
    duration = end.get("ms")
    if not _number(duration):
        duration = sum(s.get("elapsed_ms") or 0 for s in report.get("steps") or [] if _number(s.get("elapsed_ms")))
    return int(duration)


def host_span(report: dict[str, Any]) -> tuple[int, int] | None:
    """First and last record of the run in host epoch ms, from the collection's start and timings
    (ms from that start to the begin record, the end record or the last record). Without timings
    the collection's start and end stand in; None when the report has no host time."""
    coll = report.get("collection") or {}
    started = parse_timestamp(coll.get("started"))
    if started is None:
        return None
    timings = coll.get("timings") or {}
    first = started + int(timings["begin_ms"]) if _number(timings.get("begin_ms")) else started
    for key in ("end_ms", "last_record_ms"):
        if _number(timings.get(key)):
            return first, max(first, started + int(timings[key]))
    ended = parse_timestamp(coll.get("ended"))
    last = ended if ended is not None and ended >= first else first + _duration_ms(report)
    return first, last


def with_host_times(report: dict[str, Any], received: list[float]) -> dict[str, Any]:
    """The report with its collection's timings filled in from the host receive times (epoch
    seconds) of its records, as the run store keeps them, when the report has none (a run whose
    collection never finished, or one stored before the timings were written)."""
    coll = report.get("collection") or {}
    timings = coll.get("timings") or {}
    started = parse_timestamp(coll.get("started"))
    if not received or started is None or _number(timings.get("begin_ms")):
        return report
    filled = dict(timings, begin_ms=int(received[0] * 1000) - started, last_record_ms=int(received[-1] * 1000) - started)
    return dict(report, collection=dict(coll, timings=filled))


def session_offset_ms(report: dict[str, Any]) -> int:
    """Device time from the begin record to the start of the TLS step: the steps before it."""
    return sum(int(s.get("elapsed_ms") or 0) for s in report.get("steps") or []
               if STEP_LEVEL.get(s.get("step"), FULL) == OFFLINE and _number(s.get("elapsed_ms")))


@dataclass(slots=True)
class RunWindow:
    """A run's window (epoch ms, margin included), which clock anchored it, its own unwidened span,
    the stage it reached and when its connection reached AWS IoT."""

    index: int
    run_id: str
    client_id: str | None
    start_ms: int | None
    end_ms: int | None
    clock: str  # "host" (when the host saw the records), "device" (the device's UTC) or "none"
    span_start_ms: int | None = None
    span_end_ms: int | None = None
    session_ms: int | None = None
    level: int = FULL
    failing_step: str | None = None
    slack_ms: int = SESSION_SLACK_MS

    def contains(self, ts: int) -> bool:
        return self.start_ms is not None and self.end_ms is not None and self.start_ms <= ts <= self.end_ms

    def admits(self, ts: int, need: int) -> bool:
        """Could this run have caused an event at `ts` that needs stage `need`?"""
        if not self.contains(ts) or self.level < need:
            return False
        return self.session_ms is None or ts >= self.session_ms - self.slack_ms

    def near(self, ts: int) -> bool:
        return (self.start_ms is not None and self.end_ms is not None
                and self.start_ms - NEARBY_MS <= ts <= self.end_ms + NEARBY_MS)

    def why_not(self, ts: int, need: int) -> str:
        """Why an event near this run is not its evidence (when no other run took it)."""
        if self.level < need:
            return f"not this run: it {LEVEL_WORDS[self.level]}"
        if not self.contains(ts):
            return "not this run: outside its window"
        return "not this run: logged before its connection"

    def as_dict(self) -> dict[str, Any]:
        return {"start": iso_ms(self.start_ms) if self.start_ms is not None else None,
                "end": iso_ms(self.end_ms) if self.end_ms is not None else None, "clock": self.clock}


def run_window(report: dict[str, Any], index: int = 0, skew_s: float | None = None) -> RunWindow:
    """The window in which the cloud saw this run. From the host's times when the report has them
    (margin `skew_s`, default HOST_MARGIN_S); otherwise from the device's begin time and the run's
    duration (margin `skew_s`, default DEVICE_SKEW_S), or a bare host start time."""
    device = report.get("device") or {}
    level = reached_level(report)
    span = host_span(report)
    offset = session_offset_ms(report)
    if span is not None:
        start, stop, clock = span[0], span[1], "host"
        margin = HOST_MARGIN_S if skew_s is None else skew_s
        slack = SESSION_SLACK_MS
    else:
        legacy = report.get("host") or {}
        host_start = parse_timestamp(legacy.get("started") or legacy.get("started_utc") or report.get("started_utc"))
        device_start = parse_timestamp(device.get("utc"))
        duration = _duration_ms(report)
        margin = DEVICE_SKEW_S if skew_s is None else skew_s
        if device_start is not None and (host_start is None or abs(device_start - host_start) <= DEVICE_CLOCK_TRUSTED_MS):
            start, stop, clock = device_start, device_start + duration, "device"
        elif host_start is not None:
            start, stop, clock = host_start, host_start + duration, "host"
        else:
            return RunWindow(index, str(report.get("run_id")), device.get("client_id"), None, None, "none",
                             level=level, failing_step=failing_step(report))
        # Whole seconds of a device clock (or a bare start time): the margin is the only bound.
        slack = int(margin * 1000)
    m = int(margin * 1000)
    return RunWindow(index, str(report.get("run_id")), device.get("client_id"), start - m, stop + m, clock,
                     start, stop, start + offset if level >= TLS else None, level, failing_step(report), slack)


NEARBY_CAP = 30  # "nearby, not this run" events kept per run; the rest are only counted
DEVICE_INVOCATION_MS = 1000  # a device's invocation ends at most this long before its Connect record


@dataclass
class Correlated:
    """One run after the join: its window, its own evidence, the events near it that are not its
    own ("nearby", each with the reason), and whether its logs may still be on their way."""

    report: dict[str, Any]
    window: RunWindow
    events: list[LogEvent] = field(default_factory=list)
    counted: dict[str, int] = field(default_factory=dict)  # events matched but not kept (passing runs)
    nearby: list[LogEvent] = field(default_factory=list)
    nearby_total: int = 0
    provisional: bool = False
    awaiting: list[str] = field(default_factory=list)  # what the cloud has not delivered yet

    def counts(self) -> dict[str, int]:
        out = {"iot": 0, "lambda": 0, "lambda_time_only": 0}
        for key, n in self.counted.items():
            out[key] += n
        for e in self.events:
            if e.source == "iot":
                out["iot"] += 1  # (IoT records matched by time alone carry fields["attributed"] == "time")
            elif e.fields.get("attributed") == "time":
                out["lambda_time_only"] += 1
            else:
                out["lambda"] += 1
        return out


def _session_key(w: RunWindow) -> int:
    if w.session_ms is not None:
        return w.session_ms
    return w.span_start_ms if w.span_start_ms is not None else (w.start_ms or 0)


def _taken_over(event: LogEvent) -> bool:
    """The Disconnect AWS IoT logs for the older connection when a newer one takes its client id."""
    f = event.fields
    return f.get("eventType") == "Disconnect" and "DUPLICATE" in f"{f.get('reason')} {f.get('disconnectReason')}".upper()


def _latest_session(candidates: list[RunWindow], event: LogEvent, at: int | None = None) -> RunWindow:
    """Of runs that could all have caused `event` (at `at`, default its own time), the one whose
    connection it follows most closely (the earliest one when it precedes them all); a takeover's
    Disconnect ends the older connection."""
    ts = event.ts_ms if at is None else at
    ordered = sorted(candidates, key=_session_key)
    started = [w for w in ordered if _session_key(w) <= ts]
    if not started:
        return ordered[0]
    if len(started) > 1 and _taken_over(event):
        return started[-2]
    return started[-1]


# A refusal before MQTT carries no client id: it explains a TLS failure best, a closed transport or
# CONNECT less well (the device's CONNECT would have carried its id).
_TIME_ONLY_PREFERENCE = {"tls": 0, "transport": 1, "connect": 2}


class Joiner:
    """Feed events in any order; ask for each run's events at the end.

    Each event goes to at most one run: among the runs of its client id whose window holds it and
    whose reached stage could have caused it, the one whose connection it follows most closely.
    Events of a run's client id near it that it did not get are kept apart as "nearby, not this
    run", with the reason; authprobe's own TestInvokeAuthorizer replays are labelled `replay` and
    are never a device's evidence."""

    def __init__(self, reports: list[dict[str, Any]], skew_s: float | None = None, *, keep_passing: bool = True,
                 neighbours: Iterable[dict[str, Any]] = (), replays: Iterable[Replay] = ()):
        """keep_passing=False only counts the events of passing runs (their diagnosis is empty
        anyway), which keeps fleet-size correlation small. `neighbours` are other runs (stored
        runs of the same client ids) that take their own events away but are not returned;
        `replays` are the TestInvokeAuthorizer calls authprobe made."""
        everyone = list(reports) + list(neighbours)
        self.wanted = len(reports)
        self.runs = [Correlated(r, run_window(r, i, skew_s)) for i, r in enumerate(everyone)]
        self.keep = [i < self.wanted and (keep_passing or r.get("verdict") != "pass") for i, r in enumerate(everyone)]
        self.by_client: dict[str, list[RunWindow]] = {}
        for c in self.runs:
            if c.window.client_id and c.window.start_ms is not None:
                self.by_client.setdefault(c.window.client_id, []).append(c.window)
        self.replays = sorted(replays, key=lambda r: r.at_ms)
        self._replay_from = [r.at_ms - REPLAY_TOLERANCE_MS for r in self.replays]
        self._replay_span = max((r.until_ms - r.at_ms for r in self.replays), default=0) + 2 * REPLAY_TOLERANCE_MS
        self.request_client: dict[str, str] = {}
        # When each invocation started: its lines belong to the run it started in, however long it ran
        # on (a function whose timeout is over IoT's 5 s wait writes its REPORT after the run ended).
        self.request_started: dict[str, int] = {}
        self.by_connection: list[LogEvent] = []  # no client id: matched by port, SNI, topic and time
        self.connect_logged: set[int] = set()  # runs given their own Connect record (by client id)
        self.request_first: dict[str, int] = {}  # first and last line of each invocation near a replay
        self.request_last: dict[str, int] = {}
        self.connects_near_replays: list[tuple[str, int]] = []  # (client id, time) of IoT Connect records
        self.unattributed: list[LogEvent] = []
        self.held: list[tuple[LogEvent, str | None]] = []  # function lines near a replay, settled at the end
        self.current: dict[str, str | None] = {}  # log stream -> the invocation its last START opened
        self.seen = 0

    def windows(self) -> list[Window]:
        """What to read from the cloud: each run's window and its neighbourhood (nearby events)."""
        return [Window(w.client_id, w.start_ms - NEARBY_MS, w.end_ms + NEARBY_MS) for c in self.runs
                for w in (c.window,) if w.client_id and w.start_ms is not None and w.end_ms is not None]

    def client_ids(self) -> set[str]:
        return set(self.by_client)

    # -- placing one event ------------------------------------------------------------------------

    def _give(self, index: int, event: LogEvent) -> None:
        if event.source == "iot" and event.client_id and event.fields.get("eventType") == "Connect":
            self.connect_logged.add(index)
        if self.keep[index]:
            self.runs[index].events.append(event)
        else:
            key = "iot" if event.source == "iot" else "lambda"
            counted = self.runs[index].counted
            counted[key] = counted.get(key, 0) + 1

    def _nearby(self, index: int, event: LogEvent, reason: str) -> None:
        c = self.runs[index]
        c.nearby_total += 1
        if len(c.nearby) < NEARBY_CAP:
            c.nearby.append(LogEvent(event.source, event.ts_ms, event.client_id, {**event.fields, "nearby": reason}))

    def _place(self, windows: list[RunWindow], event: LogEvent, need: int, at: int | None = None) -> None:
        """Give `event` to the one run of `windows` that could have caused it (judged at `at`, the
        start of its invocation for a function line, else its own time); list it near the others."""
        ts = event.ts_ms if at is None else at
        if len(windows) == 1:
            w = windows[0]
            if w.admits(ts, need):
                self._give(w.index, event)
            elif self.keep[w.index] and w.near(ts):
                self._nearby(w.index, event, w.why_not(ts, need))
            return
        eligible = [w for w in windows if w.admits(ts, need)]
        owner = (eligible[0] if len(eligible) == 1 else _latest_session(eligible, event, ts)) if eligible else None
        if owner is not None:
            self._give(owner.index, event)
        for w in windows:
            if w is not owner and self.keep[w.index] and w.near(ts):
                self._nearby(w.index, event, f"not this run: it follows the connection of run {owner.run_id}"
                             if owner is not None else w.why_not(ts, need))

    def _near_replay(self, ts: int) -> Replay | None:
        j = bisect.bisect_right(self._replay_from, ts) - 1
        while j >= 0 and self._replay_from[j] >= ts - self._replay_span:
            if self.replays[j].covers(ts):
                return self.replays[j]
            j -= 1
        return None

    def _replay_line(self, event: LogEvent, client_id: str | None) -> None:
        event.fields["attributed"] = "replay"
        replay = self._near_replay(event.ts_ms)
        cid = client_id or (replay.client_id if replay else None)
        for w in self.by_client.get(cid or "", ()):
            if self.keep[w.index] and w.near(event.ts_ms):
                self._nearby(w.index, event, "authprobe's own TestInvokeAuthorizer replay, not the device")

    def _started(self, event: LogEvent) -> int | None:
        return self.request_started.get(event.fields.get("requestId") or "")

    def _function_line(self, event: LogEvent, client_id: str | None) -> None:
        if client_id and client_id in self.by_client:
            event.fields.setdefault("attributed", "client_id" if event.client_id else "request_id")
            self._place(self.by_client[client_id], event, SESSION, self._started(event))
        elif not client_id:
            message = event.fields.get("message", "")
            if _FAILURE_TEXT.search(message) or system_line(message) is not None:
                self.unattributed.append(event)

    def add(self, event: LogEvent) -> None:
        self.seen += 1
        if event.source == "iot":
            cid = event.client_id
            if cid:
                windows = self.by_client.get(cid)
                if windows is not None:
                    self._place(windows, event, event_level(event.fields))
                    if self.replays and event.fields.get("eventType") == "Connect" \
                            and self._near_replay(event.ts_ms) is not None:
                        self.connects_near_replays.append((cid, event.ts_ms))
            elif joins_without_client_id(event.fields):
                self.by_connection.append(event)  # an AuthNError entry, an HTTPS publish
            elif event.fields.get("eventType") == "Connect" and event.fields.get("status") == "Failure":
                self.unattributed.append(event)  # refused before MQTT (SNI, domain): no client id yet
            return
        fields = event.fields
        message = fields.get("message", "")
        request_id = fields.get("requestId")
        stream = fields.get("logStream", "")
        system = system_line(message)  # START/END/REPORT, or their JSON-format events
        if system is not None and system.kind == "start":
            request_id = self.current[stream] = system.request_id or request_id
            if request_id:
                self.request_started.setdefault(request_id, event.ts_ms)
                if self.replays and self._near_replay(event.ts_ms) is not None:
                    self.request_first.setdefault(request_id, event.ts_ms)
            return
        if system is not None:
            self.current[stream] = None
            request_id = system.request_id or request_id
            if request_id and request_id in self.request_first:
                self.request_last[request_id] = max(self.request_last.get(request_id, 0), event.ts_ms)
            if not (system.slow or system.timed_out):
                return  # a REPORT matters only when the run was cut off at (or ran past) the limit
        elif request_id is None:
            # Lines a function prints carry no request id; in a log stream (one execution
            # environment) they sit between their invocation's START and END.
            current = self.current.get(stream)
            if current:
                request_id = fields["requestId"] = current
        client_id = event.client_id
        if client_id and request_id:
            self.request_client.setdefault(request_id, client_id)
        elif request_id and not client_id:
            client_id = self.request_client.get(request_id)
        if fields.get("replay"):
            self._replay_line(event, client_id)  # the stand-in marked its replay's lines
        elif self.replays and self._near_replay(event.ts_ms) is not None:
            if request_id:
                self.request_first.setdefault(request_id, event.ts_ms)
                self.request_last[request_id] = max(self.request_last.get(request_id, 0), event.ts_ms)
            self.held.append((event, client_id))
        else:
            self._function_line(event, client_id)

    def add_all(self, events: Iterable[LogEvent]) -> None:
        for e in events:
            self.add(e)

    # -- settling what needed every line first ------------------------------------------------------

    def _device_invocations(self) -> set[str]:
        """Invocations a device's own connection made: AWS IoT logs the connection's Connect record
        right after its authorizer answers, so the invocation that ended last before a Connect
        record of its client is that device's (a replay's invocation has no Connect record)."""
        found: set[str] = set()
        for cid, connect_ts in self.connects_near_replays:
            best: tuple[int, str] | None = None
            for rid, last in self.request_last.items():
                if rid in found or self.request_client.get(rid) not in (None, cid):
                    continue
                if connect_ts - DEVICE_INVOCATION_MS <= last <= connect_ts and (best is None or last > best[0]):
                    best = (last, rid)
            if best is not None:
                found.add(best[1])
        return found

    def _claim_replays(self) -> tuple[set[str], list[Replay]]:
        """Each replay that ran the function claims one invocation: of its client id (or of no
        known client), started within its call, not a device connection's own, the nearest to it.
        Replays whose invocation has no request id to claim it by are returned too: they claim
        their client's lines in their call."""
        claimed: set[str] = self._device_invocations()
        devices = set(claimed)
        unclaimed: list[Replay] = []
        for replay in self.replays:
            if replay.invoked is False:
                continue  # refused before the function ran: nothing of it in the function's log
            best: tuple[int, str] | None = None
            for rid, first in self.request_first.items():
                # An invocation starts at its START, wherever its first line near the replay is (the
                # REPORT of a device's invocation that ran past IoT's wait may follow it by seconds).
                first = self.request_started.get(rid, first)
                if rid in claimed or not replay.covers(first):
                    continue
                cid = self.request_client.get(rid)
                if cid is not None and replay.client_id is not None and cid != replay.client_id:
                    continue
                gap = abs(first - replay.at_ms)
                if best is None or gap < best[0]:
                    best = (gap, rid)
            if best is not None:
                claimed.add(best[1])
            else:
                unclaimed.append(replay)
        return claimed - devices, unclaimed

    def _settle_replays(self) -> None:
        if not self.held:
            return
        claimed, unclaimed = self._claim_replays()
        held, self.held = self.held, []
        for event, client_id in held:
            rid = event.fields.get("requestId")
            cid = client_id or (self.request_client.get(rid) if rid else None)
            if rid in claimed or (rid is None and any(r.covers(event.ts_ms) and cid in (None, r.client_id)
                                                      for r in unclaimed)):
                self._replay_line(event, cid)
            else:
                self._function_line(event, cid)

    def _settle_unattributed(self) -> None:
        """Function lines that arrived before their request named a client; then what names no
        client at all, each to one run by time: a run that failed where it would have been logged."""
        leftovers: list[LogEvent] = []
        for e in self.unattributed:
            cid = self.request_client.get(e.fields.get("requestId") or "")
            if cid is None:
                leftovers.append(e)
            elif cid in self.by_client:
                e.fields["attributed"] = "request_id"
                self._place(self.by_client[cid], e, SESSION, self._started(e))
            # else: another client's invocation, none of ours
        leftovers.sort(key=lambda e: e.ts_ms)
        stamps = [e.ts_ms for e in leftovers]
        # A line written after its run's window (the REPORT of a function that ran on past IoT's
        # wait) is still offered to the window its invocation started in.
        late = sorted((started, k) for k, e in enumerate(leftovers)
                      for started in [self._started(e)] if started is not None and started < e.ts_ms)
        late_starts = [started for started, _ in late]
        offers: dict[int, list[RunWindow]] = {}
        for c in self.runs:
            w = c.window
            stage = w.failing_step
            if w.start_ms is None or w.end_ms is None or stage not in _TIME_ONLY_PREFERENCE:
                continue
            inside = set(range(bisect.bisect_left(stamps, w.start_ms), bisect.bisect_right(stamps, w.end_ms)))
            inside.update(late[j][1] for j in range(bisect.bisect_left(late_starts, w.start_ms),
                                                    bisect.bisect_right(late_starts, w.end_ms)))
            for k in sorted(inside):
                e = leftovers[k]
                # A TLS-stage failure is only explained by a refusal logged before MQTT (SNI, domain).
                if (stage == "tls" and e.source != "iot") or (w.session_ms is not None
                                                              and e.ts_ms < w.session_ms - w.slack_ms):
                    continue
                offers.setdefault(k, []).append(w)
        taken: dict[int, int] = {}
        for k in sorted(offers):
            e = leftovers[k]
            candidates = offers[k]
            if e.source == "iot":
                best = min(_TIME_ONLY_PREFERENCE[w.failing_step or ""] for w in candidates)
                candidates = [w for w in candidates if _TIME_ONLY_PREFERENCE[w.failing_step or ""] == best]
            candidates = [w for w in candidates if taken.get(w.index, 0) < MAX_TIME_ONLY_EVENTS]
            if not candidates:
                continue
            owner = candidates[0] if len(candidates) == 1 else _latest_session(candidates, e)
            taken[owner.index] = taken.get(owner.index, 0) + 1
            self._give(owner.index, LogEvent(e.source, e.ts_ms, None, {**e.fields, "attributed": "time"}))

    def _connection(self, c: Correlated, need: int) -> RunConnection | None:
        """The run's connection side for records that need stage `need`: None when it did not get
        that far; its window starts no earlier than its connection could (as `admits`)."""
        w = c.window
        if w.start_ms is None or w.end_ms is None or w.level < need:
            return None
        start = w.start_ms if w.session_ms is None else max(w.start_ms, w.session_ms - w.slack_ms)
        return run_connection(c.report, start, w.end_ms)

    def _join_by_connection(self) -> None:
        """Records without a client id, each to one run at most (connection_match): by source port
        whatever the run's step, by SNI, topic or time only to a run that failed where the record
        explains it (an AuthNError: refused in TLS, the transport or CONNECT, its own Connect record
        not logged; an HTTPS publish: a failed run), always among the runs whose stage could have
        caused it; of equal matches the run whose connection it follows. Runs near a record that
        did not get it list it as nearby."""
        if not self.by_connection:
            return
        records = sorted(self.by_connection, key=lambda e: e.ts_ms)
        self.by_connection = []
        authn = [e for e in records if authn_error.is_authn_error(e.fields)]
        https = [e for e in records if not authn_error.is_authn_error(e.fields)]
        for events, need in ((authn, TLS), (https, event_level({"eventType": "Publish-In"}))):
            if not events:
                continue
            conns = [self._connection(c, need) for c in self.runs]
            if events is authn:
                eligible = [c.window.failing_step in ("tls", "transport", "connect") and i not in self.connect_logged
                            for i, c in enumerate(self.runs)]
            else:
                eligible = [c.report.get("verdict") != "pass" for c in self.runs]

            def pick(k: int, candidates: list[int], events: list[LogEvent] = events) -> int:
                return _latest_session([self.runs[i].window for i in candidates], events[k]).index

            owners: dict[int, tuple[int, str]] = {}
            for i, pairs in enumerate(assign([(e.ts_ms, e.fields) for e in events], conns, eligible, pick)):
                for k, how in pairs:
                    owners[k] = (i, how)
                    e = events[k]
                    self._give(i, LogEvent(e.source, e.ts_ms, None, {**e.fields, "attributed": how}))
            self._nearby_by_connection(events, owners, need)

    def _nearby_by_connection(self, events: list[LogEvent], owners: dict[int, tuple[int, str]], need: int) -> None:
        # Each kept run's connection over its neighbourhood: a record it matches there concerns it.
        nears = [(c.window, run_connection(c.report, c.window.start_ms - NEARBY_MS, c.window.end_ms + NEARBY_MS))
                 for c in self.runs if self.keep[c.window.index] and c.window.start_ms is not None
                 and c.window.end_ms is not None]
        for k, e in enumerate(events):
            owner = owners.get(k)
            for w, near in nears:
                if (owner is not None and owner[0] == w.index) or near is None \
                        or match(e.fields, e.ts_ms, near) is None:
                    continue  # its own, or another SNI, topic or cause: nothing to do with this run
                if owner is not None:
                    other = self.runs[owner[0]].window.run_id
                    reason = (f"not this run: the source port of run {other}" if owner[1] == BY_PORT
                              else f"not this run: it follows the connection of run {other}")
                elif w.level < need or not w.admits(e.ts_ms, need):
                    reason = w.why_not(e.ts_ms, need)
                else:
                    reason = "not this run: matched by SNI or time alone, and it failed where this explains nothing"
                self._nearby(w.index, e, reason)

    def finish(self) -> list[Correlated]:
        """Settle replays and what waited for every line, then each run's events in time order,
        with secrets its report knows by fingerprint replaced."""
        self._settle_replays()
        self._join_by_connection()
        self._settle_unattributed()
        # Per client id, every fingerprint its runs know: a nearby line may quote another run's secret.
        prints: dict[str, dict[tuple[int, str], dict[str, Any]]] = {}
        for c in self.runs:
            for fp in secret_fingerprints(c.report):
                prints.setdefault(c.window.client_id or "", {})[(fp["len"], fp["sha256"])] = fp
        out = self.runs[:self.wanted]
        for c in out:
            c.events.sort(key=lambda e: e.ts_ms)
            c.nearby.sort(key=lambda e: e.ts_ms)
            fingerprints = list(prints.get(c.window.client_id or "", {}).values())
            if fingerprints:
                for e in c.events + c.nearby:
                    if e.source == "lambda":
                        e.fields["message"] = scrub_fingerprinted(e.fields.get("message", ""), fingerprints)
        return out


def correlate(reports: list[dict[str, Any]], events: Iterable[LogEvent], *, skew_s: float | None = None,
              neighbours: Iterable[dict[str, Any]] = (), replays: Iterable[Replay] = ()) -> list[Correlated]:
    joiner = Joiner(reports, skew_s, neighbours=neighbours, replays=replays)
    joiner.add_all(events)
    return joiner.finish()


def read_reports(paths: Iterable[str | Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Reports from JSON files (one report, or a list of reports, per file), and one problem line
    per unreadable file; the readable ones are kept."""
    reports: list[dict[str, Any]] = []
    problems: list[str] = []
    for p in paths:
        path = Path(p)
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
            continue
        except ValueError as exc:
            problems.append(f"{path}: not JSON ({exc})")
            continue
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict) or "steps" not in item:
                problems.append(f"{path}: not an authprobe report (no steps)")
            elif not _well_formed_steps(item["steps"]):
                problems.append(f"{path}: not an authprobe report (each step needs {', '.join(_STEP_KEYS)})")
            else:
                reports.append(item)
    return reports, problems


_STEP_KEYS = ("step", "code", "name", "status", "root_causes")  # what the diagnosis reads of a step


def _well_formed_steps(steps: Any) -> bool:
    return isinstance(steps, list) and all(isinstance(s, dict) and all(k in s for k in _STEP_KEYS) for s in steps)
