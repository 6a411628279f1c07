"""Property-based tests of the stand-in's MQTT 5 parsing: whatever bytes an MQTT 5 client sends, the
parsers raise only ProtocolError with a reason code a DISCONNECT may carry; properties of every data
type round-trip through encode and parse; a v5 PUBLISH survives the 3.1.1 broker leg unchanged."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authprobe.emulator import mqtt5_packets as m5
from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator.mqtt5_to_311 import Mqtt311Broker

pytestmark = pytest.mark.fuzz

DISCONNECT_CODES = {0x81, 0x82, 0x8F, 0x90, 0x94, 0x95, 0x9B, 0xA1}


def _s(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


# Packet-shaped bodies: property blocks (honest or not), strings, ids and junk.
_property_ids = st.sampled_from(sorted(m5.PROPERTIES) + [0x00, 0x7F, 0x80])
_raw_property = st.builds(lambda i, v: bytes([i]) + v, _property_ids, st.binary(max_size=6))
_blocks = st.lists(_raw_property, max_size=4).map(b"".join).map(lambda b: mp.encode_length(len(b)) + b)
_bodies = st.lists(st.one_of(st.binary(max_size=10), st.binary(max_size=10).map(_s), _blocks,
                             st.integers(0, 65535).map(lambda n: struct.pack("!H", n)),
                             st.sampled_from([_s(b"MQTT") + b"\x05", _s(b"$share/g/a/#"), b"\x00"])),
                   max_size=6).map(b"".join)
_packets = st.builds(mp.Packet, st.integers(0, 15), st.integers(0, 15), _bodies)


@given(_packets)
def test_mqtt5_parsers_raise_only_protocol_errors(packet):
    for parse in (m5.check_client_packet, m5.parse_publish, m5.parse_subscribe, m5.parse_unsubscribe,
                  lambda p: m5.read_connect(mp.parse_connect(p))):
        try:
            parse(packet)
        except mp.ProtocolError as exc:
            assert exc.reason_code in DISCONNECT_CODES and exc.details


@given(_bodies, st.sampled_from([mp.CONNECT, mp.PUBLISH, mp.SUBSCRIBE, mp.PUBACK, mp.DISCONNECT, m5.WILL]))
def test_property_blocks_raise_only_protocol_errors(body, packet_type):
    try:
        props, end = m5.parse_properties(body, 0, packet_type)
    except mp.ProtocolError as exc:
        assert exc.reason_code in DISCONNECT_CODES
    else:
        assert end <= len(body)
        assert m5.parse_properties(props.encode(), 0, packet_type)[0] == props


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_publish_properties = st.lists(st.one_of(
    st.tuples(st.just(m5.PAYLOAD_FORMAT), st.integers(0, 1)),
    st.tuples(st.just(m5.MESSAGE_EXPIRY), st.integers(0, 2**32 - 1)),
    st.tuples(st.just(m5.CONTENT_TYPE), _text),
    st.tuples(st.just(m5.CORRELATION_DATA), st.binary(max_size=12)),
    st.tuples(st.just(m5.USER_PROPERTY), st.tuples(_text, _text)),
), max_size=6, unique_by=lambda p: p[0] if p[0] != m5.USER_PROPERTY else object())
_topics = st.lists(st.text(st.sampled_from("ab/$é"), min_size=1, max_size=6), min_size=1, max_size=3).map("/".join)


@given(_topics, _publish_properties, st.binary(max_size=200), st.integers(0, 1), st.booleans(), st.integers(1, 65535))
def test_publish_round_trips_and_crosses_the_311_leg(topic, props, payload, qos, retain, pid):
    pub = m5.Publish5(topic, qos, retain, False, pid if qos else None, m5.Properties(props), payload)
    packet = pub.encode()
    m5.check_client_packet(packet)
    assert m5.parse_publish(packet) == pub
    broker = Mqtt311Broker()
    v3 = broker.publish(pub)
    mp.check_client_packet(v3)
    back = m5.parse_publish(broker.from_broker(v3))
    assert (back.topic, back.qos, back.retain, back.packet_id, back.payload) == (topic, qos, retain, pub.packet_id,
                                                                                 payload)
    assert back.properties == m5.Properties()  # 3.1.1 carries no properties
