"""Diagnosis engine: device steps (+ cloud evidence when there is some) -> diagnosis[] entries,
each naming one root-cause id from authprobe.root_causes.

Without cloud evidence the device alone often cannot decide (a missing invoke permission and a bad
signature both look like a closed connection), so the failing step's candidates are all listed with
a confidence each and the evidence that would decide between them.

Cloud evidence (cloud-check results, IoT V2 log records, the authorizer function's log lines) turns
into findings per root cause: "confirms", "supports" or "rules out". Confirmed causes lead, ruled-out
candidates leave the list (their ruling is kept in the leader's evidence), the rest keep their
device-side weight, scaled down when something else was confirmed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authprobe import root_causes
from authprobe.aws import authn_error
from authprobe.aws.lambda_logs import FAILURE_PATTERN, is_timeout, system_line
from authprobe.report.details import step_details

# The order AWS IoT works through a custom-auth connection: the first confirmed cause in this
# order is the one that stopped the device; later ones are real too but masked by it.
PIPELINE = (
    "sni-missing", "sni-mismatch", "alpn-missing", "port-not-443",
    "authorizer-unknown", "authorizer-inactive", "token-key-name-mismatch",
    "signature-missing", "signature-not-urlencoded", "signature-invalid",
    "authorizer-function-missing", "lambda-permission-missing",
    "lambda-timeout", "lambda-error", "lambda-response-invalid", "authorizer-denied",
    "policy-denies-connect", "policy-denies-subscribe", "policy-denies-publish", "policy-denies-receive",
    "client-id-conflict",
)
# Causes that stop a connection before AWS IoT invokes the function (so: zero invocations).
BEFORE_INVOKE = frozenset({"authorizer-unknown", "authorizer-inactive", "token-key-name-mismatch",
                           "signature-missing", "signature-not-urlencoded", "signature-invalid",
                           "authorizer-function-missing", "lambda-permission-missing"})
AFTER_INVOKE = frozenset({"lambda-timeout", "lambda-error", "lambda-response-invalid", "authorizer-denied",
                          "policy-denies-connect"})
CONNECT_STAGE = BEFORE_INVOKE | AFTER_INVOKE | {"sni-mismatch", "sni-missing", "alpn-missing", "port-not-443"}

CONFIRMS, SUPPORTS, RULES_OUT = "confirms", "supports", "rules out"


@dataclass
class Finding:
    cause: str
    kind: str  # CONFIRMS, SUPPORTS or RULES_OUT
    text: str
    source: str  # "cloud-check <id>", "IoT log", "function log"


@dataclass
class CloudEvidence:
    """What the cloud side says about one run: cloud-check results (CheckResult.as_dict() shapes)
    and log events (LogEvent.as_dict() shapes) correlated to the run."""

    checks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def coerce(cls, value: Any) -> CloudEvidence | None:
        if value is None or isinstance(value, CloudEvidence):
            return value
        if isinstance(value, dict):
            return cls(list(value.get("checks") or []), list(value.get("events") or []))
        raise TypeError(f"cloud evidence must be CloudEvidence or a dict, not {type(value).__name__}")


def _entry(cause: str, confidence: float, evidence: list[str], decided_by: str | None = None,
           decided: bool = False) -> dict[str, Any]:
    rc = root_causes.get(cause)
    return {
        "root_cause": cause,
        "confidence": round(confidence, 2),
        "title": rc.title,
        "evidence": evidence,
        "remediation": rc.remediation,
        "seed": rc.seed,
        "decided_by": decided_by or root_causes.DECIDED_BY.get(cause, ""),
        "decided": decided,
    }


def device_candidates(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Candidates from the device's own steps: the first failing step decides (later steps were
    skipped or only repeat it); warnings that name a cause are added with low confidence."""
    out: list[dict[str, Any]] = []
    steps = report.get("steps", [])
    failing = next((s for s in steps if s["status"] == "fail"), None)
    if failing is not None and failing["root_causes"]:
        causes = failing["root_causes"]
        evidence = [f"device step {failing['step']}: {failing['name']} ({failing['code']})"]
        if failing.get("details"):
            evidence.append("details: " + step_details(failing["details"], width=None, sep="; "))
        # The catalogue lists the most likely cause first; the rest share what is left.
        if len(causes) == 1:
            weights = [0.9]
        else:
            rest = 0.4 / (len(causes) - 1)
            weights = [0.6] + [rest] * (len(causes) - 1)
        out.extend(_entry(c, w, list(evidence)) for c, w in zip(causes, weights, strict=True))
    named = {e["root_cause"] for e in out}
    for s in steps:
        if s["status"] != "warn":
            continue
        for cause in s.get("root_causes") or []:
            if cause not in named:
                named.add(cause)
                out.append(_entry(cause, 0.2, [f"device step {s['step']} warned: {s['name']} ({s['code']})"]))
    return out


