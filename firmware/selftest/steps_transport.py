# The transport step: direct MQTT (CONNECT sent, the first answer read: MQTT, HTTP or a close) or
# the WebSocket upgrade with the custom-auth credentials.
from selftest import mqtt, net
from selftest.probe import FAIL, PASS, load, short, unload
from selftest.tls import ALPN

# Codes by catalogue name: MicroPython's compiler inlines `_NAME = const(n)` and drops the line
# (no heap; this try binds nothing there). CPython has no const() and takes the except.
try:
    _CONST_FOLDED = const(1)
except NameError:
    const = int

_TRANSPORT_OK = const(800)
_TRANSPORT_ALPN_UNAVAILABLE = const(801)
_TRANSPORT_HTTP_ANSWER_TO_MQTT = const(802)
_WSS_UPGRADE_UNAUTHORIZED = const(803)
_WSS_UPGRADE_FORBIDDEN = const(804)
_WSS_UPGRADE_REQUIRED = const(805)
_WSS_UPGRADE_UNEXPECTED = const(806)
_TRANSPORT_CLOSED = const(807)
_TRANSPORT_TIMEOUT = const(808)


def s_transport(p):
    t = p.transport
    if t == "auto":
        p.mode = "mqtt" if p.w.alpn else "wss"
        why = ("runtime sends ALPN 'mqtt'" if p.w.alpn else
               "runtime cannot send ALPN, so MQTT over WebSockets (no ALPN needed)")
    else:
        p.mode = t
        why = "configured"
    d = {"mode": p.mode, "why": why, "alpn": p.alpn}
    if p.mode == "wss":
        return _upgrade(p, d)
    return _first_answer(p, d)


def _first_answer(p, d):
    # Whether the server speaks MQTT here shows only in its answer to CONNECT: an endpoint that
    # got no ALPN treats the stream as HTTPS and answers HTTP (or just closes).
    p.t_connect = p.w.clock.ms()
    m = load("mqtt5") if mqtt.version(p) == 5 else mqtt
    try:
        p.stream.write(m.connect(p.client_id, mqtt.auth_username(
            p.user, p.authorizer, p.signature, p.key, p.token), p.password))
        first = bytes(p.stream.peek_some()[:8])
    except net.Closed:
        p.early = "closed"
        p.early_ms = p.w.clock.since(p.t_connect)
        # A domain configuration (CUSTOM_AUTH + SECURE_MQTT) needs no ALPN; there a close is the
        # authorizer's answer, for the connect step to judge.
        if p.alpn != ALPN and not p.custom_domain:
            d["why"] = "closed before any MQTT answer and no ALPN 'mqtt' was negotiated"
            d["elapsed_ms"] = p.early_ms
            return _TRANSPORT_ALPN_UNAVAILABLE, FAIL, d
        return _TRANSPORT_OK, PASS, d
    except net.Timeout:
        p.early = "timeout"
        p.early_ms = p.w.clock.since(p.t_connect)
        # Without ALPN a default endpoint reads the bytes as the start of an HTTP request and waits.
        if p.alpn != ALPN and not p.custom_domain:
            d["why"] = "no answer to MQTT CONNECT within %d ms and no ALPN 'mqtt' was negotiated" % p.early_ms
            d["elapsed_ms"] = p.early_ms
            return _TRANSPORT_ALPN_UNAVAILABLE, FAIL, d
        return _TRANSPORT_OK, PASS, d
    if first.startswith(b"HTTP/") or first.startswith(b"<"):
        d["answer"] = "".join(chr(b) if 32 <= b < 127 else "." for b in first)
        d["why"] = "the server answered MQTT with HTTP: it did not see ALPN 'mqtt'"
        return _TRANSPORT_HTTP_ANSWER_TO_MQTT, FAIL, d
    return _TRANSPORT_OK, PASS, d


def _upgrade(p, d):
    try:
        return _handshake(p, d)
    finally:
        unload("wss_upgrade")     # only the framing (wss.py) is needed from here on


def _handshake(p, d):
    from selftest import wss, wss_upgrade

    key = wss_upgrade.new_key()
    query = p.wss_query
    d["credentials"] = "query" if query else "headers"
    try:
        p.stream.write(wss_upgrade.upgrade_request(p.host, key, p.authorizer, p.signature, p.key,
                                                   p.token, query))
        status, reason, headers = wss_upgrade.read_head(p.stream)
    except net.Closed:
        return _TRANSPORT_CLOSED, FAIL, d
    except net.Timeout:
        return _TRANSPORT_TIMEOUT, FAIL, d
    except ValueError as e:
        d["error"] = short(e)
        return _WSS_UPGRADE_UNEXPECTED, FAIL, d
    d["status"] = status
    d["reason"] = reason[:40]
    if status == 101:
        expect = wss_upgrade.accept_for(key)
        got = headers.get("sec-websocket-accept")
        if expect is not None and got != expect:
            d["why"] = "Sec-WebSocket-Accept does not match the key"
            return _WSS_UPGRADE_UNEXPECTED, FAIL, d
        p.stream = wss.WsStream(p.stream)
        return _TRANSPORT_OK, PASS, d
    code = {401: _WSS_UPGRADE_UNAUTHORIZED, 403: _WSS_UPGRADE_FORBIDDEN,
            426: _WSS_UPGRADE_REQUIRED}.get(status, _WSS_UPGRADE_UNEXPECTED)
    return code, FAIL, d
