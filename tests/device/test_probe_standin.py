"""The self-test against the local AWS IoT stand-in (`authprobe emulate`): real TLS with SNI and
ALPN, the WebSocket upgrade, the custom-auth pipeline with signed tokens, policies and the broker.
Each runtime finds a healthy setup healthy and names what a broken one breaks."""

from __future__ import annotations

import pytest

from authprobe.board.host_probe import probe
from tests.fixtures.emulator import DOMAIN, ENDPOINT, make_ca, sign, standard_config, start_emulator
from tests.fixtures.probe_runtimes import RUNTIMES, needs_mp
from tests.fixtures.probe_standin import config, failing


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("probe-ca"), [ENDPOINT, DOMAIN])
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("probe-standin")), ca)
    yield emulator
    emulator.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_healthy_setup_passes(standin, runtime):
    report = probe(config(standin, client_id=f"ok-{runtime}"), runtime, timeout=60)
    assert report["verdict"] == "pass", [(s["step"], s["code"], s["details"]) for s in report["steps"]]
    transport = next(s for s in report["steps"] if s["step"] == "transport")
    assert transport["details"]["mode"] == ("mqtt" if runtime == "cpython" else "wss")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_denied_token_is_an_authorizer_refusal(standin, runtime):
    report = probe(config(standin, token="deny", client_id=f"deny-{runtime}"), runtime, timeout=60)
    bad = failing(report)
    assert bad is not None and bad["step"] in ("transport", "connect")
    assert "authorizer-denied" in [d["root_cause"] for d in report["diagnosis"]]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bad_signature_is_named(standin, runtime):
    cfg = config(standin, client_id=f"sig-{runtime}")
    cfg["auth"]["signature"] = sign("another-token")
    report = probe(cfg, runtime, timeout=60)
    assert failing(report) is not None
    assert "signature-invalid" in [d["root_cause"] for d in report["diagnosis"]]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_publish_denied_by_the_returned_policy(standin, runtime):
    report = probe(config(standin, token="denypublish", client_id=f"dp-{runtime}"), runtime, timeout=60)
    bad = failing(report)
    assert (bad["code"], report["diagnosis"][0]["root_cause"]) == (1002, "policy-denies-publish")


@needs_mp
def test_direct_mqtt_without_alpn_on_the_default_endpoint(standin):
    report = probe(config(standin, client_id="noalpn", device={"transport": "mqtt"}), "micropython", timeout=60)
    bad = failing(report)
    assert bad["step"] == "transport" and bad["code"] in (801, 802)
    assert report["diagnosis"][0]["root_cause"] == "alpn-missing"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_custom_auth_domain_needs_no_alpn(standin, runtime):
    # A domain configuration with CUSTOM_AUTH + SECURE_MQTT: direct MQTT works without ALPN.
    cfg = config(standin, client_id=f"dom-{runtime}", host=DOMAIN, signed=False,
                 device={"transport": "mqtt"}, endpoint={"custom_domain": True})
    del cfg["auth"]["authorizer"]        # the domain's default authorizer (NoSign) decides
    report = probe(cfg, runtime, timeout=60)
    assert report["verdict"] == "pass", [(s["step"], s["code"], s["details"]) for s in report["steps"]]
    assert next(s for s in report["steps"] if s["step"] == "library")["status"] == "pass"
