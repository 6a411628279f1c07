"""The stand-in's Connection.AuthNError entries and AWS/IoT metrics, driven by clients nobody here
wrote (paho over TLS and WebSockets, mosquitto_pub, Python's own TLS client), then read back through
the local backend as cloud-check and correlate read them."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from authprobe.cloud.local import LocalCloud
from tests.fixtures.emulator import (
    ENDPOINT,
    PahoDevice,
    client_context,
    iot_logs,
    make_ca,
    sign,
    standard_config,
    start_emulator,
    username,
    wait_for_log,
)

AUTHN = "Connection.AuthNError"
# AuthNError entries are off until their event type is enabled (as on AWS [I]); these tests enable it.
LOGGING = '\n[logging]\ndefault_level = "DEBUG"\n\n[logging.events."Connection.AuthNError"]\nlevel = "ERROR"\n'


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("ca-authn"), [ENDPOINT, "localhost"])
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("emulator-authn"), listen_8883=True,
                                              extra=LOGGING), ca)
    yield emulator
    emulator.close()


def _paho_refused(emu, client_id: str, user: str, **kwargs) -> int:
    """Connect paho, note its local port, wait for the close; the port."""
    d = PahoDevice(emu, client_id, user, **kwargs)
    try:
        d.client.connect(d.host, d.port, keepalive=30)
        sock = d.client.socket()
        port = getattr(sock, "_socket", sock).getsockname()[1]  # (paho wraps a WebSocket's socket)
        d.client.loop_start()
        d._started = True
        assert d.disconnected.wait(8), "the stand-in did not close the refused connection"
        assert not d.connected.is_set()
        return port
    finally:
        d.close()


def _authn_for(emu, port: int, timeout: float = 3.0) -> dict:
    return wait_for_log(emu, timeout, eventType=AUTHN, sourcePort=port)


def test_unknown_authorizer_over_mqtt_is_an_authn_error_with_the_connection_s_port(emu):
    port = _paho_refused(emu, "authn01", username("authn01", "allow", sign("allow"), "NoSuchAuth"))
    record = _authn_for(emu, port)
    assert record["reason"] == "CUSTOM_AUTHORIZER_NOT_FOUND"
    assert record["logLevel"] == "ERROR" and record["status"] == "Failure"
    assert record["authenticationType"] == "CUSTOM_AUTH"
    assert record["serverNameIndication"] == ENDPOINT and record["destinationPort"] == 443
    assert "clientId" not in record  # the announcement lists no client id [?]
    connect = wait_for_log(emu, eventType="Connect", clientId="authn01", status="Failure")
    assert connect["traceId"] == record["traceId"]  # one request, one traceId


@pytest.mark.parametrize("client_id, user, reason", [
    ("authn02", username("authn02", "deny", None, "NoSign"), "NOT_AUTHENTICATED"),
    ("authn03", username("authn03", "allow", None, "DeviceAuth"), "CUSTOM_AUTHORIZER_PARAMETER_INVALID"),
    ("authn04", username("authn04", "raise", None, "NoSign"), "CUSTOM_AUTHORIZER_LAMBDA_EXECUTION_ERROR"),
    ("authn05", username("authn05", "allow", None, "NoPerm"), "CUSTOM_AUTHORIZER_LAMBDA_EXECUTION_ERROR"),
    ("authn06", username("authn06", "badprincipal", None, "NoSign"), "CUSTOM_AUTHORIZER_LAMBDA_EXECUTION_ERROR"),
])
def test_each_refusal_has_its_reason(emu, client_id, user, reason):
    assert _authn_for(emu, _paho_refused(emu, client_id, user))["reason"] == reason


def test_websocket_refusal_is_an_authn_error_too(emu):
    headers = {"x-amz-customauthorizer-name": "NoSign", "token": "deny"}
    port = _paho_refused(emu, "authn07", None, transport="websockets", ws_headers=headers)
    assert _authn_for(emu, port)["reason"] == "NOT_AUTHENTICATED"


def test_policy_without_connect_is_no_authn_error_but_a_connect_auth_error(emu):
    before = LocalCloud(emu.state_dir).iot_metric("Connect.AuthError", *_window()) or 0
    port = _paho_refused(emu, "authn08", username("authn08", "noconnect", None, "NoSign"))
    wait_for_log(emu, eventType="Connect", clientId="authn08", status="Failure")
    assert not [r for r in iot_logs(emu) if r["eventType"] == AUTHN and r.get("sourcePort") == port]
    assert LocalCloud(emu.state_dir).iot_metric("Connect.AuthError", *_window()) == before + 1


def test_port_8883_without_a_certificate_is_an_x509_authn_error(emu):
    ctx = client_context(emu.ca_pem, ENDPOINT, None)
    with socket.create_connection((emu.host, emu.port_8883), timeout=5) as raw:
        port = raw.getsockname()[1]
        with pytest.raises((ssl.SSLError, OSError)):
            with ctx.wrap_socket(raw) as tls:
                tls.recv(1)  # TLS 1.3 reports the missing certificate on the first read
    record = _authn_for(emu, port)
    assert (record["authenticationType"], record["destinationPort"]) == ("AWS_X509", 8883)


def test_no_sni_writes_no_authn_error(emu):
    ctx = client_context(emu.ca_pem, None, ["mqtt"])
    with socket.create_connection((emu.host, emu.port), timeout=5) as raw:
        port = raw.getsockname()[1]
        with pytest.raises((ssl.SSLError, OSError)):
            ctx.wrap_socket(raw)
    wait_for_log(emu, eventType="Connect", sourcePort=port, status="Failure")
    assert not [r for r in iot_logs(emu) if r["eventType"] == AUTHN and r.get("sourcePort") == port]


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(minutes=5), now + timedelta(minutes=1)


def test_the_metric_counts_each_refusal_and_cloud_check_reads_it(emu):
    cloud = LocalCloud(emu.state_dir)
    before = cloud.iot_metric(AUTHN, *_window()) or 0
    _paho_refused(emu, "authn09", username("authn09", "deny", None, "NoSign"))
    deadline = time.monotonic() + 3
    while (cloud.iot_metric(AUTHN, *_window()) or 0) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cloud.iot_metric(AUTHN, *_window()) == before + 1


@pytest.fixture(scope="module")
def localhost_emu(tmp_path_factory):
    """mosquitto_pub sends the host it dials as SNI: an endpoint called localhost."""
    if shutil.which("mosquitto_pub") is None:
        pytest.skip("mosquitto_pub not installed (.ci/run installs mosquitto-clients)")
    ca = make_ca(tmp_path_factory.mktemp("ca-authn-mosq"), ["localhost"])
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("emulator-authn-mosq"), endpoint="localhost",
                                              extra=LOGGING), ca)
    yield emulator
    emulator.close()


def test_mosquitto_pub_refused_at_authentication(localhost_emu):
    emu = localhost_emu
    user = username("mauthn", "allow", sign("allow"), "NoSuchAuth")
    proc = subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(emu.port), "--cafile", str(emu.ca_pem),
                           "--tls-alpn", "mqtt", "-V", "mqttv311", "-i", "mauthn", "-u", user, "-P", "pw",
                           "-t", "selftest/mauthn", "-m", "x"], capture_output=True, timeout=15)
    assert proc.returncode != 0
    record = wait_for_log(emu, eventType=AUTHN, reason="CUSTOM_AUTHORIZER_NOT_FOUND")
    assert record["serverNameIndication"] == "localhost" and isinstance(record["sourcePort"], int)


def test_a_bare_deny_is_a_deny_not_an_invalid_response(emu):
    from authprobe.emulator import invoke_authorizer

    port = _paho_refused(emu, "authn10", username("authn10", "baredeny", None, "NoSign"))
    assert _authn_for(emu, port)["reason"] == "NOT_AUTHENTICATED"
    connect = wait_for_log(emu, eventType="Connect", clientId="authn10", status="Failure")
    assert connect["details"] == "Authorizer returned isAuthenticated false"
    answer = invoke_authorizer(emu, "NoSign", token="baredeny")
    assert answer["isAuthenticated"] is False and "principalId" not in answer


AUTHN_ONLY = ('\n[logging]\ndefault_level = "DISABLED"\n\n[logging.events."Connection.AuthNError"]\n'
              'level = "ERROR"\ndestination = "iot/authn-errors"\n')


@pytest.fixture(scope="module")
def authn_only_emu(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("ca-authn-only"), [ENDPOINT])
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("emulator-authn-only"), extra=AUTHN_ONLY), ca)
    yield emulator
    emulator.close()


def test_event_level_logging_is_honoured_and_read_back_from_its_log_group(authn_only_emu):
    from authprobe.cloud import checks
    from authprobe.cloud.device_settings import settings_from_config
    from authprobe.cloud.logs_insights import Window
    from tests.fixtures import cloud_state as cs

    emu = authn_only_emu
    port = _paho_refused(emu, "authn11", username("authn11", "allow", sign("allow"), "NoSuchAuth"))
    group_file = emu.state_dir / "logs" / "iot%2Fauthn-errors.jsonl"
    deadline = time.monotonic() + 3
    while not group_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    records = [json.loads(line) for line in group_file.read_text().splitlines()]
    assert [(r["eventType"], r["sourcePort"]) for r in records] == [(AUTHN, port)]
    assert iot_logs(emu) == []  # Connect and the rest: DISABLED
    cloud = LocalCloud(emu.state_dir)
    now = int(time.time() * 1000)
    events = list(cloud.log_events([Window("authn11", now - 60_000, now + 1000)]))
    assert [(e.fields["eventType"], e.fields["logGroup"]) for e in events] == [(AUTHN, "iot/authn-errors")]
    ctx = checks.CheckContext(cloud, settings_from_config(cs.device_config()))
    checks.check_logging(ctx)
    logged = next(r for r in ctx.results if r.id == "logging.events").data["events"]
    assert logged[AUTHN] == {"level": "ERROR", "log_group": "iot/authn-errors", "logged": True}
    assert logged["Connect"]["logged"] is False
