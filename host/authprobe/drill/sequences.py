"""Drill sequences: the busy line correlation must get right, beside the single-fault cases. Each
sequence makes several runs whose cloud records sit close together, correlates them through the
one pipeline, and checks every run's diagnosis and its evidence list exactly: the evidence must be
what that run caused in the stand-in's records, no foreign event, nothing of its own missing.

- back-to-back: one board, one client id, pass -> tcp fail -> signature fail -> pass within 20 s;
  each run correlated alone (the others stored beside it) and all four in one call.
- tray: 8 boards in parallel with client ids that share prefixes (tray-1, tray-10, tray-100...),
  two failing differently.
- logs-delayed: a run correlated before the stand-in delivers its records (provisional), then
  with --wait's polling until they arrive.
- replays: a run made while cloud-check replays the same device's credentials over and over, the
  replays recorded in the run store; correlated with the stand-in's replay marks and without them
  (as on AWS, where only the recorded times tell a replay).

What a run caused is read from the stand-in's own files, by rules that do not use the join's code:
IoT records of its client id during its run, the Connection.AuthNError entries of its connection
(its source port when it reported one, else written during its run when it was refused in TLS, the
transport or CONNECT for a custom-auth cause), the function's lines of the invocations that name its
client (grouped per log stream from START to END), failures of invocations that name no client
during its run when it failed where the function ran, nothing marked as a replay."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from authprobe.aws import authn_error
from authprobe.aws.lambda_logs import FAILURE_PATTERN, REPORT_DURATION, SLOW_REPORT_MS
from authprobe.cloud.base import LogEvent
from authprobe.cloud.checks import CheckContext, run_checks
from authprobe.cloud.correlate import host_span, parse_timestamp
from authprobe.cloud.device_settings import settings_from_config
from authprobe.cloud.local import LocalCloud
from authprobe.cloud.pipeline import DiagnosedRun, authorizer_function, diagnose_runs, diagnose_with_cloud
from authprobe.cloud.replays import Replay
from authprobe.drill import cases as drill_cases
from authprobe.drill.runner import VirtualBoardRunner, probe_cpython, wait_for_records
from authprobe.drill.standin import StandIn, example_signature

BACK_TO_BACK_LIMIT_S = 20.0
TRAY_SUFFIXES = ("1", "10", "100", "11", "2", "20", "21", "200")
_CLIENT = re.compile(r"""client_?id["']?\s*[:=]\s*["']?([^"',\s}]+)""", re.IGNORECASE)
_FAILURE = re.compile(FAILURE_PATTERN)
_AFTER_S = 3.0   # how long after its last record a run's connection may still be logged


class Bench(Protocol):
    """What a sequence needs of the drill: its stand-ins, its boards and its run store."""

    store: Any

    def standin(self, kind: str) -> StandIn: ...

    def virtual_board(self, runtime: str) -> VirtualBoardRunner: ...


@dataclass
class SequenceOutcome:
    diagnosed: list[str | None] = field(default_factory=list)   # per run: the lead root cause (None: pass)
    problems: list[str] = field(default_factory=list)           # what was wrong; empty when it passed
    run_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sequence:
    name: str
    runtime: str
    injected: str
    expected: tuple[str | None, ...]
    play: Callable[[Bench], SequenceOutcome]

    @property
    def full_name(self) -> str:
        return f"{self.name}@{self.runtime}"


# -- what each run caused, from the stand-in's own files -----------------------------------------------

def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


def _function_lines(standin: StandIn, function: str | None) -> list[tuple[dict[str, Any], str | None]]:
    """The function's unmarked lines that matter, each with the client its invocation named."""
    if not function:
        return []
    items = _lines(standin.state_dir / "logs" / "lambda" / f"{function}.jsonl")
    current: dict[str, str | None] = {}
    request_of: list[str | None] = []
    client_of: dict[str, str] = {}
    for item in items:
        message = str(item.get("message", ""))
        stream = item.get("logStream", "")
        rid = None
        if message.startswith("START RequestId: "):
            rid = current[stream] = message.split()[2]
        elif message.startswith(("END RequestId: ", "REPORT RequestId: ")):
            rid = message.split()[2]
            current[stream] = None
        else:
            rid = current.get(stream)
        request_of.append(rid)
        m = _CLIENT.search(message)
        if m and rid:
            client_of.setdefault(rid, m.group(1))
    out = []
    for item, rid in zip(items, request_of, strict=True):
        message = str(item.get("message", ""))
        if item.get("replay") or message.startswith(("START RequestId", "END RequestId", "INIT_START")):
            continue
        slow = REPORT_DURATION.search(message)
        if message.startswith("REPORT RequestId") and (not slow or float(slow.group(1)) < SLOW_REPORT_MS):
            continue
        m = _CLIENT.search(message)
        client = m.group(1) if m else client_of.get(rid or "")
        if client is None and not (_FAILURE.search(message) or slow):
            continue
        out.append((item, client))
    return out


