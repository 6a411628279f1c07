"""Just enough MQTT 3.1.1 (OASIS mqtt-v3.1.1) to read what passes through the stand-in: packet
framing, CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, and the few packets the stand-in writes itself.

Everything a client sends is checked against the rules the standard says a server MUST enforce by
closing the connection (reserved packet types, fixed-header flags, QoS 3, malformed strings and
topic filters), so nothing malformed is relayed to the broker."""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14
MAX_PACKET = 128 * 1024  # AWS IoT's message size limit is 128 KB (DG limits-iot.html)
NAMES = {CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK", PUBREC: "PUBREC",
         PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE", SUBACK: "SUBACK",
         UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK", PINGREQ: "PINGREQ", PINGRESP: "PINGRESP",
         DISCONNECT: "DISCONNECT"}
# What a client may send, with the fixed-header flags MQTT 3.1.1 §2.2.2 requires (PUBLISH's are its
# DUP/QoS/RETAIN bits, checked by parse_publish). A server MUST close on anything else [MQTT-2.2.2-2].
CLIENT_PACKET_FLAGS = {CONNECT: 0, PUBACK: 0, PUBREC: 0, PUBREL: 0b0010, PUBCOMP: 0, SUBSCRIBE: 0b0010,
                       UNSUBSCRIBE: 0b0010, PINGREQ: 0, DISCONNECT: 0}
# AWS logs an oversized message as CLIENT_ERROR with this reason and text (DG topicdata.html).
PAYLOAD_LIMIT_REASON = "PAYLOAD_LIMIT_EXCEEDED"
PAYLOAD_LIMIT_DETAILS = "Message payload exceeds size limit for message type."


class ProtocolError(Exception):
    """Bytes that are not MQTT 3.1.1 as the stand-in expects it: the connection is closed and logged
    as a client error (`reason`, `details` for the IoT log record). An MQTT 5 client is told why in a
    DISCONNECT with `reason_code` (MQTT 5 §2.4; 0x81 Malformed Packet unless a subclass says more)."""

    reason = "CLIENT_ERROR"
    reason_code = 0x81

    @property
    def details(self) -> str:
        return f"MQTT protocol error: {self}"


class PayloadTooLarge(ProtocolError):
    """A packet or message over AWS IoT's size limit."""

    reason = PAYLOAD_LIMIT_REASON
    reason_code = 0x95  # Packet too large (MQTT 5 §2.4; not in AWS's list, which it calls non-exhaustive)

    @property
    def details(self) -> str:
        return f"{PAYLOAD_LIMIT_DETAILS} ({self})"


@dataclass
class Packet:
    type: int
    flags: int
    body: bytes

    def encode(self) -> bytes:
        return bytes([(self.type << 4) | self.flags]) + encode_length(len(self.body)) + self.body


