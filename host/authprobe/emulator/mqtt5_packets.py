"""MQTT 5.0 (OASIS mqtt-v5.0) on top of mqtt_packets: properties, the MQTT 5 shapes of what a client
sends (CONNECT and Will properties, PUBLISH, SUBSCRIBE options, UNSUBSCRIBE, acknowledgements with
reason codes, DISCONNECT), and the packets the stand-in writes to an MQTT 5 client (CONNACK, PUBACK,
SUBACK, UNSUBACK, DISCONNECT with a reason code).

As for MQTT 3.1.1, everything a client sends is checked before anything is relayed: an unknown
property, a property in the wrong packet, a second copy of a property that may appear once, a value
out of its range, a bad string or a reserved bit raise a ProtocolError whose `reason_code` is the
DISCONNECT reason the client is told (0x81 Malformed Packet, 0x82 Protocol Error, or the specific
code AWS lists: 0x8F, 0x90, 0x94, 0x9B, 0xA1; docs/aws-iot-now.md §3.2)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator.mqtt_packets import _check_topic_filter, _packet_id, _string, _utf8

AUTH = 15  # MQTT 5 only; AWS IoT has no AUTH packet (DG mqtt.html)

# Reason codes (MQTT 5 §2.4) the stand-in sends or reads.
SUCCESS = 0x00
DISCONNECT_WITH_WILL = 0x04
UNSPECIFIED_ERROR = 0x80
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
UNSUPPORTED_PROTOCOL_VERSION = 0x84
CLIENT_ID_NOT_VALID = 0x85
BAD_USERNAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
SERVER_SHUTTING_DOWN = 0x8B
BAD_AUTHENTICATION_METHOD = 0x8C
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
TOPIC_ALIAS_INVALID = 0x94
QOS_NOT_SUPPORTED = 0x9B
SUBSCRIPTION_IDS_NOT_SUPPORTED = 0xA1

# Reason codes a client may put in each packet (MQTT 5 §3.4.2.1, §3.5-§3.7, §3.14.2.1).
_CLIENT_ACK_CODES = {mp.PUBACK: {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
                     mp.PUBREC: {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
                     mp.PUBREL: {0x00, 0x92}, mp.PUBCOMP: {0x00, 0x92}}
_CLIENT_DISCONNECT_CODES = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x98, 0x99}

WILL = 0  # not a packet type: the Will properties of a CONNECT have a set of their own

# Property identifiers (MQTT 5 §2.2.2.2).
PAYLOAD_FORMAT = 0x01
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_ID = 0x0B
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_ID_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _TWO, _FOUR, _VARINT, _TEXT, _BINARY, _PAIR = "byte", "two", "four", "varint", "text", "binary", "pair"
_ACKS = (mp.PUBACK, mp.PUBREC, mp.PUBREL, mp.PUBCOMP)
# identifier -> (name, data type, packets it may appear in)
PROPERTIES: dict[int, tuple[str, str, frozenset[int]]] = {
    PAYLOAD_FORMAT: ("Payload Format Indicator", _BYTE, frozenset({mp.PUBLISH, WILL})),
    MESSAGE_EXPIRY: ("Message Expiry Interval", _FOUR, frozenset({mp.PUBLISH, WILL})),
    CONTENT_TYPE: ("Content Type", _TEXT, frozenset({mp.PUBLISH, WILL})),
    RESPONSE_TOPIC: ("Response Topic", _TEXT, frozenset({mp.PUBLISH, WILL})),
    CORRELATION_DATA: ("Correlation Data", _BINARY, frozenset({mp.PUBLISH, WILL})),
    SUBSCRIPTION_ID: ("Subscription Identifier", _VARINT, frozenset({mp.PUBLISH, mp.SUBSCRIBE})),
    SESSION_EXPIRY: ("Session Expiry Interval", _FOUR, frozenset({mp.CONNECT, mp.CONNACK, mp.DISCONNECT})),
    ASSIGNED_CLIENT_ID: ("Assigned Client Identifier", _TEXT, frozenset({mp.CONNACK})),
    SERVER_KEEP_ALIVE: ("Server Keep Alive", _TWO, frozenset({mp.CONNACK})),
    AUTHENTICATION_METHOD: ("Authentication Method", _TEXT, frozenset({mp.CONNECT, mp.CONNACK, AUTH})),
    AUTHENTICATION_DATA: ("Authentication Data", _BINARY, frozenset({mp.CONNECT, mp.CONNACK, AUTH})),
    REQUEST_PROBLEM_INFORMATION: ("Request Problem Information", _BYTE, frozenset({mp.CONNECT})),
    WILL_DELAY: ("Will Delay Interval", _FOUR, frozenset({WILL})),
    REQUEST_RESPONSE_INFORMATION: ("Request Response Information", _BYTE, frozenset({mp.CONNECT})),
    RESPONSE_INFORMATION: ("Response Information", _TEXT, frozenset({mp.CONNACK})),
    SERVER_REFERENCE: ("Server Reference", _TEXT, frozenset({mp.CONNACK, mp.DISCONNECT})),
    REASON_STRING: ("Reason String", _TEXT, frozenset({mp.CONNACK, *_ACKS, mp.SUBACK, mp.UNSUBACK,
                                                       mp.DISCONNECT, AUTH})),
    RECEIVE_MAXIMUM: ("Receive Maximum", _TWO, frozenset({mp.CONNECT, mp.CONNACK})),
    TOPIC_ALIAS_MAXIMUM: ("Topic Alias Maximum", _TWO, frozenset({mp.CONNECT, mp.CONNACK})),
    TOPIC_ALIAS: ("Topic Alias", _TWO, frozenset({mp.PUBLISH})),
    MAXIMUM_QOS: ("Maximum QoS", _BYTE, frozenset({mp.CONNACK})),
    RETAIN_AVAILABLE: ("Retain Available", _BYTE, frozenset({mp.CONNACK})),
    USER_PROPERTY: ("User Property", _PAIR, frozenset({mp.CONNECT, WILL, mp.CONNACK, mp.PUBLISH, *_ACKS,
                                                       mp.SUBSCRIBE, mp.SUBACK, mp.UNSUBSCRIBE, mp.UNSUBACK,
                                                       mp.DISCONNECT, AUTH})),
    MAXIMUM_PACKET_SIZE: ("Maximum Packet Size", _FOUR, frozenset({mp.CONNECT, mp.CONNACK})),
    WILDCARD_SUBSCRIPTION_AVAILABLE: ("Wildcard Subscription Available", _BYTE, frozenset({mp.CONNACK})),
    SUBSCRIPTION_ID_AVAILABLE: ("Subscription Identifier Available", _BYTE, frozenset({mp.CONNACK})),
    SHARED_SUBSCRIPTION_AVAILABLE: ("Shared Subscription Available", _BYTE, frozenset({mp.CONNACK})),
}
# Properties that may appear more than once (§2.2.2.2); any other twice is a Protocol Error.
_REPEATABLE = frozenset({USER_PROPERTY, SUBSCRIPTION_ID})
# Byte properties whose only values are 0 and 1; two-byte ones that must not be 0.
_BOOLEAN = frozenset({PAYLOAD_FORMAT, REQUEST_PROBLEM_INFORMATION, REQUEST_RESPONSE_INFORMATION, RETAIN_AVAILABLE,
                      WILDCARD_SUBSCRIPTION_AVAILABLE, SUBSCRIPTION_ID_AVAILABLE, SHARED_SUBSCRIPTION_AVAILABLE})
_NOT_ZERO = frozenset({RECEIVE_MAXIMUM, MAXIMUM_PACKET_SIZE, SUBSCRIPTION_ID})


class ProtocolViolation(mp.ProtocolError):
    """Well-formed bytes the standard still forbids (MQTT 5 "Protocol Error")."""

    reason_code = PROTOCOL_ERROR


class TopicNameInvalid(mp.ProtocolError):
    reason_code = TOPIC_NAME_INVALID


class TopicFilterInvalid(mp.ProtocolError):
    reason_code = TOPIC_FILTER_INVALID


class TopicAliasInvalid(mp.ProtocolError):
    reason_code = TOPIC_ALIAS_INVALID


class QosNotSupported(mp.ProtocolError):
    reason_code = QOS_NOT_SUPPORTED


class SubscriptionIdsNotSupported(mp.ProtocolError):
    reason_code = SUBSCRIPTION_IDS_NOT_SUPPORTED


def property_name(identifier: int) -> str:
    return PROPERTIES[identifier][0] if identifier in PROPERTIES else f"property {identifier:#04x}"


class Properties(list):
    """(identifier, value) pairs in the order sent: ints, str, bytes, or (str, str) for User Property."""

    def value(self, identifier: int, default=None):
        return next((v for i, v in self if i == identifier), default)

    def without(self, *identifiers: int) -> Properties:
        return Properties((i, v) for i, v in self if i not in identifiers)

    def encode(self) -> bytes:
        out = bytearray()
        for identifier, value in self:
            out += mp.encode_length(identifier)
            kind = PROPERTIES[identifier][1]
            if kind == _BYTE:
                out.append(value)
            elif kind == _TWO:
                out += struct.pack("!H", value)
            elif kind == _FOUR:
                out += struct.pack("!I", value)
            elif kind == _VARINT:
                out += mp.encode_length(value)
            elif kind == _TEXT:
                out += _field(value.encode())
            elif kind == _BINARY:
                out += _field(value)
            else:
                out += _field(value[0].encode()) + _field(value[1].encode())
        return mp.encode_length(len(out)) + bytes(out)


def _field(raw: bytes) -> bytes:
    return struct.pack("!H", len(raw)) + raw


def _varint(body: bytes, at: int, what: str) -> tuple[int, int]:
    value, mult = 0, 1
    for _ in range(4):
        if at >= len(body):
            raise mp.ProtocolError(f"truncated {what}")
        byte = body[at]
        at += 1
        value += (byte & 0x7F) * mult
        if not byte & 0x80:
            return value, at
        mult *= 128
    raise mp.ProtocolError(f"malformed {what} (more than four bytes)")


def _fixed(body: bytes, at: int, size: int, name: str) -> tuple[int, int]:
    if at + size > len(body):
        raise mp.ProtocolError(f"truncated {name}")
    return int.from_bytes(body[at:at + size], "big"), at + size


def parse_properties(body: bytes, at: int, packet_type: int) -> tuple[Properties, int]:
    """The property block at `at` (its length first) for `packet_type` (WILL for Will properties),
    checked against MQTT 5 §2.2.2 and §3; returns the properties and the index after the block."""
    length, at = _varint(body, at, "property length")
    end = at + length
    if end > len(body):
        raise mp.ProtocolError("property length runs past the end of the packet")
    where = "Will properties" if packet_type == WILL else f"{mp.NAMES.get(packet_type, 'AUTH')} properties"
    props, seen = Properties(), set()
    while at < end:
        identifier, at = _varint(body, at, "property identifier")
        if identifier not in PROPERTIES:
            raise mp.ProtocolError(f"{where}: unknown property identifier {identifier:#04x} (MQTT 5 §2.2.2.2)")
        name, kind, allowed = PROPERTIES[identifier]
        if packet_type not in allowed:
            raise mp.ProtocolError(f"{where}: {name} does not belong in this packet (MQTT 5 §2.2.2.2)")
        if identifier in seen and identifier not in _REPEATABLE:
            raise ProtocolViolation(f"{where}: {name} more than once")
        seen.add(identifier)
        value: object
        if kind == _BYTE:
            value, at = _fixed(body[:end], at, 1, name)
        elif kind == _TWO:
            value, at = _fixed(body[:end], at, 2, name)
        elif kind == _FOUR:
            value, at = _fixed(body[:end], at, 4, name)
        elif kind == _VARINT:
            value, at = _varint(body[:end], at, name)
        elif kind == _BINARY:
            value, at = _string(body[:end], at)
        elif kind == _TEXT:
            raw, at = _string(body[:end], at)
            value = _utf8(raw)
        else:
            raw_key, at = _string(body[:end], at)
            raw_value, at = _string(body[:end], at)
            value = (_utf8(raw_key), _utf8(raw_value))
        _check_value(identifier, value, where)
        props.append((identifier, value))
    return props, end


def _check_value(identifier: int, value, where: str) -> None:
    name = PROPERTIES[identifier][0]
    if identifier in _BOOLEAN and value not in (0, 1):
        raise ProtocolViolation(f"{where}: {name} is {value}, not 0 or 1")
    if identifier in _NOT_ZERO and value == 0:
        raise ProtocolViolation(f"{where}: {name} of 0")
    if identifier == MAXIMUM_QOS and value not in (0, 1):
        raise ProtocolViolation(f"{where}: {name} is {value}, not 0 or 1")
    if identifier == RESPONSE_TOPIC:
        try:
            mp.check_topic_name(value)
        except mp.ProtocolError as exc:
            raise ProtocolViolation(f"{where}: Response Topic: {exc}") from None


# -- CONNECT -------------------------------------------------------------------------------------
@dataclass
class Connect5:
    """An MQTT 5 CONNECT: the fields both versions share, and its properties."""

    connect: mp.Connect
    properties: Properties
    will_properties: Properties

    @property
    def clean_start(self) -> bool:
        return self.connect.clean_session

    @property
    def session_expiry(self) -> int:
        return self.properties.value(SESSION_EXPIRY, 0)

    @property
    def maximum_packet_size(self) -> int | None:
        return self.properties.value(MAXIMUM_PACKET_SIZE)

    @property
    def authentication_method(self) -> str | None:
        return self.properties.value(AUTHENTICATION_METHOD)


def read_connect(connect: mp.Connect) -> Connect5:
    """The properties of a CONNECT that mqtt_packets.parse_connect read at level 5."""
    props, _ = parse_properties(connect.properties, 0, mp.CONNECT)
    if props.value(AUTHENTICATION_DATA) is not None and props.value(AUTHENTICATION_METHOD) is None:
        raise ProtocolViolation("CONNECT: Authentication Data without an Authentication Method (MQTT 5 §3.1.2.11.10)")
    will = Properties()
    if connect.will_properties:
        will, _ = parse_properties(connect.will_properties, 0, WILL)
    return Connect5(connect, props, will)


def build_connect(c5: Connect5, properties: Properties, keep_will: bool = True) -> mp.Packet:
    """An MQTT 5 CONNECT for the broker: the client's own without credentials (the broker trusts
    the stand-in), with `properties` in place of the client's."""
    c = c5.connect
    flags = c.flags & 0x02
    payload = _field(c.client_id.encode())
    if keep_will and c.will_topic is not None:
        flags |= 0x04 | (c.flags & 0x38)
        payload = payload + c5.will_properties.encode() + _field(c.will_topic.encode()) + _field(c.will_message or b"")
    header = _field(b"MQTT") + bytes([5, flags]) + struct.pack("!H", c.keepalive) + properties.encode()
    return mp.Packet(mp.CONNECT, 0, header + payload)


