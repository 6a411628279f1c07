"""The one place a serial record's schema is checked (docs/contracts.md section 1), so the report,
the renderer and the run store can trust every record they are given.

`selftest.record.decode` only proves that a line is a CRC-valid JSON object with a kind: a board with
a bug (or a line that happens to carry a matching checksum) can still send `"code": "x"` or
`"d": [1]`. `decode()` here adds the schema; a record that breaks it is damaged (reason
`bad-schema`), counted like any other damaged line and never an exception. The same rules guard
reports read back from a run store written before they existed (`report_problem`)."""

from __future__ import annotations

import math
from typing import Any

from selftest import record as wire

BAD_SCHEMA = "bad-schema"

KINDS = ("begin", "step", "end")
STATUSES = ("pass", "warn", "fail", "skip")
VERDICTS = ("pass", "fail")
# Details are flat tables of a few values; deeper nesting is no record the probe writes, and
# bounding it keeps every later walk (rendering, JSON output, storage) far from the recursion limit.
MAX_RECORD_DEPTH = 8
MAX_REPORT_DEPTH = 32
# Whole numbers JSON readers agree on; anything bigger overflows a float (ms / 1000 in JUnit).
MAX_INT = 2 ** 53


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_INT <= value <= MAX_INT


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, str)) or _is_number(value)


# field -> (rule, presence). Rules: "text" str, "int" whole number, "number" finite number, "scalar"
# str/number/bool, "status"/"verdict" one of theirs, "table" JSON object, "counts" str -> int.
# Presence: REQUIRED; OPTIONAL (may be left out, never null); NULLABLE (may be left out or null: the
# begin record's identity fields are null where a runtime cannot tell, e.g. `utc` with no clock).
REQUIRED, OPTIONAL, NULLABLE = "required", "optional", "nullable"
_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "begin": {"run": ("text", REQUIRED), "uid": ("text", NULLABLE), "client_id": ("text", NULLABLE),
              "utc": ("text", NULLABLE), "runtime": ("text", NULLABLE), "transport": ("text", NULLABLE),
              "board": ("scalar", NULLABLE), "runtime_version": ("scalar", NULLABLE),
              "firmware": ("scalar", NULLABLE), "probe": ("scalar", NULLABLE), "reset": ("scalar", NULLABLE),
              "heap_free": ("number", NULLABLE)},
    "step": {"run": ("text", REQUIRED), "seq": ("int", REQUIRED), "code": ("int", REQUIRED),
             "status": ("status", REQUIRED), "step": ("text", OPTIONAL), "name": ("text", OPTIONAL),
             "ms": ("number", OPTIONAL), "d": ("table", OPTIONAL), "t": ("text", OPTIONAL)},
    "end": {"run": ("text", REQUIRED), "verdict": ("verdict", REQUIRED), "counts": ("counts", OPTIONAL),
            "ms": ("number", OPTIONAL)},
}

_RULE_WORDS = {"text": "a string", "int": "a whole number", "number": "a number", "scalar": "a plain value",
               "status": "one of " + "/".join(STATUSES), "verdict": "one of " + "/".join(VERDICTS),
               "table": "a JSON object", "counts": "an object of whole numbers"}


def _fits(rule: str, value: Any) -> bool:
    if rule == "text":
        return isinstance(value, str)
    if rule == "int":
        return _is_int(value)
    if rule == "number":
        return _is_number(value)
    if rule == "scalar":
        return _is_scalar(value)
    if rule == "status":
        return value in STATUSES
    if rule == "verdict":
        return value in VERDICTS
    if rule == "table":
        return isinstance(value, dict)
    if rule == "counts":
        return isinstance(value, dict) and all(_is_int(v) for v in value.values())
    raise AssertionError(rule)


def value_problem(value: Any, max_depth: int) -> str | None:
    """Why a decoded JSON value cannot be stored, printed and written out again as JSON: nesting
    deeper than `max_depth`, a string no UTF-8 can hold (a lone surrogate from a \\ud800 escape),
    a NaN/Infinity or an out-of-range whole number. Iterative, so any depth is safe to walk."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
            strings = list(item)
        elif isinstance(item, list):
            children = item
            strings = []
        else:
            children = []
            strings = [item] if isinstance(item, str) else []
            if not isinstance(item, str) and not _is_scalar(item):
                return f"holds a number JSON cannot carry ({item!r})"
        for text in strings:
            if not isinstance(text, str):
                return "has a key that is not a string"
            try:
                text.encode("utf-8")
            except UnicodeError:
                return "holds a string that is not valid Unicode"
        if children:
            if depth >= max_depth:
                return f"nests deeper than {max_depth} levels"
            stack.extend((child, depth + 1) for child in children)
    return None


def record_problem(rec: Any) -> str | None:
    """Why a decoded record breaks the serial report's schema, or None when it holds."""
    if not isinstance(rec, dict):
        return "is not a JSON object"
    kind = rec.get("k")
    fields = _FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        return f"kind {kind!r} is not one of {', '.join(KINDS)}"
    for name, (rule, presence) in fields.items():
        if name not in rec:
            if presence == REQUIRED:
                return f"{kind} record has no {name}"
            continue
        value = rec[name]
        if value is None and presence == NULLABLE:
            continue
        if not _fits(rule, value):
            return f"{kind}.{name} must be {_RULE_WORDS[rule]}"
    why = value_problem(rec, MAX_RECORD_DEPTH)
    return f"{kind} record {why}" if why else None


def decode(line: bytes | str) -> tuple[dict[str, Any] | None, str | None]:
    """`selftest.record.decode` plus the schema: (record, None), (None, damage reason) or (None, None)
    for a line without a record. Never raises."""
    rec, damage = wire.decode(line)
    if rec is not None and record_problem(rec) is not None:
        return None, BAD_SCHEMA
    return rec, damage


_STEP_ENTRY = {"code": "int", "status": "status", "details": "table"}


def report_problem(report: Any) -> str | None:
    """Why a stored report (section 3) cannot be rendered as it is, or None. A store written before
    records were checked can hold a report built from a record that breaks the schema."""
    if not isinstance(report, dict):
        return "is not a JSON object"
    for key, kind in (("steps", list), ("device", dict), ("counts", dict), ("noise", dict), ("diagnosis", list)):
        if not isinstance(report.get(key, kind()), kind):
            return f"{key} is not a {'list' if kind is list else 'table'}"
    if report.get("end") is not None and not isinstance(report["end"], dict):
        return "end is not a table"
    if not isinstance(report.get("verdict", "incomplete"), str):
        return "verdict is not a string"
    for i, step in enumerate(report.get("steps") or []):
        if not isinstance(step, dict):
            return f"step {i + 1} is not a table"
        for key, rule in _STEP_ENTRY.items():
            if not _fits(rule, step.get(key)):
                return f"step {i + 1}: {key} must be {_RULE_WORDS[rule]}"
        if not all(isinstance(step.get(key), str) for key in ("step", "name")):
            return f"step {i + 1}: step and name must be strings"
        if step.get("seq") is not None and not _is_int(step["seq"]):
            return f"step {i + 1}: seq must be a whole number"
        if step.get("elapsed_ms") is not None and not _is_number(step["elapsed_ms"]):
            return f"step {i + 1}: elapsed_ms must be a number"
        if not isinstance(step.get("root_causes", []), list):
            return f"step {i + 1}: root_causes must be a list"
    if not all(isinstance(d, dict) for d in report.get("diagnosis") or []):
        return "a diagnosis entry is not a table"
    return value_problem(report, MAX_REPORT_DEPTH)
