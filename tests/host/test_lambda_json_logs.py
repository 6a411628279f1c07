"""Function logs in both of Lambda's formats (Text and JSON): which lines open and close an
invocation, which tell of a timeout or a failure, and how the join and the diagnosis read them."""

from __future__ import annotations

import json
import re

import pytest

from authprobe.aws import lambda_logs
from authprobe.cloud.correlate import correlate, lambda_event, parse_timestamp
from authprobe.cloud.logs_insights import function_query
from authprobe.report.diagnosis import diagnose
from tests.fixtures import cloud_state as cs

RID = "8f5a3c2e-1b7d-4e9a-a6c3-2d8b9e0f1a47"
START = parse_timestamp("2026-11-26T09:10:00Z")


def platform(kind: str, **record) -> str:
    return json.dumps({"time": "2026-11-26T09:10:00.500Z", "type": kind, "record": {"requestId": RID, **record}})


def report_json(status: str, duration: float, **extra) -> str:
    return platform("platform.report", status=status, metrics={"durationMs": duration, "billedDurationMs": 12,
                                                                "memorySizeMB": 128, "maxMemoryUsedMB": 40}, **extra)


@pytest.mark.parametrize("message, kind, duration, timed_out", [
    (f"START RequestId: {RID} Version: $LATEST", "start", None, False),
    (f"END RequestId: {RID}", "end", None, False),
    (f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms", "report", 15.74, False),
    (f"REPORT RequestId: {RID}\tDuration: 5000.00 ms\tStatus: timeout", "report", 5000.0, True),
    (platform("platform.start", version="$LATEST"), "start", None, False),
    (report_json("success", 8012.5), "report", 8012.5, False),
    (report_json("timeout", 3000.0, errorType="Sandbox.Timedout"), "report", 3000.0, True),
    (report_json("error", 3000.0, errorType="Sandbox.Timedout"), "report", 3000.0, True),
    (platform("platform.runtimeDone", status="timeout"), "runtime-done", None, True),
])
def test_system_lines_in_both_formats(message, kind, duration, timed_out):
    line = lambda_logs.system_line(message)
    assert (line.kind, line.request_id, line.duration_ms, line.timed_out) == (kind, RID, duration, timed_out)
    assert lambda_logs.is_timeout(message) == timed_out


@pytest.mark.parametrize("message", [
    "authorizing clientId='dev01'", '{"type": "platform.report", "record": "not a dict"}', "{not json platform.",
    '{"timestamp": "x", "level": "INFO", "message": "platform. is a word here"}',
])
def test_other_lines_are_no_system_lines(message):
    line = lambda_logs.system_line(message)
    assert line is None or (line.request_id is None and line.duration_ms is None)


@pytest.mark.parametrize("message, failure", [
    (report_json("timeout", 5000.0), True),
    (report_json("error", 12.0, errorType="Runtime.ExitError"), True),
    (report_json("success", 12.0), False),
    ('{"level": "ERROR", "errorType": "KeyError", "errorMessage": "x", "requestId": "r"}', True),
    ("Task timed out after 5.00 seconds", True),
    (f"START RequestId: {RID} Version: $LATEST", False),
])
def test_the_failure_pattern_reads_both_formats(message, failure):
    assert bool(re.search(lambda_logs.FAILURE_PATTERN, message)) == failure


def test_the_query_asks_for_slow_reports_in_both_formats():
    query = function_query(["dev01"], 100)
    assert '@type = "REPORT" and @duration >= 4900' in query
    assert 'type = "platform.report" and record.metrics.durationMs >= 4900' in query


def _joined(lines: list[str]):
    report = cs.report(failing_code=908)
    events = [lambda_event(START + i, m) for i, m in enumerate(lines)]
    (run,) = correlate([report], events, skew_s=5)
    return report, run


def test_a_json_timeout_joins_through_its_request_and_is_a_timeout():
    report, run = _joined([platform("platform.start", version="$LATEST"),
                           f"authorizing clientId='{cs.CLIENT_ID}'",  # print(): plain text, no request id
                           report_json("timeout", 5000.0, errorType="Sandbox.Timedout")])
    assert [e.fields["attributed"] for e in run.events] == ["client_id", "request_id"]
    diagnosis = diagnose(report, {"events": [e.as_dict() for e in run.events]})
    assert diagnosis[0]["root_cause"] == "lambda-timeout" and diagnosis[0]["decided"]


def test_a_json_report_past_five_seconds_without_a_timeout_is_a_timeout_for_iot():
    report, run = _joined([platform("platform.start"), f"authorizing clientId='{cs.CLIENT_ID}'",
                           report_json("success", 8004.0)])
    diagnosis = diagnose(report, {"events": [e.as_dict() for e in run.events]})
    assert diagnosis[0]["root_cause"] == "lambda-timeout"


def test_a_quick_json_report_is_dropped_and_a_json_error_is_an_error():
    _, run = _joined([platform("platform.start"), f"authorizing clientId='{cs.CLIENT_ID}'",
                      report_json("success", 12.0)])
    assert len(run.events) == 1  # the quick report says nothing
    report, run = _joined([platform("platform.start"), f"authorizing clientId='{cs.CLIENT_ID}'",
                           json.dumps({"timestamp": "t", "level": "ERROR", "errorType": "KeyError",
                                       "errorMessage": "'dev01'", "stackTrace": [], "requestId": RID})])
    diagnosis = diagnose(cs.report(failing_code=906), {"events": [e.as_dict() for e in run.events]})
    assert diagnosis[0]["root_cause"] == "lambda-error"


@pytest.mark.parametrize("fmt", ["Text", "JSON"])
def test_written_lines_read_back_as_written(fmt):
    when = "2026-11-26T09:10:00.500Z"
    assert lambda_logs.system_line(lambda_logs.start_line(fmt, when, RID)).kind == "start"
    report = lambda_logs.report_line(fmt, when, RID, duration_ms=5000.0, memory_mb=128, max_memory_mb=40,
                                     init_ms=120.5, status="timeout", error_type="Sandbox.Timedout")
    line = lambda_logs.system_line(report)
    assert (line.kind, line.duration_ms, line.timed_out) == ("report", 5000.0, True)
    assert (lambda_logs.end_line(fmt, RID) is None) == (fmt == "JSON")
    assert (lambda_logs.timeout_line(fmt, when, RID, 5) is None) == (fmt == "JSON")