# -- PUBLISH -------------------------------------------------------------------------------------
@dataclass
class Publish5:
    topic: str  # "" when the packet names its topic by alias only
    qos: int
    retain: bool
    dup: bool
    packet_id: int | None
    properties: Properties
    payload: bytes

    def encode(self) -> mp.Packet:
        body = _field(self.topic.encode())
        if self.qos:
            assert self.packet_id is not None
            body += struct.pack("!H", self.packet_id)
        flags = (0x08 if self.dup else 0) | (self.qos << 1) | (1 if self.retain else 0)
        return mp.Packet(mp.PUBLISH, flags, body + self.properties.encode() + self.payload)


def parse_publish(packet: mp.Packet) -> Publish5:
    if packet.type != mp.PUBLISH:
        raise mp.ProtocolError(f"expected PUBLISH, got packet type {packet.type}")
    qos = (packet.flags >> 1) & 0x03
    if qos == 3:
        raise mp.ProtocolError("PUBLISH with QoS 3 (MQTT 5 §3.3.1.2)")
    if qos == 0 and packet.flags & 0x08:
        raise mp.ProtocolError("PUBLISH with DUP set at QoS 0 (MQTT 5 §3.3.1.1)")
    raw_topic, at = _string(packet.body, 0)
    topic = _utf8(raw_topic)
    if topic:  # an empty topic name is allowed with a Topic Alias (checked below)
        try:
            mp.check_topic_name(topic)
        except mp.ProtocolError as exc:
            raise TopicNameInvalid(str(exc)) from None
    pid = None
    if qos:
        pid = _packet_id(packet.body, at, "PUBLISH")
        at += 2
    props, at = parse_properties(packet.body, at, mp.PUBLISH)
    if not topic and props.value(TOPIC_ALIAS) is None:
        raise ProtocolViolation("PUBLISH with an empty topic name and no Topic Alias (MQTT 5 §3.3.2.1)")
    if props.value(TOPIC_ALIAS) == 0:
        raise TopicAliasInvalid("PUBLISH with Topic Alias 0 (MQTT 5 §3.3.2.3.4)")
    return Publish5(topic, qos, bool(packet.flags & 1), bool(packet.flags & 8), pid, props, packet.body[at:])


