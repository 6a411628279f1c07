"""Drill cases for an evidence path pass only when the leading diagnosis cites that evidence."""

from __future__ import annotations

from authprobe.drill import cases as drill_cases
from authprobe.drill.runner import Outcome
from authprobe.drill.suite import judge


def _outcome(evidence: list[str]) -> Outcome:
    report = {"verdict": "fail", "steps": [{"step": "connect", "status": "fail", "code": 907}]}
    lead = {"root_cause": "lambda-timeout", "evidence": evidence, "decided_by": "cloud-check metrics.duration",
            "decided": True}
    return Outcome("cpython", report, diagnosis=[lead])


def test_the_right_cause_without_the_case_s_evidence_fails_and_says_what_was_missing():
    (case,) = drill_cases.cases(["lambda-timeout-10s@cpython"])
    result = judge(case, _outcome(["Duration max 8000 ms"]))
    assert not result.passed and result.uncited == "REPORT RequestId" and result.diagnosed == "lambda-timeout"
    result = judge(case, _outcome(["function log ...: REPORT RequestId: x\tDuration: 8000.41 ms"]))
    assert result.passed and result.uncited is None


def test_every_new_evidence_path_has_a_case():
    evidence = {f.name: f.evidence for f in drill_cases.FAULTS if f.evidence}
    assert evidence["lambda-timeout-json-logs"] == "platform.report"
    assert evidence["lambda-timeout-10s"] == "REPORT RequestId"
    assert evidence["authn-error-only-logging"] == "Connection.AuthNError"
