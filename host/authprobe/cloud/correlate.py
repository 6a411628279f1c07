"""Join device runs with cloud log events: AWSIotLogsV2 records by client id and the run's UTC window
(widened by a clock-skew margin), and the authorizer function's log lines by the client id they
mention, by their request id, or (weakest) by time alone.

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

from authprobe.aws.lambda_logs import FAILURE_PATTERN, system_line, worth_reading
from authprobe.cloud.base import LogEvent
from authprobe.cloud.connection_match import assign, joins_without_client_id, run_connection
from authprobe.cloud.logs_insights import Window
from authprobe.errors import ConfigError
from authprobe.redaction import redact, scrub_fingerprinted, secret_fingerprints

DEFAULT_SKEW_S = 120          # device clocks set by NTP drift little; unset ones are caught earlier
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


def lambda_event(ts_ms: int, message: str, request_id: str | None = None, log_stream: str | None = None) -> LogEvent:
    if request_id is None:
        m = _REQUEST_ID.search(message)
        request_id = m.group(0) if m else None
    fields: dict[str, Any] = {"message": redact(message), "requestId": request_id}
    if log_stream:
        fields["logStream"] = log_stream  # one execution environment's lines, in order
    return LogEvent("lambda", ts_ms, client_in_text(message), fields)


def event_from_insights_row(row: dict[str, str], source: str) -> LogEvent | None:
    """A Logs Insights result row (@timestamp, @message[, @requestId]) as a LogEvent."""
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
    return lambda_event(ts, message, row.get("@requestId") or None, row.get("@logStream") or None)


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
    stream = record.get("logStream") or record.get("logStreamName")  # (filter-log-events exports name it so)
    return lambda_event(ts, message, record.get("requestId"), stream if isinstance(stream, str) else None)


# --- runs -------------------------------------------------------------------------------------

@dataclass
class RunWindow:
    index: int
    run_id: str
    client_id: str | None
    start_ms: int | None
    end_ms: int | None
    clock: str  # "device" (device UTC) or "host" (when the collector saw it) or "none"

    def contains(self, ts: int) -> bool:
        return self.start_ms is not None and self.end_ms is not None and self.start_ms <= ts <= self.end_ms


def run_window(report: dict[str, Any], index: int = 0, skew_s: float = DEFAULT_SKEW_S) -> RunWindow:
    """The UTC window in which the cloud saw this run: the device's begin time to begin + run
    duration, widened by the skew margin. When the device clock was unset (or is more than an hour
    from the host's), the host's collection times stand in."""
    device = report.get("device") or {}
    end = report.get("end") or {}
    host = report.get("collection") or report.get("host") or {}
    device_start = parse_timestamp(device.get("utc"))
    host_start = parse_timestamp(host.get("started") or host.get("started_utc") or report.get("started_utc"))
    host_end = parse_timestamp(host.get("ended"))
    duration = end.get("ms")
    if not isinstance(duration, int | float):
        duration = sum(s.get("elapsed_ms") or 0 for s in report.get("steps", []))
    if device_start is not None and (host_start is None or abs(device_start - host_start) <= 3600_000):
        start, stop, clock = device_start, device_start + int(duration), "device"
    elif host_start is not None:
        stop = host_end if host_end is not None and host_end >= host_start else host_start + int(duration)
        start, clock = host_start, "host"
    else:
        start = stop = None
        clock = "none"
    skew = int(skew_s * 1000)
    return RunWindow(index, str(report.get("run_id")), device.get("client_id"),
                     None if start is None else start - skew, None if stop is None else stop + skew, clock)


@dataclass
class Correlated:
    report: dict[str, Any]
    window: RunWindow
    events: list[LogEvent] = field(default_factory=list)
    counted: dict[str, int] = field(default_factory=dict)  # events matched but not kept (passing runs)

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


class Joiner:
    """Feed events in any order; ask for each run's events at the end."""

    def __init__(self, reports: list[dict[str, Any]], skew_s: float = DEFAULT_SKEW_S, *,
                 keep_passing: bool = True):
        """keep_passing=False only counts the events of passing runs (their diagnosis is empty
        anyway), which keeps fleet-size correlation small."""
        self.runs = [Correlated(r, run_window(r, i, skew_s)) for i, r in enumerate(reports)]
        self.keep = [keep_passing or r.get("verdict") != "pass" for r in reports]
        self.by_client: dict[str, list[RunWindow]] = {}
        for c in self.runs:
            if c.window.client_id and c.window.start_ms is not None:
                self.by_client.setdefault(c.window.client_id, []).append(c.window)
        self.request_client: dict[str, str] = {}
        # When each invocation started: its lines belong to the run it started in, however long it ran
        # on (a function whose timeout is over IoT's 5 s wait writes its REPORT after the run ended).
        self.request_started: dict[str, int] = {}
        self.unattributed: list[LogEvent] = []
        self.by_connection: list[LogEvent] = []  # no client id: matched by port, SNI and time
        # The invocation running in each log stream (one execution environment's lines are in order;
        # lines without a stream name share one).
        self.current_request: dict[str | None, str | None] = {}
        self.seen = 0

    def windows(self) -> list[Window]:
        return [Window(c.window.client_id, c.window.start_ms, c.window.end_ms) for c in self.runs
                if c.window.client_id and c.window.start_ms is not None and c.window.end_ms is not None]

    def client_ids(self) -> set[str]:
        return set(self.by_client)

    def _attach(self, client_id: str, event: LogEvent, at_ms: int | None = None) -> bool:
        hit = False
        at = event.ts_ms if at_ms is None else at_ms
        for w in self.by_client.get(client_id, ()):
            if w.start_ms <= at <= w.end_ms:  # type: ignore[operator]
                if self.keep[w.index]:
                    self.runs[w.index].events.append(event)
                else:
                    key = "iot" if event.source == "iot" else "lambda"
                    counted = self.runs[w.index].counted
                    counted[key] = counted.get(key, 0) + 1
                hit = True
        return hit

    def add(self, event: LogEvent) -> None:
        self.seen += 1
        if event.source == "iot":
            if event.client_id:
                self._attach(event.client_id, event)
            elif joins_without_client_id(event.fields):
                self.by_connection.append(event)
            elif event.fields.get("eventType") == "Connect" and event.fields.get("status") == "Failure":
                self.unattributed.append(event)  # refused before MQTT (SNI, domain): no client id yet
            return
        message = event.fields.get("message", "")
        request_id = event.fields.get("requestId")
        stream = event.fields.get("logStream")
        system = system_line(message)  # START/END/REPORT, or their JSON-format events
        if system is not None and system.kind == "start":
            started = self.current_request[stream] = system.request_id or request_id
            if started:
                self.request_started.setdefault(started, event.ts_ms)
            return
        if system is not None:
            self.current_request[stream] = None
            if not (system.slow or system.timed_out):
                return  # a REPORT matters only when the run was cut off at (or ran past) the limit
        elif request_id is None and self.current_request.get(stream):
            # Lines a function prints carry no request id; in a log stream they sit between
            # their invocation's START and END.
            request_id = event.fields["requestId"] = self.current_request[stream]
        client_id = event.client_id
        if client_id and request_id:
            self.request_client.setdefault(request_id, client_id)
        elif request_id and not client_id:
            client_id = self.request_client.get(request_id)
        if client_id and client_id in self.by_client:
            event.fields.setdefault("attributed", "client_id" if event.client_id else "request_id")
            self._attach(client_id, event, self.request_started.get(request_id or ""))
        elif not client_id and (_FAILURE_TEXT.search(message) or system is not None):
            self.unattributed.append(event)

    def add_all(self, events: Iterable[LogEvent]) -> None:
        for e in events:
            self.add(e)

    def finish(self) -> list[Correlated]:
        """Settle the function lines that arrived before their request named a client; attribute
        the rest by time to runs that failed where the function would have run."""
        leftovers: list[LogEvent] = []
        for e in self.unattributed:
            cid = self.request_client.get(e.fields.get("requestId") or "")
            if cid and cid in self.by_client:
                e.fields["attributed"] = "request_id"
                self._attach(cid, e, self.request_started.get(e.fields.get("requestId") or ""))
            else:
                leftovers.append(e)
        self._join_by_connection()
        leftovers.sort(key=lambda e: e.ts_ms)
        stamps = [e.ts_ms for e in leftovers]
        for c in self.runs:
            w = c.window
            stage = _failing_step(c.report)
            if w.start_ms is None or w.end_ms is None or stage not in ("tls", "transport", "connect"):
                continue
            lo = bisect.bisect_left(stamps, w.start_ms)
            hi = bisect.bisect_right(stamps, w.end_ms)
            taken = 0
            for e in leftovers[lo:hi]:
                # A TLS-stage failure is only explained by a refusal logged before MQTT (SNI, domain).
                if stage == "tls" and e.source != "iot":
                    continue
                c.events.append(LogEvent(e.source, e.ts_ms, None, {**e.fields, "attributed": "time"}))
                taken += 1
                if taken >= MAX_TIME_ONLY_EVENTS:
                    break
        for c in self.runs:
            c.events.sort(key=lambda e: e.ts_ms)
            fingerprints = secret_fingerprints(c.report)
            if fingerprints:
                for e in c.events:
                    if e.source == "lambda":
                        e.fields["message"] = scrub_fingerprinted(e.fields.get("message", ""), fingerprints)
        return self.runs


    def _join_by_connection(self) -> None:
        """AuthNError entries go to runs that failed getting connected (or share their source port);
        HTTPS publishes to runs that did not pass. A run whose CONNECT is already in its own records
        (by client id) takes none by SNI or time alone: they would only be its neighbours'."""
        if not self.by_connection:
            return
        conns = [run_connection(c.report, c.window.start_ms, c.window.end_ms) for c in self.runs]
        stages = [None if _connect_known(c) else _failing_step(c.report) for c in self.runs]
        failed = [c.report.get("verdict") != "pass" for c in self.runs]
        authn = [e for e in self.by_connection if e.fields.get("eventType") == "Connection.AuthNError"]
        https = [e for e in self.by_connection if e.fields.get("eventType") != "Connection.AuthNError"]
        for events, eligible in ((authn, [s in ("tls", "transport", "connect") for s in stages]), (https, failed)):
            matched = assign([(e.ts_ms, e.fields) for e in events], conns, eligible)
            for c, pairs in zip(self.runs, matched, strict=True):
                for index, how in pairs:
                    e = events[index]
                    event = LogEvent(e.source, e.ts_ms, None, {**e.fields, "attributed": how})
                    if self.keep[c.window.index]:
                        c.events.append(event)
                    else:
                        c.counted["iot"] = c.counted.get("iot", 0) + 1


def _connect_known(run: Correlated) -> bool:
    return any(e.source == "iot" and e.client_id and e.fields.get("eventType") == "Connect" for e in run.events)


def _failing_step(report: dict[str, Any]) -> str | None:
    failing = next((s for s in report.get("steps", []) if s.get("status") == "fail"), None)
    return failing.get("step") if failing else None


def correlate(reports: list[dict[str, Any]], events: Iterable[LogEvent], *,
              skew_s: float = DEFAULT_SKEW_S) -> list[Correlated]:
    joiner = Joiner(reports, skew_s)
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