# -- SUBSCRIBE / UNSUBSCRIBE ---------------------------------------------------------------------
@dataclass
class Subscription:
    topic_filter: str
    options: int  # QoS in bits 0-1, No Local bit 2, Retain As Published bit 3, Retain Handling bits 4-5

    @property
    def qos(self) -> int:
        return self.options & 0x03


def _shared_filter(topic_filter: str) -> str | None:
    """The filter inside `$share/<name>/<filter>`, or None for a plain filter."""
    if not topic_filter.startswith("$share/"):
        return None
    parts = topic_filter.split("/", 2)
    if len(parts) < 3 or not parts[1] or "+" in parts[1] or "#" in parts[1] or not parts[2]:
        raise TopicFilterInvalid(f"shared subscription {topic_filter[:64]!r} is not $share/<name>/<filter>")
    return parts[2]


def _check_filter(topic_filter: str, what: str) -> None:
    try:
        _check_topic_filter(_shared_filter(topic_filter) or topic_filter, what)
    except TopicFilterInvalid:
        raise
    except mp.ProtocolError as exc:
        raise TopicFilterInvalid(str(exc)) from None


def parse_subscribe(packet: mp.Packet) -> tuple[int, Properties, list[Subscription]]:
    pid = _packet_id(packet.body, 0, "SUBSCRIBE")
    props, at = parse_properties(packet.body, 2, mp.SUBSCRIBE)
    if props.value(SUBSCRIPTION_ID) is not None:
        # AWS IoT does not support them (CONNACK Subscription Identifier Available = 0; DG mqtt.html).
        raise SubscriptionIdsNotSupported("SUBSCRIBE with a Subscription Identifier (AWS IoT supports none)")
    subscriptions = []
    while at < len(packet.body):
        raw, at = _string(packet.body, at)
        if at >= len(packet.body):
            raise mp.ProtocolError("SUBSCRIBE filter without subscription options")
        topic_filter, options = _utf8(raw), packet.body[at]
        at += 1
        _check_filter(topic_filter, "SUBSCRIBE")
        if options & 0xC0:
            raise mp.ProtocolError(f"SUBSCRIBE options {options:#04x}: reserved bits set (MQTT 5 §3.8.3.1)")
        if options & 0x03 == 3:
            raise mp.ProtocolError("SUBSCRIBE options: QoS 3 (MQTT 5 §3.8.3.1)")
        if (options >> 4) & 0x03 == 3:
            raise ProtocolViolation("SUBSCRIBE options: Retain Handling 3 (MQTT 5 §3.8.3.1)")
        if options & 0x04 and topic_filter.startswith("$share/"):
            raise ProtocolViolation("SUBSCRIBE: No Local on a shared subscription (MQTT 5 §3.8.3.1)")
        subscriptions.append(Subscription(topic_filter, options))
    if not subscriptions:
        raise ProtocolViolation("SUBSCRIBE without filters")
    return pid, props, subscriptions


