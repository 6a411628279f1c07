"""Requests, not sessions: each request's entries share a traceId of their own; an unauthorized
PUBLISH ends the session with the lifecycle reason AWS documents; an HTTPS publish (no client id)
is joined to the run it belongs to by its connection. Clients: paho-mqtt and curl."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from authprobe.cloud.correlate import correlate, event_from_insights_row
from authprobe.cloud.local import LocalCloud
from authprobe.cloud.logs_insights import Window
from authprobe.report.diagnosis import diagnose
from tests.fixtures.emulator import (
    ENDPOINT,
    PahoDevice,
    iot_logs,
    make_ca,
    standard_config,
    start_emulator,
    username,
    wait_for_log,
)


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("ca-requests"), [ENDPOINT])
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("emulator-requests")), ca)
    yield emulator
    emulator.close()


def test_every_request_has_its_own_trace_id(emu, devices):
    d = PahoDevice(emu, "trace01", username("trace01", "allow", None, "NoSign"))
    devices.append(d)
    assert d.connect() == "connack"
    d.client.subscribe("selftest/trace01", qos=1)
    assert d.subscribed.wait(3)
    d.client.publish("selftest/trace01", b"one", qos=1).wait_for_publish(3)
    d.client.publish("selftest/trace01", b"two", qos=1).wait_for_publish(3)
    assert d.got_message.wait(3)
    wait_for_log(emu, eventType="Publish-Out", clientId="trace01", status="Success")
    mine = [r for r in iot_logs(emu) if r.get("clientId") == "trace01"]
    publishes = [r["traceId"] for r in mine if r["eventType"] == "Publish-In"]
    connect = next(r["traceId"] for r in mine if r["eventType"] == "Connect")
    subscribe = next(r["traceId"] for r in mine if r["eventType"] == "Subscribe")
    assert len(publishes) == 2 and len(set(publishes)) == 2
    assert len({connect, subscribe, *publishes}) == 4


def test_an_unauthorized_publish_ends_with_auth_error(emu, devices):
    d = PahoDevice(emu, "nopub01", username("nopub01", "nopublish", None, "NoSign"))
    devices.append(d)
    assert d.connect() == "connack"
    d.client.publish("selftest/nopub01", b"x", qos=1)
    assert d.disconnected.wait(3)
    record = wait_for_log(emu, eventType="Disconnect", clientId="nopub01")
    assert (record["disconnectReason"], record["status"]) == ("AUTH_ERROR", "Failure")


def _curl(emu, topic: str, token: str) -> tuple[int, int]:
    """POST with curl (SNI = the endpoint, resolved to the stand-in); (HTTP status, local port)."""
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    proc = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{local_port}", "--cacert", str(emu.ca_pem),
         "--resolve", f"{ENDPOINT}:{emu.port}:127.0.0.1", "-H", "x-amz-customauthorizer-name: NoSign",
         "-H", f"token: {token}", "--data-binary", "hello", f"https://{ENDPOINT}:{emu.port}/topics/{topic}?qos=1"],
        capture_output=True, text=True, timeout=20)
    status, port = proc.stdout.split()
    return int(status), int(port)


def _run_report(run_id: str, topic: str, utc: str) -> dict:
    from authprobe.report.json_report import build_report

    records = [{"k": "begin", "run": run_id, "client_id": "https-device", "utc": utc, "transport": "https"},
               {"k": "step", "run": run_id, "seq": 1, "code": 1002, "status": "fail", "ms": 300,
                "d": {"topic": topic}},
               {"k": "end", "run": run_id, "verdict": "fail", "ms": 500}]
    return build_report(records)


def test_an_https_publish_joins_its_run_by_topic_and_time(emu):
    started = time.time()
    status, port = _curl(emu, "selftest/https01", "allowshared")  # the policy covers selftest/shared only
    assert status == 403
    record = wait_for_log(emu, eventType="Publish-In", protocol="HTTP", topicName="selftest/https01")
    assert record["sourcePort"] == port and "clientId" not in record
    utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started - 1))
    runs = [_run_report("run-https", "selftest/https01", utc), _run_report("run-other", "selftest/other", utc)]
    events = list(LocalCloud(emu.state_dir).log_events([Window("https-device", 0, 2**62)]))
    joined = correlate(runs, events, skew_s=5)
    (mine,) = [e for e in joined[0].events if e.fields.get("topicName") == "selftest/https01"]
    assert mine.fields["attributed"] == "sni"  # matched on its topic and time
    assert not [e for e in joined[1].events if e.fields.get("topicName") == "selftest/https01"]
    diagnosis = diagnose(runs[0], {"events": [e.as_dict() for e in joined[0].events]})
    assert diagnosis[0]["root_cause"] == "policy-denies-publish"


def test_an_insights_row_of_an_https_publish_keeps_its_fields():
    rec = {"timestamp": "2026-11-26 09:10:01.000", "eventType": "Publish-In", "protocol": "HTTP",
           "status": "Failure", "topicName": "selftest/x", "sourcePort": 40001}
    event = event_from_insights_row({"@timestamp": rec["timestamp"], "@message": json.dumps(rec)}, "iot")
    assert event.client_id is None and event.fields["sourcePort"] == 40001
