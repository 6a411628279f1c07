"""The stand-in driven by clients nobody here wrote, beyond paho over TLS: paho over WebSockets with
the authorizer headers or query string, `openssl s_client` (SNI, ALPN), and Mosquitto's own
mosquitto_pub / mosquitto_sub with --tls-alpn mqtt, routed through a real Mosquitto broker."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from urllib.parse import quote

import pytest

from tests.fixtures.emulator import (
    DOMAIN,
    ENDPOINT,
    MOSQUITTO,
    ROOT,
    PahoDevice,
    iot_logs,
    make_ca,
    mosquitto,
    sign,
    standard_config,
    start_emulator,
    username,
    wait_for_log,
)

OPENSSL = shutil.which("openssl")
MP_CLIENT = ROOT / "tests" / "fixtures" / "emulator_mp_client.py"


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("ca-clients"), [ENDPOINT, DOMAIN])
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("emulator-clients")), ca)
    yield emulator
    emulator.close()


# -- paho over WebSockets ----------------------------------------------------------------------
def test_websocket_with_authorizer_headers(emu, devices):
    headers = {"x-amz-customauthorizer-name": "DeviceAuth",
               "x-amz-customauthorizer-signature": sign("allow"), "token": "allow"}
    d = PahoDevice(emu, "wss01", None, transport="websockets", ws_headers=headers)
    devices.append(d)
    assert d.connect() == "connack"
    d.client.subscribe("selftest/wss01", qos=1)
    assert d.subscribed.wait(3)
    d.client.publish("selftest/wss01", b"over-wss", qos=1)
    assert d.got_message.wait(3)
    assert d.messages == [("selftest/wss01", b"over-wss")]
    record = wait_for_log(emu, eventType="Connect", clientId="wss01", status="Success")
    assert record["protocol"] == "MQTT"


def test_websocket_with_query_string(emu, devices):
    path = ("/mqtt?x-amz-customauthorizer-name=DeviceAuth&x-amz-customauthorizer-signature="
            f"{quote(sign('allow'), safe='')}&token=allow")
    d = PahoDevice(emu, "wss02", None, transport="websockets", ws_path=path)
    devices.append(d)
    assert d.connect() == "connack"


def test_websocket_refusal_upgrades_then_closes_silently(emu, devices):
    headers = {"x-amz-customauthorizer-name": "NoSign", "token": "deny"}
    d = PahoDevice(emu, "wss03", None, transport="websockets", ws_headers=headers)
    devices.append(d)
    assert d.connect() == "closed"  # paho completed the upgrade (101), then lost the connection
    record = wait_for_log(emu, eventType="Connect", clientId="wss03", status="Failure")
    assert record["details"] == "Authorizer returned isAuthenticated false"


def test_upgrade_without_a_websocket_key_is_a_bad_request(emu):
    from tests.fixtures.emulator import client_context

    ctx = client_context(emu.ca_pem, ENDPOINT, None)
    with socket.create_connection((emu.host, emu.port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        assert tls.recv(200).startswith(b"HTTP/1.1 400")


def test_https_publish_whose_body_stalls_is_a_bad_request(emu, monkeypatch):
    import authprobe.emulator.http_publish as http_publish
    from tests.fixtures.emulator import client_context

    monkeypatch.setattr(http_publish, "BODY_WAIT_S", 0.5)
    ctx = client_context(emu.ca_pem, ENDPOINT, None)
    with socket.create_connection((emu.host, emu.port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(b"POST /topics/a?qos=0 HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\nabc")
        assert tls.recv(200).startswith(b"HTTP/1.1 400")


def test_websocket_event_carries_http_data(emu, devices):
    headers = {"x-amz-customauthorizer-name": "Echo", "token": "t0k"}
    d = PahoDevice(emu, "wss04", None, transport="websockets", ws_headers=headers, ws_path="/mqtt?a=1")
    devices.append(d)
    assert d.connect() == "connack"
    import json

    from tests.fixtures.emulator import lambda_log

    line = next(m for m in reversed(lambda_log(emu, "echo")) if m.startswith("EVENT "))
    event = json.loads(line[6:])
    assert event["token"] == "t0k"
    assert event["protocols"] == ["tls", "http", "mqtt"]
    http = event["protocolData"]["http"]
    assert http["queryString"] == "?a=1"
    assert {k.lower(): v for k, v in http["headers"].items()}["token"] == "t0k"


# -- openssl s_client ----------------------------------------------------------------------------
def _s_client(emu, *args: str, data: bytes = b"", timeout: float = 10) -> str:
    cmd = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{emu.port}", "-CAfile", str(emu.ca_pem), *args]
    proc = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout)
    return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


pytestmark_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed (.ci/run installs it)")


@pytestmark_openssl
def test_openssl_alpn_mqtt_and_certificate_for_the_endpoint(emu):
    out = _s_client(emu, "-servername", ENDPOINT, "-alpn", "mqtt", "-verify_return_error")
    assert "ALPN protocol: mqtt" in out
    assert "Verify return code: 0 (ok)" in out


@pytestmark_openssl
def test_openssl_domain_name_is_served_too(emu):
    out = _s_client(emu, "-servername", DOMAIN, "-verify_hostname", DOMAIN, "-verify_return_error")
    assert "Verify return code: 0 (ok)" in out


@pytestmark_openssl
def test_openssl_wrong_sni_is_refused_and_logged(emu):
    out = _s_client(emu, "-servername", "a.example.net", "-alpn", "mqtt")
    assert "unrecognized name" in out.lower() or "alert" in out.lower()
    assert "ALPN protocol: mqtt" not in out
    wait_for_log(emu, eventType="Connect", status="Failure",
                 details="TLS SNI does not name a data endpoint or domain configuration of this account: a.example.net")


@pytestmark_openssl
def test_openssl_without_sni_is_refused_and_logged(emu):
    out = _s_client(emu, "-noservername", "-alpn", "mqtt")
    assert "ALPN protocol: mqtt" not in out
    wait_for_log(emu, eventType="Connect", status="Failure", details="TLS SNI missing: the client sent no server name")


@pytestmark_openssl
def test_openssl_raw_mqtt_without_alpn_gets_an_http_error(emu):
    connect = bytes.fromhex("101000044d5154540402003c000464657630")  # CONNECT, client id "dev0"
    out = _s_client(emu, "-servername", ENDPOINT, "-ign_eof", "-quiet", data=connect)
    assert "HTTP/1.1 400 Bad Request" in out


# -- mosquitto_pub / mosquitto_sub through a real Mosquitto broker -------------------------------
@pytest.fixture(scope="module")
def mosquitto_emu(tmp_path_factory):
    if MOSQUITTO is None or shutil.which("mosquitto_pub") is None:
        pytest.skip("mosquitto not installed (.ci/run installs mosquitto and mosquitto-clients)")
    work = tmp_path_factory.mktemp("mosquitto")
    with mosquitto(work / "broker") as port:
        # mosquitto clients send the host as SNI, so the endpoint must resolve: use "localhost".
        ca = make_ca(work / "ca", ["localhost", DOMAIN])
        emulator = start_emulator(standard_config(work / "emu", endpoint="localhost",
                                                  broker=f"mqtt://127.0.0.1:{port}"), ca)
        try:
            yield emulator
        finally:
            emulator.close()


def _mosq(tool: str, emu, client_id: str, token: str, *args: str, timeout: float = 10):
    user = username(client_id, token, sign(token), "DeviceAuth")
    cmd = [tool, "-h", "localhost", "-p", str(emu.port), "--cafile", str(emu.ca_pem), "--tls-alpn", "mqtt",
           "-V", "mqttv311", "-i", client_id, "-u", user, "-P", "pw", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_mosquitto_clients_round_trip(mosquitto_emu):
    emu = mosquitto_emu
    sub = _mosq("mosquitto_sub", emu, "msub", "allowshared", "-t", "selftest/shared", "-C", "1", "-W", "8", "-q", "1")
    try:
        wait_for_log(emu, timeout=5, eventType="Subscribe", clientId="msub", status="Success")
        pub = _mosq("mosquitto_pub", emu, "mpub", "allowshared", "-t", "selftest/shared", "-m", "hello-mosquitto",
                    "-q", "1")
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
    assert out.decode().strip() == "hello-mosquitto", err
    wait_for_log(emu, eventType="Publish-In", clientId="mpub", topicName="selftest/shared", status="Success")
    wait_for_log(emu, eventType="Publish-Out", clientId="msub", topicName="selftest/shared", status="Success")


def test_mosquitto_pub_refused_is_closed_without_connack(mosquitto_emu):
    emu = mosquitto_emu
    pub = _mosq("mosquitto_pub", emu, "mdeny", "deny", "-t", "selftest/mdeny", "-m", "x")
    out, err = pub.communicate(timeout=10)
    assert pub.returncode != 0
    assert b"Connection Accepted" not in out + err
    record = wait_for_log(emu, eventType="Connect", clientId="mdeny", status="Failure")
    assert record["reason"] == "AUTHORIZATION_FAILURE"
    assert not any(r.get("clientId") == "mdeny" and r["status"] == "Success" for r in iot_logs(emu))


# -- the real MicroPython interpreter (mbedTLS, no ALPN) -----------------------------------------
MICROPYTHON = ROOT / ".venv" / "bin" / "micropython"


def _micropython(emu, server_name: str, client_id: str, user: str) -> str:
    if not MICROPYTHON.exists():
        pytest.skip("MicroPython unix port not installed (make setup installs it)")
    proc = subprocess.run([str(MICROPYTHON), str(MP_CLIENT), str(emu.port), str(emu.ca_der), server_name,
                           client_id, user], capture_output=True, text=True, timeout=30)
    return proc.stdout + proc.stderr


def test_micropython_reaches_mqtt_through_the_custom_auth_domain(emu):
    out = _micropython(emu, DOMAIN, "mp01", "mp01?token=allow")
    assert "ANSWER b' \\x02\\x00\\x00'" in out  # CONNACK, accepted
    wait_for_log(emu, eventType="Connect", clientId="mp01", status="Success")


def test_micropython_on_the_default_endpoint_gets_http(emu):
    out = _micropython(emu, ENDPOINT, "mp02", "mp02?token=allow")
    assert "ANSWER b'HTTP'" in out  # the start of an HTTP 400 answer


# -- HTTPS publish (http.client from the standard library) ---------------------------------------
def _https_post(emu, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    import http.client
    import json

    from tests.fixtures.emulator import client_context

    conn = http.client.HTTPSConnection("127.0.0.1", emu.port, timeout=10,
                                       context=client_context(emu.ca_pem, ENDPOINT, None))
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_https_publish_reaches_a_subscriber(emu, devices):
    sub = PahoDevice(emu, "hsub", username("hsub", "allowshared", None, "NoSign"))
    devices.append(sub)
    assert sub.connect() == "connack"
    sub.client.subscribe("selftest/shared", qos=1)
    assert sub.subscribed.wait(3)
    status, answer = _https_post(emu, "/topics/selftest/shared?qos=1", b"over-https",
                                 {"x-amz-customauthorizer-name": "NoSign", "token": "allowshared"})
    assert (status, answer["message"]) == (200, "OK")
    assert sub.got_message.wait(3)
    assert sub.messages == [("selftest/shared", b"over-https")]
    record = wait_for_log(emu, eventType="Publish-In", protocol="HTTP", status="Success")
    assert record["topicName"] == "selftest/shared" and record["principalId"] == "testprincipal"


def test_https_publish_signed_in_query_string(emu):
    path = ("/topics/selftest/shared?qos=0&x-amz-customauthorizer-name=DeviceAuth"
            f"&x-amz-customauthorizer-signature={quote(sign('allowshared'), safe='')}&token=allowshared")
    status, _ = _https_post(emu, path, b"x", {})
    assert status == 200


@pytest.mark.parametrize("token, topic, details", [
    ("deny", "selftest/shared", "Authorizer returned isAuthenticated false"),
    ("allowshared", "selftest/elsewhere", "Authorization Failure"),
])
def test_https_publish_refused_is_forbidden(emu, token, topic, details):
    status, answer = _https_post(emu, f"/topics/{topic}", b"x",
                                 {"x-amz-customauthorizer-name": "NoSign", "token": token})
    assert (status, answer["message"]) == (403, "Forbidden")
    record = wait_for_log(emu, eventType="Publish-In", protocol="HTTP", status="Failure", topicName=topic)
    assert record["details"] == details and record["reason"] == "AUTHORIZATION_FAILURE"


# -- Adafruit MiniMQTT (the CircuitPython client), on CPython with an injected socket pool --------
class _Pool:
    """A CircuitPython-style socket pool whose DNS knows the domain configuration's name."""

    def __init__(self, names: dict[str, str]) -> None:
        self._names = names

    def __getattr__(self, name):
        return getattr(socket, name)

    def getaddrinfo(self, host, port, *args):
        return socket.getaddrinfo(self._names.get(host, host), port, *args)


