"""The JSON report (`schema: "authprobe.report/1"`), built from decoded serial records.

This is a contract scripts rely on: fields are added, never renamed. Shape:

    {"schema": "authprobe.report/1", "run_id": str, "verdict": "pass" | "fail" | "incomplete",
     "device": {begin-record fields}, "steps": [{seq, step, code, name, status, elapsed_ms,
     details, root_causes}], "end": {end-record fields} | null, "counts": {pass, warn, fail, skip},
     "diagnosis": [{root_cause, confidence, evidence, remediation, seed, decided_by}],
     "noise": {"lines": int, "damaged": {reason: int}}}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from authprobe import catalogue
from authprobe.report.diagnosis import diagnose

SCHEMA = "authprobe.report/1"
STATUSES = ("pass", "warn", "fail", "skip")


def step_entry(record: dict[str, Any]) -> dict[str, Any]:
    code = int(record.get("code", 0))
    row = catalogue.lookup(code)
    return {
        "seq": record.get("seq"),
        "step": record.get("step") or catalogue.step_of(code),
        "code": code,
        "name": record.get("name") or catalogue.name_of(code),
        "status": record.get("status", "fail"),
        "elapsed_ms": record.get("ms"),
        "details": record.get("d") or {},
        "root_causes": list(row[2]) if row and record.get("status") in ("fail", "warn") else [],
    }


def build_report(records: Iterable[dict[str, Any]], *, noise: dict[str, Any] | None = None,
                 run_id: str | None = None) -> dict[str, Any]:
    """A report from one run's records (begin, steps, end). A run without its end record is
    'incomplete' but keeps every step it did report."""
    begin: dict[str, Any] = {}
    end: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = []
    for rec in records:
        kind = rec.get("k")
        if kind == "begin":
            begin = {k: v for k, v in rec.items() if k != "k"}
        elif kind == "step":
            steps.append(step_entry(rec))
        elif kind == "end":
            end = {k: v for k, v in rec.items() if k != "k"}
    counts = {s: sum(1 for st in steps if st["status"] == s) for s in STATUSES}
    if end is None:
        verdict = "incomplete"
    elif counts["fail"] or end.get("verdict") == "fail":
        verdict = "fail"
    else:
        verdict = "pass"
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "run_id": run_id or begin.get("run") or (end or {}).get("run"),
        "verdict": verdict,
        "device": begin,
        "steps": steps,
        "end": end,
        "counts": counts,
        "diagnosis": [],
        "noise": noise or {"lines": 0, "damaged": {}},
    }

    report["diagnosis"] = diagnose(report)
    return report
