"""Timestamps as the logs write them, to epoch milliseconds and back: AWS IoT V2 log records
("2017-08-10 15:37:23.476", UTC), ISO-8601 strings and epoch numbers. Fast, because a fleet-size
join parses a million of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def _days(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (civil calendar), without datetime's per-call cost."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


_SECONDS: dict[str, int] = {}  # "YYYY-MM-DD HH:MM:SS" -> epoch ms; log lines share their seconds


def parse_timestamp(value: Any) -> int | None:
    """Epoch ms from an IoT V2 timestamp ("2017-08-10 15:37:23.476", UTC), an ISO-8601 string or an
    epoch number (ms, or seconds when small)."""
    if type(value) is str and len(value) == 23 and value[19] == "." and value[10] == " ":
        base = _SECONDS.get(value[:19])
        if base is not None and value[20:23].isdigit():
            return base + int(value[20:23])
        parsed = _parse_text(value)
        if parsed is not None:
            if len(_SECONDS) > 200_000:
                _SECONDS.clear()
            _SECONDS[value[:19]] = parsed - parsed % 1000
        return parsed
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value if value > 1e11 else value * 1000)
    return _parse_text(str(value).strip())


def _parse_text(text: str) -> int | None:
    try:
        if len(text) >= 19 and text[4] == "-" and text[10] in " T":
            ms = 0
            rest = text[19:]
            if rest.startswith("."):
                digits = ""
                for ch in rest[1:]:
                    if not ch.isdigit():
                        break
                    digits += ch
                ms = int((digits + "000")[:3]) if digits else 0
                rest = rest[1 + len(digits):]
            base = (_days(int(text[0:4]), int(text[5:7]), int(text[8:10])) * 86400 + int(text[11:13]) * 3600
                    + int(text[14:16]) * 60 + int(text[17:19])) * 1000 + ms
            if rest in ("", "Z", "z", "+00:00"):
                return base
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
        if text.isdigit():
            return parse_timestamp(int(text))
    except ValueError:
        return None
    return None


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