def caused(standin: StandIn, report: dict[str, Any], function: str | None, until_ms: int | None = None) -> Counter:
    """The evidence keys of what this run caused: its client's IoT records and function lines while
    it ran (up to `until_ms`, the next run of its board), failures naming no client when it failed
    where the function ran."""
    client = (report.get("device") or {}).get("client_id")
    span = host_span(report)
    if span is None:
        return Counter()
    lo, hi = span[0], span[1] + int(_AFTER_S * 1000)
    if until_ms is not None:
        hi = min(hi, until_ms)
    failing = next((s for s in report.get("steps", []) if s.get("status") == "fail"), {})
    out: Counter = Counter()
    port = next((authn_error.port_of((s.get("details") or {}).get("local_port")) for s in report.get("steps", [])
                 if s.get("step") == "tcp" and isinstance(s.get("details"), dict)), None)
    refused = failing.get("step") in ("tls", "transport", "connect") \
        and bool(set(failing.get("root_causes") or ()) & set(authn_error.REASON_FOR_CAUSE))
    authn: list[tuple[int, dict[str, Any]]] = []
    for rec in _lines(standin.state_dir / "logs" / "AWSIotLogsV2.jsonl"):
        ts = parse_timestamp(rec.get("timestamp"))
        if ts is None or not lo <= ts <= hi:
            continue
        if rec.get("clientId") == client:
            out[("iot", ts, rec.get("eventType"))] += 1
        elif authn_error.is_authn_error(rec) and rec.get("clientId") is None:
            authn.append((ts, rec))
    # Without its port, an entry is the run's only when nothing else tells of its refusal (its own
    # Connect record names it, and the entry may be anyone's).
    own_connect = any(key[2] == "Connect" for key in out)
    for ts, rec in authn:
        theirs = authn_error.source_port_of(rec)
        if (port is not None and theirs == port) or (port is None and refused and not own_connect):
            out[("iot", ts, rec.get("eventType"))] += 1
    for item, who in _function_lines(standin, function):
        ts = item.get("timestamp")
        if not isinstance(ts, int) or not lo <= ts <= hi:
            continue
        if who == client or (who is None and failing.get("step") in ("transport", "connect")):
            out[("lambda", ts, str(item.get("message", ""))[:12])] += 1
    return out


def evidence_keys(run: DiagnosedRun) -> Counter:
    return Counter(("iot", e["ts_ms"], e.get("eventType")) if e["source"] == "iot"
                   else ("lambda", e["ts_ms"], str(e.get("message", ""))[:12]) for e in run.evidence.events)


def _judge(label: str, run: DiagnosedRun, expected: str | None, truth: Counter, out: SequenceOutcome) -> None:
    lead = run.diagnosis[0]["root_cause"] if run.diagnosis else None
    if lead != expected or (expected is None and run.report.get("verdict") != "pass"):
        out.problems.append(f"{label}: diagnosed {lead or run.report.get('verdict')}, expected {expected or 'a pass'}")
    got = evidence_keys(run)
    foreign, missing = got - truth, truth - got
    if foreign:
        out.problems.append(f"{label}: foreign evidence {sorted(foreign)[:3]}")
    if missing:
        out.problems.append(f"{label}: its own evidence missing {sorted(missing)[:3]}")


def _function(cloud: LocalCloud, authorizer: str = "DeviceAuth") -> str | None:
    return authorizer_function(cloud, authorizer)


def _fault(name: str) -> Callable[[dict[str, Any], StandIn], None]:
    adjust = next(f for f in drill_cases.FAULTS if f.name == name).adjust
    assert adjust is not None
    return adjust


# -- the sequences -------------------------------------------------------------------------------------

