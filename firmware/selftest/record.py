# The serial report protocol, version 1: one record per line,
#
#     @AP1 {"k":"step",...} 1a2b3c4d
#
# a fixed prefix carrying the protocol version, compact JSON, then the CRC32 of the JSON bytes as
# 8 lower-case hex digits. The prefix may appear anywhere in a line (boot noise and REPL echo land
# before it); anything after the checksum is ignored. Record kinds: "begin", "step", "end".
# Secrets never enter a record: callers pass them through fingerprint() first.
import binascii
import hashlib
import json

PREFIX = "@AP"
VERSION = 1
_TAG = PREFIX + str(VERSION) + " "


def crc32_hex(data):
    return "%08x" % (binascii.crc32(data) & 0xFFFFFFFF)


def encode(record):
    """One report line (without newline) for a record dict."""
    body = json.dumps(record, separators=(",", ":"))
    return _TAG + body + " " + crc32_hex(body.encode())


def fingerprint(secret):
    """What a report may say about a secret: its length and a short SHA-256 prefix, never its value."""
    if secret is None:
        return None
    if isinstance(secret, str):
        secret = secret.encode()
    # MicroPython has the hashlib.sha256 class only, CircuitPython hashlib.new() only.
    sha256 = getattr(hashlib, "sha256", None)
    h = sha256(secret) if sha256 is not None else hashlib.new("sha256", secret)
    digest = binascii.hexlify(h.digest()).decode()
    return {"len": len(secret), "sha256": digest[:12]}


# Why a line that carried the prefix could not be read; noise lines without the prefix are not errors.
BAD_VERSION = "unknown-version"
BAD_FRAME = "truncated"
BAD_CRC = "crc-mismatch"
BAD_JSON = "bad-json"


_TAGB = _TAG.encode()
_DIGITS = b"0123456789"
_HEXB = b"0123456789abcdef"


def _find_prefix(data):
    """Where a record prefix starts: the first "@AP1 ", else the first "@AP" followed by a version
    digit (another protocol version) or ending the line (cut short); -1 when "@AP" only appears
    inside other words (boot noise such as root@APnode)."""
    at = data.find(_TAGB)
    if at >= 0:
        return at
    at = data.find(b"@AP")
    while at >= 0:
        after = data[at + 3:at + 4]
        if not after or after[0] in _DIGITS:
            return at
        at = data.find(b"@AP", at + 3)
    return -1


def _checksum_at(data, i):
    # The 8 hex digits after "} " at i, or None.
    crc = data[i + 2:i + 10]
    if len(crc) != 8:
        return None
    for ch in crc:
        if ch not in _HEXB:
            return None
    return crc


def decode(line):
    """Read one line: (record, None) for a good record, (None, reason) for a damaged record,
    (None, None) for a line that holds no record at all (boot noise, echo). Never raises, and the
    work is linear in the line's length."""
    if isinstance(line, (bytes, bytearray)):
        data = bytes(line)
    else:
        try:
            data = line.encode()
        except UnicodeError:  # lone surrogates: no record holds them (records are ASCII JSON)
            return (None, None) if PREFIX not in line else (None, BAD_FRAME)
    at = _find_prefix(data)
    if at < 0:
        return None, None
    rest = data[at + len(PREFIX):]
    space = rest.find(b" ")
    if space <= 0:
        return None, BAD_FRAME
    if rest[:space] != str(VERSION).encode():
        return None, BAD_VERSION
    rest = rest[space + 1:].rstrip(b"\r\n")
    # The JSON object ends in "}" and the checksum follows one space later; trailing noise may
    # follow the checksum, and strings inside the JSON may hold "} ", so every candidate is tried
    # and the rightmost that matches wins. The CRC runs on from one candidate to the next, so
    # each byte is hashed once however many candidates a line of junk holds.
    body_end = -1
    seen_frame = False
    crc = 0
    done = 0
    i = rest.find(b"} ")
    while i >= 0:
        expected = _checksum_at(rest, i)
        if expected is not None:
            seen_frame = True
            crc = binascii.crc32(rest[done:i + 1], crc)
            done = i + 1
            if ("%08x" % (crc & 0xFFFFFFFF)).encode() == expected:
                body_end = i + 1
        i = rest.find(b"} ", i + 1)
    if body_end < 0:
        return None, BAD_CRC if seen_frame else BAD_FRAME
    try:
        record = json.loads(rest[:body_end].decode())
    except (ValueError, RuntimeError):
        # RuntimeError: MicroPython's and CPython's (RecursionError) answer to JSON nested deeper
        # than the parser's stack; UnicodeError is a ValueError.
        return None, BAD_JSON
    if not isinstance(record, dict) or "k" not in record:
        return None, BAD_JSON
    return record, None
