"""Logs that have not arrived yet. CloudWatch delivers AWS IoT's and Lambda's log records seconds to
minutes after the event, so a run correlated right after it ended may find nothing because nothing
was delivered yet. Such a run is provisional: the join says what it is still waiting for, and the
diagnosis does not decide from the absence of records until the delivery delay has passed.

What a run is waiting for follows from the stage it reached: a run that stopped before TLS left
nothing to log; one that reached AWS IoT's MQTT endpoint has a Connect record due (and a Disconnect
once it connected), and the authorizer function's lines when it was invoked. Only what the account
logs is due (event-level logging): no Connect record when Connect is not logged, and a
Connection.AuthNError entry for a run refused at authentication only when that event type is."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from authprobe.aws import authn_error, iot_logging
from authprobe.cloud.base import DEFAULT_LOG_DELAY_S
from authprobe.cloud.stages import OFFLINE, TLS
from authprobe.report.diagnosis import BEFORE_INVOKE, cause_from_text

__all__ = ["DEFAULT_LOG_DELAY_S", "awaiting", "logged_event_types", "provisional_note", "still_due"]

# The service stamps a run's last records a moment after the device reported its end (it logs a
# refusal after closing the connection, a Disconnect when it notices the close).
STAMP_SLACK_S = 1.0
# Failures after which AWS IoT logs nothing: no ALPN (an HTTP 400 or a protocol error), a config the
# device refused itself, a transport that timed out.
_NOTHING_LOGGED = frozenset({"alpn-missing", "config-invalid", "tcp-unreachable"})
# Causes of a TLS failure that AWS IoT itself refuses (and may log); the others are the device's.
_REFUSED_IN_TLS = frozenset({"sni-mismatch", "sni-missing", "port-not-443"})
# Causes of a refusal at authentication: AWS IoT writes a Connection.AuthNError entry for them.
_AUTHN_CAUSES = frozenset(authn_error.REASON_FOR_CAUSE)
# What an account logs when nobody said (no cloud-check, no logging options): the V2 defaults, with
# the event types that are off until enabled left out.
DEFAULT_LOGGED = frozenset(iot_logging.EVENT_TYPES) - frozenset(iot_logging.OFF_UNLESS_ENABLED)


def logged_event_types(options: dict[str, Any] | None) -> frozenset[str]:
    """The event types whose failures (ERROR) GetV2LoggingOptions `options` has written."""
    return frozenset(t for t in iot_logging.EVENT_TYPES
                     if iot_logging.effective(options, t).logs(iot_logging.NEEDED_LEVEL))


def awaiting(report: dict[str, Any], level: int, events: list[Any], *, function_read: bool,
             logged: Collection[str] | None = None) -> list[str]:
    """What the cloud should have logged of this run and is not among its events (LogEvents):
    empty when everything due is there, or when nothing is due (a pass: its diagnosis is empty
    whatever arrives; a run that never reached the cloud). `logged`: the event types the account
    logs (None: DEFAULT_LOGGED)."""
    logged = DEFAULT_LOGGED if logged is None else logged
    if report.get("verdict") == "pass" or level == OFFLINE:
        return []
    if level == TLS:
        failing = next((s for s in report.get("steps") or [] if s.get("status") == "fail"), {})
        if not _REFUSED_IN_TLS & set(failing.get("root_causes") or ()):
            return []
        return [] if any(e.source == "iot" for e in events) else ["AWS IoT's refusal before MQTT, if it logged one"]
    failing = next((s for s in report.get("steps") or [] if s.get("status") == "fail"), {})
    if failing and failing.get("step") in ("transport", "connect") \
            and set(failing.get("root_causes") or ()) <= _NOTHING_LOGGED:
        return []
    authn_due = (authn_error.EVENT_TYPE in logged and failing.get("step") in ("transport", "connect")
                 and bool(_AUTHN_CAUSES & set(failing.get("root_causes") or ()))
                 and not any(e.source == "iot" and authn_error.is_authn_error(e.fields) for e in events))
    authn_missing = ["the Connection.AuthNError entry"] if authn_due else []
    if "Connect" not in logged:
        return authn_missing   # nothing else of a refused connection is written
    if failing.get("step") == "transport" and any(e.source == "iot" for e in events):
        return []   # refused before its CONNECT: the refusal (with or without its client id) is there
    iot = [e for e in events if e.source == "iot" and e.fields.get("attributed") != "time"]
    connects = [e for e in iot if e.fields.get("eventType") == "Connect"]
    if not connects:
        return ["the Connect record"] + authn_missing
    missing = []
    accepted = [e.ts_ms for e in connects if e.fields.get("status") == "Success"]
    if accepted and not any(e.fields.get("eventType") == "Disconnect" and e.ts_ms >= max(accepted) for e in iot):
        missing.append("the Disconnect record")
    refused_causes = {cause_from_text(" ".join(str(e.fields.get(k) or "") for k in ("reason", "details")))
                      for e in connects}
    refused_before_invoke = bool(refused_causes & BEFORE_INVOKE)
    # A refusal the Connect record names as another kind (a policy's deny) has no AuthNError entry.
    if not accepted and not ({c for c in refused_causes if c} - _AUTHN_CAUSES):
        missing += authn_missing
    if function_read and not accepted and not refused_before_invoke and not any(e.source == "lambda" for e in events):
        missing.append("the authorizer function's log lines")
    return missing


def still_due(report_end_ms: int | None, now_ms: int, log_delay_s: float) -> bool:
    """Whether logs of a run that ended at `report_end_ms` may still be on their way. A delay of 0
    means the records are there as soon as they happen (the stand-in's default): never."""
    if report_end_ms is None or log_delay_s <= 0:
        return False
    return now_ms - report_end_ms < (log_delay_s + STAMP_SLACK_S) * 1000


def provisional_note(missing: list[str], log_delay_s: float) -> str:
    return (f"provisional: {' and '.join(missing)} not delivered yet (CloudWatch delivers logs up to "
            f"--log-delay {log_delay_s:g} s after the run); run again later, or with --wait")
