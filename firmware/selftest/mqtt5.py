# The probe's packets in MQTT 5 (device.mqtt = 5): the same functions as mqtt.py, plus the CONNACK
# judge that turns a reason code into the catalogue's codes. CPython only: boards keep MQTT 3.1.1
# (their client libraries speak nothing else), so this module is never copied to a board.
from selftest import mqtt
from selftest.probe import FAIL, PASS

# Codes by catalogue name: MicroPython's compiler inlines `_NAME = const(n)` and drops the line
# (no heap; this try binds nothing there). CPython has no const() and takes the except.
try:
    _CONST_FOLDED = const(1)
except NameError:
    const = int

_CONNECT_OK = const(900)
_CONNACK_BAD_PROTOCOL = const(901)
_CONNACK_IDENTIFIER_REJECTED = const(902)
_CONNACK_SERVER_UNAVAILABLE = const(903)
_MQTT_PROTOCOL_ERROR = const(909)
_CONNACK_V5_BAD_CREDENTIALS = const(910)
_CONNACK_V5_NOT_AUTHORIZED = const(911)
_CONNACK_V5_NOT_AUTHORIZED_SLOW = const(912)
_CONNACK_V5_REFUSED = const(913)

# MQTT 5 §2.4 names of the refusals a server may send in CONNACK (AWS lists 0x80, 0x85, 0x86, 0x87,
# 0x90, 0x97, 0x9B; docs/aws-iot-now.md §3.2).
REASONS = {0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
           0x83: "implementation specific error", 0x84: "unsupported protocol version",
           0x85: "client identifier not valid", 0x86: "bad user name or password", 0x87: "not authorized",
           0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned", 0x8C: "bad authentication method",
           0x90: "topic name invalid", 0x95: "packet too large", 0x97: "quota exceeded",
           0x99: "payload format invalid", 0x9A: "retain not supported", 0x9B: "qos not supported",
           0x9C: "use another server", 0x9D: "server moved", 0x9F: "connection rate exceeded",
           0x8E: "session taken over", 0x8D: "keep alive timeout", 0x8B: "server shutting down",
           0x98: "administrative action"}
_SIMPLE = {0x84: _CONNACK_BAD_PROTOCOL, 0x85: _CONNACK_IDENTIFIER_REJECTED, 0x86: _CONNACK_V5_BAD_CREDENTIALS,
           0x88: _CONNACK_SERVER_UNAVAILABLE, 0x89: _CONNACK_SERVER_UNAVAILABLE}
# Property identifier -> size of its value: 1, 2, 4 bytes, 0 = variable byte integer, -1 = string or
# binary data, -2 = string pair (MQTT 5 §2.2.2.2).
_SIZES = {0x01: 1, 0x02: 4, 0x03: -1, 0x08: -1, 0x09: -1, 0x0B: 0, 0x11: 4, 0x12: -1, 0x13: 2, 0x15: -1,
          0x16: -1, 0x17: 1, 0x18: 4, 0x19: 1, 0x1A: -1, 0x1C: -1, 0x1F: -1, 0x21: 2, 0x22: 2, 0x23: 2,
          0x24: 1, 0x25: 1, 0x26: -2, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1}
REASON_STRING = 0x1F

CONNACK = mqtt.CONNACK
SUBACK = mqtt.SUBACK
PUBACK = mqtt.PUBACK
DISCONNECT = mqtt.DISCONNECT
PINGREQ = mqtt.PINGREQ
auth_username = mqtt.auth_username
read_packet = mqtt.read_packet
puback = mqtt.puback  # the short MQTT 5 form (packet id only) means Success


def connect(client_id, username=None, password=None, keepalive=60):
    flags = 0x02  # clean start
    payload = mqtt._str(client_id)
    if username is not None:
        flags |= 0x80
        payload += mqtt._str(username)
    if password is not None:
        flags |= 0x40  # MQTT 5 allows a password without a user name
        payload += mqtt._str(password)
    body = mqtt._str("MQTT") + bytes((5, flags, keepalive >> 8, keepalive & 0xFF, 0)) + payload
    return mqtt._packet(mqtt.CONNECT, body)


def subscribe(pid, topic, qos=0):
    return mqtt._packet(mqtt.SUBSCRIBE, bytes((pid >> 8, pid & 0xFF, 0)) + mqtt._str(topic) + bytes((qos,)))


def publish(topic, payload, pid=0, qos=0):
    body = mqtt._str(topic)
    if qos:
        body += bytes((pid >> 8, pid & 0xFF))
    return mqtt._packet(mqtt.PUBLISH | (qos << 1), body + b"\x00" + payload)


def _varint(body, at):
    n = shift = 0
    while True:
        b = body[at]
        at += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, at
        shift += 7


def properties(body, at):
    """{identifier: value} of the property block at `at` (values of variable size as bytes; User
    Properties left out), and the index after it."""
    n, at = _varint(body, at)
    end = at + n
    out = {}
    while at < end:
        ident, at = _varint(body, at)
        size = _SIZES.get(ident)
        if size is None:
            raise ValueError("unknown MQTT 5 property %d" % ident)
        if size > 0:
            out[ident] = int.from_bytes(bytes(body[at:at + size]), "big")
            at += size
        elif size == 0:
            out[ident], at = _varint(body, at)
        else:
            for _ in range(-size):
                ln = (body[at] << 8) | body[at + 1]
                if size == -1:
                    out[ident] = bytes(body[at + 2:at + 2 + ln])
                at += 2 + ln
    return out, end


def parse_publish(first, body):
    tlen = (body[0] << 8) | body[1]
    topic = body[2:2 + tlen]
    _, at = properties(body, 2 + tlen + (2 if first & 0x06 else 0))
    return bytes(topic).decode(), bytes(body[at:])


def judge_connack(first, body, d, slow):
    """(code, status) for the answer to CONNECT; the reason code (and any Reason String) go into d."""
    if first != CONNACK or len(body) < 2:
        d["packet"] = first
        return _MQTT_PROTOCOL_ERROR, FAIL
    rc = body[1]
    d["mqtt"] = 5
    d["rc"] = rc
    if rc in REASONS:
        d["reason"] = REASONS[rc]
    try:
        said = properties(body, 2)[0].get(REASON_STRING) if len(body) > 2 else None
    except (ValueError, IndexError):
        said = None
    if said:
        d["reason_string"] = said.decode("utf-8", "replace")[:100]
    if rc == 0:
        return _CONNECT_OK, PASS
    if rc == 0x87:
        if slow:
            d["why"] = "not authorized after %d ms: near the 5 s authorizer limit" % d.get("elapsed_ms", 0)
            return _CONNACK_V5_NOT_AUTHORIZED_SLOW, FAIL
        return _CONNACK_V5_NOT_AUTHORIZED, FAIL
    return _SIMPLE.get(rc, _CONNACK_V5_REFUSED), FAIL