def parse_unsubscribe(packet: mp.Packet) -> tuple[int, Properties, list[str]]:
    pid = _packet_id(packet.body, 0, "UNSUBSCRIBE")
    props, at = parse_properties(packet.body, 2, mp.UNSUBSCRIBE)
    filters = []
    while at < len(packet.body):
        raw, at = _string(packet.body, at)
        topic_filter = _utf8(raw)
        _check_filter(topic_filter, "UNSUBSCRIBE")
        filters.append(topic_filter)
    if not filters:
        raise ProtocolViolation("UNSUBSCRIBE without filters")
    return pid, props, filters


# -- acknowledgements and DISCONNECT -------------------------------------------------------------
def parse_ack(packet: mp.Packet, allowed: set[int] | None = None) -> tuple[int, int, Properties]:
    """(packet id, reason code, properties) of PUBACK/PUBREC/PUBREL/PUBCOMP; the reason code and the
    properties may be left out (MQTT 5 §3.4.2.1)."""
    name = mp.NAMES[packet.type]
    pid = _packet_id(packet.body, 0, name)
    if len(packet.body) == 2:
        return pid, SUCCESS, Properties()
    code = packet.body[2]
    codes = _CLIENT_ACK_CODES[packet.type] if allowed is None else allowed
    if code not in codes:
        raise mp.ProtocolError(f"{name} with reason code {code:#04x}, which {name} does not carry")
    props = Properties()
    if len(packet.body) > 3:
        props, end = parse_properties(packet.body, 3, packet.type)
        if end != len(packet.body):
            raise mp.ProtocolError(f"{name} with {len(packet.body) - end} bytes after its properties")
    return pid, code, props