# --- findings from cloud evidence ----------------------------------------------------------------

def findings_from_checks(checks: list[dict[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    for c in checks:
        cause, status = c.get("root_cause"), c.get("status")
        source = f"cloud-check {c.get('id')}"
        text = f"{c.get('title')}: " + "; ".join(str(e) for e in c.get("evidence") or [])
        if cause and cause in root_causes.ROOT_CAUSES:
            if status == "fail":
                out.append(Finding(cause, CONFIRMS, text, source))
            elif status == "pass":
                out.append(Finding(cause, RULES_OUT, text, source))
            elif status == "warn":
                out.append(Finding(cause, SUPPORTS, text, source))
        if c.get("id") == "replay.invoke" and status == "pass":
            # The function answered this device's exact credentials with a valid, authenticated
            # response: whatever account-wide metrics say, it neither fails nor times out for it.
            for cause in ("lambda-error", "lambda-timeout", "lambda-response-invalid"):
                out.append(Finding(cause, RULES_OUT, text, source))
        if c.get("id") == "metrics.invocations" and status in ("warn", "pass"):
            invoked = (c.get("data") or {}).get("invocations", 0)
            if not invoked:
                # No invocation in the window: what stopped the device happened before the function.
                for cause in BEFORE_INVOKE:
                    out.append(Finding(cause, SUPPORTS, text, source))
                for cause in AFTER_INVOKE:
                    out.append(Finding(cause, RULES_OUT, text, source))
    return out


# Phrases in an IoT log record's reason/details -> the cause they name. AWS documents only
# AUTHORIZATION_FAILURE / "Authorization Failure"; the rest are the stand-in's details strings
# (host/authprobe/emulator/custom_auth.py) and plain words AWS might use. First match wins.
_IOT_REASON_WORDS = (
    ("authorizer not found", "authorizer-unknown"),
    ("no authorizer named", "authorizer-unknown"),
    ("no default authorizer", "authorizer-unknown"),
    ("authorizer is inactive", "authorizer-inactive"),
    ("token signature missing", "signature-missing"),
    ("token missing", "token-key-name-mismatch"),
    ("signature verification failed", "signature-invalid"),
    ("authorizer function not found", "authorizer-function-missing"),
    ("not permitted to invoke", "lambda-permission-missing"),
    ("timed out", "lambda-timeout"),
    ("authorizer function failed", "lambda-error"),
    ("invalid authorizer response", "lambda-response-invalid"),
    ("isauthenticated false", "authorizer-denied"),
    ("sni missing", "sni-missing"),
    ("no sni", "sni-missing"),
    ("server name", "sni-mismatch"),
    ("sni", "sni-mismatch"),
    ("domain configuration", "sni-mismatch"),
)


def cause_from_text(text: str) -> str | None:
    """The root cause a reason/details/error message names, if it names one."""
    low = text.lower()
    return next((c for w, c in _IOT_REASON_WORDS if w in low), None)


_FUNCTION_FAILURE = re.compile(FAILURE_PATTERN)  # "task timed out" is tested before it
_ACTION_CAUSES = {"Publish-In": "policy-denies-publish", "Subscribe": "policy-denies-subscribe",
                  "Publish-Out": "policy-denies-receive"}
_NO_CAUSE_WORDS = ("throttl", "message broker", "server_error")


def _denied(rec: dict[str, Any]) -> bool:
    """An authorization failure as AWS logs it (reason AUTHORIZATION_FAILURE / "Authorization Failure")."""
    text = _iot_text(rec)
    return "authorization" in text or "not authorized" in text or "forbidden" in text


def _iot_text(rec: dict[str, Any]) -> str:
    return " ".join(str(rec.get(k) or "") for k in ("reason", "details", "disconnectReason")).lower()


def utc_text(when: Any) -> str:
    """A log event's time as people read it: UTC text, never raw epoch milliseconds (CloudWatch
    Logs gives the function's lines as epoch ms; AWS IoT's V2 records already carry text)."""
    if isinstance(when, int | float) and not isinstance(when, bool):
        stamp = datetime.fromtimestamp(when / 1000, UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    return str(when) if when is not None else "?"


# How the join matched a record that carries no client id (cloud/connection_match.py). By client id
# or source port it is this run's; by SNI (or topic) and time most likely, so it may confirm what it
# names but rules nothing out; by time alone it may be anyone's, so it only supports.
_LOOSE_MATCHES = ("time",)
_SHARED_MATCHES = ("time", "sni")
_HOW = {"time": " (matched by time only)", "sni": " (matched by SNI and time)", "source_port": " (matched by source port)"}


def _authn_findings(ev: dict[str, Any], when: str) -> list[Finding]:
    """A Connection.AuthNError entry: its reason narrows the causes (aws/authn_error.py), its
    details may name one of them (the stand-in's do; AWS's wording is not documented)."""
    confirmed, supported = authn_error.causes_for(ev)
    loose = ev.get("attributed") in _LOOSE_MATCHES
    reason = ev.get("reason") or "no reason"
    line = (f"IoT log {when}: Connection.AuthNError {reason} ({ev.get('authenticationType') or '?'})"
            + (f": {ev.get('details')}" if ev.get("details") else "") + _HOW.get(str(ev.get("attributed")), ""))
    family = confirmed + supported
    named = cause_from_text(str(ev.get("details") or ""))
    out: list[Finding] = []
    if named in family:
        out.append(Finding(named, SUPPORTS if loose else CONFIRMS, line, "IoT log"))
        if named == "signature-invalid":
            out.append(Finding("signature-not-urlencoded", SUPPORTS, line, "IoT log"))
    else:
        out += [Finding(c, SUPPORTS if loose else CONFIRMS, line, "IoT log") for c in confirmed]
        out += [Finding(c, SUPPORTS, line, "IoT log") for c in supported]
    if ev.get("attributed") not in _SHARED_MATCHES:
        # This connection failed authentication, so authorization (iot:Connect) never ran; a custom
        # authorizer was chosen, so SNI, port and ALPN led where they should.
        out.append(Finding("policy-denies-connect", RULES_OUT, line, "IoT log"))
        if ev.get("authenticationType") in authn_error.CUSTOM_AUTH_TYPES and "sni-mismatch" not in family:
            out += [Finding(c, RULES_OUT, line, "IoT log")
                    for c in ("sni-missing", "sni-mismatch", "alpn-missing", "port-not-443")]
            if family and set(family) <= authn_error.CUSTOM_AUTH_STAGE:
                out += [Finding(c, RULES_OUT, line, "IoT log") for c in authn_error.CUSTOM_AUTH_STAGE - set(family)]
    return out


def findings_from_events(events: list[dict[str, Any]], client_id: str | None = None) -> list[Finding]:
    out: list[Finding] = []
    connected = False
    for ev in events:
        when = utc_text(ev.get("timestamp") or ev.get("ts_ms"))
        if ev.get("source") == "iot":
            etype, status = ev.get("eventType"), ev.get("status")
            text = _iot_text(ev)
            line = f"IoT log {when}: {etype} {status}" + (f" ({ev.get('reason')}: {ev.get('details')})"
                                                          if ev.get("reason") else "")
            if etype == authn_error.EVENT_TYPE:
                out += _authn_findings(ev, when)
            elif "duplicate_client" in text or "duplicate_clientid" in text:
                out.append(Finding("client-id-conflict", CONFIRMS, line, "IoT log"))
            elif etype == "Connect" and status == "Success":
                connected = True
                for cause in CONNECT_STAGE:
                    out.append(Finding(cause, RULES_OUT, line, "IoT log"))
            elif etype == "Connect" and status == "Failure":
                named = cause_from_text(text)
                kind = SUPPORTS if ev.get("attributed") in _LOOSE_MATCHES else CONFIRMS
                if named:
                    out.append(Finding(named, kind, line, "IoT log"))
                    if named == "signature-invalid":
                        # A raw '+' decoded as a space fails the same way; the config decides.
                        out.append(Finding("signature-not-urlencoded", SUPPORTS, line, "IoT log"))
                elif any(w in text for w in _NO_CAUSE_WORDS):
                    pass  # throttling, broker trouble: no root cause of ours; the event stays in the output
                elif _denied(ev):
                    for cause in ("authorizer-denied", "policy-denies-connect"):
                        out.append(Finding(cause, SUPPORTS, line, "IoT log"))
                else:
                    for cause in CONNECT_STAGE:
                        out.append(Finding(cause, SUPPORTS, line, "IoT log"))
            elif status == "Failure" and etype in _ACTION_CAUSES:
                # Only an authorization failure is the policy's doing (not e.g. QoS 2 or a broker error).
                cause = _ACTION_CAUSES[etype]
                line += f" on {ev.get('topicName')}" + _HOW.get(str(ev.get("attributed")), "")
                kind = SUPPORTS if ev.get("attributed") in _LOOSE_MATCHES else CONFIRMS
                # An HTTPS publish is authenticated per request: its refusal may name an auth cause.
                named = cause_from_text(str(ev.get("details") or "")) if etype == "Publish-In" else None
                if named:
                    out.append(Finding(named, kind, line, "IoT log"))
                elif _denied(ev):
                    out.append(Finding(cause, kind, line, "IoT log"))
        elif ev.get("source") == "lambda":
            message = str(ev.get("message") or "")
            by_time = ev.get("attributed") == "time"
            kind = SUPPORTS if by_time else CONFIRMS
            how = " (matched by time only)" if by_time else ""
            line = f"function log {when}{how}: {message.strip()[:160]}"
            low = message.lower()
            system = system_line(message)
            if is_timeout(message):  # "Task timed out", or a JSON report with status timeout
                out.append(Finding("lambda-timeout", kind, line, "function log"))
            elif system is not None and system.slow:
                # Ran to IoT's 5 s wait or past it (a function whose own timeout is longer times out
                # nowhere: AWS IoT gave up on it, though Lambda counts no error).
                out.append(Finding("lambda-timeout", kind, line, "function log"))
            elif _FUNCTION_FAILURE.search(message):
                out.append(Finding("lambda-error", kind, line, "function log"))
            if not by_time:
                # The function ran for this device: nothing before the invocation stopped it.
                for cause in BEFORE_INVOKE:
                    out.append(Finding(cause, RULES_OUT, line, "function log"))
                if '"isauthenticated": false' in low or '"isauthenticated":false' in low:
                    out.append(Finding("authorizer-denied", CONFIRMS, line, "function log"))
    if connected:
        out = [f for f in out if not (f.kind == SUPPORTS and f.cause in CONNECT_STAGE)]
    return out


# --- combining ------------------------------------------------------------------------------------

def _combine(report: dict[str, Any], findings: list[Finding]) -> list[dict[str, Any]]:
    candidates = {e["root_cause"]: e for e in device_candidates(report)}
    by_cause: dict[str, dict[str, list[Finding]]] = {}
    for f in findings:
        by_cause.setdefault(f.cause, {CONFIRMS: [], SUPPORTS: [], RULES_OUT: []})[f.kind].append(f)
    failing = next((s for s in report.get("steps", []) if s["status"] == "fail"), None)
    failing_step = failing["step"] if failing else None

    confirmed = [c for c in by_cause if by_cause[c][CONFIRMS]]
    # A cloud problem outside the device's candidates still matters when the device got as far as
    # talking to AWS IoT (or stopped with no step to blame).
    relevant_stage = failing_step in (None, "transport", "connect", "pubsub", "library", "tls")
    confirmed = [c for c in confirmed if c in candidates or relevant_stage]
    order = {c: i for i, c in enumerate(PIPELINE)}
    # Uncontested first, then what the device named, then AWS's processing order.
    confirmed.sort(key=lambda c: (bool(by_cause[c][RULES_OUT]), c not in candidates, order.get(c, len(order))))

    out: list[dict[str, Any]] = []
    ruled_out_notes: list[str] = []
    for rank, cause in enumerate(confirmed):
        f = by_cause[cause]
        evidence = list(candidates[cause]["evidence"]) if cause in candidates else []
        evidence += [x.text for x in f[CONFIRMS]] + [x.text for x in f[SUPPORTS]]
        conflict = bool(f[RULES_OUT])
        if conflict:
            evidence += [f"but: {x.text}" for x in f[RULES_OUT]]
        confidence = 0.95 if rank == 0 else 0.8
        if cause not in candidates:
            confidence -= 0.25
        if conflict:
            confidence -= 0.2
        deciding = f[CONFIRMS][0]
        out.append(_entry(cause, confidence, evidence, f"{deciding.source}: {deciding.text}", decided=True))
    done = set(confirmed)
    scale = 0.25 if out else 1.0
    rest = []
    for cause, entry in candidates.items():
        if cause in done:
            continue
        f = by_cause.get(cause)
        if f and f[RULES_OUT]:
            ruled_out_notes.append(f"ruled out {cause}: {f[RULES_OUT][0].text}")
            continue
        weight = entry["confidence"]
        evidence = list(entry["evidence"])
        if f and f[SUPPORTS]:
            weight = max(weight, min(0.85, weight + 0.25))
            evidence += [x.text for x in f[SUPPORTS]]
        rest.append((weight * scale, cause, evidence))
    # Causes the cloud points at that the device's step did not name (the device sees only a
    # close; timing or logs may say more): listed, weakly, when the device got as far as AWS IoT.
    if relevant_stage or not candidates:
        for cause, f in by_cause.items():
            if f[SUPPORTS] and not f[RULES_OUT] and cause not in done and cause not in candidates:
                rest.append(((0.3 if not candidates else 0.15) * scale, cause, [x.text for x in f[SUPPORTS]]))
    rest.sort(key=lambda r: (-r[0], order.get(r[1], len(order))))
    total = sum(r[0] for r in rest)
    if not out and total > 1.05:  # (entries carry rounded confidences; only rescale real excess)
        rest = [(w / total, c, e) for w, c, e in rest]
    out.extend(_entry(c, w, e) for w, c, e in rest)
    if ruled_out_notes and out:
        out[0]["evidence"] = out[0]["evidence"] + ruled_out_notes
    return out


def diagnose(report: dict[str, Any], cloud: Any = None) -> list[dict[str, Any]]:
    """diagnosis[] for a report; empty for a healthy run. `cloud` is CloudEvidence (or a dict with
    "checks" and "events") for this run."""
    if report.get("verdict") == "pass":
        return []
    evidence = CloudEvidence.coerce(cloud)
    if evidence is None or (not evidence.checks and not evidence.events):
        return device_candidates(report)
    findings = findings_from_checks(evidence.checks)
    findings += findings_from_events(evidence.events, (report.get("device") or {}).get("client_id"))
    if not findings:
        return device_candidates(report)
    return _combine(report, findings)


def dumps(diagnosis: list[dict[str, Any]]) -> str:
    return json.dumps(diagnosis, indent=2)
