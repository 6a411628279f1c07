"""The stand-in's parsers on the hostile inputs issue 12 found (each once crashed, hung or was relayed):
every one is refused with the module's own protocol error, and well-formed input still passes."""

from __future__ import annotations

import re
import struct

import pytest

from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator import websocket as ws
from tests.fixtures.hostile_clients import client_frame


def _s(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def _connect(flags: int = 0xC2, level: int = 4, will: bytes | None = None, header_flags: int = 0) -> mp.Packet:
    payload = _s(b"dev") + (_s(will) + _s(b"bye") if will is not None else b"")
    payload += (_s(b"user") if flags & 0x80 else b"") + (_s(b"pw") if flags & 0x40 else b"")
    return mp.Packet(mp.CONNECT, header_flags, _s(b"MQTT") + bytes([level, flags]) + b"\x00\x1e" + payload)


# -- MQTT: what a client may send ----------------------------------------------------------------
GOOD_PACKETS = [
    mp.Packet(mp.PUBLISH, 0b0010, _s(b"a/b") + b"\x00\x07" + b"payload"),
    mp.Packet(mp.PUBLISH, 0b1011, _s(b"a/b") + b"\x00\x07"),  # DUP, QoS 1, RETAIN
    mp.Packet(mp.PUBLISH, 0, _s(b"a/b")),
    mp.Packet(mp.PUBLISH, 0b0100, _s(b"a") + b"\x00\x01"),  # QoS 2 parses (the session refuses it)
    mp.build_subscribe(1, [("a/#", 1), ("+/b/+", 0), ("#", 2)]),
    mp.Packet(mp.UNSUBSCRIBE, 2, b"\x00\x05" + _s(b"a/+")),
    mp.Packet(mp.PUBACK, 0, b"\x00\x05"), mp.Packet(mp.PUBREC, 0, b"\x00\x05"),
    mp.Packet(mp.PUBREL, 2, b"\x00\x05"), mp.Packet(mp.PUBCOMP, 0, b"\x00\x05"),
    mp.Packet(mp.PINGREQ, 0, b""), mp.Packet(mp.DISCONNECT, 0, b""),
    _connect(), _connect(0x2E, will=b"last/will"),  # Will QoS 1, retained
]


@pytest.mark.parametrize("packet", GOOD_PACKETS, ids=lambda p: f"{mp.NAMES[p.type]}-{p.flags:04b}")
def test_well_formed_client_packets_pass(packet):
    mp.check_client_packet(packet)


BAD_PACKETS = {
    "reserved type 0": (mp.Packet(0, 0, b""), "reserved packet type 0"),
    "reserved type 15": (mp.Packet(15, 0, b""), "reserved packet type 15"),
    "CONNACK from a client": (mp.Packet(mp.CONNACK, 0, b"\x00\x00"), "only a server sends"),
    "SUBACK from a client": (mp.Packet(mp.SUBACK, 0, b"\x00\x01\x00"), "only a server sends"),
    "QoS 3 PUBLISH": (mp.Packet(mp.PUBLISH, 0b0110, _s(b"a") + b"\x00\x01"), "QoS 3"),
    "DUP at QoS 0": (mp.Packet(mp.PUBLISH, 0b1000, _s(b"a")), "DUP"),
    "wildcard topic name": (mp.Packet(mp.PUBLISH, 0, _s(b"a/+")), "wildcard"),
    "empty topic name": (mp.Packet(mp.PUBLISH, 0, _s(b"")), "empty topic"),
    "NUL in a topic": (mp.Packet(mp.PUBLISH, 0, _s(b"a\x00b")), "U+0000"),
    "packet id 0": (mp.Packet(mp.PUBLISH, 0b0010, _s(b"a") + b"\x00\x00"), "identifier 0"),
    "SUBSCRIBE flags 0000": (mp.Packet(mp.SUBSCRIBE, 0, b"\x00\x01" + _s(b"a") + b"\x00"), "flags 0000"),
    "PUBREL flags 0000": (mp.Packet(mp.PUBREL, 0, b"\x00\x01"), "flags 0000"),
    "PINGREQ with a body": (mp.Packet(mp.PINGREQ, 0, b"x"), "remaining length 1"),
    "PUBACK of 3 bytes": (mp.Packet(mp.PUBACK, 0, b"\x00\x01\x00"), "remaining length 3"),
    "SUBSCRIBE QoS 3": (mp.Packet(mp.SUBSCRIBE, 2, b"\x00\x01" + _s(b"a") + b"\x03"), "requested QoS"),
    "SUBSCRIBE reserved bits": (mp.Packet(mp.SUBSCRIBE, 2, b"\x00\x01" + _s(b"a") + b"\x41"), "requested QoS"),
    "SUBSCRIBE '#' not last": (mp.Packet(mp.SUBSCRIBE, 2, b"\x00\x01" + _s(b"a/#/b") + b"\x00"), "'#'"),
    "SUBSCRIBE 'a+'": (mp.Packet(mp.SUBSCRIBE, 2, b"\x00\x01" + _s(b"a+") + b"\x00"), "'+'"),
    "SUBSCRIBE without filters": (mp.Packet(mp.SUBSCRIBE, 2, b"\x00\x01"), "without filters"),
    "UNSUBSCRIBE without filters": (mp.Packet(mp.UNSUBSCRIBE, 2, b"\x00\x01"), "without filters"),
    "CONNECT header flags": (_connect(header_flags=1), "flags 0001"),
    "CONNECT reserved flag": (_connect(0xC3), "reserved bit"),
    "CONNECT Will QoS 3": (_connect(0x1E, will=b"w"), "Will QoS 3"),
    "CONNECT Will QoS without Will": (_connect(0x0A), "without the Will flag"),
    "CONNECT password without user": (_connect(0x42), "password without a user name"),
    "CONNECT Will topic with '#'": (_connect(0x06, will=b"w/#"), "Will Topic"),
}


@pytest.mark.parametrize("name", list(BAD_PACKETS))
def test_malformed_client_packets_are_protocol_errors(name):
    packet, words = BAD_PACKETS[name]
    with pytest.raises(mp.ProtocolError, match=re.escape(words)) as caught:
        mp.check_client_packet(packet)
    assert caught.value.reason == "CLIENT_ERROR"
    assert caught.value.details.startswith("MQTT protocol error: ")


def test_mqtt5_connect_may_carry_a_password_without_a_user_name():
    packet = mp.Packet(mp.CONNECT, 0, _s(b"MQTT") + bytes([5, 0x42]) + b"\x00\x1e" + b"\x00" + _s(b"dev") + _s(b"pw"))
    assert mp.parse_connect(packet).password == b"pw"


def test_oversized_packet_is_refused_from_its_header_as_aws_logs_it():
    reader = mp.PacketReader()
    reader.feed(bytes([0x30]) + mp.encode_length(mp.MAX_PACKET + 1025))
    with pytest.raises(mp.PayloadTooLarge) as caught:
        reader.next_packet()
    assert caught.value.reason == "PAYLOAD_LIMIT_EXCEEDED"
    assert caught.value.details.startswith("Message payload exceeds size limit for message type.")


# -- WebSocket frames ------------------------------------------------------------------------------
def test_frame_announcing_2_to_the_40_is_refused_from_its_header():
    r = ws.FrameReader()
    r.feed(client_frame(b"", announce=1 << 40))  # 14 bytes: no payload needs to arrive
    with pytest.raises(ws.MessageTooBig) as caught:
        r.next_message()
    assert caught.value.close_code == 1009


def test_endless_continuation_frames_stop_at_the_message_limit():
    r = ws.FrameReader()
    r.feed(client_frame(b"x", fin=False))
    assert r.next_message() is None
    chunk = client_frame(b"\x00" * 16384, opcode=ws.OP_CONT, fin=False)
    fed = 0
    with pytest.raises(ws.MessageTooBig):
        while fed < 10 * ws.MAX_MESSAGE_BYTES:
            r.feed(chunk)
            fed += len(chunk)
            assert r.next_message() is None
    assert fed <= ws.MAX_MESSAGE_BYTES + len(chunk)


def test_message_at_the_limit_passes_in_fragments():
    payload = bytes(range(256)) * (ws.MAX_MESSAGE_BYTES // 256)
    r = ws.FrameReader()
    half = len(payload) // 2
    r.feed(client_frame(payload[:half], fin=False) + client_frame(payload[half:], opcode=ws.OP_CONT))
    assert r.next_message() == (ws.OP_BINARY, payload)


@pytest.mark.parametrize("frames, words", [
    ([bytes([0x82, 0x01]) + b"x"], "not masked"),
    ([bytes([0xC2]) + client_frame(b"x")[1:]], "reserved bits"),
    ([client_frame(b"x", opcode=3)], "reserved opcode"),
    ([client_frame(b"x" * 126, opcode=ws.OP_PING)], "control frame"),
    ([client_frame(b"x", opcode=ws.OP_PING, fin=False)], "control frame"),
    ([client_frame(b"x", opcode=ws.OP_CONT)], "continuation frame without"),
    ([client_frame(b"x", fin=False), client_frame(b"y")], "new message before"),
])
def test_frames_rfc6455_forbids_fail_the_connection(frames, words):
    r = ws.FrameReader()
    r.feed(b"".join(frames))
    with pytest.raises(ws.WebSocketError, match=words) as caught:
        while r.next_message() is not None:
            pass
    assert caught.value.close_code == 1002


# -- HTTP request heads ----------------------------------------------------------------------------
@pytest.mark.parametrize("head, words", [
    (b"GET //[ HTTP/1.1\r\nHost: x\r\n\r\n", "request target"),
    (b"POST /topics/a HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", "Content-Length"),  # latin-1 '²'
    (b"POST /topics/a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
    (b"POST /topics/a HTTP/1.1\r\nContent-Length: \r\n\r\n", "Content-Length"),
    (b"G(T / HTTP/1.1\r\n\r\n", "request line"),
    (b"GET / SIP/2.0\r\n\r\n", "request line"),
    (b"GET /" + b"a" * ws.MAX_HEADER_BYTES + b" HTTP/1.1\r\n\r\n", "too large"),
])
def test_malformed_request_heads_are_websocket_errors(head, words):
    with pytest.raises(ws.WebSocketError, match=words):
        ws.read_http_request(lambda n: b"", head)


def test_content_length_is_ascii_digits_and_an_absurd_one_stays_absurd():
    def length(value: str) -> int | None:
        return ws.read_http_request(lambda n: b"", f"POST / HTTP/1.1\r\nContent-Length: {value}\r\n\r\n"
                                    .encode("latin-1")).content_length

    assert length("0042") == 42
    assert length("9" * 5000) > 128 * 1024  # int() of 5,000 digits would raise in Python 3.11
    assert ws.read_http_request(lambda n: b"", b"GET / HTTP/1.1\r\n\r\n").content_length is None