def parse_disconnect(packet: mp.Packet) -> tuple[int, Properties]:
    if not packet.body:
        return SUCCESS, Properties()
    code = packet.body[0]
    if code not in _CLIENT_DISCONNECT_CODES:
        raise mp.ProtocolError(f"DISCONNECT with reason code {code:#04x}, which a client does not send")
    props = Properties()
    if len(packet.body) > 1:
        props, end = parse_properties(packet.body, 1, mp.DISCONNECT)
        if end != len(packet.body):
            raise mp.ProtocolError(f"DISCONNECT with {len(packet.body) - end} bytes after its properties")
        if props.value(SERVER_REFERENCE) is not None:
            raise ProtocolViolation("DISCONNECT from a client with a Server Reference (MQTT 5 §3.14.2.2.5)")
    return code, props


def check_client_packet(packet: mp.Packet) -> None:
    """Raise ProtocolError unless `packet` is one an MQTT 5 client may send, well formed (MQTT 5 §2-§3)."""
    if packet.type == AUTH:
        raise ProtocolViolation("AUTH packet: AWS IoT supports no MQTT 5 enhanced authentication (DG mqtt.html)")
    if packet.type == mp.PUBLISH:
        parse_publish(packet)
        return
    name = mp.NAMES.get(packet.type)
    if name is None:
        raise mp.ProtocolError(f"reserved packet type {packet.type} (MQTT 5 §2.1.2)")
    if packet.type not in mp.CLIENT_PACKET_FLAGS:
        raise ProtocolViolation(f"{name} is a packet only a server sends")
    expected = mp.CLIENT_PACKET_FLAGS[packet.type]
    if packet.flags != expected:
        raise mp.ProtocolError(f"{name} with fixed-header flags {packet.flags:04b} (MQTT 5 §2.1.3 requires "
                               f"{expected:04b})")
    if packet.type in _ACKS:
        parse_ack(packet)
    elif packet.type == mp.PINGREQ and packet.body:
        raise mp.ProtocolError(f"PINGREQ with remaining length {len(packet.body)} (must be 0)")
    elif packet.type == mp.DISCONNECT:
        parse_disconnect(packet)
    elif packet.type == mp.SUBSCRIBE:
        parse_subscribe(packet)
    elif packet.type == mp.UNSUBSCRIBE:
        parse_unsubscribe(packet)
    elif packet.type == mp.CONNECT:
        read_connect(mp.parse_connect(packet))


