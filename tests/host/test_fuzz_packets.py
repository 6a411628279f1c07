"""Property-based tests of the stand-in's listener parsers (issue 12): whatever bytes a client sends,
in whatever pieces, the MQTT packet parsers raise only ProtocolError, the WebSocket frame reader only
WebSocketError and the HTTP request-head reader only WebSocketError; the readers never hold more than
their limits; and well-formed input comes back out unchanged."""

from __future__ import annotations

import struct

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator import websocket as ws
from tests.fixtures.hostile_clients import client_frame

pytestmark = pytest.mark.fuzz


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


# -- MQTT ------------------------------------------------------------------------------------------
def _s(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


# Arbitrary bytes rarely get past the fixed header, so half the input is packet-shaped: a type and
# flags nibble, an honest remaining length, and a body of strings, ids and junk.
_bodies = st.lists(st.one_of(st.binary(max_size=12), st.binary(max_size=12).map(_s),
                             st.integers(0, 65535).map(lambda n: struct.pack("!H", n)),
                             st.sampled_from([_s(b"MQTT") + b"\x04", _s(b"a/#"), _s(b"+/b"), b"\x00\x00"])),
                   max_size=6).map(b"".join)
_shaped_packets = st.builds(lambda first, body: bytes([first]) + mp.encode_length(len(body)) + body,
                            st.integers(0, 255), _bodies)
_streams = st.lists(st.one_of(st.binary(max_size=64), _shaped_packets), max_size=6).map(b"".join)


def _every_parser(packet: mp.Packet) -> None:
    for parse in (mp.check_client_packet, mp.parse_connect, mp.parse_publish, mp.parse_subscribe,
                  mp.parse_unsubscribe):
        try:
            parse(packet)
        except mp.ProtocolError:
            pass


@given(_streams, st.lists(st.integers(0, 1 << 16), max_size=5))
def test_mqtt_parsers_raise_only_protocol_errors(stream, cuts):
    reader = mp.PacketReader()
    try:
        for piece in _pieces(stream, cuts):
            reader.feed(piece)
            while (packet := reader.next_packet()) is not None:
                assert len(packet.body) <= mp.MAX_PACKET + 1024
                _every_parser(packet)
    except mp.ProtocolError as exc:
        assert exc.reason in ("CLIENT_ERROR", "PAYLOAD_LIMIT_EXCEEDED") and exc.details


_levels = st.text(st.sampled_from("ab/$é"), min_size=1, max_size=8)
_topics = st.lists(_levels, min_size=1, max_size=4).map("/".join)
_filters = st.lists(st.one_of(_levels, st.just("+")), min_size=1, max_size=4).flatmap(
    lambda levels: st.sampled_from(["/".join(levels), "/".join([*levels, "#"])]))


@given(_topics, st.binary(max_size=300), st.integers(0, 1), st.booleans(), st.integers(1, 65535))
def test_well_formed_publish_round_trips(topic, payload, qos, retain, packet_id):
    body = _s(topic.encode()) + (struct.pack("!H", packet_id) if qos else b"") + payload
    reader = mp.PacketReader()
    reader.feed(mp.Packet(mp.PUBLISH, (qos << 1) | retain, body).encode())
    packet = reader.next_packet()
    mp.check_client_packet(packet)
    pub = mp.parse_publish(packet)
    assert (pub.topic, pub.qos, pub.retain, pub.payload) == (topic, qos, retain, payload)
    assert pub.packet_id == (packet_id if qos else None)


@given(st.lists(st.tuples(_filters, st.integers(0, 2)), min_size=1, max_size=5), st.integers(1, 65535))
def test_well_formed_subscribe_round_trips(filters, packet_id):
    packet = mp.build_subscribe(packet_id, filters)
    mp.check_client_packet(packet)
    assert mp.parse_subscribe(packet) == (packet_id, filters)


# -- WebSocket frames ------------------------------------------------------------------------------
_MAX = 4096  # a small limit, so hypothesis reaches it


def _frame_like(first: int, announce: int, payload: bytes, masked: bool) -> bytes:
    """Any first byte (FIN, RSV, opcode), an announced length that may lie, masked or not."""
    data = client_frame(payload, announce=announce)
    if not masked:  # drop the mask bit and key; the payload stays as it is
        at = {126: 4, 127: 10}.get(data[1] & 0x7F, 2)
        data = data[:1] + bytes([data[1] & 0x7F]) + data[2:at] + payload
    return bytes([first]) + data[1:]


_frames = st.builds(_frame_like, st.integers(0, 255), st.one_of(st.integers(0, 200), st.integers(0, 1 << 63)),
                    st.binary(max_size=200), st.booleans())
_frame_streams = st.lists(st.one_of(st.binary(max_size=32), _frames), max_size=8).map(b"".join)


@given(_frame_streams, st.lists(st.integers(0, 1 << 16), max_size=5))
def test_frame_reader_raises_only_websocket_errors_and_stays_bounded(stream, cuts):
    reader = ws.FrameReader(max_message=_MAX)
    fed = 0
    try:
        for piece in _pieces(stream, cuts):
            reader.feed(piece)
            fed += len(piece)
            while (message := reader.next_message()) is not None:
                opcode, payload = message
                assert opcode in (ws.OP_TEXT, ws.OP_BINARY, ws.OP_CLOSE, ws.OP_PING, ws.OP_PONG)
                assert len(payload) <= _MAX
    except ws.WebSocketError as exc:
        assert exc.close_code in (ws.CLOSE_PROTOCOL_ERROR, ws.CLOSE_TOO_BIG)


@given(st.binary(max_size=_MAX), st.lists(st.integers(0, _MAX), max_size=4), st.binary(min_size=4, max_size=4),
       st.lists(st.integers(0, 1 << 16), max_size=5))
def test_fragmented_messages_within_the_limit_come_back_whole(payload, splits, mask, cuts):
    parts = _pieces(payload, splits)
    frames = [client_frame(p, ws.OP_BINARY if i == 0 else ws.OP_CONT, i == len(parts) - 1, mask)
              for i, p in enumerate(parts)]
    frames.insert(len(frames) // 2, client_frame(b"ping", ws.OP_PING, mask=mask))  # control frames interleave
    reader = ws.FrameReader(max_message=_MAX)
    messages = []
    for piece in _pieces(b"".join(frames), cuts):
        reader.feed(piece)
        while (message := reader.next_message()) is not None:
            messages.append(message)
    assert messages == [(ws.OP_PING, b"ping"), (ws.OP_BINARY, payload)]


@given(st.integers(_MAX + 1, 1 << 63))
def test_an_announced_oversized_frame_is_refused_before_its_payload(announce):
    reader = ws.FrameReader(max_message=_MAX)
    reader.feed(client_frame(b"", announce=announce))
    with pytest.raises(ws.MessageTooBig):
        reader.next_message()


# -- HTTP request heads ----------------------------------------------------------------------------
_header_lines = st.lists(st.one_of(
    st.binary(max_size=40),
    st.builds(lambda n, v: n + b": " + v, st.sampled_from([b"Host", b"Upgrade", b"Connection", b"Content-Length",
                                                            b"Sec-WebSocket-Key", b"Sec-WebSocket-Protocol"]),
              st.one_of(st.binary(max_size=20), st.sampled_from([b"websocket", b"Upgrade", b"12", b"\xb2", b"mqtt"]))),
), max_size=6)
_request_lines = st.builds(lambda m, t, v: m + b" " + t + b" " + v,
                           st.one_of(st.sampled_from([b"GET", b"POST", b"PUT"]), st.binary(max_size=6)),
                           st.one_of(st.sampled_from([b"/mqtt", b"/topics/a?qos=1", b"//[", b"http://[::1"]),
                                     st.binary(max_size=30)),
                           st.one_of(st.just(b"HTTP/1.1"), st.binary(max_size=9)))
_heads = st.builds(lambda line, headers, rest: b"\r\n".join([line, *headers]) + b"\r\n\r\n" + rest,
                   _request_lines, _header_lines, st.binary(max_size=16))


def _recv_from(pieces: list[bytes]):
    def recv(n: int) -> bytes:
        return pieces.pop(0) if pieces else b""
    return recv


@given(st.one_of(_heads, st.binary(max_size=300)), st.lists(st.integers(0, 1 << 16), max_size=5))
def test_http_head_reader_raises_only_websocket_errors(data, cuts):
    pieces = _pieces(data, cuts)
    try:
        request = ws.read_http_request(_recv_from(pieces[1:]), pieces[0])
    except ws.WebSocketError:
        return
    # What the listener reads next must not raise either.
    assert isinstance(request.path, str) and isinstance(request.query, str)
    length = request.content_length
    assert length is None or length >= 0
    if ws.is_upgrade(request):
        try:
            assert ws.upgrade_response(request).startswith(b"HTTP/1.1 101")
        except ws.WebSocketError:
            assert not request.header("sec-websocket-key")


@given(st.binary(min_size=1, max_size=64))
def test_http_head_reader_stops_at_its_limit(junk):
    assume(b"\r\n\r\n" not in b"\r\n" + junk * 3)
    fed = []

    def recv(n: int) -> bytes:
        fed.append(len(junk))
        return junk

    with pytest.raises(ws.WebSocketError, match="too large"):
        ws.read_http_request(recv, b"GET / HTTP/1.1\r\n")
    assert sum(fed) <= ws.MAX_HEADER_BYTES + len(junk)