def encode_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class PacketReader:
    """Splits a byte stream into packets; feed() bytes, then take packets from next_packet()."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_packet(self) -> Packet | None:
        if len(self._buf) < 2:
            return None
        length, mult, i = 0, 1, 1
        while True:
            if i >= len(self._buf):
                return None
            byte = self._buf[i]
            length += (byte & 0x7F) * mult
            i += 1
            if not byte & 0x80:
                break
            mult *= 128
            if i > 4:
                raise ProtocolError("malformed remaining length")
        if length > MAX_PACKET + 1024:
            raise PayloadTooLarge(f"packet of {length} bytes exceeds the 128 KB limit")
        if len(self._buf) < i + length:
            return None
        first = self._buf[0]
        packet = Packet(first >> 4, first & 0x0F, bytes(self._buf[i:i + length]))
        del self._buf[:i + length]
        return packet

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)


def _string(body: bytes, at: int) -> tuple[bytes, int]:
    if at + 2 > len(body):
        raise ProtocolError("truncated string")
    (n,) = struct.unpack_from("!H", body, at)
    if at + 2 + n > len(body):
        raise ProtocolError("truncated string")
    return body[at + 2:at + 2 + n], at + 2 + n


def _utf8(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("string is not UTF-8") from None
    if "\x00" in text:
        raise ProtocolError("string contains U+0000 (MQTT 3.1.1 §1.5.3)")
    return text


def _packet_id(body: bytes, at: int, what: str) -> int:
    if at + 2 > len(body):
        raise ProtocolError(f"truncated {what}")
    (pid,) = struct.unpack_from("!H", body, at)
    if pid == 0:
        raise ProtocolError(f"{what} with packet identifier 0 (MQTT 3.1.1 §2.3.1)")
    return pid


def _check_topic_filter(topic_filter: str, what: str) -> None:
    """§4.7.1/§4.7.3: at least one character; '#' only as the whole last level, '+' only as a whole level."""
    if not topic_filter:
        raise ProtocolError(f"{what} with an empty topic filter")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ProtocolError(f"{what} topic filter {topic_filter[:64]!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise ProtocolError(f"{what} topic filter {topic_filter[:64]!r}: '+' must be a whole level")


def _skip_properties(body: bytes, at: int) -> int:
    length, mult = 0, 1
    for _ in range(4):
        if at >= len(body):
            raise ProtocolError("truncated properties")
        byte = body[at]
        at += 1
        length += (byte & 0x7F) * mult
        if not byte & 0x80:
            return at + length
        mult *= 128
    raise ProtocolError("malformed property length")


@dataclass
class Connect:
    protocol_name: str
    level: int
    flags: int
    keepalive: int
    client_id: str
    will_topic: str | None
    will_message: bytes | None
    username: str | None
    password: bytes | None
    # MQTT 5 only: the CONNECT and Will property blocks as sent, length prefix included
    # (mqtt5_packets reads them).
    properties: bytes = b""
    will_properties: bytes = b""

    @property
    def clean_session(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def will_qos(self) -> int:
        return (self.flags >> 3) & 0x03

    @property
    def will_retain(self) -> bool:
        return bool(self.flags & 0x20)


def parse_connect(packet: Packet) -> Connect:
    if packet.type != CONNECT:
        raise ProtocolError("first packet is not CONNECT")
    if packet.flags:
        raise ProtocolError(f"CONNECT with fixed-header flags {packet.flags:04b} (MQTT 3.1.1 §2.2.2 requires 0000)")
    body = packet.body
    name, at = _string(body, 0)
    if at + 4 > len(body):
        raise ProtocolError("truncated CONNECT")
    level, flags = body[at], body[at + 1]
    _check_connect_flags(level, flags)
    (keepalive,) = struct.unpack_from("!H", body, at + 2)
    at += 4
    properties = will_properties = b""
    if level == 5:  # MQTT 5 properties: kept as bytes here, read by mqtt5_packets
        start, at = at, _skip_properties(body, at)
        properties = body[start:at]
    raw_id, at = _string(body, at)
    will_topic = will_msg = None
    if flags & 0x04:
        if level == 5:
            start, at = at, _skip_properties(body, at)
            will_properties = body[start:at]
        raw_topic, at = _string(body, at)
        will_topic = _utf8(raw_topic)
        if not will_topic or "+" in will_topic or "#" in will_topic:
            raise ProtocolError(f"CONNECT Will Topic {will_topic[:64]!r} is not a topic name (MQTT 3.1.1 §4.7)")
        will_msg, at = _string(body, at)
    username = password = None
    if flags & 0x80:
        raw_user, at = _string(body, at)
        username = _utf8(raw_user)
    if flags & 0x40:
        password, at = _string(body, at)
    return Connect(_utf8(name), level, flags, keepalive, _utf8(raw_id), will_topic, will_msg, username, password,
                   properties, will_properties)


def _check_connect_flags(level: int, flags: int) -> None:
    """MQTT 3.1.1 §3.1.2.3-§3.1.2.9 (the same bits in MQTT 5, except a password without a user name)."""
    if flags & 0x01:
        raise ProtocolError("CONNECT flags: the reserved bit is set (MQTT 3.1.1 §3.1.2.3)")
    will_qos = (flags >> 3) & 0x03
    if will_qos == 3:
        raise ProtocolError("CONNECT flags: Will QoS 3 (MQTT 3.1.1 §3.1.2.6)")
    if not flags & 0x04 and flags & 0x38:
        raise ProtocolError("CONNECT flags: Will QoS or Will Retain without the Will flag (MQTT 3.1.1 §3.1.2.6)")
    if level != 5 and flags & 0x40 and not flags & 0x80:
        raise ProtocolError("CONNECT flags: a password without a user name (MQTT 3.1.1 §3.1.2.9)")


def build_connect(c: Connect, username: str | None = None, password: bytes | None = None,
                  keep_will: bool = True) -> Packet:
    """A CONNECT for the broker: the client's own, with credentials replaced (the broker trusts the
    stand-in, which has already authenticated the client)."""

    def s(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    flags = c.flags & 0x02
    payload = s(c.client_id.encode())
    if keep_will and c.will_topic is not None:
        flags |= 0x04 | (c.flags & 0x38)
        payload += s(c.will_topic.encode()) + s(c.will_message or b"")
    if username is not None:
        flags |= 0x80
        payload += s(username.encode())
        if password is not None:
            flags |= 0x40
            payload += s(password)
    header = s(b"MQTT") + bytes([4, flags]) + struct.pack("!H", c.keepalive)
    return Packet(CONNECT, 0, header + payload)


@dataclass
class Publish:
    topic: str
    qos: int
    retain: bool
    dup: bool
    packet_id: int | None
    payload: bytes


def check_topic_name(topic: str) -> None:
    """A topic a message may be published to: not empty, no wildcard, no U+0000, at most 65,535 bytes."""
    if not topic:
        raise ProtocolError("an empty topic name (MQTT 3.1.1 §4.7.3)")
    if "+" in topic or "#" in topic:
        raise ProtocolError(f"topic name {topic[:64]!r} contains a wildcard (MQTT 3.1.1 §3.3.2.1)")
    if "\x00" in topic or len(topic.encode("utf-8", "surrogatepass")) > 65535:
        raise ProtocolError("topic name with U+0000 or over 65,535 bytes (MQTT 3.1.1 §1.5.3)")


def parse_publish(packet: Packet) -> Publish:
    if packet.type != PUBLISH:
        raise ProtocolError(f"expected PUBLISH, got packet type {packet.type}")
    qos = (packet.flags >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3 (MQTT 3.1.1 §3.3.1.2)")
    if qos == 0 and packet.flags & 0x08:
        raise ProtocolError("PUBLISH with DUP set at QoS 0 (MQTT 3.1.1 §3.3.1.1)")
    raw_topic, at = _string(packet.body, 0)
    topic = _utf8(raw_topic)
    check_topic_name(topic)
    pid = None
    if qos:
        pid = _packet_id(packet.body, at, "PUBLISH")
        at += 2
    return Publish(topic, qos, bool(packet.flags & 1), bool(packet.flags & 8), pid, packet.body[at:])


def parse_subscribe(packet: Packet) -> tuple[int, list[tuple[str, int]]]:
    pid = _packet_id(packet.body, 0, "SUBSCRIBE")
    at, filters = 2, []
    while at < len(packet.body):
        raw, at = _string(packet.body, at)
        if at >= len(packet.body):
            raise ProtocolError("SUBSCRIBE filter without QoS")
        topic_filter, requested = _utf8(raw), packet.body[at]
        _check_topic_filter(topic_filter, "SUBSCRIBE")
        if requested > 2:  # the reserved bits must be 0 and QoS 0, 1 or 2 [MQTT-3.8.3-4]
            raise ProtocolError(f"SUBSCRIBE requested QoS byte {requested:#04x} (MQTT 3.1.1 §3.8.3.1)")
        filters.append((topic_filter, requested))
        at += 1
    if not filters:
        raise ProtocolError("SUBSCRIBE without filters")
    return pid, filters


def parse_unsubscribe(packet: Packet) -> tuple[int, list[str]]:
    pid = _packet_id(packet.body, 0, "UNSUBSCRIBE")
    at, filters = 2, []
    while at < len(packet.body):
        raw, at = _string(packet.body, at)
        topic_filter = _utf8(raw)
        _check_topic_filter(topic_filter, "UNSUBSCRIBE")
        filters.append(topic_filter)
    if not filters:
        raise ProtocolError("UNSUBSCRIBE without filters")
    return pid, filters


def check_client_packet(packet: Packet) -> None:
    """Raise ProtocolError unless `packet` is one a client may send, well formed (MQTT 3.1.1 §2-§3)."""
    if packet.type == PUBLISH:
        parse_publish(packet)
        return
    name = NAMES.get(packet.type)
    if name is None:
        raise ProtocolError(f"reserved packet type {packet.type} (MQTT 3.1.1 §2.2.1)")
    if packet.type not in CLIENT_PACKET_FLAGS:
        raise ProtocolError(f"{name} is a packet only a server sends")
    expected = CLIENT_PACKET_FLAGS[packet.type]
    if packet.flags != expected:
        raise ProtocolError(f"{name} with fixed-header flags {packet.flags:04b} "
                            f"(MQTT 3.1.1 §2.2.2 requires {expected:04b})")
    if packet.type in (PUBACK, PUBREC, PUBREL, PUBCOMP) and len(packet.body) != 2:
        raise ProtocolError(f"{name} with remaining length {len(packet.body)} (must be 2)")
    if packet.type in (PINGREQ, DISCONNECT) and packet.body:
        raise ProtocolError(f"{name} with remaining length {len(packet.body)} (must be 0)")
    if packet.type == SUBSCRIBE:
        parse_subscribe(packet)
    elif packet.type == UNSUBSCRIBE:
        parse_unsubscribe(packet)
    elif packet.type == CONNECT:
        parse_connect(packet)


def build_subscribe(packet_id: int, filters: list[tuple[str, int]], flags: int = 0x02) -> Packet:
    body = struct.pack("!H", packet_id) + b"".join(
        struct.pack("!H", len(raw)) + raw + bytes([qos]) for raw, qos in ((t.encode(), q) for t, q in filters))
    return Packet(SUBSCRIBE, flags, body)


def puback(packet_id: int) -> Packet:
    return Packet(PUBACK, 0, struct.pack("!H", packet_id))


def connack(return_code: int = 0, session_present: bool = False) -> Packet:
    return Packet(CONNACK, 0, bytes([1 if session_present else 0, return_code]))
