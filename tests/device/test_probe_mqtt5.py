"""The self-test with device.mqtt = 5 against the local stand-in: the CPython probe speaks MQTT 5
over ALPN and over WebSockets, reports the CONNACK reason code in its connect step and names the
root causes from it; boards refuse MQTT 5 at the config step."""

from __future__ import annotations

import pytest

from authprobe.board.host_probe import probe
from tests.fixtures.emulator import (
    DOMAIN,
    ENDPOINT,
    make_ca,
    sign,
    standard_config,
    start_emulator,
    wait_for_log,
)
from tests.fixtures.probe_runtimes import needs_mp
from tests.fixtures.probe_standin import config, failing


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("probe5-ca"), [ENDPOINT, DOMAIN])
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("probe5-standin")), ca)
    yield emulator
    emulator.close()


def v5(emu, transport="auto", **kw):
    cfg = config(emu, **kw)
    cfg["device"].update(mqtt=5, transport=transport)
    return cfg


def step(report, name):
    return next(s for s in report["steps"] if s["step"] == name)


@pytest.mark.parametrize("transport, mode", [("auto", "mqtt"), ("wss", "wss")])
def test_healthy_setup_passes_in_mqtt5(standin, transport, mode):
    client_id = f"p5-ok-{transport}"
    report = probe(v5(standin, transport, client_id=client_id), "cpython")
    assert report["verdict"] == "pass", [(s["step"], s["code"], s["details"]) for s in report["steps"]]
    assert step(report, "transport")["details"]["mode"] == mode
    connect = step(report, "connect")
    assert (connect["code"], connect["details"]["mqtt"], connect["details"]["rc"]) == (900, 5, 0)
    library = step(report, "library")
    assert library["status"] == "skip"
    if mode == "mqtt":  # (over wss the library step is skipped for its transport already)
        assert "MQTT 3.1.1" in library["details"]["why"]
    wait_for_log(standin, eventType="Publish-In", clientId=client_id, status="Success")


@pytest.mark.parametrize("transport", ["auto", "wss"])
def test_denied_token_is_connack_not_authorized(standin, transport):
    report = probe(v5(standin, transport, token="deny", client_id=f"p5-deny-{transport}"), "cpython")
    bad = failing(report)
    assert (bad["step"], bad["code"], bad["name"]) == ("connect", 911, "connack_v5_not_authorized")
    assert bad["details"]["rc"] == 0x87 and bad["details"]["reason"] == "not authorized"
    assert report["diagnosis"][0]["root_cause"] == "authorizer-denied"


def test_bad_signature_is_connack_bad_user_name_or_password(standin):
    cfg = v5(standin, client_id="p5-sig")
    cfg["auth"]["signature"] = sign("another-token")
    report = probe(cfg, "cpython")
    bad = failing(report)
    assert (bad["code"], bad["details"]["rc"]) == (910, 0x86)
    assert report["diagnosis"][0]["root_cause"] == "signature-invalid"


def test_publish_denied_is_puback_not_authorized(standin):
    report = probe(v5(standin, token="nopublish", client_id="p5-pub", signed=False,
                      auth={"authorizer": "NoSign", "signing_disabled": True}), "cpython")
    bad = failing(report)
    assert (bad["step"], bad["code"], bad["name"]) == ("pubsub", 1006, "puback_refused")
    assert bad["details"]["puback_rc"] == 0x87
    assert report["diagnosis"][0]["root_cause"] == "policy-denies-publish"


def test_subscribe_denied_is_suback_not_authorized(standin):
    report = probe(v5(standin, token="nosubscribe", client_id="p5-sub", signed=False,
                      auth={"authorizer": "NoSign", "signing_disabled": True}), "cpython")
    bad = failing(report)
    assert (bad["code"], bad["details"]["suback"]) == (1004, 0x87)
    assert report["diagnosis"][0]["root_cause"] == "policy-denies-subscribe"


@needs_mp
def test_a_board_refuses_mqtt5_at_the_config_step(standin):
    report = probe(v5(standin, "wss", client_id="p5-board"), "micropython", timeout=60)
    bad = failing(report)
    assert (bad["step"], bad["code"]) == ("config", 117)
    problem = next(p for p in bad["details"]["problems"] if p["field"] == "device.mqtt")
    assert "CPython only" in problem["msg"]
