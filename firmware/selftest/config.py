# Config lint, shared by the board and the host: the same checks, the same codes, one message per
# problem. MicroPython's `re` is limited, so every check is a plain character-class loop.
#
# The config is the nested dict of device.toml (sections device, endpoint, auth, wifi, test); on the
# board it arrives as JSON. lint() returns problems as (code, status, field, message) tuples. The
# board loads this module for the config step only (see probe.py); settings.py holds what the
# other steps read.
import sys

from selftest.settings import (  # noqa: F401 - re-exported for the host
    DEFAULTS,
    _only,
    get,
    looks_percent_encoded,
    percent_decode,
    split_address,
)

# Codes by catalogue name: MicroPython's compiler inlines `_NAME = const(n)` and drops the line
# (no heap; this try binds nothing there). CPython has no const() and takes the except.
try:
    _CONST_FOLDED = const(1)
except NameError:
    const = int

_CONFIG_OK = const(100)
_CONFIG_MISSING_FIELD = const(101)
_CONFIG_ENDPOINT_INVALID = const(102)
_CONFIG_PORT_NOT_443 = const(103)
_CONFIG_AUTHORIZER_NAME_INVALID = const(104)
_CONFIG_TOKEN_KEY_NAME_INVALID = const(105)
_CONFIG_TOKEN_INVALID = const(106)
_CONFIG_SIGNATURE_INVALID = const(107)
_CONFIG_CLIENT_ID_INVALID = const(108)
_CONFIG_TOPIC_INVALID = const(109)
_CONFIG_TRANSPORT_INVALID = const(110)
_CONFIG_SIGNATURE_MISSING = const(111)
_CONFIG_ENDPOINT_LEGACY = const(112)
_CONFIG_SIGNATURE_NOT_URLENCODED = const(113)
_CONFIG_CA_INVALID = const(114)
_CONFIG_WIFI_INVALID = const(115)
_CONFIG_UNREADABLE = const(116)
_CONFIG_VALUE_TYPE = const(117)
_CONFIG_UNKNOWN_FIELD = const(118)
_CONFIG_ENDPOINT_IS_IP = const(119)

# Every setting: (section, key, type name); defaults are in settings.DEFAULTS.
FIELDS = (
    ("device", "client_id", "str"),
    ("device", "transport", "str"),
    ("device", "mqtt", "int"),
    ("device", "board", "str"),
    ("endpoint", "host", "str"),
    ("endpoint", "port", "int"),
    ("endpoint", "connect_address", "str"),
    ("endpoint", "ca", "str"),
    ("endpoint", "custom_domain", "bool"),
    ("auth", "authorizer", "str"),
    ("auth", "token_key_name", "str"),
    ("auth", "token", "str"),
    ("auth", "signature", "str"),
    ("auth", "signing_disabled", "bool"),
    ("auth", "username", "str"),
    ("auth", "password", "str"),
    ("auth", "wss_auth", "str"),
    ("wifi", "ssid", "str"),
    ("wifi", "password", "str"),
    ("wifi", "timeout_ms", "int"),
    ("test", "topic", "str"),
    ("test", "timeout_ms", "int"),
    ("test", "slow_close_ms", "int"),
    ("test", "hold_ms", "int"),
    ("test", "ntp_host", "str"),
    ("test", "library", "bool"),
)



FAIL = "fail"
WARN = "warn"

TRANSPORTS = ("mqtt", "wss", "auto")
WSS_AUTH = ("headers", "query")

MAX_TOKEN = 6144
MAX_SIGNATURE = 2560
MAX_NAME = 128
MAX_CLIENT_ID = 128
MAX_TOPIC = 256
MAX_TOPIC_SLASHES = 7

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_B64 = _ALNUM + "+/"
_HOST = "abcdefghijklmnopqrstuvwxyz0123456789-."


def _is_word(text, extra):
    # Python's \w in the AWS pattern [\w=,@-] covers Unicode word characters; non-ASCII letters pass.
    for ch in text:
        if ch not in _ALNUM and ch not in extra and ord(ch) < 128:
            return False
    return True


