# The MQTT session steps: CONNECT with the custom-auth credentials (CONNACK code, or a close and
# how long it took), then the publish/subscribe round trip on the test topic.
from selftest import mqtt, net, record
from selftest.probe import FAIL, PASS, load

# Codes by catalogue name: MicroPython's compiler inlines `_NAME = const(n)` and drops the line
# (no heap; this try binds nothing there). CPython has no const() and takes the except.
try:
    _CONST_FOLDED = const(1)
except NameError:
    const = int

_CONNECT_OK = const(900)
_CLOSED_BEFORE_CONNACK = const(906)
_CLOSED_BEFORE_CONNACK_SLOW = const(907)
_CONNACK_TIMEOUT = const(908)
_MQTT_PROTOCOL_ERROR = const(909)
_PUBSUB_OK = const(1000)
_DROPPED_AFTER_SUBSCRIBE = const(1001)
_DROPPED_AFTER_PUBLISH = const(1002)
_MESSAGE_NOT_RECEIVED = const(1003)
_SUBACK_FAILURE = const(1004)
_SESSION_TAKEN_OVER = const(1005)
_PUBACK_REFUSED = const(1006)


def _codec(p):
    """The packets of the configured MQTT version (device.mqtt): mqtt.py, or mqtt5.py for 5."""
    return load("mqtt5") if mqtt.version(p) == 5 else mqtt


def _read(p, d):
    """The next packet; an MQTT 5 server's DISCONNECT ends the session like a close, its reason
    code kept in the details (0x8E session taken over, 0x87 not authorized, ...)."""
    first, body = mqtt.read_packet(p.stream)
    if first == 0xE0:
        d["disconnect_rc"] = body[0] if body else 0
        raise net.Closed()
    return first, body


def s_connect(p):
    d = {"username_len": 0, "token": record.fingerprint(p.token),
         "signature": record.fingerprint(p.signature), "password": record.fingerprint(p.password)}
    if p.mode == "wss":
        user = p.user if p.user is not None or p.password is None else ""
        d["username_len"] = len(user or "")
        p.t_connect = p.w.clock.ms()
        try:
            p.stream.write(_codec(p).connect(p.client_id, user, p.password))
        except net.Closed:
            return _closed(p, d)
    else:
        d["username_len"] = len(mqtt.auth_username(p.user, p.authorizer, p.signature, p.key,
                                                   p.token))
    if p.early == "closed":
        return _closed(p, d, p.early_ms)
    if p.early == "timeout":
        # The transport step already waited the whole timeout for the first answer.
        d["elapsed_ms"] = p.early_ms
        return _CONNACK_TIMEOUT, FAIL, d
    try:
        first, body = mqtt.read_packet(p.stream)
    except net.Closed:
        return _closed(p, d)
    except net.Timeout:
        d["elapsed_ms"] = p.w.clock.since(p.t_connect)
        return _CONNACK_TIMEOUT, FAIL, d
    d["elapsed_ms"] = p.w.clock.since(p.t_connect)
    if mqtt.version(p) == 5:
        code, status = load("mqtt5").judge_connack(first, body, d, d["elapsed_ms"] >= p.slow_close_ms)
        return code, status, d
    if first != mqtt.CONNACK or len(body) != 2:
        d["packet"] = first
        return _MQTT_PROTOCOL_ERROR, FAIL, d
    rc = body[1]
    d["rc"] = rc
    if rc == 0:
        return _CONNECT_OK, PASS, d
    return (_CONNECT_OK + rc if rc <= 5 else _MQTT_PROTOCOL_ERROR), FAIL, d


def _closed(p, d, ms=None):
    if ms is None:
        ms = p.w.clock.since(p.t_connect)
    d["elapsed_ms"] = ms
    if ms >= p.slow_close_ms:
        d["why"] = "closed after %d ms: near the 5 s authorizer limit" % ms
        return _CLOSED_BEFORE_CONNACK_SLOW, FAIL, d
    return _CLOSED_BEFORE_CONNACK, FAIL, d


def _hold(p, d):
    """Keep the fresh session idle for test.hold_ms, pinging: a policy cannot drop an idle
    connection this soon, so a drop here is another connection taking the client id."""
    t0 = p.w.clock.ms()
    try:
        while p.w.clock.since(t0) < p.hold_ms:
            p.stream.write(mqtt.PINGREQ)
            _read(p, d)
            p.w.clock.sleep_ms(50)
    except net.Closed:
        d["held_ms"] = p.w.clock.since(t0)
        d["why"] = "dropped while idle after CONNACK: another connection took client id %s" % p.client_id
        return True
    except net.Timeout:
        pass
    d["held_ms"] = p.w.clock.since(t0)
    return False


def s_pubsub(p):
    d = {"topic": p.topic}
    s = p.stream
    m = _codec(p)
    payload = ("authprobe " + p.nonce).encode()
    if p.hold_ms and _hold(p, d):
        return _SESSION_TAKEN_OVER, FAIL, d
    try:
        s.write(m.subscribe(1, p.topic, 0))
        while True:
            first, body = _read(p, d)
            if first == mqtt.SUBACK:
                break
    except net.Closed:
        return _DROPPED_AFTER_SUBSCRIBE, FAIL, d
    except net.Timeout:
        d["why"] = "no SUBACK within %d ms" % p.timeout_ms
        return _SUBACK_FAILURE, FAIL, d
    d["suback"] = body[-1]
    if body[-1] & 0x80:
        return _SUBACK_FAILURE, FAIL, d
    try:
        s.write(m.publish(p.topic, payload, 2, 1))
    except net.Closed:
        # Gone before the PUBLISH could even leave: the drop followed the SUBSCRIBE.
        return _DROPPED_AFTER_SUBSCRIBE, FAIL, d
    puback = False
    try:
        while True:
            first, body = _read(p, d)
            kind = first & 0xF0
            if kind == mqtt.PUBACK:
                puback = True
                if len(body) > 2 and body[2] >= 0x80:
                    # MQTT 5: the server refused the message and said so (0x87 not authorized).
                    d["puback_rc"] = body[2]
                    return _PUBACK_REFUSED, FAIL, d
            elif kind == mqtt.PUBLISH:
                ack = mqtt.puback(first, body)
                if ack:
                    s.write(ack)
                topic, got = m.parse_publish(first, body)
                if topic == p.topic and got == payload:
                    break
    except net.Closed:
        d["puback"] = puback
        return _DROPPED_AFTER_PUBLISH, FAIL, d
    except net.Timeout:
        d["puback"] = puback
        d["why"] = "own message not received within %d ms" % p.timeout_ms
        return _MESSAGE_NOT_RECEIVED, FAIL, d
    d["puback"] = puback
    try:
        s.write(mqtt.DISCONNECT)
    except Exception:  # noqa: BLE001 - the round trip is done; a late close is not a failure
        pass
    p.close()
    p.pubsub_ok = True
    return _PUBSUB_OK, PASS, d