class _MappedTls:
    """CircuitPython's SSLSocket connects by host name; this one resolves through the pool's names."""

    def __init__(self, sock, names: dict[str, str]) -> None:
        self._sock, self._names = sock, names

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def connect(self, address):
        host, port = address
        return self._sock.connect((self._names.get(host, host), port))


class _TlsContext:
    def __init__(self, ctx, names: dict[str, str]) -> None:
        self._ctx, self._names = ctx, names

    def wrap_socket(self, sock, server_hostname=None):
        return _MappedTls(self._ctx.wrap_socket(sock, server_hostname=server_hostname), self._names)


def _minimqtt(emu, client_id: str, user: str):
    import ssl

    import adafruit_minimqtt.adafruit_minimqtt as minimqtt

    names = {DOMAIN: "127.0.0.1"}
    ctx = ssl.create_default_context(cafile=str(emu.ca_pem))  # no ALPN, like CircuitPython's ssl
    return minimqtt.MQTT(broker=DOMAIN, port=emu.port, username=user, password="pw", client_id=client_id,
                         is_ssl=True, socket_pool=_Pool(names), ssl_context=_TlsContext(ctx, names),
                         connect_retries=1, recv_timeout=1.5, socket_timeout=0.5)


def _close_minimqtt(client) -> None:
    import adafruit_minimqtt.adafruit_minimqtt as minimqtt

    try:
        client.disconnect()
    except minimqtt.MMQTTStateError:
        pass  # never connected (refused): only the socket is left to free
    from adafruit_connection_manager import connection_manager_close_all

    connection_manager_close_all(client._socket_pool)  # closes the sockets MiniMQTT left open


def test_minimqtt_through_the_custom_auth_domain(emu):
    client = _minimqtt(emu, "mini01", "mini01?token=allow")
    got = []
    client.on_message = lambda c, topic, msg: got.append((topic, msg))
    try:
        client.connect()
        client.subscribe("selftest/mini01", qos=1)
        client.publish("selftest/mini01", "from-minimqtt", qos=1)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            client.loop(timeout=1)
    finally:
        _close_minimqtt(client)
    assert got == [("selftest/mini01", "from-minimqtt")]
    wait_for_log(emu, eventType="Connect", clientId="mini01", status="Success")


def test_minimqtt_refused_sees_no_connack(emu):
    import adafruit_minimqtt.adafruit_minimqtt as minimqtt

    client = _minimqtt(emu, "mini02", "mini02?token=deny")
    try:
        with pytest.raises(minimqtt.MMQTTException):
            client.connect()
    finally:
        _close_minimqtt(client)
    wait_for_log(emu, eventType="Connect", clientId="mini02", status="Failure",
                 details="Authorizer returned isAuthenticated false")