# -- what the stand-in writes --------------------------------------------------------------------
def connack(reason: int = SUCCESS, session_present: bool = False, properties: Properties | None = None) -> mp.Packet:
    return mp.Packet(mp.CONNACK, 0, bytes([1 if session_present else 0, reason]) + (properties or Properties()).encode())


def ack(packet_type: int, packet_id: int, reason: int = SUCCESS) -> mp.Packet:
    """PUBACK (or PUBREC/PUBCOMP) with a reason code; the short form for Success (MQTT 5 §3.4.2.1)."""
    body = struct.pack("!H", packet_id) + (bytes([reason]) if reason else b"")
    return mp.Packet(packet_type, 0, body)


def suback(packet_id: int, codes: list[int]) -> mp.Packet:
    return mp.Packet(mp.SUBACK, 0, struct.pack("!H", packet_id) + b"\x00" + bytes(codes))


def unsuback(packet_id: int, codes: list[int]) -> mp.Packet:
    return mp.Packet(mp.UNSUBACK, 0, struct.pack("!H", packet_id) + b"\x00" + bytes(codes))


def disconnect(reason: int = SUCCESS) -> mp.Packet:
    return mp.Packet(mp.DISCONNECT, 0, bytes([reason]) if reason else b"")


def parse_server_ack(packet: mp.Packet) -> tuple[int, Properties, list[int]]:
    """(packet id, properties, reason codes) of a SUBACK or UNSUBACK from an MQTT 5 broker."""
    if len(packet.body) < 3:
        raise mp.ProtocolError(f"{mp.NAMES[packet.type]} shorter than its header")
    (pid,) = struct.unpack_from("!H", packet.body, 0)
    props, at = parse_properties(packet.body, 2, packet.type)
    return pid, props, list(packet.body[at:])
