"""Joining IoT log records that carry no client id to runs: `Connection.AuthNError` entries (the
connection was refused before AWS IoT read an MQTT client id, docs/aws-iot-now.md §1) and HTTPS
publishes (`Publish-In` with protocol HTTP: HTTPS has no client id, DG http.html).

Such a record is matched on what both sides know of the connection: the run's window, the source
port of its TCP connection (when the device reported it), the SNI it sent and the topic it used.
The matcher takes those as inputs (`RunConnection`), so whatever builds the window (device or host
clock, stage-aware margins) decides the time side and this module only the connection side.

A source port match is exact where no NAT sits between the device and the cloud (the stand-in, a
host on a public address); behind NAT the cloud sees another port, so a port that differs never
rules a record out on its own: it only loses to a record of the window that does match it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from authprobe.aws import authn_error

# How a record was matched, strongest first; the join stores it as the event's "attributed".
BY_PORT, BY_SNI, BY_TIME = "source_port", "sni", "time"
MAX_LOOSE_MATCHES = 20  # records matched by SNI or time alone, per run (a scanner must not flood one)


@dataclass(frozen=True)
class RunConnection:
    """What a run knows of its own connection: its window in epoch ms, the local source port of its
    TCP connection (None when the device does not report it), the SNI it sent, its topic."""

    start_ms: int
    end_ms: int
    source_port: int | None = None
    sni: str | None = None
    topic: str | None = None
    # The root causes the run's failing step leaves open (None: not known). A record matched by SNI
    # or time alone must name one of them: a neighbour's refusal at another stage explains nothing.
    causes: frozenset[str] | None = None


def joins_without_client_id(record: dict[str, Any]) -> bool:
    """A record this module matches: an AuthNError entry, or an HTTPS publish."""
    if authn_error.is_authn_error(record):
        return True
    return record.get("eventType") == "Publish-In" and str(record.get("protocol") or "").upper() == "HTTP"


def match(record: dict[str, Any], ts_ms: int, run: RunConnection) -> str | None:
    """How `record` (logged at `ts_ms`) matches `run`: BY_PORT, BY_SNI, BY_TIME, or None when it
    cannot be this run's (outside the window, another SNI, another topic)."""
    if not run.start_ms <= ts_ms <= run.end_ms:
        return None
    sni = authn_error.sni_of(record)
    if sni is not None and run.sni is not None and sni != run.sni.lower():
        return None
    topic = record.get("topicName")
    if topic and run.topic and record.get("eventType") == "Publish-In" and topic != run.topic:
        return None
    port = authn_error.source_port_of(record)
    if port is not None and run.source_port is not None and port == run.source_port:
        return BY_PORT
    if run.causes is not None and authn_error.is_authn_error(record):
        confirmed, supported = authn_error.causes_for(record)
        if not run.causes.intersection(confirmed + supported):
            return None
    if sni is not None and run.sni is not None:
        return BY_SNI
    if topic and run.topic and topic == run.topic:
        return BY_SNI  # as specific as an SNI: the run's own topic
    return BY_TIME


_STRENGTH = {BY_PORT: 0, BY_SNI: 1, BY_TIME: 2}


def assign(records: Iterable[tuple[int, dict[str, Any]]], runs: list[RunConnection | None],
           eligible: list[bool], pick: Callable[[int, list[int]], int] | None = None) -> list[list[tuple[int, str]]]:
    """For each run, the (record index, how) pairs that belong to it. `records` are (ts_ms, fields);
    `eligible[i]` says whether run i may take records by SNI or time alone (a run that failed where
    such a record could explain it); a source-port match counts whatever the stage. Each record goes
    to one run at most: a port match over any other, then the strongest match; among runs it matches
    equally well, `pick(record index, run indexes)` chooses (default: the first). A run that found
    its own record by port takes no others by SNI or time."""
    out: list[list[tuple[int, str]]] = [[] for _ in runs]
    loose = [0] * len(runs)
    per_record = []
    for ts_ms, record in records:
        matches = [(i, how) for i, run in enumerate(runs) if run is not None
                   for how in [match(record, ts_ms, run)] if how is not None]
        exact = [(i, how) for i, how in matches if how == BY_PORT]
        per_record.append(exact or matches)
    knows_its_own = {i for matches in per_record for i, how in matches if how == BY_PORT}
    for index, matches in enumerate(per_record):
        allowed = [(i, how) for i, how in matches if how == BY_PORT
                   or (eligible[i] and i not in knows_its_own and loose[i] < MAX_LOOSE_MATCHES)]
        if not allowed:
            continue
        best = min(_STRENGTH[how] for _, how in allowed)
        tied = [i for i, how in allowed if _STRENGTH[how] == best]
        owner = tied[0] if len(tied) == 1 or pick is None else pick(index, tied)
        how = next(how for i, how in allowed if i == owner)
        if how != BY_PORT:
            loose[owner] += 1
        out[owner].append((index, how))
    return out


def run_connection(report: dict[str, Any], start_ms: int | None, end_ms: int | None) -> RunConnection | None:
    """The connection side of a run from its report: the tcp step's `local_port` (CPython reports
    it; MicroPython and CircuitPython sockets have no getsockname), the tls step's `sni`, the test
    topic of the pubsub step, the causes its failing step leaves open. None without a window."""
    if start_ms is None or end_ms is None:
        return None
    port = sni = topic = None
    causes: frozenset[str] | None = None
    for step in report.get("steps") or []:
        if causes is None and step.get("status") == "fail" and isinstance(step.get("root_causes"), list):
            causes = frozenset(step["root_causes"])
        details = step.get("details") or {}
        if not isinstance(details, dict):
            continue
        if step.get("step") == "tcp":
            port = authn_error.port_of(details.get("local_port"))
        elif step.get("step") == "tls" and isinstance(details.get("sni"), str):
            sni = details["sni"]
        elif step.get("step") == "pubsub" and isinstance(details.get("topic"), str):
            topic = details["topic"]
    return RunConnection(start_ms, end_ms, port, sni, topic, causes)
