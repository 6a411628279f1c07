"""The stand-in with MQTT 5 clients nobody here wrote: paho-mqtt's MQTTv5 client over TLS with ALPN
"mqtt" and over WebSockets (credentials in headers, query string or username), relayed through the
embedded broker (3.1.1, so through mqtt5_to_311) and through Mosquitto (MQTT 5 end to end), and
mosquitto_pub/mosquitto_sub -V mqttv5. Every refusal is seen as the reason code the client is told
and as the IoT log record; raw packets cover what paho will not send."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from urllib.parse import quote

import pytest
from paho.mqtt.packettypes import PacketTypes

from authprobe.emulator import mqtt5_packets as m5
from authprobe.emulator.broker import speaks_mqtt5
from tests.fixtures.emulator import (
    DOMAIN,
    ENDPOINT,
    MOSQUITTO,
    PahoDevice,
    client_context,
    iot_logs,
    make_ca,
    mosquitto,
    sign,
    standard_config,
    start_emulator,
    username,
    wait_for_log,
)
from tests.fixtures.paho5 import (
    Paho5Device,
    field,
    packet,
    properties,
    raw_connect,
    raw_session,
    read_packet,
)


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("ca-mqtt5"), [ENDPOINT, DOMAIN])
    # keep-alives under 30 s are kept as asked, so the keep-alive timeout shows in seconds
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("emulator-mqtt5")), ca, keepalive_floor_s=1)
    yield emulator
    emulator.close()


@pytest.fixture
def v5(emu, devices):
    """Paho5Device factory on the module's stand-in; each is closed when the test ends."""
    made: list[Paho5Device] = []

    def make(client_id, user, **kw) -> Paho5Device:
        d = Paho5Device(kw.pop("emu", emu), client_id, user, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def signed(client_id: str, token: str = "allow") -> str:
    return username(client_id, token, sign(token), "DeviceAuth")


# -- the healthy path ----------------------------------------------------------------------------
def test_signed_token_round_trip_with_aws_limits_in_connack(emu, v5):
    d = v5("v5-01", signed("v5-01"))
    assert d.connect() == "connack" and d.connack == m5.SUCCESS
    props = d.connack_properties
    assert props["MaximumQoS"] == 1 and props["TopicAliasMaximum"] == 8
    assert props["SubscriptionIdentifierAvailable"] == 0 and props["MaximumPacketSize"] == 128 * 1024
    assert d.subscribe(("selftest/v5-01", 2)) == [1]  # QoS 2 granted as QoS 1
    user_props = properties(PacketTypes.PUBLISH, UserProperty=[("k", "v")])
    assert d.publish("selftest/v5-01", b"ping", props=user_props) == m5.SUCCESS
    assert d.got_message.wait(3), iot_logs(emu)[-6:]
    assert [(m.topic, m.payload) for m in d.messages] == [("selftest/v5-01", b"ping")]
    connect = wait_for_log(emu, eventType="Connect", clientId="v5-01", status="Success")
    assert connect["principalId"] == "testprincipal" and connect["protocol"] == "MQTT"
    wait_for_log(emu, eventType="Publish-Out", clientId="v5-01", topicName="selftest/v5-01", status="Success")
    d.close()
    wait_for_log(emu, eventType="Disconnect", clientId="v5-01", disconnectReason="CLIENT_INITIATED_DISCONNECT")


def test_mqtt5_and_mqtt311_clients_talk_through_one_broker(emu, v5, devices):
    sub = PahoDevice(emu, "mix-sub", username("mix-sub", "allowshared", None, "NoSign"))
    devices.append(sub)
    assert sub.connect() == "connack"
    sub.client.subscribe("selftest/shared", qos=1)
    assert sub.subscribed.wait(3)
    pub = v5("mix-pub", username("mix-pub", "allowshared", None, "NoSign"))
    assert pub.connect() == "connack"
    assert pub.publish("selftest/shared", b"from-v5") == m5.SUCCESS
    assert sub.got_message.wait(3)
    assert sub.messages == [("selftest/shared", b"from-v5")]


def test_topic_alias_names_the_topic_for_policy_and_broker(emu, v5):
    d = v5("alias01", signed("alias01"))
    assert d.connect() == "connack"
    assert d.subscribe(("selftest/alias01", 1)) == [1]
    alias = properties(PacketTypes.PUBLISH, TopicAlias=1)
    assert d.publish("selftest/alias01", b"first", props=alias) == m5.SUCCESS
    assert d.publish("", b"second", props=alias) == m5.SUCCESS  # the topic by alias only
    deadline = time.monotonic() + 3
    while len(d.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(m.topic, m.payload) for m in d.messages] == [("selftest/alias01", b"first"),
                                                          ("selftest/alias01", b"second")]
    assert len([r for r in iot_logs(emu) if r.get("clientId") == "alias01" and r["eventType"] == "Publish-In"
                and r.get("topicName") == "selftest/alias01"]) == 2


def test_client_without_an_id_is_assigned_one(emu, v5):
    # The default authorizer (DeviceAuth) with an empty client id: the handler allows client/*.
    d = v5("", signed("x", "allowany"))
    assert d.connect() == "connack" and d.connack == m5.SUCCESS
    assigned = d.connack_properties["AssignedClientIdentifier"]
    assert assigned.startswith("authprobe-")
    wait_for_log(emu, eventType="Connect", clientId=assigned, status="Success")


def test_session_expiry_over_the_default_maximum_is_cut_and_said_so(v5):
    d = v5("exp01", signed("exp01"), connect_properties=properties(PacketTypes.CONNECT, SessionExpiryInterval=86400))
    assert d.connect() == "connack" and d.connack == m5.SUCCESS
    assert d.connack_properties["SessionExpiryInterval"] == 3600


def test_keepalive_under_the_floor_is_answered_with_server_keep_alive(emu, v5, monkeypatch):
    monkeypatch.setattr(emu, "keepalive_floor_s", 30.0)
    d = v5("ka01", signed("ka01"), keepalive=5)
    assert d.connect() == "connack"
    assert d.connack_properties["ServerKeepAlive"] == 30


# -- CONNACK refusals ----------------------------------------------------------------------------
@pytest.mark.parametrize("client_id, token, signature, authorizer, code, details", [
    ("v5-deny", "deny", None, "NoSign", m5.NOT_AUTHORIZED, "Authorizer returned isAuthenticated false"),
    ("v5-badsig", "allow", "other", "DeviceAuth", m5.BAD_USERNAME_OR_PASSWORD, "Signature verification failed"),
    ("v5-nosig", "allow", None, "DeviceAuth", m5.BAD_USERNAME_OR_PASSWORD, "Token signature missing"),
    ("v5-unknown", "allow", None, "NoSuchAuth", m5.NOT_AUTHORIZED, "Authorizer not found: NoSuchAuth"),
    ("v5-raise", "raise", None, "NoSign", m5.NOT_AUTHORIZED, "Authorizer function failed: KeyError"),
    ("v5-noconn", "noconnect", None, "NoSign", m5.NOT_AUTHORIZED, "Authorization Failure"),
    ("v5-noperm", "allow", None, "NoPerm", m5.NOT_AUTHORIZED, "AWS IoT is not permitted to invoke"),
])
def test_refusals_answer_connack_with_a_reason_code(emu, v5, client_id, token, signature, authorizer, code,
                                                    details):
    user = username(client_id, token, sign(signature) if signature else None, authorizer)
    d = v5(client_id, user)
    assert d.connect() == "connack"
    assert d.connack == code
    assert d.disconnected.wait(3), "the stand-in closes after a refusing CONNACK"
    record = wait_for_log(emu, eventType="Connect", clientId=client_id, status="Failure")
    assert record["reason"] == "AUTHORIZATION_FAILURE" and record["details"].startswith(details)


@pytest.mark.parametrize("client_id, kw, code, details", [
    ("v5-authm", {"connect_properties": properties(PacketTypes.CONNECT, AuthenticationMethod="SCRAM-SHA-1")},
     m5.BAD_AUTHENTICATION_METHOD, "Authentication Method set"),
    ("v5-will2", {"will": ("selftest/v5-will2", b"bye", 2)}, m5.QOS_NOT_SUPPORTED, "Will QoS 2"),
    ("c" * 129, {}, m5.CLIENT_ID_NOT_VALID, "Client ID over 128 bytes"),
])
def test_connects_aws_refuses_whatever_the_credentials(emu, v5, client_id, kw, code, details):
    d = v5(client_id, signed(client_id), **kw)
    assert d.connect() == "connack" and d.connack == code
    record = wait_for_log(emu, eventType="Connect", clientId=client_id, status="Failure")
    assert record["reason"] == "CLIENT_ERROR" and record["details"].startswith(details)


# -- over WebSockets -----------------------------------------------------------------------------
def test_websocket_with_authorizer_headers(emu, v5):
    headers = {"x-amz-customauthorizer-name": "DeviceAuth",
               "x-amz-customauthorizer-signature": sign("allow"), "token": "allow"}
    d = v5("wss5-01", None, transport="websockets", ws_headers=headers)
    assert d.connect() == "connack" and d.connack == m5.SUCCESS
    assert d.subscribe(("selftest/wss5-01", 1)) == [1]
    assert d.publish("selftest/wss5-01", b"over-wss") == m5.SUCCESS
    assert d.got_message.wait(3)
    wait_for_log(emu, eventType="Connect", clientId="wss5-01", status="Success")


def test_websocket_with_query_string(v5):
    path = ("/mqtt?x-amz-customauthorizer-name=DeviceAuth&x-amz-customauthorizer-signature="
            f"{quote(sign('allow'), safe='')}&token=allow")
    d = v5("wss5-02", None, transport="websockets", ws_path=path)
    assert d.connect() == "connack" and d.connack == m5.SUCCESS


def test_websocket_with_credentials_in_the_username(v5):
    d = v5("wss5-03", signed("wss5-03"), transport="websockets")
    assert d.connect() == "connack" and d.connack == m5.SUCCESS


def test_websocket_refusal_is_a_connack_reason_code(emu, v5):
    headers = {"x-amz-customauthorizer-name": "NoSign", "token": "deny"}
    d = v5("wss5-04", None, transport="websockets", ws_headers=headers)
    assert d.connect() == "connack" and d.connack == m5.NOT_AUTHORIZED
    wait_for_log(emu, eventType="Connect", clientId="wss5-04", status="Failure",
                 details="Authorizer returned isAuthenticated false")


# -- policy refusals after CONNACK ---------------------------------------------------------------
def test_suback_refuses_only_the_filters_the_policy_denies(emu, v5):
    # "nosubscribe": the policy has no iot:Subscribe at all
    d = v5("v5-sub", username("v5-sub", "nosubscribe", None, "NoSign"))
    assert d.connect() == "connack"
    assert d.subscribe(("selftest/v5-sub", 1)) == [m5.NOT_AUTHORIZED]
    assert not d.disconnected.wait(0.3), "an MQTT 5 client keeps its connection after SUBACK 0x87"
    record = wait_for_log(emu, eventType="Subscribe", clientId="v5-sub", status="Failure")
    assert record["reason"] == "AUTHORIZATION_FAILURE" and record["topicName"] == "selftest/v5-sub"


def test_suback_mixes_the_brokers_grants_with_the_policys_refusals(emu, v5):
    # allowshared: subscribe on selftest/shared and selftest/<clientId>[/...], nothing else
    d = v5("v5-mixsub", username("v5-mixsub", "allowshared", None, "NoSign"))
    assert d.connect() == "connack"
    codes = d.subscribe(("selftest/shared", 1), ("selftest/elsewhere", 0), ("selftest/v5-mixsub/x", 0))
    assert codes == [1, m5.NOT_AUTHORIZED, 0]
    wait_for_log(emu, eventType="Subscribe", clientId="v5-mixsub", topicName="selftest/elsewhere", status="Failure")
    wait_for_log(emu, eventType="Subscribe", clientId="v5-mixsub", topicName="selftest/shared", status="Success")


def test_puback_refuses_a_qos1_publish_and_the_connection_stays(emu, v5):
    d = v5("v5-pub", username("v5-pub", "nopublish", None, "NoSign"))
    assert d.connect() == "connack"
    assert d.publish("selftest/v5-pub", b"x", qos=1) == m5.NOT_AUTHORIZED
    assert not d.disconnected.wait(0.3)
    record = wait_for_log(emu, eventType="Publish-In", clientId="v5-pub", status="Failure")
    assert record["topicName"] == "selftest/v5-pub"


def test_a_refused_qos0_publish_ends_with_disconnect_not_authorized(emu, v5):
    d = v5("v5-pub0", username("v5-pub0", "nopublish", None, "NoSign"))
    assert d.connect() == "connack"
    d.client.publish("selftest/v5-pub0", b"x", qos=0)
    assert d.disconnected.wait(3)
    assert d.disconnect_code == m5.NOT_AUTHORIZED
    wait_for_log(emu, eventType="Publish-In", clientId="v5-pub0", status="Failure")


def test_takeover_tells_the_older_connection_session_taken_over(emu, v5):
    first = v5("v5-twin", username("v5-twin", "allow", None, "NoSign"))
    assert first.connect() == "connack"
    second = v5("v5-twin", username("v5-twin", "allow", None, "NoSign"))
    assert second.connect() == "connack"
    assert first.disconnected.wait(3)
    assert first.disconnect_code == m5.SESSION_TAKEN_OVER
    assert not second.disconnected.is_set()
    record = wait_for_log(emu, eventType="Disconnect", clientId="v5-twin", reason="DUPLICATE_CLIENT_ID")
    assert record["disconnectReason"] == "DUPLICATE_CLIENTID"


def test_disconnect_with_will_message_reaches_the_subscriber_through_a_311_broker(emu, v5):
    watcher = v5("will-watch", username("will-watch", "allowshared", None, "NoSign"))
    assert watcher.connect() == "connack"
    assert watcher.subscribe(("selftest/shared", 1)) == [1]
    leaver = v5("will-leave", username("will-leave", "allowshared", None, "NoSign"),
                will=("selftest/shared", b"gone", 1))
    assert leaver.connect() == "connack"
    leaver.client.disconnect(reasoncode=_reason(PacketTypes.DISCONNECT, "Disconnect with will message"))
    assert watcher.got_message.wait(5)
    assert [(m.topic, m.payload) for m in watcher.messages] == [("selftest/shared", b"gone")]


def _reason(packet_type, name):
    from paho.mqtt.reasoncodes import ReasonCode

    return ReasonCode(packet_type, name)


# -- DISCONNECT reason codes for what paho will not send -----------------------------------------
@pytest.mark.parametrize("client_id, payload, code", [
    ("raw-subid", packet(0x82, b"\x00\x01" + bytes([2, m5.SUBSCRIPTION_ID, 7]) + field(b"selftest/raw-subid")
                         + b"\x01"), m5.SUBSCRIPTION_IDS_NOT_SUPPORTED),
    ("raw-qos2", packet(0x34, field(b"selftest/raw-qos2") + b"\x00\x01\x00" + b"x"), m5.QOS_NOT_SUPPORTED),
    ("raw-alias", packet(0x30, field(b"selftest/raw-alias") + bytes([3, m5.TOPIC_ALIAS, 0, 9]) + b"x"),
     m5.TOPIC_ALIAS_INVALID),
    ("raw-auth", packet(0xF0, b""), m5.PROTOCOL_ERROR),
    ("raw-nofilter", packet(0x82, b"\x00\x01\x00"), m5.PROTOCOL_ERROR),
    ("raw-badprop", packet(0x30, field(b"selftest/raw-badprop") + b"\x02\x7f\x00"), m5.MALFORMED_PACKET),
])
def test_malformed_packets_are_answered_with_disconnect_and_their_reason(emu, client_id, payload, code):
    with raw_session(emu, client_id, username(client_id, "allow", None, "NoSign")) as tls:
        tls.sendall(payload)
        first, body = read_packet(tls)
        assert (first, body[:1]) == (0xE0, bytes([code]))
        assert read_packet(tls) == (0, b"")
    record = wait_for_log(emu, eventType="Disconnect", clientId=client_id, disconnectReason="CLIENT_ERROR")
    assert record["details"].startswith("MQTT protocol error: ")


def test_silent_client_is_told_keep_alive_timeout(emu):
    with raw_session(emu, "raw-quiet", username("raw-quiet", "allow", None, "NoSign"), keepalive=1) as tls:
        started = time.monotonic()
        first, body = read_packet(tls)
        assert (first, body) == (0xE0, bytes([m5.KEEP_ALIVE_TIMEOUT]))
        assert 1.4 <= time.monotonic() - started < 4
    wait_for_log(emu, eventType="Disconnect", clientId="raw-quiet", disconnectReason="MQTT_KEEP_ALIVE_TIMEOUT")


def test_malformed_connect_properties_close_without_connack(emu):
    raw = socket.create_connection((emu.host, emu.port), timeout=5)
    with client_context(emu.ca_pem, ENDPOINT, ["mqtt"]).wrap_socket(raw, server_hostname=ENDPOINT) as tls:
        tls.sendall(raw_connect("raw-conn", username("raw-conn", "allow", None, "NoSign"), props=b"\x02\x7f\x00"))
        assert read_packet(tls) == (0, b"")
    record = wait_for_log(emu, eventType="Connect", clientId="raw-conn", status="Failure")
    assert "unknown property identifier 0x7f" in record["details"]


# -- through Mosquitto, MQTT 5 end to end --------------------------------------------------------
@pytest.fixture(scope="module")
def mosquitto_emu(tmp_path_factory):
    if MOSQUITTO is None or shutil.which("mosquitto_pub") is None:
        pytest.skip("mosquitto not installed (.ci/run installs mosquitto and mosquitto-clients)")
    work = tmp_path_factory.mktemp("mosquitto5")
    with mosquitto(work / "broker") as port:
        # mosquitto clients send the host as SNI, so the endpoint must resolve: use "localhost".
        ca = make_ca(work / "ca", ["localhost", DOMAIN])
        emulator = start_emulator(standard_config(work / "emu", endpoint="localhost",
                                                  broker=f"mqtt://127.0.0.1:{port}"), ca)
        try:
            yield emulator
        finally:
            emulator.close()


def test_the_stand_in_finds_mosquitto_speaks_mqtt5(mosquitto_emu, emu):
    assert mosquitto_emu.broker_speaks_mqtt5 is True
    assert emu.broker_speaks_mqtt5 is False  # the embedded amqtt: 3.1.1 only
    # the check an external broker gets at start, asked of each broker
    assert speaks_mqtt5(*mosquitto_emu.broker_address) is True
    assert speaks_mqtt5(*emu.broker_address) is False


def _mosq(tool: str, emu, client_id: str, token: str, *args: str):
    user = username(client_id, token, sign(token), "DeviceAuth")
    cmd = [tool, "-h", "localhost", "-p", str(emu.port), "--cafile", str(emu.ca_pem), "--tls-alpn", "mqtt",
           "-V", "mqttv5", "-i", client_id, "-u", user, "-P", "pw", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_mosquitto_pub_and_sub_mqttv5_round_trip(mosquitto_emu):
    emu = mosquitto_emu
    sub = _mosq("mosquitto_sub", emu, "m5sub", "allowshared", "-t", "selftest/shared", "-C", "1", "-W", "8",
                "-q", "1", "-F", "%t %p %P")
    try:
        wait_for_log(emu, timeout=5, eventType="Subscribe", clientId="m5sub", status="Success")
        pub = _mosq("mosquitto_pub", emu, "m5pub", "allowshared", "-t", "selftest/shared", "-m", "hello-v5",
                    "-q", "1", "-D", "publish", "user-property", "origin", "mosquitto")
        assert pub.wait(10) == 0, pub.stderr.read() if pub.stderr else ""
        out, err = sub.communicate(timeout=10)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
        for p in (sub,):
            for stream in (p.stdout, p.stderr):
                if stream:
                    stream.close()
    # the user property crossed the stand-in and the broker: MQTT 5 end to end
    assert out.decode().strip() == "selftest/shared hello-v5 origin:mosquitto", err
    wait_for_log(emu, eventType="Publish-In", clientId="m5pub", topicName="selftest/shared", status="Success")


def test_mosquitto_pub_mqttv5_refused_is_told_not_authorised(mosquitto_emu):
    emu = mosquitto_emu
    pub = _mosq("mosquitto_pub", emu, "m5deny", "deny", "-t", "selftest/m5deny", "-m", "x")
    out, err = pub.communicate(timeout=10)
    assert pub.returncode != 0
    assert "not authori" in (out + err).decode().lower()  # mosquitto prints the CONNACK reason 0x87
    record = wait_for_log(emu, eventType="Connect", clientId="m5deny", status="Failure")
    assert record["reason"] == "AUTHORIZATION_FAILURE"


def test_paho_v5_through_mosquitto_keeps_properties_and_mixes_suback(mosquitto_emu, v5):
    emu = mosquitto_emu
    d = v5("m5paho", username("m5paho", "allowshared", None, "NoSign"), emu=emu, sni="localhost",
           host="127.0.0.1")
    assert d.connect() == "connack" and d.connack == m5.SUCCESS
    assert d.subscribe(("selftest/shared", 1), ("selftest/elsewhere", 1)) == [1, m5.NOT_AUTHORIZED]
    props = properties(PacketTypes.PUBLISH, ContentType="text/plain", UserProperty=[("k", "v")])
    assert d.publish("selftest/shared", b"native", props=props) == m5.SUCCESS
    assert d.got_message.wait(3)
    got = d.messages[0]
    assert got.payload == b"native"
    assert got.properties.ContentType == "text/plain" and ("k", "v") in got.properties.UserProperty


def test_stopping_stand_in_tells_clients_server_shutting_down(tmp_path, v5):
    ca = make_ca(tmp_path / "ca", [ENDPOINT, DOMAIN])
    own = start_emulator(standard_config(tmp_path / "emu"), ca)
    try:
        d = v5("v5-stop", signed("v5-stop"), emu=own)
        assert d.connect() == "connack" and d.connack == m5.SUCCESS
    finally:
        own.close()
    assert d.disconnected.wait(3)
    assert d.disconnect_code == m5.SERVER_SHUTTING_DOWN
    wait_for_log(own, eventType="Disconnect", clientId="v5-stop", disconnectReason="SERVER_INITIATED_DISCONNECT")



@pytest.mark.parametrize("topic", ["selftest/" + "x" * 260, "selftest/a/b/c/d/e/f/g/h"])
def test_an_mqtt5_publish_over_aws_topic_limits_is_refused_like_a_3_1_1_one(emu, v5, topic):
    # AWS's topic limits (256 bytes, 7 slashes) hold for MQTT 5 clients too: DISCONNECT 0x90 and
    # the client error an MQTT 3.1.1 client gets.
    d = v5("v5-long-topic", signed("v5-long-topic"))
    assert d.connect() == "connack"
    d.client.publish(topic, b"x", qos=0)
    assert d.disconnected.wait(3)
    assert d.disconnect_code == m5.TOPIC_NAME_INVALID
    wait_for_log(emu, eventType="Publish-In", clientId="v5-long-topic", status="Failure", reason="CLIENT_ERROR")
