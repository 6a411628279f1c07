"""Secrets out of everything authprobe shows or stores: tokens, passwords and signatures become
their length and SHA-256 fingerprint (selftest.record.fingerprint, the format the device reports),
whether the value is known (scrub), named by a field (redact) or known only by the fingerprint a
device reported (scrub_fingerprinted)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from selftest.record import fingerprint

# Authorizer functions often log their whole event: its token, password and signature must not
# reach a report. Values are replaced by their length and SHA-256 fingerprint (selftest.record).
_SECRET_FIELD = re.compile(
    r"""(["']?(?:token|password|tokenSignature|signature|x-amz-customauthorizer-signature)["']?\s*[:=]\s*)"""
    r"""(?:"([^"]*)"|'([^']*)'|([^\s"',&}]+))""", re.IGNORECASE)
_QUERY_IN_USERNAME = re.compile(r"""("username"\s*:\s*"[^"?]*\?)([^"]*)""")


def fingerprint_text(fp: dict[str, Any]) -> str:
    """The one way a fingerprint is shown, in tables, monitors and scrubbed log lines alike, so a
    secret found in one place can be searched for in all the others."""
    return f"<redacted len={fp.get('len')} sha256={fp.get('sha256')}>"


def is_fingerprint(value: Any) -> bool:
    """A {len, sha256} dict as the device reports a secret."""
    return isinstance(value, dict) and set(value) == {"len", "sha256"}


def _masked(value: str) -> str:
    return fingerprint_text(fingerprint(value))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """The text with every occurrence of these exact values replaced by their fingerprint: for
    messages that may quote what was sent (an API's validation error names the offending value).
    Values under 6 characters are left alone; masking them would mangle ordinary words."""
    for value in sorted({v for v in secrets if v and len(v) >= 6}, key=len, reverse=True):
        if value in text:
            text = text.replace(value, _masked(value))
    return text


def secret_fingerprints(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The fingerprints (selftest.record.fingerprint) of the secrets a device run used, as its
    steps reported them: all that is known of the values, and enough to find them again."""
    out = []
    for step in report.get("steps") or ():
        for value in (step.get("details") or {}).values():
            if isinstance(value, dict) and isinstance(value.get("len"), int) and isinstance(value.get("sha256"), str):
                out.append(value)
    return out


def scrub_fingerprinted(text: str, fingerprints: Iterable[dict[str, Any]]) -> str:
    """The text with every run of bytes whose fingerprint matches a known secret replaced by that
    fingerprint: a function log line that quotes the token in free text (an exception message, a
    print) is caught although the value itself is never known here."""
    data = text.encode()
    for fp in fingerprints:
        size, want = fp["len"], fp["sha256"]
        if size < 6 or size > len(data):
            continue
        i = 0
        while i <= len(data) - size:
            if hashlib.sha256(data[i:i + size]).hexdigest()[:len(want)] == want:
                mark = fingerprint_text(fp).encode()
                data = data[:i] + mark + data[i + size:]
                i += len(mark)
            else:
                i += 1
    return data.decode(errors="replace")


def redact(message: str) -> str:
    """The message with secret values replaced by their fingerprint."""
    if "oken" not in message and "ssword" not in message and "ignature" not in message \
            and "username" not in message:
        return message
    message = _QUERY_IN_USERNAME.sub(lambda m: m.group(1) + _masked(m.group(2)), message)

    def repl(m: re.Match) -> str:
        value = next(v for v in (m.group(2), m.group(3), m.group(4)) if v is not None)
        if value.startswith("<redacted"):
            return m.group(0)
        quote = '"' if m.group(2) is not None else "'" if m.group(3) is not None else ""
        return f"{m.group(1)}{quote}{_masked(value)}{quote}"

    return _SECRET_FIELD.sub(repl, message)