def back_to_back(bench: Bench) -> SequenceOutcome:
    standin = bench.standin(drill_cases.MAIN)
    board = bench.virtual_board("micropython")
    client = f"drill-b2b-{secrets.token_hex(3)}"
    healthy = standin.device_config(client, transport="wss")
    tcp = standin.device_config(client, transport="wss")
    _fault("tcp-unreachable")(tcp, standin)
    signature = standin.device_config(client, transport="wss")
    _fault("signature-invalid")(signature, standin)
    plan = [(healthy, None), (tcp, "tcp-unreachable"), (signature, "signature-invalid"), (healthy, None)]
    out = SequenceOutcome()
    t0 = time.monotonic()
    made = [board.run(cfg) for cfg, _ in plan]
    took = time.monotonic() - t0
    if took > BACK_TO_BACK_LIMIT_S:
        out.problems.append(f"the four runs took {took:.1f} s, more than {BACK_TO_BACK_LIMIT_S:g} s")
    wait_for_records(standin, made[-1])
    stored = [bench.store.get_report(r["run_id"]) for r in made]   # as `authprobe report` reads them
    out.run_ids = [r["run_id"] for r in stored]
    cloud = LocalCloud(standin.state_dir)
    fn = _function(cloud)
    begins = [(host_span(r) or (0, 0))[0] for r in stored]
    truths = [caused(standin, r, fn, begins[i + 1] if i + 1 < len(stored) else None) for i, r in enumerate(stored)]
    together = diagnose_with_cloud(stored, cloud, function=fn, skew_s=30)   # windows wide enough to overlap
    for i, (report, (_, expected)) in enumerate(zip(stored, plan, strict=True)):
        others = [o for j, o in enumerate(stored) if j != i]
        (alone,) = diagnose_with_cloud([report], cloud, function=fn, neighbours=others)
        _judge(f"run {i + 1} alone", alone, expected, truths[i], out)
        _judge(f"run {i + 1} of 4", together[i], expected, truths[i], out)
        out.diagnosed.append(together[i].diagnosis[0]["root_cause"] if together[i].diagnosis else None)
    return out


def tray(bench: Bench) -> SequenceOutcome:
    standin = bench.standin(drill_cases.MAIN)
    tag = secrets.token_hex(2)
    ids = [f"tray{tag}-{n}" for n in TRAY_SUFFIXES]
    cfgs = [standin.device_config(cid, transport="mqtt") for cid in ids]
    cfgs[0]["auth"]["signature"] = example_signature(cfgs[0]["auth"]["token"] + "-old")   # signature-invalid
    cfgs[1]["test"]["topic"] = f"telemetry/{ids[1]}"      # outside the policy: policy-denies-subscribe
    expected = ["signature-invalid", "policy-denies-subscribe"] + [None] * (len(ids) - 2)
    with ThreadPoolExecutor(len(cfgs), thread_name_prefix="tray") as pool:
        reports = list(pool.map(probe_cpython, cfgs))
    for r in reports[:2]:
        wait_for_records(standin, r)
    cloud = LocalCloud(standin.state_dir)
    fn = _function(cloud)
    out = SequenceOutcome(run_ids=[str(r.get("run_id")) for r in reports])
    for cid, run, want, report in zip(ids, diagnose_with_cloud(reports, cloud, function=fn), expected, reports,
                                      strict=True):
        _judge(cid, run, want, caused(standin, report, fn), out)
        out.diagnosed.append(run.diagnosis[0]["root_cause"] if run.diagnosis else None)
    return out


def logs_delayed(bench: Bench) -> SequenceOutcome:
    standin = bench.standin(drill_cases.LOGS_DELAYED)
    cfg = standin.device_config(f"drill-late-{secrets.token_hex(3)}", transport="mqtt")
    _fault("signature-invalid")(cfg, standin)
    report = probe_cpython(cfg)
    cloud = LocalCloud(standin.state_dir)
    fn = _function(cloud)
    out = SequenceOutcome(run_ids=[str(report.get("run_id"))])
    (early,) = diagnose_with_cloud([report], cloud, function=fn)
    if not early.provisional or "the Connect record" not in early.joined.awaiting:
        out.problems.append(f"correlated before delivery: provisional={early.provisional} "
                            f"awaiting={early.joined.awaiting}")
    if early.diagnosis and early.diagnosis[0].get("decided"):
        out.problems.append(f"decided before the logs arrived: {early.diagnosis[0]['root_cause']}")
    (late,) = diagnose_with_cloud([report], cloud, function=fn, wait=True, poll_s=0.25)
    if late.provisional:
        out.problems.append("still provisional after waiting for the delivery delay")
    _judge("after --wait", late, "signature-invalid", caused(standin, report, fn), out)
    out.diagnosed.append(late.diagnosis[0]["root_cause"] if late.diagnosis else None)
    return out


