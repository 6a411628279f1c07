"""The stand-in given hostile policies and topics (issue 12, items 2, 5 and 9), driven by paho-mqtt:
an unreadable policy is a logged Connect failure (the connection thread used to die silently),
adversarial wildcards do not stall the broker, topics over AWS's limits are refused, and a Deny the
stand-in cannot evaluate fails closed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fixtures.emulator import (
    ENDPOINT,
    PahoDevice,
    make_ca,
    policy_for,
    standard_config,
    start_emulator,
    username,
    wait_for_log,
)

HANDLERS = Path(__file__).resolve().parents[1] / "fixtures" / "policy_handlers.py"


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("policy-ca"), [ENDPOINT])
    directory = tmp_path_factory.mktemp("policy-emulator")
    (directory / "policy-fn.json").write_text(policy_for("Policy", "policyfn"))
    extra = f"""
[functions.policyfn]
handler = "{HANDLERS.as_posix()}:handler"
resource_policy = "policy-fn.json"
timeout_s = 4

[authorizers.Policy]
function = "policyfn"
token_key_name = "token"
signing_disabled = true
"""
    emulator = start_emulator(standard_config(directory, extra=extra), ca)
    yield emulator
    emulator.close()


def device(devices, emu, client_id, token) -> PahoDevice:
    d = PahoDevice(emu, client_id, username(client_id, token, None, "Policy"))
    devices.append(d)
    return d


@pytest.mark.parametrize("client_id, token, problem", [
    ("badres", "badresource", "policy document 1: statement 1: Resource must be a string"),
    ("badcond", "badcondition", "policy document 1: statement 1: Condition must be an object"),
])
def test_unreadable_policy_is_a_logged_connect_failure(emu, devices, client_id, token, problem):
    d = device(devices, emu, client_id, token)
    assert d.connect() == "closed"
    record = wait_for_log(emu, eventType="Connect", clientId=client_id, status="Failure")
    assert record["details"].startswith(f"Invalid authorizer response: {problem}")
    assert emu.refusals[-1]["cause"] == "lambda-response-invalid"


def test_numeric_condition_value_is_evaluated(emu, devices):
    assert device(devices, emu, "12345", "numeric").connect() == "connack"
    assert device(devices, emu, "54321", "numeric").connect() == "closed"
    wait_for_log(emu, eventType="Connect", clientId="54321", status="Failure", details="Authorization Failure")


def test_adversarial_wildcards_do_not_stall_other_clients(emu, devices):
    hostile = device(devices, emu, "hostile", "adversarial")
    bystander = device(devices, emu, "bystander", "adversarial")
    assert hostile.connect() == "connack" and bystander.connect() == "connack"
    started = time.monotonic()
    hostile.client.publish("a" * 200, b"x", qos=1)  # 18 s for 48 characters with the regex
    hostile.client.subscribe("a" * 200, qos=1)
    bystander.client.subscribe("selftest/bystander", qos=1)
    assert bystander.subscribed.wait(3) and hostile.subscribed.wait(3)
    wait_for_log(emu, eventType="Publish-In", clientId="hostile", status="Success", topicName="a" * 200)
    assert time.monotonic() - started < 3
    assert not hostile.disconnected.is_set()


@pytest.mark.parametrize("client_id, topic, problem", [
    ("slashes", "a/b/c/d/e/f/g/h/i", "topic has 8 forward slashes; AWS IoT allows at most 7"),
    ("long", "t" * 257, "topic is 257 bytes; AWS IoT allows at most 256 (UTF-8)"),
])
def test_publish_over_the_topic_limits_is_refused(emu, devices, client_id, topic, problem):
    d = device(devices, emu, client_id, "adversarial")
    assert d.connect() == "connack"
    d.client.publish(topic, b"x", qos=1)
    assert d.disconnected.wait(3)
    record = wait_for_log(emu, eventType="Publish-In", clientId=client_id, status="Failure")
    assert record["reason"] == "CLIENT_ERROR" and record["details"] == f"Topic rejected: {problem}"
    wait_for_log(emu, eventType="Disconnect", clientId=client_id, disconnectReason="CLIENT_ERROR")


def test_subscribe_over_the_slash_limit_is_refused(emu, devices):
    d = device(devices, emu, "subslash", "adversarial")
    assert d.connect() == "connack"
    d.client.subscribe("a/b/c/d/e/f/g/h/#", qos=1)
    assert d.disconnected.wait(3) and not d.subscribed.is_set()
    record = wait_for_log(emu, eventType="Subscribe", clientId="subslash", status="Failure")
    assert record["details"] == "Topic rejected: topic filter has 8 forward slashes; AWS IoT allows at most 7"


def test_basic_ingest_topic_may_exceed_the_slashes_by_its_prefix(emu, devices):
    d = device(devices, emu, "ingest", "adversarial")
    assert d.connect() == "connack"
    d.client.publish("$aws/rules/myRule/a/b/c/d/e/f/g/h", b"x", qos=0)
    wait_for_log(emu, eventType="Publish-In", clientId="ingest", status="Success")


def test_deny_the_stand_in_cannot_evaluate_fails_closed(emu, devices):
    d = device(devices, emu, "guard", "unknowndeny")
    assert d.connect() == "connack"
    d.client.publish("open/x", b"x", qos=1)
    wait_for_log(emu, eventType="Publish-In", clientId="guard", status="Success", topicName="open/x")
    d.client.publish("guarded/x", b"x", qos=1)
    assert d.disconnected.wait(3)
    record = wait_for_log(emu, eventType="Publish-In", clientId="guard", status="Failure", topicName="guarded/x")
    assert record["reason"] == "AUTHORIZATION_FAILURE"
    refusal = emu.refusals[-1]
    assert refusal["cause"] == "policy-denies-publish" and "fail closed" in refusal["details"]


def test_https_publish_over_the_topic_limits_is_a_bad_request(emu):
    import http.client
    import json

    from tests.fixtures.emulator import client_context

    conn = http.client.HTTPSConnection("127.0.0.1", emu.port, timeout=10,
                                       context=client_context(emu.ca_pem, ENDPOINT, None))
    try:
        conn.request("POST", "/topics/a/b/c/d/e/f/g/h/i?qos=0", body=b"x",
                     headers={"x-amz-customauthorizer-name": "Policy", "token": "adversarial"})
        response = conn.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        conn.close()
    assert status == 400 and answer["message"] == "topic has 8 forward slashes; AWS IoT allows at most 7"
    record = wait_for_log(emu, eventType="Publish-In", protocol="HTTP", status="Failure", topicName="a/b/c/d/e/f/g/h/i")
    assert record["reason"] == "CLIENT_ERROR"
