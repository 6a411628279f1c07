"""The whole daily loop on a virtual board against the local AWS IoT stand-in (real TLS with SNI,
WebSocket upgrade, custom authorizer, broker): `authprobe flash` then `authprobe run`, as a user
types them, for a healthy device and for broken ones."""

from __future__ import annotations

import json

import pytest

from authprobe import cli
from authprobe.store import RunStore
from tests.fixtures.board_standin_config import standin_device_toml
from tests.fixtures.emulator import DOMAIN, ENDPOINT, make_ca, sign, standard_config, start_emulator


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("vb-ca"), [ENDPOINT, DOMAIN])
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("vb-emulator")), ca)
    yield emulator
    emulator.close()


def device_toml(path, emu, token="allow-sensor-1", client_id="sensor-1"):
    path.write_text(standin_device_toml(emu, client_id, token))
    return path


def flash_and_run(board, config, tmp_path, capsys):
    store = tmp_path / "runs.sqlite"
    assert cli.main(["flash", "--port", board.port, "--config", str(config), "--board", "virtual"]) == 0
    capsys.readouterr()
    out = tmp_path / "report.json"
    rc = cli.main(["run", "--port", board.port, "--board", "virtual", "--store", str(store), "--timeout", "30",
                   "--json", str(out)])
    return rc, json.loads(out.read_text()), store


def test_healthy_device_passes_every_step(standin, authprobe_virtual_board, tmp_path, capsys):
    rc, report, store = flash_and_run(authprobe_virtual_board, device_toml(tmp_path / "device.toml", standin),
                                      tmp_path, capsys)
    assert rc == 0, report["steps"]
    assert report["verdict"] == "pass" and report["diagnosis"] == []
    by_step = {s["step"]: s for s in report["steps"]}
    assert by_step["tls"]["status"] == "pass" and by_step["connect"]["status"] == "pass"
    assert by_step["pubsub"]["status"] == "pass"
    assert report["device"]["client_id"] == "sensor-1"
    assert report["device"]["uid"] == authprobe_virtual_board.uid
    with RunStore(store) as s:
        run = s.get_run(report["run_id"])
        assert run["status"] == "complete" and run["client_id"] == "sensor-1"
    # Secrets stay on the board: neither the token nor the signature reach the store's raw lines.
    raw = b"".join(line["raw"] for line in RunStore(store).get_lines(report["run_id"]))
    assert b"allow-sensor-1" not in raw and sign("allow-sensor-1").encode() not in raw


def test_one_config_for_a_tray_names_each_board_by_its_unique_id(standin, authprobe_virtual_board, tmp_path,
                                                                  capsys):
    config = device_toml(tmp_path / "device.toml", standin, token="allow-tray", client_id="tray-{uid}")
    rc, report, _ = flash_and_run(authprobe_virtual_board, config, tmp_path, capsys)
    assert rc == 0, report["steps"]
    assert report["device"]["client_id"] == f"tray-{authprobe_virtual_board.uid}"
    # The stand-in saw (and its policy allowed) the board's own id and topic.
    pubsub = next(s for s in report["steps"] if s["step"] == "pubsub")
    assert pubsub["details"]["topic"] == f"selftest/tray-{authprobe_virtual_board.uid}"


def test_wrong_wifi_password_is_diagnosed(standin, authprobe_virtual_boards, tmp_path, capsys):
    board = authprobe_virtual_boards(wifi_fault="wrong-password")
    rc, report, _ = flash_and_run(board, device_toml(tmp_path / "device.toml", standin), tmp_path, capsys)
    assert rc == 1
    failing = next(s for s in report["steps"] if s["status"] == "fail")
    assert (failing["step"], failing["code"]) == ("wifi", 302)
    assert report["diagnosis"][0]["root_cause"] == "wifi-failure"


def test_authorizer_denial_is_diagnosed(standin, authprobe_virtual_board, tmp_path, capsys):
    rc, report, _ = flash_and_run(authprobe_virtual_board,
                                  device_toml(tmp_path / "device.toml", standin, token="deny"), tmp_path, capsys)
    assert rc == 1
    failing = next(s for s in report["steps"] if s["status"] == "fail")
    assert failing["step"] in ("transport", "connect")
    assert "authorizer-denied" in {d["root_cause"] for d in report["diagnosis"]}


def test_circuitpython_board_passes_over_wss(standin, authprobe_virtual_boards, tmp_path, capsys):
    # The CircuitPython flavour: sources copied to its "CIRCUITPY drive" (the flash folder), code.py
    # reads settings.toml, no ALPN so the probe goes over WebSockets; reset via microcontroller.reset().
    board = authprobe_virtual_boards(runtime="circuitpython")
    config = device_toml(tmp_path / "device.toml", standin, client_id="sensor-cp")
    assert cli.main(["flash", "--port", board.port, "--config", str(config), "--board", "virtual-circuitpython",
                     "--drive", str(board.flash_dir)]) == 0
    assert (board.flash_dir / "code.py").exists() and (board.flash_dir / "settings.toml").exists()
    out = tmp_path / "report.json"
    rc = cli.main(["run", "--port", board.port, "--board", "virtual-circuitpython", "--store",
                   str(tmp_path / "runs.sqlite"), "--timeout", "30", "--json", str(out)])
    report = json.loads(out.read_text())
    assert rc == 0, [s for s in report["steps"] if s["status"] != "pass"]
    assert report["device"]["runtime"] == "circuitpython" and report["device"]["reset"] == "software"
    assert {s["step"]: s for s in report["steps"]}["transport"]["details"]["mode"] == "wss"
