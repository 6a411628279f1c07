"""What Lambda writes to a function's log group, as AWS documents it: the lines that tell of a
failure and the lines that open and close an invocation, with its duration. The Logs Insights query,
the join, the diagnosis and the stand-in all read or write function logs with these, so they cannot
disagree.

Two formats (LoggingConfig.LogFormat, docs/aws-iot-now.md §5):
- Text: `START RequestId: <id> Version: $LATEST`, `END RequestId: <id>`, `REPORT RequestId: <id>\\t
  Duration: 15.74 ms\\t...` and on a timeout `... Task timed out after 5.00 seconds` [C].
- JSON: system events as `{"time", "type", "record"}` (the Telemetry API schema [C]):
  `platform.start` {requestId}, `platform.report` {requestId, status, errorType?, metrics {durationMs,
  billedDurationMs, memorySizeMB, maxMemoryUsedMB, initDurationMs?}}, `platform.runtimeDone`. A timeout
  is `status: "timeout"` (AWS's runtime code, [C]) with `errorType: "Sandbox.Timedout"` [I]; whether a
  "Task timed out" line is written too is not documented [?]."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

# Lines of the authorizer function that tell about a failure, whoever the client was, in either
# format (JSON: an errorMessage field, a system event whose status is not success).
FAILURE_PATTERN = (r"(?i)(task timed out|\[error\]|errorMessage|traceback|exception|runtime exited|"
                   r"sandbox\.timedout|status\W{1,4}(timeout|error|failure))")
# A text REPORT line's duration; one this long was cut off at (or ran past) IoT's 5 s limit.
REPORT_DURATION = re.compile(r"Duration:\s*([0-9.]+)\s*ms")
SLOW_REPORT_MS = 4900
# Logs Insights conditions for the REPORT lines of slow invocations: the discovered fields of text
# REPORT lines (@type, @duration) and the JSON report's own fields.
SLOW_REPORT_FILTER = (f"(@type = \"REPORT\" and @duration >= {SLOW_REPORT_MS}) or "
                      f"(type = \"platform.report\" and record.metrics.durationMs >= {SLOW_REPORT_MS})")
_TEXT_SYSTEM = re.compile(r"^(START|END|REPORT) RequestId:\s*([0-9a-fA-F-]{36})")
_JSON_KINDS = {"platform.start": "start", "platform.report": "report", "platform.runtimeDone": "runtime-done"}


@dataclass(frozen=True)
class SystemLine:
    """A line Lambda itself writes around an invocation: kind "start", "end", "report" or
    "runtime-done", its request id, the duration when it gives one, and whether it says the
    invocation timed out."""

    kind: str
    request_id: str | None
    duration_ms: float | None = None
    timed_out: bool = False
    status: str | None = None

    @property
    def slow(self) -> bool:
        return self.duration_ms is not None and self.duration_ms >= SLOW_REPORT_MS


def system_line(message: str) -> SystemLine | None:
    """The system line `message` is, in the text or the JSON format; None for any other line."""
    text = message.lstrip()
    m = _TEXT_SYSTEM.match(text)
    if m:
        kind = m.group(1).lower()
        duration = REPORT_DURATION.search(text) if kind == "report" else None
        return SystemLine(kind, m.group(2), float(duration.group(1)) if duration else None,
                          kind == "report" and "status: timeout" in text.lower())
    if not text.startswith("{") or '"platform.' not in text:
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    kind = _JSON_KINDS.get(event.get("type")) if isinstance(event, dict) else None
    if kind is None:
        return None
    record: Any = event.get("record")
    record = record if isinstance(record, dict) else {}
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    duration = metrics.get("durationMs")
    status = record.get("status") if isinstance(record.get("status"), str) else None
    timed_out = status == "timeout" or record.get("errorType") == "Sandbox.Timedout"
    request_id = record.get("requestId") if isinstance(record.get("requestId"), str) else None
    return SystemLine(kind, request_id, float(duration) if isinstance(duration, int | float)
                      and not isinstance(duration, bool) else None, timed_out, status)


def is_timeout(message: str) -> bool:
    """A line that says its invocation timed out, in either format."""
    if "task timed out" in message.lower():
        return True
    line = system_line(message)
    return line is not None and line.timed_out


def worth_reading(line: str) -> bool:
    """Cheap test on a raw exported line: may it be a system line (either format)?"""
    return "RequestId" in line or "platform." in line


# --- writing them (the stand-in) ------------------------------------------------------------------

def _json_event(when_iso: str, kind: str, record: dict[str, Any]) -> str:
    return json.dumps({"time": when_iso, "type": kind, "record": record}, separators=(",", ":"))


def init_line(log_format: str, when_iso: str, runtime_version: str, function: str) -> str:
    if log_format == "JSON":
        return _json_event(when_iso, "platform.initStart", {
            "initializationType": "on-demand", "phase": "init", "runtimeVersion": runtime_version,
            "functionName": function, "functionVersion": "$LATEST"})
    return f"INIT_START Runtime Version: {runtime_version}"


def start_line(log_format: str, when_iso: str, request_id: str) -> str:
    if log_format == "JSON":
        return _json_event(when_iso, "platform.start", {"requestId": request_id, "version": "$LATEST"})
    return f"START RequestId: {request_id} Version: $LATEST"


def end_line(log_format: str, request_id: str) -> str | None:
    """Text only: no JSON END event appears at the default system log level [I]."""
    return None if log_format == "JSON" else f"END RequestId: {request_id}"


def timeout_line(log_format: str, when_iso: str, request_id: str, timeout_s: float) -> str | None:
    """Text: `<time> <request id> Task timed out after N.NN seconds`. JSON: none; the report's
    status says it [?] (AWS documents neither way)."""
    if log_format == "JSON":
        return None
    return f"{when_iso} {request_id} Task timed out after {timeout_s:.2f} seconds"


def report_line(log_format: str, when_iso: str, request_id: str, *, duration_ms: float, memory_mb: int,
                max_memory_mb: int, init_ms: float | None, status: str, error_type: str | None = None) -> str:
    """`status`: "success", "error" or "timeout" (the Telemetry API's values)."""
    billed = math.ceil(duration_ms + (init_ms or 0)) if log_format == "JSON" else math.ceil(duration_ms)
    if log_format == "JSON":
        metrics: dict[str, Any] = {"durationMs": round(duration_ms, 2), "billedDurationMs": billed,
                                   "memorySizeMB": memory_mb, "maxMemoryUsedMB": max_memory_mb}
        if init_ms is not None:
            metrics["initDurationMs"] = round(init_ms, 2)
        record: dict[str, Any] = {"requestId": request_id, "status": status, "metrics": metrics}
        if error_type:
            record["errorType"] = error_type
        return _json_event(when_iso, "platform.report", record)
    line = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
            f"Memory Size: {memory_mb} MB\tMax Memory Used: {max_memory_mb} MB")
    if init_ms is not None:
        line += f"\tInit Duration: {init_ms:.2f} ms"
    if status == "timeout":
        line += "\tStatus: timeout"
    return line


def error_line(log_format: str, when_iso: str, request_id: str, error: dict[str, Any]) -> str:
    """An uncaught error. Text: `[ERROR] Type: message` and the trace. JSON: one object with
    errorType, errorMessage and stackTrace, as the Python runtime logs it [I]."""
    trace = error.get("stackTrace") or []
    if log_format == "JSON":
        return json.dumps({"timestamp": when_iso, "level": "ERROR", "message": error.get("errorMessage"),
                           "errorType": error.get("errorType"), "errorMessage": error.get("errorMessage"),
                           "stackTrace": list(trace), "requestId": request_id}, separators=(",", ":"))
    return (f"[ERROR] {error.get('errorType')}: {error.get('errorMessage')}"
            + ("\nTraceback (most recent call last):\n" + "\n".join(trace) if trace else ""))
