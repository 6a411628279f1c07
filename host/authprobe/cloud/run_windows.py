"""Where a run sits in time and how far it got: what the join needs to give every piece of cloud
evidence to the run that caused it, or to none.

- The window is the run's own span as the host saw it (first to last record, host clock, which is
  NTP-synced like AWS's), widened by a small margin for transport and log-timestamp jitter. The
  device's clock anchors the window only when the report carries no host time at all (a report
  file from elsewhere); it is evidence about the device, not about when the cloud saw it.
- The level is the stage the run reached: a run that stopped before TLS cannot have IoT records or
  invocations, one that stopped at TLS cannot have an invocation, one that never subscribed cannot
  have a Subscribe.
- The session time is when the run's connection reached AWS IoT (the start of its TLS step): an
  event belongs to the run whose session it follows most closely."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authprobe.cloud.timestamps import iso_ms, parse_timestamp

HOST_MARGIN_S = 5.0          # around what the host saw: serial latency, AWS's log timestamps
DEVICE_SKEW_S = 120.0        # around the device's own clock (NTP-set clocks drift little)
DEVICE_CLOCK_TRUSTED_MS = 3600_000  # a device clock further than this from the host's is wrong
# An event logged this long before the run's estimated connection may still be the run's. The
# estimate (the host's receive time of the begin record plus the device's step times) is late by the
# serial latency and the host/AWS clock offset at most; the TLS handshake comes on top before
# anything is logged. The steps' own printing time makes the estimate early, the safe way.
SESSION_SLACK_MS = 250
NEARBY_MS = 60_000           # events of the run's client id this far outside the window: "nearby"

# How far a run got, as what the cloud can have seen of it.
OFFLINE, TLS, SESSION, SUBSCRIBED, FULL = range(5)
LEVEL_WORDS = {OFFLINE: "stopped before TLS: the cloud never saw it",
               TLS: "stopped in the TLS handshake: no MQTT session, no invocation",
               SESSION: "stopped before subscribing",
               SUBSCRIBED: "stopped before publishing",
               FULL: "reached publish/subscribe"}
_STEP_LEVEL = {"config": OFFLINE, "runtime": OFFLINE, "wifi": OFFLINE, "clock": OFFLINE, "dns": OFFLINE,
               "tcp": OFFLINE, "tls": TLS, "transport": SESSION, "connect": SESSION, "pubsub": FULL,
               "library": FULL}
# pubsub failures that tell how far the round trip got (firmware/selftest/steps_session.py):
# taken over while idle (before SUBSCRIBE), dropped after SUBSCRIBE or refused in the SUBACK.
_PUBSUB_LEVEL = {1005: SESSION, 1001: SUBSCRIBED, 1004: SUBSCRIBED}
# The level an IoT record needs its run to have reached.
_EVENT_LEVEL = {"Subscribe": SUBSCRIBED, "Publish-In": FULL, "Publish-Out": FULL}
_ORDER = tuple(_STEP_LEVEL)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def reached_level(report: dict[str, Any]) -> int:
    """The stage a run reached (OFFLINE..FULL). A failed step ends the run there; an unfinished run
    is taken to be in the step after the last one it reported."""
    steps = report.get("steps") or []
    failing = next((s for s in steps if s.get("status") == "fail"), None)
    if failing is not None and failing.get("step") in _STEP_LEVEL:
        if failing.get("step") == "pubsub":
            return _PUBSUB_LEVEL.get(failing.get("code"), FULL)
        return _STEP_LEVEL[failing["step"]]
    if report.get("verdict") == "pass":
        return FULL
    reported = [s.get("step") for s in steps if s.get("step") in _STEP_LEVEL and s.get("status") != "skip"]
    if not reported:
        return OFFLINE if failing is None else FULL  # an unknown failing step: claim nothing less
    after = _ORDER.index(reported[-1]) + (0 if failing is not None else 1)
    return _STEP_LEVEL[_ORDER[min(after, len(_ORDER) - 1)]]


def failing_step(report: dict[str, Any]) -> str | None:
    failing = next((s for s in report.get("steps") or [] if s.get("status") == "fail"), None)
    return failing.get("step") if failing else None


def event_level(fields: dict[str, Any]) -> int:
    """The level a run must have reached to have caused an IoT record with a client id."""
    return _EVENT_LEVEL.get(fields.get("eventType"), SESSION)


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
               if _STEP_LEVEL.get(s.get("step"), FULL) == OFFLINE and _number(s.get("elapsed_ms")))


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
