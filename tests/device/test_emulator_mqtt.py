"""The stand-in driven by paho-mqtt over TLS with ALPN "mqtt" and custom-auth usernames: the healthy
path, and each documented refusal observed from the client and found in the IoT log group."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fixtures.emulator import (
    DOMAIN,
    ENDPOINT,
    PahoDevice,
    iot_logs,
    lambda_log,
    make_ca,
    metric_sum,
    sign,
    standard_config,
    start_emulator,
    token_with_plus,
    username,
    wait_for_log,
)


@pytest.fixture(scope="session")
def emulator_ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("emulator-ca"), [ENDPOINT, DOMAIN])


@pytest.fixture(scope="module")
def emu(tmp_path_factory, emulator_ca):
    path = standard_config(tmp_path_factory.mktemp("emulator"), listen_8883=True)
    # 300 s (the smallest disconnectAfterInSeconds) becomes 1.2 s; keep-alives under 30 s are kept
    # as asked (IoT raises them to 30 s) so the keep-alive timeout shows in 1.5 s.
    emulator = start_emulator(path, emulator_ca, time_scale=0.004, keepalive_floor_s=1)
    yield emulator
    emulator.close()


def device(devices, emu, client_id, user, **kw) -> PahoDevice:
    d = PahoDevice(emu, client_id, user, **kw)
    devices.append(d)
    return d


def test_signed_token_connects_publishes_and_receives(emu, devices):
    d = device(devices, emu, "dev01", username("dev01", "allow", sign("allow"), "DeviceAuth"))
    assert d.connect() == "connack" and d.connack_rc == 0
    d.client.subscribe("selftest/dev01", qos=1)
    assert d.subscribed.wait(3)
    d.client.publish("selftest/dev01", b"ping", qos=1)
    assert d.got_message.wait(3), iot_logs(emu)[-6:]
    assert d.messages == [("selftest/dev01", b"ping")]
    connect = wait_for_log(emu, eventType="Connect", clientId="dev01", status="Success")
    assert connect["principalId"] == "testprincipal" and connect["protocol"] == "MQTT"
    assert connect["accountId"] == "111111111111" and connect["sourceIp"] == "127.0.0.1"
    assert len(connect["timestamp"]) == len("2017-08-10 15:37:23.476")
    wait_for_log(emu, eventType="Subscribe", clientId="dev01", topicName="selftest/dev01", status="Success")
    wait_for_log(emu, eventType="Publish-In", clientId="dev01", topicName="selftest/dev01", status="Success")
    wait_for_log(emu, eventType="Publish-Out", clientId="dev01", topicName="selftest/dev01", status="Success")
    log = lambda_log(emu, "auth")
    assert any(m.startswith("START RequestId: ") for m in log)
    assert any(m.startswith("REPORT RequestId: ") and "Duration: " in m for m in log)
    d.close()
    wait_for_log(emu, eventType="Disconnect", clientId="dev01", disconnectReason="CLIENT_INITIATED_DISCONNECT")


def _refused(emu, devices, client_id, user, **kw) -> dict:
    d = device(devices, emu, client_id, user, **kw)
    assert d.connect() == "closed", "the stand-in must close the connection without CONNACK"
    assert d.connack_rc is None
    return wait_for_log(emu, eventType="Connect", clientId=client_id, status="Failure")


@pytest.mark.parametrize("client_id, authorizer, token, details, invoked", [
    ("ref-unknown", "NoSuchAuth", "allow", "Authorizer not found: NoSuchAuth", False),
    ("ref-inactive", "Inactive", "allow", "Authorizer is INACTIVE", False),
    ("ref-gone", "Gone", "allow", "Authorizer function not found", False),
    ("ref-noperm", "NoPerm", "allow", "AWS IoT is not permitted to invoke", False),
    ("ref-wrongarn", "WrongArn", "allow", "AWS IoT is not permitted to invoke", False),
    ("ref-deny", "NoSign", "deny", "Authorizer returned isAuthenticated false", True),
    ("ref-raise", "NoSign", "raise", "Authorizer function failed: KeyError", True),
    ("ref-principal", "NoSign", "badprincipal", "Invalid authorizer response: principalId", True),
    ("ref-toomany", "NoSign", "toomany", "Invalid authorizer response: policyDocuments has 11", True),
    ("ref-seconds", "NoSign", "badseconds", "Invalid authorizer response: refreshAfterInSeconds = 10", True),
    ("ref-noconnect", "NoSign", "noconnect", "Authorization Failure", True),
    ("ref-throttled", "Throttled", "allow", "Authorizer function throttled", False),
])
def test_authentication_refusals_close_without_connack(emu, devices, client_id, authorizer, token, details,
                                                       invoked):
    before = metric_sum(emu, "auth", "Invocations") + metric_sum(emu, "noperm", "Invocations") \
        + metric_sum(emu, "wrongarn", "Invocations")
    record = _refused(emu, devices, client_id, username(client_id, token, None, authorizer))
    assert record["reason"] == "AUTHORIZATION_FAILURE"
    assert record["details"].startswith(details)
    after = metric_sum(emu, "auth", "Invocations") + metric_sum(emu, "noperm", "Invocations") \
        + metric_sum(emu, "wrongarn", "Invocations")
    assert (after > before) == invoked


def test_throttled_function_counts_throttles_not_invocations(emu, devices):
    before = metric_sum(emu, "throttled", "Throttles")
    _refused(emu, devices, "thr01", username("thr01", "allow", None, "Throttled"))
    assert metric_sum(emu, "throttled", "Throttles") == before + 1
    assert metric_sum(emu, "throttled", "Invocations") == 0
    assert lambda_log(emu, "throttled") == []


def test_refresh_after_seconds_reinvokes_the_authorizer(emu, devices):
    d = device(devices, emu, "refr01", username("refr01", "refresh", None, "NoSign"))
    before = metric_sum(emu, "auth", "Invocations")
    assert d.connect() == "connack"
    deadline = time.monotonic() + 4
    while metric_sum(emu, "auth", "Invocations") < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric_sum(emu, "auth", "Invocations") >= before + 2  # connect, then one refresh at 1.2 s
    assert not d.disconnected.is_set()


def test_lambda_error_is_in_the_function_log_and_errors_metric(emu, devices):
    errors_before = metric_sum(emu, "auth", "Errors")
    _refused(emu, devices, "err01", username("err01", "raise", None, "NoSign"))
    assert metric_sum(emu, "auth", "Errors") == errors_before + 1
    assert any(m.startswith("[ERROR] KeyError") and "Traceback" in m for m in lambda_log(emu, "auth"))


def test_bad_signature_is_refused_before_any_invocation(emu, devices):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    before = metric_sum(emu, "auth", "Invocations")
    record = _refused(emu, devices, "badsig", username("badsig", "allow", sign("allow", other_key), "DeviceAuth"))
    assert record["details"] == "Signature verification failed"
    # Signed a different token than the one sent: also a failure.
    _refused(emu, devices, "badsig2", username("badsig2", "allow", sign("allow-other"), "DeviceAuth"))
    assert metric_sum(emu, "auth", "Invocations") == before
    assert emu.refusals[-1]["cause"] == "signature-invalid"


def test_unencoded_plus_in_signature_fails_and_encoded_one_passes(emu, devices):
    token, sig = token_with_plus()
    raw = username("plus1", token, sig, "DeviceAuth", encode=False)
    record = _refused(emu, devices, "plus1", raw)
    assert record["details"] == "Signature verification failed"
    assert emu.refusals[-1]["cause"] == "signature-not-urlencoded"
    d = device(devices, emu, "plus2", username("plus2", token, sig, "DeviceAuth", encode=True))
    assert d.connect() == "connack"


def test_missing_signature_and_wrong_token_key(emu, devices):
    record = _refused(emu, devices, "nosig", username("nosig", "allow", None, "DeviceAuth"))
    assert record["details"] == "Token signature missing"
    record = _refused(emu, devices, "tokkey", username("tokkey", "allow", sign("allow"), "DeviceAuth",
                                                       token_key="tok"))
    assert record["details"].startswith("Token missing: no 'token'")


def test_default_authorizer_used_when_none_named(emu, devices):
    d = device(devices, emu, "dflt", username("dflt", "allow", sign("allow")))
    assert d.connect() == "connack"


def test_lambda_timeout_closes_after_the_limit(emu, devices):
    started = time.monotonic()
    record = _refused(emu, devices, "slow", username("slow", "sleep", None, "Slow"))
    assert time.monotonic() - started >= 1.0  # timeout_s = 1 for this function
    assert record["details"] == "Authorizer function timed out after 1.00 seconds"
    assert metric_sum(emu, "slow", "Errors") == 1
    assert metric_sum(emu, "slow", "Duration") == 1000.0  # Duration at the limit, as Lambda reports it
    log = lambda_log(emu, "slow")
    assert any(m.endswith("Task timed out after 1.00 seconds") for m in log)
    assert any(m.startswith("REPORT") and "Status: timeout" in m for m in log)


def test_qos2_subscription_is_granted_as_qos1(emu, devices):
    d = device(devices, emu, "qos2", username("qos2", "allow", sign("allow"), "DeviceAuth"))
    assert d.connect() == "connack"
    granted = []
    d.client.on_subscribe = lambda client, userdata, mid, codes, props: (granted.extend(codes), d.subscribed.set())
    d.client.subscribe([("selftest/qos2", 2), ("selftest/qos2/x", 0)])
    assert d.subscribed.wait(3)
    assert [c.value for c in granted] == [1, 0]


def test_subscribe_without_permission_drops_the_connection(emu, devices):
    d = device(devices, emu, "nosub", username("nosub", "nosubscribe", None, "NoSign"))
    assert d.connect() == "connack"
    d.client.subscribe("selftest/nosub", qos=1)
    assert d.disconnected.wait(3)
    assert not d.subscribed.is_set()
    record = wait_for_log(emu, eventType="Subscribe", clientId="nosub", status="Failure")
    assert record["reason"] == "AUTHORIZATION_FAILURE" and record["topicName"] == "selftest/nosub"
    wait_for_log(emu, eventType="Disconnect", clientId="nosub", disconnectReason="AUTH_ERROR")


@pytest.mark.parametrize("token", ["nopublish", "denypublish"])
def test_publish_without_permission_drops_the_connection(emu, devices, token):
    cid = f"pub-{token}"
    d = device(devices, emu, cid, username(cid, token, None, "NoSign"))
    assert d.connect() == "connack"
    d.client.publish(f"selftest/{cid}", b"x", qos=1)
    assert d.disconnected.wait(3)
    record = wait_for_log(emu, eventType="Publish-In", clientId=cid, status="Failure")
    assert record["topicName"] == f"selftest/{cid}"


def test_message_the_client_may_not_receive_is_not_delivered(emu, devices):
    d = device(devices, emu, "norecv", username("norecv", "noreceive", None, "NoSign"))
    assert d.connect() == "connack"
    d.client.subscribe("selftest/norecv", qos=1)
    assert d.subscribed.wait(3)
    d.client.publish("selftest/norecv", b"lost", qos=1)
    wait_for_log(emu, eventType="Publish-Out", clientId="norecv", status="Failure")
    assert not d.got_message.wait(0.3)
    assert not d.disconnected.is_set(), "a refused delivery must not drop the connection"


def test_duplicate_client_id_kicks_the_older_connection(emu, devices):
    first = device(devices, emu, "twin", username("twin", "allow", None, "NoSign"))
    assert first.connect() == "connack"
    second = device(devices, emu, "twin", username("twin", "allow", None, "NoSign"))
    assert second.connect() == "connack"
    assert first.disconnected.wait(3)
    assert not second.disconnected.is_set()
    record = wait_for_log(emu, eventType="Disconnect", clientId="twin", reason="DUPLICATE_CLIENT_ID")
    assert record["details"] == "A new connection was established with the same client ID"


def test_disconnect_after_seconds_is_honoured(emu, devices):
    d = device(devices, emu, "ttl01", username("ttl01", "ttl", None, "NoSign"))
    assert d.connect() == "connack"
    assert not d.disconnected.wait(0.5)
    assert d.disconnected.wait(3)  # 300 s scaled by 0.004
    wait_for_log(emu, eventType="Disconnect", clientId="ttl01", disconnectReason="CUSTOMAUTH_TTL_EXPIRATION")


def test_domain_configuration_accepts_mqtt_without_alpn(emu, devices):
    d = device(devices, emu, "noalpn", username("noalpn", "allow"), sni=DOMAIN, alpn=[])
    assert d.connect() == "connack"


def test_default_endpoint_without_alpn_answers_as_https(emu, devices):
    d = device(devices, emu, "noalpn2", username("noalpn2", "allow", sign("allow")), alpn=[])
    assert d.connect() != "connack"
    assert not any(r.get("clientId") == "noalpn2" for r in iot_logs(emu))


def test_wrong_sni_fails_the_handshake_and_is_logged(emu, devices):
    d = device(devices, emu, "sni01", username("sni01", "allow"), sni="wrong.example.com")
    assert d.connect() == "tls-error"
    record = wait_for_log(emu, eventType="Connect", status="Failure",
                          details="TLS SNI does not name a data endpoint or domain configuration of this account: "
                                  "wrong.example.com")
    assert record["reason"] == "AUTHORIZATION_FAILURE"


def test_port_8883_demands_a_client_certificate(emu, devices):
    d = device(devices, emu, "p8883", username("p8883", "allow", sign("allow")), port=emu.port_8883)
    outcome = d.connect()
    assert outcome in ("tls-error", "closed"), outcome
    assert outcome != "connack"


def test_event_has_the_documented_shape(emu, devices):
    d = device(devices, emu, "echo01", username("echo01", "tok123", None, "Echo"), password="secret")
    assert d.connect() == "connack"
    line = next(m for m in reversed(lambda_log(emu, "echo")) if m.startswith("EVENT "))
    import json

    event = json.loads(line[len("EVENT "):])
    assert event["token"] == "tok123"
    assert event["signatureVerified"] is False
    assert event["protocols"] == ["tls", "mqtt"]
    assert event["protocolData"]["tls"] == {"serverName": ENDPOINT}
    mqtt_data = event["protocolData"]["mqtt"]
    assert mqtt_data["clientId"] == "echo01"
    assert mqtt_data["password"] == "c2VjcmV0"  # base64("secret")
    assert mqtt_data["username"].startswith("echo01?x-amz-customauthorizer-name=Echo")
    assert len(event["connectionMetadata"]["id"]) == 36


def test_mqtt31_client_is_told_the_version_is_unsupported(emu, devices):
    import paho.mqtt.client as mqtt

    from tests.fixtures.emulator import client_context

    # AWS IoT speaks MQTT 3.1.1 and 5 (tests/device/test_emulator_mqtt5.py); MQTT 3.1 ("MQIsdp", level 3)
    # gets 3.1.1's "unacceptable protocol version".
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="v31", protocol=mqtt.MQTTv31)
    c.tls_set_context(client_context(emu.ca_pem, ENDPOINT, ["mqtt"]))
    codes = []
    c.on_connect = lambda client, userdata, flags, rc, props: codes.append(rc)
    c.connect(emu.host, emu.port)
    c.loop_start()
    try:
        deadline = time.monotonic() + 3
        while not codes and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        c.loop_stop()
        c.disconnect()
    # paho reports the 3.1 return code 1 under its MQTT 5 name
    assert codes and codes[0].getName() == "Unsupported protocol version"
    wait_for_log(emu, eventType="Connect", clientId="v31", status="Failure", reason="CLIENT_ERROR")


def test_silent_client_is_dropped_after_one_and_a_half_keepalives(emu):
    import socket
    import struct

    from tests.fixtures.emulator import client_context

    def field(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    user = username("quiet", "allow", None, "NoSign").encode()
    body = field(b"MQTT") + bytes([4, 0x02 | 0x80 | 0x40]) + struct.pack("!H", 1) + field(b"quiet") \
        + field(user) + field(b"pw")
    raw = socket.create_connection((emu.host, emu.port), timeout=5)
    with client_context(emu.ca_pem, ENDPOINT, ["mqtt"]).wrap_socket(raw, server_hostname=ENDPOINT) as tls:
        tls.sendall(bytes([0x10, len(body)]) + body)
        assert tls.recv(4) == b"\x20\x02\x00\x00"
        started = time.monotonic()
        assert tls.recv(1) == b""  # closed by the stand-in, no PINGREQ was sent
        assert 1.4 <= time.monotonic() - started < 4
    wait_for_log(emu, eventType="Disconnect", clientId="quiet", disconnectReason="MQTT_KEEP_ALIVE_TIMEOUT")


def test_malformed_packet_after_connect_closes_with_client_error(emu):
    import socket
    import struct

    from tests.fixtures.emulator import client_context

    def field(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    user = username("malformed", "allow", None, "NoSign").encode()
    body = field(b"MQTT") + bytes([4, 0x02 | 0x80 | 0x40]) + struct.pack("!H", 60) + field(b"malformed") \
        + field(user) + field(b"pw")
    raw = socket.create_connection((emu.host, emu.port), timeout=5)
    with client_context(emu.ca_pem, ENDPOINT, ["mqtt"]).wrap_socket(raw, server_hostname=ENDPOINT) as tls:
        tls.sendall(bytes([0x10, len(body)]) + body)
        assert tls.recv(4) == b"\x20\x02\x00\x00"
        tls.sendall(b"\x82\x02\x00\x01")  # SUBSCRIBE with a packet id and no topic filter
        assert tls.recv(1) == b""
    record = wait_for_log(emu, eventType="Disconnect", clientId="malformed", disconnectReason="CLIENT_ERROR")
    assert record["details"] == "MQTT protocol error: SUBSCRIBE without filters"
