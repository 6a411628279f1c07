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


def _is_hex(text):
    for ch in text:
        if ch not in "0123456789abcdef":
            return False
    return True


def decode(line):
    """Read one line: (record, None) for a good record, (None, reason) for a damaged record,
    (None, None) for a line that holds no record at all (boot noise, echo)."""
    if isinstance(line, (bytes, bytearray)):
        try:
            line = bytes(line).decode()
        except UnicodeError:
            line = bytes(line).decode("latin-1")
    at = line.find(PREFIX)
    if at < 0:
        return None, None
    rest = line[at + len(PREFIX):]
    space = rest.find(" ")
    if space <= 0:
        return None, BAD_FRAME
    if rest[:space] != str(VERSION):
        return None, BAD_VERSION
    rest = rest[space + 1:].rstrip("\r\n")
    # The JSON object ends in "}" and the checksum follows one space later; trailing noise may
    # follow the checksum, and strings inside the JSON may hold "} ", so try candidates from the right.
    body = None
    seen_frame = False
    i = rest.rfind("} ")
    while i >= 0:
        crc = rest[i + 2:i + 10]
        if len(crc) == 8 and _is_hex(crc):
            seen_frame = True
            if crc32_hex(rest[:i + 1].encode()) == crc:
                body = rest[:i + 1]
                break
        i = rest.rfind("} ", 0, i)
    if body is None:
        return None, BAD_CRC if seen_frame else BAD_FRAME
    try:
        record = json.loads(body)
    except ValueError:
        return None, BAD_JSON
    if not isinstance(record, dict) or "k" not in record:
        return None, BAD_JSON
    return record, None
