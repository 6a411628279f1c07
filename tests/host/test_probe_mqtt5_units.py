"""The probe's MQTT 5 packets (firmware/selftest/mqtt5.py), read back by the stand-in's MQTT 5
parser and by paho-mqtt's property encoder, and its CONNACK judge: each reason code becomes the
catalogue code that names its root causes, with the code itself in the step details."""

from __future__ import annotations

import types

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from authprobe import catalogue
from authprobe.emulator import mqtt5_packets as m5
from authprobe.emulator import mqtt_packets as mp
from selftest import mqtt5, net, steps_session


def _packet(raw: bytes) -> mp.Packet:
    reader = mp.PacketReader()
    reader.feed(raw)
    packet = reader.next_packet()
    assert packet is not None and reader.pending == b""
    return packet


def test_connect_is_an_mqtt5_connect_the_stand_in_reads():
    packet = _packet(mqtt5.connect("dev01", "dev01?token=t", "pw", 30))
    m5.check_client_packet(packet)
    c5 = m5.read_connect(mp.parse_connect(packet))
    c = c5.connect
    assert (c.level, c.client_id, c.username, c.password, c.keepalive, c.clean_session) == \
        (5, "dev01", "dev01?token=t", b"pw", 30, True)
    assert c5.properties == m5.Properties()
    # MQTT 5 allows a password without a user name
    assert mp.parse_connect(_packet(mqtt5.connect("dev02", None, "pw"))).password == b"pw"


def test_subscribe_and_publish_are_mqtt5_shapes():
    pid, props, subs = m5.parse_subscribe(_packet(mqtt5.subscribe(1, "selftest/dev01", 0)))
    assert (pid, props, [(s.topic_filter, s.options) for s in subs]) == (1, m5.Properties(), [("selftest/dev01", 0)])
    pub = m5.parse_publish(_packet(mqtt5.publish("selftest/dev01", b"hello", 2, 1)))
    assert (pub.topic, pub.qos, pub.packet_id, pub.payload) == ("selftest/dev01", 1, 2, b"hello")


def test_a_received_publish_with_properties_reads_topic_and_payload():
    props = PahoProperties(PacketTypes.PUBLISH)
    props.UserProperty = [("k", "v")]
    props.ContentType = "text/plain"
    pub = m5.Publish5("selftest/x", 1, False, False, 9, m5.parse_properties(props.pack(), 0, mp.PUBLISH)[0], b"data")
    raw = pub.encode().encode()
    first, body = raw[0], raw[2:]
    assert mqtt5.parse_publish(first, body) == ("selftest/x", b"data")
    assert mqtt5.puback(first, body) == b"\x40\x02\x00\x09"


def test_connack_properties_written_by_paho_are_read():
    props = PahoProperties(PacketTypes.CONNACK)
    props.ReasonString = "Not authorized: see the log"
    props.AssignedClientIdentifier = "abc"
    props.UserProperty = [("a", "b")]
    props.MaximumQoS = 1
    props.TopicAliasMaximum = 8
    read, end = mqtt5.properties(props.pack(), 0)
    assert end == len(props.pack())
    assert read[mqtt5.REASON_STRING] == b"Not authorized: see the log"
    assert read[0x12] == b"abc" and read[0x24] == 1 and read[0x22] == 8


@pytest.mark.parametrize("rc, slow, name", [
    (0x00, False, "connect_ok"),
    (0x86, False, "connack_v5_bad_credentials"),
    (0x87, False, "connack_v5_not_authorized"),
    (0x87, True, "connack_v5_not_authorized_slow"),
    (0x85, False, "connack_identifier_rejected"),
    (0x84, False, "connack_bad_protocol"),
    (0x88, False, "connack_server_unavailable"),
    (0x97, False, "connack_v5_refused"),
    (0x80, False, "connack_v5_refused"),
])
def test_connack_reason_codes_become_catalogue_codes(rc, slow, name):
    d = {"elapsed_ms": 4800 if slow else 40}
    code, status = mqtt5.judge_connack(0x20, m5.connack(rc).body, d, slow)
    assert catalogue.name_of(code) == name
    assert status == ("pass" if rc == 0 else "fail")
    assert (d["mqtt"], d["rc"]) == (5, rc)
    assert d.get("reason") == ({0x00: None, 0x86: "bad user name or password", 0x87: "not authorized",
                                0x85: "client identifier not valid", 0x84: "unsupported protocol version",
                                0x88: "server unavailable", 0x97: "quota exceeded", 0x80: "unspecified error"}[rc])


def test_connack_reason_string_is_kept_short():
    body = m5.connack(0x87, properties=m5.Properties([(m5.REASON_STRING, "x" * 300)])).body
    d = {}
    assert catalogue.name_of(mqtt5.judge_connack(0x20, body, d, False)[0]) == "connack_v5_not_authorized"
    assert d["reason_string"] == "x" * 100


def test_an_answer_that_is_not_a_connack_is_a_protocol_error():
    d = {}
    assert mqtt5.judge_connack(0x30, b"\x00", d, False) == (909, "fail") and d["packet"] == 0x30


class _Stream:
    def __init__(self, data: bytes):
        self.buf = data

    def read(self, n):
        if len(self.buf) < n:
            raise net.Closed("end")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def test_a_server_disconnect_ends_the_session_with_its_reason_code():
    p = types.SimpleNamespace(stream=_Stream(m5.disconnect(m5.SESSION_TAKEN_OVER).encode()))
    d = {}
    with pytest.raises(net.Closed):
        steps_session._read(p, d)
    assert d["disconnect_rc"] == 0x8E
    p = types.SimpleNamespace(stream=_Stream(b"\xd0\x00"))  # PINGRESP passes through
    assert steps_session._read(p, {}) == (0xD0, b"")


@pytest.mark.parametrize("value, code", [(4, None), (5, None), (3, 117), ("5", 117)])
def test_the_lint_takes_mqtt_4_or_5(value, code):
    from selftest import config

    cfg = {"device": {"client_id": "d", "mqtt": value}, "endpoint": {"host": "a1b2c3-ats.iot.eu-west-1.amazonaws.com"},
           "auth": {"token_key_name": "token", "token": "t", "signing_disabled": True}}
    problems = [p for p in config.lint(cfg) if p[2] == "device.mqtt"]
    assert [p[0] for p in problems] == ([code] if code else [])
    assert all(p[1] == "fail" for p in problems)
