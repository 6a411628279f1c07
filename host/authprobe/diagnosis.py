"""Diagnosis engine: device steps (+ cloud evidence when there is some) -> diagnosis[] entries,
each naming one root-cause id from authprobe.root_causes.

Without cloud evidence the device alone often cannot decide (a missing invoke permission and a bad
signature both look like a closed connection), so the failing step's candidates are all listed with
a confidence each and the evidence that would decide between them."""

from __future__ import annotations

from typing import Any

from authprobe import root_causes


def _entry(cause: str, confidence: float, evidence: list[str]) -> dict[str, Any]:
    rc = root_causes.get(cause)
    return {
        "root_cause": cause,
        "confidence": round(confidence, 2),
        "title": rc.title,
        "evidence": evidence,
        "remediation": rc.remediation,
        "seed": rc.seed,
        "decided_by": root_causes.DECIDED_BY.get(cause, ""),
    }


def device_candidates(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Candidates from the device's own steps: the first failing step decides (later steps were
    skipped or only repeat it); warnings that name a cause are added with low confidence."""
    out: list[dict[str, Any]] = []
    failing = next((s for s in report.get("steps", []) if s["status"] == "fail"), None)
    if failing is not None and failing["root_causes"]:
        causes = failing["root_causes"]
        evidence = [f"device step {failing['step']}: {failing['name']} ({failing['code']})"]
        if failing.get("details"):
            evidence.append("details: " + ", ".join(f"{k}={v}" for k, v in sorted(failing["details"].items())))
        # The catalogue lists the most likely cause first; the rest share what is left.
        if len(causes) == 1:
            weights = [0.9]
        else:
            rest = 0.4 / (len(causes) - 1)
            weights = [0.6] + [rest] * (len(causes) - 1)
        out.extend(_entry(c, w, list(evidence)) for c, w in zip(causes, weights, strict=True))
    return out


def diagnose(report: dict[str, Any], cloud: Any = None) -> list[dict[str, Any]]:
    """diagnosis[] for a report; empty for a healthy run."""
    if report.get("verdict") == "pass":
        return []
    return device_candidates(report)
