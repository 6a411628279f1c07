"""Just enough MQTT 3.1.1 (OASIS mqtt-v3.1.1) to read what passes through the stand-in: packet
framing, CONNECT, PUBLISH, SUBSCRIBE, and the few packets the stand-in writes itself."""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14
MAX_PACKET = 128 * 1024  # AWS IoT's message size limit is 128 KB (DG limits-iot.html)


class ProtocolError(Exception):
    """Bytes that are not MQTT 3.1.1 as the stand-in expects it."""


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
            raise ProtocolError(f"packet of {length} bytes exceeds the 128 KB limit")
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
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("string is not UTF-8") from None


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
    body = packet.body
    name, at = _string(body, 0)
    if at + 4 > len(body):
        raise ProtocolError("truncated CONNECT")
    level, flags = body[at], body[at + 1]
    (keepalive,) = struct.unpack_from("!H", body, at + 2)
    at += 4
    if level == 5:  # MQTT 5 properties: skipped, only read far enough to name the client
        at = _skip_properties(body, at)
    raw_id, at = _string(body, at)
    will_topic = will_msg = None
    if flags & 0x04:
        if level == 5:
            at = _skip_properties(body, at)
        raw_topic, at = _string(body, at)
        will_topic = _utf8(raw_topic)
        will_msg, at = _string(body, at)
    username = password = None
    if flags & 0x80:
        raw_user, at = _string(body, at)
        username = _utf8(raw_user)
    if flags & 0x40:
        password, at = _string(body, at)
    return Connect(_utf8(name), level, flags, keepalive, _utf8(raw_id), will_topic, will_msg, username, password)


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


def parse_publish(packet: Packet) -> Publish:
    qos = (packet.flags >> 1) & 0x03
    raw_topic, at = _string(packet.body, 0)
    pid = None
    if qos:
        if at + 2 > len(packet.body):
            raise ProtocolError("truncated PUBLISH")
        (pid,) = struct.unpack_from("!H", packet.body, at)
        at += 2
    return Publish(_utf8(raw_topic), qos, bool(packet.flags & 1), bool(packet.flags & 8), pid, packet.body[at:])


def parse_subscribe(packet: Packet) -> tuple[int, list[tuple[str, int]]]:
    if len(packet.body) < 2:
        raise ProtocolError("truncated SUBSCRIBE")
    (pid,) = struct.unpack_from("!H", packet.body, 0)
    at, filters = 2, []
    while at < len(packet.body):
        raw, at = _string(packet.body, at)
        if at >= len(packet.body):
            raise ProtocolError("SUBSCRIBE filter without QoS")
        filters.append((_utf8(raw), packet.body[at] & 0x03))
        at += 1
    if not filters:
        raise ProtocolError("SUBSCRIBE without filters")
    return pid, filters


def build_subscribe(packet_id: int, filters: list[tuple[str, int]], flags: int = 0x02) -> Packet:
    body = struct.pack("!H", packet_id) + b"".join(
        struct.pack("!H", len(raw)) + raw + bytes([qos]) for raw, qos in ((t.encode(), q) for t, q in filters))
    return Packet(SUBSCRIBE, flags, body)


def puback(packet_id: int) -> Packet:
    return Packet(PUBACK, 0, struct.pack("!H", packet_id))


def connack(return_code: int = 0, session_present: bool = False) -> Packet:
    return Packet(CONNACK, 0, bytes([1 if session_present else 0, return_code]))