def _unmarked(events: Iterable[LogEvent]) -> Iterable[LogEvent]:
    """The stand-in's records as AWS writes them: nothing marks a replay's lines."""
    for e in events:
        if e.fields.get("replay"):
            e.fields.pop("replay")
        yield e


def replays(bench: Bench) -> SequenceOutcome:
    standin = bench.standin(drill_cases.MAIN)
    cfg = standin.device_config(f"drill-replay-{secrets.token_hex(3)}", transport="mqtt")
    cfg["auth"]["authorizer"] = "RaisesAuth"   # lambda-error: every invocation logs a failure naming no client
    cloud = LocalCloud(standin.state_dir)
    settings = settings_from_config(cfg)
    stop = threading.Event()
    first = threading.Event()
    since = time.time()

    def record(replay: Replay) -> None:
        bench.store.add_replay(at=replay.at_ms / 1000, until=replay.until_ms / 1000, authorizer=replay.authorizer,
                               client_id=replay.client_id, invoked=replay.invoked)
        first.set()

    def keep_replaying() -> None:
        # A pause between replays, as a person or a script running cloud-check leaves: without the
        # stand-in's marks a replay whose invocation ends in the very millisecond the device's does is
        # indistinguishable from it (a limit of what AWS logs), and back-to-back replays made that a
        # 1-in-40 event here.
        while not stop.is_set():
            run_checks(CheckContext(LocalCloud(standin.state_dir), settings, on_replay=record))
            stop.wait(0.05)
    worker = threading.Thread(target=keep_replaying, name="drill-replays", daemon=True)
    worker.start()
    try:
        first.wait(30)
        report = probe_cpython(cfg)
        wait_for_records(standin, report)
    finally:
        stop.set()
        worker.join(60)
    fn = _function(cloud, "RaisesAuth")
    recorded = [r for r in (Replay.from_dict(d) for d in bench.store.list_replays(since=since - 1)) if r is not None]
    out = SequenceOutcome(run_ids=[str(report.get("run_id"))])
    if len(recorded) < 2:
        out.problems.append(f"only {len(recorded)} replay(s) were made around the run")
    truth = caused(standin, report, fn)
    (marked,) = diagnose_with_cloud([report], cloud, function=fn, replays=recorded)
    _judge("with the stand-in's marks", marked, "lambda-error", truth, out)
    (aws_like,) = diagnose_runs([report], lambda windows: _unmarked(cloud.log_events(windows, fn)),
                                replays=recorded)
    _judge("with the recorded replays alone", aws_like, "lambda-error", truth, out)
    out.diagnosed.append(marked.diagnosis[0]["root_cause"] if marked.diagnosis else None)
    return out


SEQUENCES: tuple[Sequence, ...] = (
    Sequence("busy-back-to-back", "micropython/wss", "one board, one client id: pass, tcp fail, signature fail, pass "
             f"within {BACK_TO_BACK_LIMIT_S:g} s", (None, "tcp-unreachable", "signature-invalid", None), back_to_back),
    Sequence("busy-tray", "cpython/mqtt", "8 boards at once, client ids tray-1, tray-10, tray-100...; one with a bad "
             "signature, one subscribing outside its policy",
             ("signature-invalid", "policy-denies-subscribe") + (None,) * (len(TRAY_SUFFIXES) - 2), tray),
    Sequence("busy-logs-delayed", "cpython/mqtt", f"the stand-in delivers its logs {drill_cases.LOG_DELAY_S:g} s late; "
             "correlated at once (provisional), then waited for", ("signature-invalid",), logs_delayed),
    Sequence("busy-replays", "cpython/mqtt", "cloud-check replays the device's credentials while it runs (the function "
             "fails for every invocation)", ("lambda-error",), replays),
)


def sequences(only: list[str] | None = None) -> list[Sequence]:
    """Every sequence, or those whose name (NAME@RUNTIME/TRANSPORT) contains one of `only`."""
    return [s for s in SEQUENCES if not only or any(p in s.full_name for p in only)]