def _typename(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    return "other"


def is_base64(text):
    body = text.rstrip("=")
    return bool(body) and len(text) - len(body) <= 2 and _only(body, _B64)


def endpoint_kind(host):
    """'ats', 'legacy' or None for an AWS IoT data endpoint name."""
    parts = host.split(".")
    # <id>-ats.iot.<region>.amazonaws.com[.cn]
    if len(parts) < 5 or parts[1] != "iot" or parts[3] != "amazonaws":
        return None
    if parts[4:] not in (["com"], ["com", "cn"]):
        return None
    ident, region = parts[0], parts[2]
    if not region or not _only(region, _HOST) or region.count("-") < 2:
        return None
    if ident.endswith("-ats"):
        ident = ident[:-4]
        kind = "ats"
    else:
        kind = "legacy"
    if not ident or not _only(ident, _ALNUM.lower()):
        return None
    return kind


def is_ip_literal(host):
    if host.count(":") >= 2:  # IPv6 (host:port has one colon and is caught as not a host name)
        return _only(host.strip("[]").lower(), "0123456789abcdef:.")
    parts = host.split(".")
    return len(parts) == 4 and all(p and _only(p, "0123456789") for p in parts)


def is_hostname(host):
    if not host or len(host) > 253 or not _only(host.lower(), _HOST):
        return False
    for label in host.split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
    return True


def topic_problem(topic):
    """Why a topic cannot be the probe's test topic (published and subscribed as is), or None."""
    if not topic:
        return "is empty"
    if "+" in topic or "#" in topic:
        return "has a wildcard (+ or #); a publish topic must be a plain topic name"
    if len(topic.encode()) > MAX_TOPIC:
        return "is %d bytes; AWS IoT allows at most %d" % (len(topic.encode()), MAX_TOPIC)
    if topic.count("/") > MAX_TOPIC_SLASHES:
        return "has %d slashes; AWS IoT allows at most %d" % (topic.count("/"), MAX_TOPIC_SLASHES)
    if topic.startswith("$"):
        return "starts with '$' (reserved topics); use an application topic"
    if "\x00" in topic:
        return "contains a NUL character"
    return None


def lint(cfg):
    """Every problem in cfg, in field order: [(code, status, field, message)]."""
    out = []

    def add(code, status, field, msg):
        out.append((code, status, field, msg))

    if not isinstance(cfg, dict):
        add(_CONFIG_UNREADABLE, FAIL, "", "the config is not a table of sections")
        return out
    known = {}
    for s, k, _ in FIELDS:
        known.setdefault(s, []).append(k)
    for section in cfg:
        if section not in known:
            add(_CONFIG_UNKNOWN_FIELD, WARN, section,
                "unknown section [%s]; expected one of %s" % (section, ", ".join(known)))
            continue
        if not isinstance(cfg[section], dict):
            add(_CONFIG_VALUE_TYPE, FAIL, section, "[%s] must be a table of settings" % section)
            continue
        for key in cfg[section]:
            if key not in known[section]:
                add(_CONFIG_UNKNOWN_FIELD, WARN, section + "." + key, "unknown setting %s.%s; known: %s"
                    % (section, key, ", ".join(known[section])))
    bad_type = {}
    for s, k, t in FIELDS:
        sec = cfg.get(s)
        value = sec.get(k) if isinstance(sec, dict) else None
        if value is not None and _typename(value) != t:
            add(_CONFIG_VALUE_TYPE, FAIL, s + "." + k,
                "%s.%s must be a %s, not %s" % (s, k, _TYPE_WORDS[t], _typename(value)))
            bad_type[s + "." + k] = True

    def val(s, k):
        return None if (s + "." + k) in bad_type else get(cfg, s, k)

    client_id = val("device", "client_id")
    if not client_id:
        if "device.client_id" not in bad_type:
            add(_CONFIG_MISSING_FIELD, FAIL, "device.client_id",
                "device.client_id is missing; give each board a unique client id")
    elif len(client_id.encode()) > MAX_CLIENT_ID:
        add(_CONFIG_CLIENT_ID_INVALID, FAIL, "device.client_id",
            "device.client_id is %d bytes; AWS IoT allows at most %d"
            % (len(client_id.encode()), MAX_CLIENT_ID))
    elif "#" in client_id or "+" in client_id or "\x00" in client_id:
        add(_CONFIG_CLIENT_ID_INVALID, WARN, "device.client_id",
            "device.client_id contains '#', '+' or NUL; AWS IoT sends no lifecycle events for such ids")

    transport = val("device", "transport")
    if transport is not None and transport not in TRANSPORTS:
        add(_CONFIG_TRANSPORT_INVALID, FAIL, "device.transport",
            "device.transport is %r; use one of mqtt, wss, auto" % transport)

    mqtt = val("device", "mqtt")
    if mqtt is not None and mqtt not in (4, 5):
        add(_CONFIG_VALUE_TYPE, FAIL, "device.mqtt",
            "device.mqtt is %r; use 4 (MQTT 3.1.1, the default) or 5 (MQTT 5)" % mqtt)
    elif mqtt == 5 and sys.implementation.name != "cpython":
        add(_CONFIG_VALUE_TYPE, FAIL, "device.mqtt",
            "device.mqtt = 5 runs under CPython only (authprobe probe --runtime cpython): "
            "umqtt.simple and adafruit_minimqtt speak MQTT 3.1.1; use 4 on a board")

    host = val("endpoint", "host")
    custom = val("endpoint", "custom_domain")
    if not host:
        if "endpoint.host" not in bad_type:
            add(_CONFIG_MISSING_FIELD, FAIL, "endpoint.host",
                "endpoint.host is missing; use the address from "
                "`aws iot describe-endpoint --endpoint-type iot:Data-ATS`")
    elif is_ip_literal(host):
        # RFC 6066 forbids IP addresses as server names: standard TLS stacks send no SNI for them,
        # so AWS IoT cannot tell which endpoint the connection is for.
        add(_CONFIG_ENDPOINT_IS_IP, FAIL, "endpoint.host",
            "endpoint.host %r is an IP address, so no SNI names the endpoint; "
            "set the endpoint name as host and the address in endpoint.connect_address" % host)
    elif not is_hostname(host):
        add(_CONFIG_ENDPOINT_INVALID, FAIL, "endpoint.host",
            "endpoint.host %r is not a host name (no scheme, port or path)" % host)
    elif not custom:
        kind = endpoint_kind(host.lower())
        if kind is None:
            add(_CONFIG_ENDPOINT_INVALID, FAIL, "endpoint.host",
                "endpoint.host %r is not an AWS IoT data endpoint "
                "(<id>-ats.iot.<region>.amazonaws.com); for a domain configuration set "
                "endpoint.custom_domain = true" % host)
        elif kind == "legacy":
            add(_CONFIG_ENDPOINT_LEGACY, WARN, "endpoint.host",
                "endpoint.host %r is a legacy (VeriSign) endpoint; use the "
                "iot:Data-ATS address, which chains to Amazon Root CA 1/3" % host)

    port = val("endpoint", "port")
    if port is not None and port != 443:
        add(_CONFIG_PORT_NOT_443, FAIL, "endpoint.port",
            "endpoint.port is %d; custom authentication only works on 443 "
            "(to dial a test server elsewhere use endpoint.connect_address = \"addr:port\")" % port)

    dial = val("endpoint", "connect_address")
    if dial is not None:
        h, p = split_address(dial, 443)
        if not h or p is None or not (0 < p < 65536) or not is_hostname(h) and not _only(h, "0123456789.:"):
            add(_CONFIG_ENDPOINT_INVALID, FAIL, "endpoint.connect_address",
                "endpoint.connect_address %r is not host[:port]" % dial)

    ca = val("endpoint", "ca")
    if ca is not None and not ca:
        add(_CONFIG_CA_INVALID, FAIL, "endpoint.ca", "endpoint.ca is empty; name a PEM file or leave it out")
    elif ca and "\x00" in ca:
        add(_CONFIG_CA_INVALID, FAIL, "endpoint.ca", "endpoint.ca contains a NUL character; name a PEM file")

    _lint_auth(val, add, bad_type)

    ssid = val("wifi", "ssid")
    wpw = val("wifi", "password")
    if ssid is not None and (not ssid or len(ssid.encode()) > 32):
        add(_CONFIG_WIFI_INVALID, FAIL, "wifi.ssid", "wifi.ssid must be 1-32 bytes")
    if wpw and not (8 <= len(wpw) <= 64):
        add(_CONFIG_WIFI_INVALID, FAIL, "wifi.password",
            "wifi.password is %d characters; WPA2 needs 8-63 (or 64 hex)" % len(wpw))

    topic = val("test", "topic")
    if topic is not None:
        why = topic_problem(topic)
        if why:
            add(_CONFIG_TOPIC_INVALID, FAIL, "test.topic", "test.topic %s" % why)
    for key in ("timeout_ms", "slow_close_ms", "hold_ms"):
        ms = val("test", key)
        low = 0 if key == "hold_ms" else 1
        if ms is not None and not (low <= ms <= 120000):
            add(_CONFIG_VALUE_TYPE, FAIL, "test." + key, "test.%s must be %d-120000 ms" % (key, low))
    return out


_TYPE_WORDS = {"str": "string", "int": "whole number", "bool": "true/false"}


def _lint_auth(val, add, bad_type):
    name = val("auth", "authorizer")
    if name is not None and not (0 < len(name) <= MAX_NAME and _is_word(name, "_=,@-")):
        add(_CONFIG_AUTHORIZER_NAME_INVALID, FAIL, "auth.authorizer",
            "auth.authorizer must be 1-128 characters of letters, digits and _=,@- (AWS pattern [\\w=,@-]+)")
    key = val("auth", "token_key_name")
    token = val("auth", "token")
    if key is not None and not (0 < len(key) <= MAX_NAME and _only(key, _ALNUM + "_-")):
        add(_CONFIG_TOKEN_KEY_NAME_INVALID, FAIL, "auth.token_key_name",
            "auth.token_key_name must be 1-128 characters of letters, "
            "digits, _ and - (AWS pattern [a-zA-Z0-9_-]+)")
    if token is not None:
        if not token:
            add(_CONFIG_TOKEN_INVALID, FAIL, "auth.token", "auth.token is empty")
        elif len(token) > MAX_TOKEN:
            add(_CONFIG_TOKEN_INVALID, FAIL, "auth.token",
                "auth.token is %d characters; AWS IoT allows at most %d"
                % (len(token), MAX_TOKEN))
        if key is None and "auth.token_key_name" not in bad_type:
            add(_CONFIG_MISSING_FIELD, FAIL, "auth.token_key_name",
                "auth.token is set but auth.token_key_name is missing; use the authorizer's tokenKeyName")
    sig = val("auth", "signature")
    signing_off = val("auth", "signing_disabled")
    if sig is not None:
        if looks_percent_encoded(sig):
            raw = percent_decode(sig)
            if is_base64(raw):
                add(_CONFIG_SIGNATURE_NOT_URLENCODED, WARN, "auth.signature",
                    "auth.signature is already percent-encoded; the probe "
                    "decodes it once and encodes it itself (give the plain base64 value)")
            else:
                add(_CONFIG_SIGNATURE_INVALID, FAIL, "auth.signature",
                    "auth.signature is not base64 even after percent-decoding")
        elif not is_base64(sig):
            add(_CONFIG_SIGNATURE_INVALID, FAIL, "auth.signature",
                "auth.signature is not base64 ([A-Za-z0-9+/] then up to two "
                "'='); paste the signature without line breaks")
        elif len(sig) > MAX_SIGNATURE:
            add(_CONFIG_SIGNATURE_INVALID, FAIL, "auth.signature",
                "auth.signature is %d characters; AWS IoT allows at most %d"
                % (len(sig), MAX_SIGNATURE))
        if token is None:
            add(_CONFIG_MISSING_FIELD, FAIL, "auth.token",
                "auth.signature is set but auth.token is missing; the signature signs the token")
    elif token is not None and not signing_off:
        add(_CONFIG_SIGNATURE_MISSING, WARN, "auth.signature",
            "no auth.signature: an authorizer with signing enabled rejects "
            "this; set auth.signing_disabled = true if yours has signing disabled")
    user = val("auth", "username")
    if user and "x-amz-customauthorizer-signature=" in user:
        raw = user.split("x-amz-customauthorizer-signature=", 1)[1].split("&", 1)[0]
        if "+" in raw or "/" in raw or "=" in raw:
            add(_CONFIG_SIGNATURE_NOT_URLENCODED, FAIL, "auth.username",
                "the signature inside auth.username is not percent-encoded "
                "('+' -> %2B, '/' -> %2F, '=' -> %3D); AWS IoT decodes another value")
    if user and len(user.encode()) > 65535:
        add(_CONFIG_VALUE_TYPE, FAIL, "auth.username", "auth.username is longer than MQTT allows")
    if name is None and token is None and not user:
        add(_CONFIG_MISSING_FIELD, FAIL, "auth",
            "no credentials: set auth.token (with token_key_name) or auth.username")
    mode = val("auth", "wss_auth")
    if mode is not None and mode not in WSS_AUTH:
        add(_CONFIG_VALUE_TYPE, FAIL, "auth.wss_auth", "auth.wss_auth is %r; use headers or query" % mode)


def verdict(problems):
    """(code, status) for the config step from lint problems."""
    for p in problems:
        if p[1] == FAIL:
            return p[0], FAIL
    for p in problems:
        if p[1] == WARN:
            return p[0], WARN
    return _CONFIG_OK, "pass"
