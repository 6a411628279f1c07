"""How far a run got, as what the cloud can have seen of it: a run that stopped before TLS cannot
have IoT records or invocations, one that stopped at TLS cannot have an invocation, one that never
subscribed cannot have a Subscribe. The join (correlate) gives a run only events its stage allows,
and log_delivery knows from it which records are due."""

from __future__ import annotations

from typing import Any

# How far a run got, as what the cloud can have seen of it.
OFFLINE, TLS, SESSION, SUBSCRIBED, FULL = range(5)
LEVEL_WORDS = {OFFLINE: "stopped before TLS: the cloud never saw it",
               TLS: "stopped in the TLS handshake: no MQTT session, no invocation",
               SESSION: "stopped before subscribing",
               SUBSCRIBED: "stopped before publishing",
               FULL: "reached publish/subscribe"}
STEP_LEVEL = {"config": OFFLINE, "runtime": OFFLINE, "wifi": OFFLINE, "clock": OFFLINE, "dns": OFFLINE,
               "tcp": OFFLINE, "tls": TLS, "transport": SESSION, "connect": SESSION, "pubsub": FULL,
               "library": FULL}
# pubsub failures that tell how far the round trip got (firmware/selftest/steps_session.py):
# taken over while idle (before SUBSCRIBE), dropped after SUBSCRIBE or refused in the SUBACK.
_PUBSUB_LEVEL = {1005: SESSION, 1001: SUBSCRIBED, 1004: SUBSCRIBED}
# The level an IoT record needs its run to have reached.
_EVENT_LEVEL = {"Subscribe": SUBSCRIBED, "Publish-In": FULL, "Publish-Out": FULL}
_ORDER = tuple(STEP_LEVEL)


def reached_level(report: dict[str, Any]) -> int:
    """The stage a run reached (OFFLINE..FULL). A failed step ends the run there; an unfinished run
    is taken to be in the step after the last one it reported."""
    steps = report.get("steps") or []
    failing = next((s for s in steps if s.get("status") == "fail"), None)
    if failing is not None and failing.get("step") in STEP_LEVEL:
        if failing.get("step") == "pubsub":
            return _PUBSUB_LEVEL.get(failing.get("code"), FULL)
        return STEP_LEVEL[failing["step"]]
    if report.get("verdict") == "pass":
        return FULL
    reported = [s.get("step") for s in steps if s.get("step") in STEP_LEVEL and s.get("status") != "skip"]
    if not reported:
        return OFFLINE if failing is None else FULL  # an unknown failing step: claim nothing less
    after = _ORDER.index(reported[-1]) + (0 if failing is not None else 1)
    return STEP_LEVEL[_ORDER[min(after, len(_ORDER) - 1)]]


def failing_step(report: dict[str, Any]) -> str | None:
    failing = next((s for s in report.get("steps") or [] if s.get("status") == "fail"), None)
    return failing.get("step") if failing else None


def event_level(fields: dict[str, Any]) -> int:
    """The level a run must have reached to have caused an IoT record with a client id."""
    return _EVENT_LEVEL.get(fields.get("eventType"), SESSION)
