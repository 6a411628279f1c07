"""A step's details as one text, the same in every rendering (terminal, JUnit, the diagnosis'
evidence): a config step's problems first and whole, failing ones first (they are why the step
failed), then `key=value` for the rest; secrets as their one fingerprint format."""

from __future__ import annotations

from typing import Any

from authprobe.redaction import fingerprint_text, is_fingerprint


def problem_lines(details: dict[str, Any]) -> list[str]:
    """A config step's lint problems, failing ones first, each whole: `fail 103 endpoint.port: ...`."""
    listed = details.get("problems")
    problems = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
    problems.sort(key=lambda p: p.get("status") != "fail")
    return [f"{p.get('status')} {p.get('code')} {p.get('field') or '(file)'}: {p.get('msg')}" for p in problems]


def value_text(value: Any) -> str:
    if is_fingerprint(value):
        return fingerprint_text(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def step_details(details: dict[str, Any], width: int | None = 70, sep: str = "\n") -> str:
    """The problems first and in full, then `key=value` for the rest, cut at `width` characters
    (None: never cut)."""
    text = ", ".join(f"{key}={value_text(value)}" for key, value in details.items() if key != "problems")
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return sep.join([*problem_lines(details), *([text] if text else [])])
