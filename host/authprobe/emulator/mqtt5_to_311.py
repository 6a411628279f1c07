"""An MQTT 5 client's session carried over an MQTT 3.1.1 broker connection, for brokers that speak
only 3.1.1 (the embedded amqtt). The stand-in has already checked and authorised each packet; this
module only changes its shape on the way to the broker and back.

What 3.1.1 cannot carry is dropped, on purpose and nowhere else:
- CONNECT: properties (Session Expiry, Receive Maximum, Maximum Packet Size, User Properties ...) and
  Will properties (Will Delay, Message Expiry, ...); Clean Start becomes Clean Session.
- PUBLISH: every property (Message Expiry, Payload Format, Content Type, Response Topic, Correlation
  Data, User Properties); Topic Aliases were resolved before (mqtt5_session).
- SUBSCRIBE: No Local, Retain As Published and Retain Handling (the QoS is kept); UNSUBSCRIBE and
  acknowledgement properties and reason codes.
- DISCONNECT: its reason; "Disconnect with Will Message" (0x04) is emulated by dropping the broker
  connection without a DISCONNECT, so the broker publishes the Will.
Reason codes coming back are mapped as MQTT 5 Appendix B maps 3.1.1 return codes."""

from __future__ import annotations

import struct

from authprobe.emulator import mqtt5_packets as m5
from authprobe.emulator import mqtt_packets as mp

# 3.1.1 CONNACK return code -> MQTT 5 reason code (MQTT 5 §3.2.2.2 and its 3.1.1 equivalents).
CONNACK_CODES = {0: m5.SUCCESS, 1: m5.UNSUPPORTED_PROTOCOL_VERSION, 2: m5.CLIENT_ID_NOT_VALID,
                 3: m5.SERVER_UNAVAILABLE, 4: m5.BAD_USERNAME_OR_PASSWORD, 5: m5.NOT_AUTHORIZED}


class Mqtt311Broker:
    """The broker side of one MQTT 5 session, spoken in MQTT 3.1.1."""

    speaks_mqtt5 = False

    def __init__(self) -> None:
        self._unsubscribes: dict[int, int] = {}  # packet id -> number of filters (for UNSUBACK)

    def connect(self, c5: m5.Connect5, properties: m5.Properties, keep_will: bool) -> mp.Packet:
        return mp.build_connect(c5.connect, keep_will=keep_will)

    @staticmethod
    def connack(ack: mp.Packet) -> tuple[int, bool]:
        """(MQTT 5 reason code, session present) of the broker's CONNACK."""
        if ack.type != mp.CONNACK or len(ack.body) != 2:
            return m5.UNSPECIFIED_ERROR, False
        return CONNACK_CODES.get(ack.body[1], m5.UNSPECIFIED_ERROR), bool(ack.body[0] & 1)

    @staticmethod
    def publish(pub: m5.Publish5) -> mp.Packet:
        body = struct.pack("!H", len(pub.topic.encode())) + pub.topic.encode()
        if pub.qos:
            assert pub.packet_id is not None
            body += struct.pack("!H", pub.packet_id)
        flags = (0x08 if pub.dup else 0) | (pub.qos << 1) | (1 if pub.retain else 0)
        return mp.Packet(mp.PUBLISH, flags, body + pub.payload)

    @staticmethod
    def ack(packet: mp.Packet) -> mp.Packet:
        """The client's PUBACK/PUBREC/PUBREL/PUBCOMP without its reason code and properties."""
        return mp.Packet(packet.type, packet.flags, packet.body[:2])

    @staticmethod
    def subscribe(packet_id: int, properties: m5.Properties, subscriptions: list[m5.Subscription]) -> mp.Packet:
        return mp.build_subscribe(packet_id, [(s.topic_filter, s.qos) for s in subscriptions])

    def unsubscribe(self, packet_id: int, properties: m5.Properties, filters: list[str]) -> mp.Packet:
        self._unsubscribes[packet_id] = len(filters)
        body = struct.pack("!H", packet_id) + b"".join(struct.pack("!H", len(f.encode())) + f.encode()
                                                         for f in filters)
        return mp.Packet(mp.UNSUBSCRIBE, 0b0010, body)

    @staticmethod
    def disconnect(reason: int) -> mp.Packet | None:
        """The broker's DISCONNECT, or None to drop the connection instead so the Will is published."""
        return None if reason == m5.DISCONNECT_WITH_WILL else mp.Packet(mp.DISCONNECT, 0, b"")

    def from_broker(self, packet: mp.Packet) -> mp.Packet:
        """A 3.1.1 packet from the broker in its MQTT 5 shape."""
        if packet.type == mp.PUBLISH:
            topic_len = struct.unpack_from("!H", packet.body, 0)[0] if len(packet.body) >= 2 else 0
            at = 2 + topic_len + (2 if packet.flags & 0x06 else 0)
            return mp.Packet(mp.PUBLISH, packet.flags, packet.body[:at] + b"\x00" + packet.body[at:])
        if packet.type == mp.SUBACK:
            return mp.Packet(mp.SUBACK, 0, packet.body[:2] + b"\x00" + packet.body[2:])
        if packet.type == mp.UNSUBACK:
            pid = struct.unpack_from("!H", packet.body, 0)[0] if len(packet.body) >= 2 else 0
            count = self._unsubscribes.pop(pid, 1)
            return m5.unsuback(pid, [m5.SUCCESS] * count)
        return packet  # PUBACK, PUBREC, PUBREL, PUBCOMP (the short MQTT 5 form), PINGRESP
