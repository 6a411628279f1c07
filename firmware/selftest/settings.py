# The settings every step reads: the fields of device.toml with their defaults, and the few string
# helpers the probe needs after the config step. Kept apart from config.py (the lint) so the board
# can drop the lint's code once the config step is done.
try:
    from typing import Any  # noqa: F401 - for type comments only; boards have no typing
except ImportError:
    pass

_HEX = "0123456789abcdefABCDEF"
_HEXB = b"0123456789abcdefABCDEF"

# Defaults of the optional settings (section.key); config.FIELDS lists every setting and its type.
DEFAULTS = {
    "device.transport": "auto",
    "device.mqtt": 4,
    "endpoint.port": 443,
    "endpoint.custom_domain": False,
    "auth.signing_disabled": False,
    "auth.wss_auth": "headers",
    "wifi.timeout_ms": 15000,
    "test.timeout_ms": 8000,
    "test.slow_close_ms": 4500,
    "test.hold_ms": 0,
    "test.ntp_host": "pool.ntp.org",
    "test.library": True,
}


def _only(text, allowed):
    for ch in text:
        if ch not in allowed:
            return False
    return True


def get(cfg, section, key):
    # type: (Any, str, str) -> Any
    """A value with its default applied."""
    sec = cfg.get(section) if isinstance(cfg, dict) else None
    if isinstance(sec, dict) and sec.get(key) is not None:
        return sec[key]
    return DEFAULTS.get(section + "." + key)


def looks_percent_encoded(text):
    i = text.find("%")
    return 0 <= i < len(text) - 2 and _only(text[i + 1:i + 3], _HEX)


def percent_decode(text):
    # Never raises: "%ff" decodes to bytes that are no UTF-8; each byte then stands for itself,
    # which no base64 check accepts, so the lint reports the value instead of the probe crashing.
    out = bytearray()
    raw = text.encode()
    i = 0
    while i < len(raw):
        c = raw[i]
        pair = raw[i + 1:i + 3] if c == 37 else b""
        if len(pair) == 2 and pair[0] in _HEXB and pair[1] in _HEXB:
            out.append(int(pair.decode(), 16))
            i += 3
        else:
            out.append(c)
            i += 1
    try:
        return bytes(out).decode()
    except UnicodeError:
        return "".join([chr(b) for b in out])


def split_address(text, default_port):
    """'host', 'host:port', '[v6]:port' -> (host, port); port None when it is not a number."""
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1:]
        if not rest:
            return host, default_port
        text2 = rest[1:] if rest.startswith(":") else None
    else:
        if text.count(":") != 1:
            return text, default_port
        host, text2 = text.split(":")
    try:
        return host, int(text2) if text2 is not None else None
    except ValueError:
        return host, None
