"""The CircuitPython world (firmware/selftest/world_circuitpython.py), driven the way code.py drives
it, over fakes of CircuitPython's wifi/socketpool/ssl that follow its documented API, against the
local probe server: settings.toml in, records out, the CircuitPython error shapes classified."""

from __future__ import annotations

import tomllib

import pytest

from authprobe import device_config
from authprobe.report.json_report import build_report
from selftest import record, world_circuitpython
from tests.fixtures.probe_circuitpython import FakeRadio, modules
from tests.fixtures.probe_servers import Behaviour, ProbeServer, TestPKI
from tests.fixtures.probe_servers import device_config as server_config


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def circuitpython_hashlib(monkeypatch):
    """CircuitPython's hashlib has new() only: no sha1/sha256 classes (the fingerprints and the
    WebSocket accept check must cope)."""
    import hashlib

    monkeypatch.delattr(hashlib, "sha1")
    monkeypatch.delattr(hashlib, "sha256")


def run_board(tmp_path, cfg, radio=None):
    """settings.toml + CA written as `authprobe flash` would, then code.py's call."""
    files = device_config.device_files(cfg, "circuitpython")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    settings = tomllib.loads(files["settings.toml"].decode())
    lines = []
    verdict = world_circuitpython.main(settings.get, lines.append, modules(radio),
                                       open_file=lambda p: open(tmp_path / p))
    records = [record.decode(line)[0] for line in lines]
    assert all(records), lines
    report = build_report(records)
    assert report["verdict"] == verdict
    return report


def steps(report):
    return {s["step"]: s for s in report["steps"]}


def test_healthy_board_passes_over_websockets(pki, tmp_path):
    with ProbeServer(pki) as srv:
        cfg = server_config(srv.address, pki, wifi={"ssid": "lab", "password": "password1"})
        report = run_board(tmp_path, cfg)
    st = steps(report)
    assert report["verdict"] == "pass", report["steps"]
    assert report["device"]["runtime"] == "circuitpython" and report["device"]["uid"] == "7cdfa1001122"
    assert report["device"]["board"] == "adafruit_feather_esp32s3" and report["device"]["reset"] == "power_on"
    assert st["wifi"]["details"] == {"ssid": "lab", "status": "got_ip", "ip": "192.168.4.20", "rssi": -52}
    assert st["runtime"]["details"]["alpn"] is False
    assert st["transport"]["details"]["mode"] == "wss"
    assert st["tls"]["details"]["ca"] == ["configured CA 1", "Amazon Root CA 1", "Amazon Root CA 3"]
    assert srv.seen.sni == [pki.host] and srv.seen.upgrades[0]["headers"]["token"] == "tok-123"
    assert st["library"]["status"] == "skip"
    import hashlib

    expected = hashlib.new("sha256", b"tok-123").hexdigest()[:12]
    assert st["connect"]["details"]["token"] == {"len": 7, "sha256": expected}


def test_direct_mqtt_runs_minimqtt_through_the_socket_pool(pki, tmp_path):
    # A domain configuration (CUSTOM_AUTH, SECURE_MQTT) needs no ALPN; the library check then runs
    # adafruit_minimqtt through the same (fake) CircuitPython socket pool and TLS.
    with ProbeServer(pki, Behaviour(alpn=False)) as srv:
        cfg = server_config(srv.address, pki, device={"transport": "mqtt"}, endpoint={"custom_domain": True})
        report = run_board(tmp_path, cfg)
    st = steps(report)
    assert st["runtime"]["code"] == 201 and st["runtime"]["status"] == "warn"
    assert st["pubsub"]["status"] == "pass"
    assert st["library"]["status"] == "pass" and st["library"]["details"]["library"] == "adafruit_minimqtt"
    assert len(srv.seen.connects) == 2 and srv.seen.connects[1]["params"]["token"] == "tok-123"
    assert report["verdict"] == "pass"


@pytest.mark.parametrize("ssid,password,code", [("lab", "wrong-password", 302), ("elsewhere", "password1", 301)])
def test_wifi_failures_stop_the_chain(pki, tmp_path, ssid, password, code):
    with ProbeServer(pki) as srv:
        cfg = server_config(srv.address, pki, wifi={"ssid": ssid, "password": password})
        report = run_board(tmp_path, cfg, FakeRadio())
    st = steps(report)
    assert st["wifi"]["code"] == code and "wifi-failure" in st["wifi"]["root_causes"]
    assert all(st[s]["status"] == "skip" for s in ("clock", "dns", "tcp", "tls", "connect"))
    assert report["diagnosis"][0]["root_cause"] == "wifi-failure"
    assert srv.seen.sni == []


def test_without_the_configured_ca_the_bundle_does_not_trust_a_private_ca(pki, tmp_path):
    with ProbeServer(pki) as srv:
        cfg = server_config(srv.address, None, wifi={"ssid": "lab", "password": "password1"})
        report = run_board(tmp_path, cfg)
    st = steps(report)
    assert st["tls"]["code"] == 701 and "ca-untrusted" in st["tls"]["root_causes"]
    assert "-9984" in st["tls"]["details"]["error"]


def test_unreadable_ca_file_is_a_config_problem(pki, tmp_path):
    with ProbeServer(pki) as srv:
        cfg = server_config(srv.address, pki)
        files = device_config.device_files(cfg, "circuitpython")
        settings = tomllib.loads(files["settings.toml"].decode())
        lines = []
        world_circuitpython.main(settings.get, lines.append, modules(), open_file=lambda p: open(tmp_path / "nope"))
    report = build_report([record.decode(line)[0] for line in lines])
    cfg_step = report["steps"][0]
    assert cfg_step["code"] == 114 and cfg_step["status"] == "fail"
    assert "authprobe_ca.pem" in cfg_step["details"]["problems"][0]["msg"]
