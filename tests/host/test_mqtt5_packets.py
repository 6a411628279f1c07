"""The stand-in's MQTT 5 parsing (emulator/mqtt5_packets.py) and the 3.1.1 translation
(emulator/mqtt5_to_311.py): what a client may send passes, what MQTT 5 forbids raises a ProtocolError
carrying the DISCONNECT reason code the client is told, and properties written by paho-mqtt (an
encoder nobody here wrote) read back as paho meant them."""

from __future__ import annotations

import re
import struct

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from authprobe.emulator import mqtt5_packets as m5
from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator.mqtt5_to_311 import Mqtt311Broker


def _s(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def _props(*pairs) -> bytes:
    return m5.Properties(pairs).encode()


def _connect(props: bytes = b"\x00", flags: int = 0xC2, will: tuple[bytes, bytes] | None = None,
             client_id: bytes = b"dev") -> mp.Packet:
    payload = _s(client_id)
    if will is not None:
        payload += will[0] + _s(will[1]) + _s(b"bye")
    payload += (_s(b"user") if flags & 0x80 else b"") + (_s(b"pw") if flags & 0x40 else b"")
    return mp.Packet(mp.CONNECT, 0, _s(b"MQTT") + bytes([5, flags]) + b"\x00\x1e" + props + payload)


def _publish(topic: bytes, props: bytes = b"\x00", qos: int = 0, payload: bytes = b"x") -> mp.Packet:
    return mp.Packet(mp.PUBLISH, qos << 1, _s(topic) + (b"\x00\x07" if qos else b"") + props + payload)


def _subscribe(*filters: tuple[bytes, int], props: bytes = b"\x00") -> mp.Packet:
    return mp.Packet(mp.SUBSCRIBE, 2, b"\x00\x01" + props + b"".join(_s(f) + bytes([o]) for f, o in filters))


# -- properties ------------------------------------------------------------------------------------
def test_paho_publish_properties_read_back_as_sent():
    props = PahoProperties(PacketTypes.PUBLISH)
    props.PayloadFormatIndicator = 1
    props.MessageExpiryInterval = 3600
    props.ContentType = "application/json"
    props.ResponseTopic = "reply/dev01"
    props.CorrelationData = b"\x01\x02"
    props.UserProperty = [("a", "1"), ("a", "2")]
    props.TopicAlias = 3
    parsed, end = m5.parse_properties(props.pack(), 0, mp.PUBLISH)
    assert end == len(props.pack())
    assert parsed.value(m5.PAYLOAD_FORMAT) == 1 and parsed.value(m5.MESSAGE_EXPIRY) == 3600
    assert parsed.value(m5.CONTENT_TYPE) == "application/json"
    assert parsed.value(m5.RESPONSE_TOPIC) == "reply/dev01" and parsed.value(m5.CORRELATION_DATA) == b"\x01\x02"
    assert [v for i, v in parsed if i == m5.USER_PROPERTY] == [("a", "1"), ("a", "2")]
    assert parsed.value(m5.TOPIC_ALIAS) == 3
    assert parsed.encode() == props.pack()  # and our encoder writes what paho wrote


def test_paho_connect_properties_read_back_as_sent():
    props = PahoProperties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 7200
    props.ReceiveMaximum = 20
    props.MaximumPacketSize = 4096
    props.TopicAliasMaximum = 5
    props.RequestProblemInformation = 0
    parsed, _ = m5.parse_properties(props.pack(), 0, mp.CONNECT)
    assert (parsed.value(m5.SESSION_EXPIRY), parsed.value(m5.RECEIVE_MAXIMUM), parsed.value(m5.MAXIMUM_PACKET_SIZE),
            parsed.value(m5.TOPIC_ALIAS_MAXIMUM), parsed.value(m5.REQUEST_PROBLEM_INFORMATION)) == (7200, 20, 4096, 5, 0)


BAD_PROPERTIES = {
    "unknown identifier": (mp.PUBLISH, b"\x02\x7f\x00", m5.MALFORMED_PACKET, "unknown property identifier 0x7f"),
    "wrong packet": (mp.PUBLISH, _props((m5.SESSION_EXPIRY, 5)), m5.MALFORMED_PACKET, "does not belong"),
    "twice": (mp.CONNECT, _props((m5.RECEIVE_MAXIMUM, 5), (m5.RECEIVE_MAXIMUM, 6)), m5.PROTOCOL_ERROR,
              "Receive Maximum more than once"),
    "boolean 2": (mp.CONNECT, b"\x02\x17\x02", m5.PROTOCOL_ERROR, "not 0 or 1"),
    "receive maximum 0": (mp.CONNECT, b"\x03\x21\x00\x00", m5.PROTOCOL_ERROR, "Receive Maximum of 0"),
    "length past the end": (mp.PUBLISH, b"\x05\x01\x01", m5.MALFORMED_PACKET, "runs past the end"),
    "value cut short": (mp.PUBLISH, b"\x02\x02\x00", m5.MALFORMED_PACKET, "truncated Message Expiry Interval"),
    "five-byte length": (mp.PUBLISH, b"\xff\xff\xff\xff\x01", m5.MALFORMED_PACKET, "more than four bytes"),
    "string not UTF-8": (mp.PUBLISH, b"\x04\x03\x00\x01\xff", m5.MALFORMED_PACKET, "not UTF-8"),
    "response topic wildcard": (mp.PUBLISH, _props((m5.RESPONSE_TOPIC, "a/#")), m5.PROTOCOL_ERROR, "wildcard"),
}


@pytest.mark.parametrize("name", list(BAD_PROPERTIES))
def test_bad_properties_are_refused_with_their_reason_code(name):
    packet_type, raw, code, words = BAD_PROPERTIES[name]
    with pytest.raises(mp.ProtocolError, match=re.escape(words)) as caught:
        m5.parse_properties(raw, 0, packet_type)
    assert caught.value.reason_code == code
    assert caught.value.reason == "CLIENT_ERROR"


def test_user_properties_may_repeat_and_keep_their_order():
    raw = _props((m5.USER_PROPERTY, ("k", "2")), (m5.USER_PROPERTY, ("k", "1")))
    parsed, _ = m5.parse_properties(raw, 0, mp.DISCONNECT)
    assert list(parsed) == [(m5.USER_PROPERTY, ("k", "2")), (m5.USER_PROPERTY, ("k", "1"))]


# -- what a client may send ------------------------------------------------------------------------
GOOD = [
    _connect(), _connect(_props((m5.SESSION_EXPIRY, 60), (m5.USER_PROPERTY, ("a", "b")))),
    _connect(flags=0x42),  # a password without a user name is allowed in MQTT 5
    _connect(flags=0x0E, will=(_props((m5.WILL_DELAY, 5)), b"last/will")),  # Will QoS 1
    _publish(b"a/b"), _publish(b"a/b", _props((m5.TOPIC_ALIAS, 1)), qos=1),
    _publish(b"", _props((m5.TOPIC_ALIAS, 1))),  # the topic by alias only
    _subscribe((b"a/#", 0x01), (b"+/b", 0x2C)),  # QoS 1; No Local + RAP + Retain Handling 2
    _subscribe((b"$share/group/a/b", 0x01)),
    mp.Packet(mp.UNSUBSCRIBE, 2, b"\x00\x05\x00" + _s(b"a/+")),
    mp.Packet(mp.PUBACK, 0, b"\x00\x05"), mp.Packet(mp.PUBACK, 0, b"\x00\x05\x10"),
    mp.Packet(mp.PUBACK, 0, b"\x00\x05\x00" + _props((m5.REASON_STRING, "ok"))),
    mp.Packet(mp.PUBREL, 2, b"\x00\x05\x92\x00"),
    mp.Packet(mp.PINGREQ, 0, b""), mp.Packet(mp.DISCONNECT, 0, b""), mp.Packet(mp.DISCONNECT, 0, b"\x04"),
    mp.Packet(mp.DISCONNECT, 0, b"\x00" + _props((m5.SESSION_EXPIRY, 0))),
]


@pytest.mark.parametrize("packet", GOOD, ids=lambda p: f"{mp.NAMES[p.type]}-{p.body.hex()[:24]}")
def test_well_formed_mqtt5_client_packets_pass(packet):
    m5.check_client_packet(packet)


BAD = {
    "AUTH packet": (mp.Packet(m5.AUTH, 0, b""), m5.PROTOCOL_ERROR, "enhanced authentication"),
    "CONNACK from a client": (mp.Packet(mp.CONNACK, 0, b"\x00\x00\x00"), m5.PROTOCOL_ERROR, "only a server sends"),
    "CONNECT auth data without method": (_connect(_props((m5.AUTHENTICATION_DATA, b"x"))), m5.PROTOCOL_ERROR,
                                         "Authentication Data without an Authentication Method"),
    "CONNECT Will property in CONNECT": (_connect(_props((m5.WILL_DELAY, 1))), m5.MALFORMED_PACKET,
                                         "does not belong"),
    "CONNECT Will properties cut": (_connect(flags=0x06, will=(b"\x09", b"w")), m5.MALFORMED_PACKET, "truncated"),
    "PUBLISH no topic, no alias": (_publish(b""), m5.PROTOCOL_ERROR, "empty topic name and no Topic Alias"),
    "PUBLISH alias 0": (_publish(b"a", _props((m5.TOPIC_ALIAS, 0))), m5.TOPIC_ALIAS_INVALID, "Topic Alias 0"),
    "PUBLISH wildcard topic": (_publish(b"a/+"), m5.TOPIC_NAME_INVALID, "wildcard"),
    "PUBLISH without property length": (mp.Packet(mp.PUBLISH, 2, _s(b"a") + b"\x00\x01"), m5.MALFORMED_PACKET,
                                        "truncated property length"),
    "PUBLISH QoS 3": (mp.Packet(mp.PUBLISH, 6, _s(b"a") + b"\x00\x01\x00"), m5.MALFORMED_PACKET, "QoS 3"),
    "SUBSCRIBE subscription id": (_subscribe((b"a", 0), props=_props((m5.SUBSCRIPTION_ID, 7))),
                                  m5.SUBSCRIPTION_IDS_NOT_SUPPORTED, "Subscription Identifier"),
    "SUBSCRIBE reserved option bits": (_subscribe((b"a", 0x41)), m5.MALFORMED_PACKET, "reserved bits"),
    "SUBSCRIBE QoS 3": (_subscribe((b"a", 0x03)), m5.MALFORMED_PACKET, "QoS 3"),
    "SUBSCRIBE Retain Handling 3": (_subscribe((b"a", 0x30)), m5.PROTOCOL_ERROR, "Retain Handling 3"),
    "SUBSCRIBE No Local shared": (_subscribe((b"$share/g/a", 0x04)), m5.PROTOCOL_ERROR, "No Local"),
    "SUBSCRIBE bad shared name": (_subscribe((b"$share/g+/a", 0x00)), m5.TOPIC_FILTER_INVALID, "$share"),
    "SUBSCRIBE '#' not last": (_subscribe((b"a/#/b", 0)), m5.TOPIC_FILTER_INVALID, "'#'"),
    "SUBSCRIBE without filters": (_subscribe(), m5.PROTOCOL_ERROR, "without filters"),
    "SUBSCRIBE filter without options": (mp.Packet(mp.SUBSCRIBE, 2, b"\x00\x01\x00" + _s(b"a")),
                                         m5.MALFORMED_PACKET, "without subscription options"),
    "UNSUBSCRIBE without filters": (mp.Packet(mp.UNSUBSCRIBE, 2, b"\x00\x01\x00"), m5.PROTOCOL_ERROR,
                                    "without filters"),
    "PUBACK reason 0x8E": (mp.Packet(mp.PUBACK, 0, b"\x00\x01\x8e"), m5.MALFORMED_PACKET, "reason code 0x8e"),
    "PUBACK bytes after properties": (mp.Packet(mp.PUBACK, 0, b"\x00\x01\x00\x00\xff"), m5.MALFORMED_PACKET,
                                      "after its properties"),
    "PUBACK packet id 0": (mp.Packet(mp.PUBACK, 0, b"\x00\x00"), m5.MALFORMED_PACKET, "identifier 0"),
    "DISCONNECT session taken over": (mp.Packet(mp.DISCONNECT, 0, b"\x8e"), m5.MALFORMED_PACKET,
                                      "a client does not send"),
    "DISCONNECT server reference": (mp.Packet(mp.DISCONNECT, 0, b"\x00" + _props((m5.SERVER_REFERENCE, "x"))),
                                    m5.PROTOCOL_ERROR, "Server Reference"),
    "PINGREQ with a body": (mp.Packet(mp.PINGREQ, 0, b"x"), m5.MALFORMED_PACKET, "remaining length 1"),
    "SUBSCRIBE flags 0000": (mp.Packet(mp.SUBSCRIBE, 0, b"\x00\x01\x00" + _s(b"a") + b"\x00"),
                             m5.MALFORMED_PACKET, "flags 0000"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_malformed_mqtt5_packets_name_their_reason_code(name):
    packet, code, words = BAD[name]
    with pytest.raises(mp.ProtocolError, match=re.escape(words)) as caught:
        m5.check_client_packet(packet)
    assert caught.value.reason_code == code
    assert caught.value.details.startswith("MQTT protocol error: ")


def test_connect_properties_and_will_properties_are_read():
    will_props = _props((m5.WILL_DELAY, 30), (m5.CONTENT_TYPE, "text/plain"))
    packet = _connect(_props((m5.SESSION_EXPIRY, 600), (m5.MAXIMUM_PACKET_SIZE, 2048)), flags=0xCE,
                      will=(will_props, b"last/will"))
    c5 = m5.read_connect(mp.parse_connect(packet))
    assert (c5.connect.client_id, c5.connect.username, c5.connect.password) == ("dev", "user", b"pw")
    assert (c5.session_expiry, c5.maximum_packet_size, c5.clean_start) == (600, 2048, True)
    assert c5.will_properties.value(m5.WILL_DELAY) == 30
    assert c5.connect.will_topic == "last/will" and c5.connect.will_qos == 1
    # The broker's CONNECT keeps the client's will and the given properties, never the credentials.
    again = m5.read_connect(mp.parse_connect(m5.build_connect(c5, m5.Properties([(m5.RECEIVE_MAXIMUM, 9)]))))
    assert again.connect.username is None and again.connect.password is None
    assert again.properties.value(m5.RECEIVE_MAXIMUM) == 9 and again.properties.value(m5.SESSION_EXPIRY) is None
    assert again.will_properties == c5.will_properties and again.connect.will_topic == "last/will"


def test_publish_subscribe_and_disconnect_read_as_sent():
    pub = m5.parse_publish(_publish(b"a/b", _props((m5.MESSAGE_EXPIRY, 9)), qos=1, payload=b"data"))
    assert (pub.topic, pub.qos, pub.packet_id, pub.payload) == ("a/b", 1, 7, b"data")
    assert pub.properties.value(m5.MESSAGE_EXPIRY) == 9
    assert m5.parse_publish(pub.encode()) == pub
    pid, _, subs = m5.parse_subscribe(_subscribe((b"a/#", 0x2D)))
    assert pid == 1 and subs[0].topic_filter == "a/#" and subs[0].qos == 1 and subs[0].options == 0x2D
    assert m5.parse_disconnect(mp.Packet(mp.DISCONNECT, 0, b"\x04")) == (m5.DISCONNECT_WITH_WILL, m5.Properties())


def test_packets_the_stand_in_writes():
    assert m5.connack(m5.NOT_AUTHORIZED).encode() == b"\x20\x03\x00\x87\x00"
    props = m5.Properties([(m5.MAXIMUM_QOS, 1), (m5.SUBSCRIPTION_ID_AVAILABLE, 0)])
    assert m5.connack(0, True, props).encode() == b"\x20\x07\x01\x00\x04\x24\x01\x29\x00"
    assert m5.ack(mp.PUBACK, 5, m5.NOT_AUTHORIZED).encode() == b"\x40\x03\x00\x05\x87"
    assert m5.ack(mp.PUBACK, 5).encode() == b"\x40\x02\x00\x05"
    assert m5.suback(5, [1, 0x87]).encode() == b"\x90\x05\x00\x05\x00\x01\x87"
    assert m5.disconnect(m5.SESSION_TAKEN_OVER).encode() == b"\xe0\x01\x8e"
    assert m5.disconnect().encode() == b"\xe0\x00"


# -- the 3.1.1 translation -------------------------------------------------------------------------
def test_a_v5_session_reaches_a_311_broker_in_311():
    broker = Mqtt311Broker()
    c5 = m5.read_connect(mp.parse_connect(_connect(_props((m5.SESSION_EXPIRY, 60)), flags=0xEE,
                                                   will=(_props((m5.WILL_DELAY, 5)), b"w/t"))))
    connect = mp.parse_connect(broker.connect(c5, c5.properties, keep_will=True))
    assert connect.level == 4 and connect.username is None and connect.will_topic == "w/t"
    assert connect.will_qos == 1 and connect.will_retain
    pub = m5.parse_publish(_publish(b"a/b", _props((m5.USER_PROPERTY, ("k", "v"))), qos=1, payload=b"p"))
    assert mp.parse_publish(broker.publish(pub)) == mp.Publish("a/b", 1, False, False, 7, b"p")
    pid, subs = mp.parse_subscribe(broker.subscribe(3, m5.Properties(), [m5.Subscription("a/#", 0x2D)]))
    assert (pid, subs) == (3, [("a/#", 1)])  # only the QoS survives
    assert broker.ack(mp.Packet(mp.PUBACK, 0, b"\x00\x05\x10\x00")).body == b"\x00\x05"
    assert broker.disconnect(m5.SUCCESS) == mp.Packet(mp.DISCONNECT, 0, b"")
    assert broker.disconnect(m5.DISCONNECT_WITH_WILL) is None  # dropped, so the broker sends the Will


def test_the_311_broker_answers_in_mqtt5_shapes():
    broker = Mqtt311Broker()
    assert broker.connack(mp.connack(0, session_present=True)) == (m5.SUCCESS, True)
    assert broker.connack(mp.connack(5)) == (m5.NOT_AUTHORIZED, False)
    assert broker.connack(mp.connack(4)) == (m5.BAD_USERNAME_OR_PASSWORD, False)
    v3 = mp.Packet(mp.PUBLISH, 0b0011, _s(b"a/b") + b"\x00\x09" + b"payload")
    pub = m5.parse_publish(broker.from_broker(v3))
    assert (pub.topic, pub.qos, pub.retain, pub.packet_id, pub.payload) == ("a/b", 1, True, 9, b"payload")
    assert m5.parse_server_ack(broker.from_broker(mp.Packet(mp.SUBACK, 0, b"\x00\x03\x01\x80"))) == \
        (3, m5.Properties(), [1, 0x80])
    broker.unsubscribe(4, m5.Properties(), ["a", "b"])
    assert m5.parse_server_ack(broker.from_broker(mp.Packet(mp.UNSUBACK, 0, b"\x00\x04"))) == \
        (4, m5.Properties(), [0, 0])
    assert broker.from_broker(mp.Packet(mp.PUBACK, 0, b"\x00\x09")).body == b"\x00\x09"
