"""Deploying the self-test: mpy-cross bytecode through mpremote's raw REPL to virtual boards, an
unchanged board detected in one round trip, stale files removed, many boards at once with one bad
port, the CircuitPython drive path, and firmware images refused or failed with a clear message."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from authprobe import cli
from authprobe.board import flash
from authprobe.errors import AuthprobeError, ConfigError

EXAMPLE = "examples/device.toml"


@pytest.fixture(scope="module")
def example_cfg():
    from authprobe import device_config

    return device_config.load(EXAMPLE)


def test_first_deploy_then_unchanged_costs_one_round_trip(authprobe_virtual_board, example_cfg, tmp_path):
    board = authprobe_virtual_board
    first = flash.flash_port(board.port, example_cfg, board="virtual")
    assert first.status == "deployed" and first.bytes_sent > 10_000
    assert "/main.py" in first.sent and "/authprobe.json" in first.sent
    assert (board.flash_dir / "selftest" / "probe.mpy").read_bytes()[:2] == b"M\x06"
    assert not (board.flash_dir / "selftest" / "probe.py").exists()
    again = flash.flash_port(board.port, example_cfg, board="virtual")
    assert (again.status, again.sent, again.bytes_sent, again.round_trips) == ("unchanged", [], 0, 1)
    # The deployed bytecode really runs on the board's interpreter.
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, "exec",
                        "import selftest.record as r; print(r.encode({'k': 'end'}))"], capture_output=True, text=True,
                       timeout=20)
    assert r.stdout.startswith("@AP1 {")


def test_only_changed_files_are_sent_and_stale_ones_removed(authprobe_virtual_board, example_cfg):
    board = authprobe_virtual_board
    flash.flash_port(board.port, example_cfg, board="virtual")
    (board.flash_dir / "selftest" / "wifi.mpy").write_bytes(b"corrupted")
    (board.flash_dir / "selftest" / "probe.py").write_text("raise SystemExit  # stale source shadowing probe.mpy\n")
    (board.flash_dir / "selftest" / "old").mkdir()
    (board.flash_dir / "selftest" / "old" / "gone.mpy").write_bytes(b"M\x06")
    (board.flash_dir / "user_data.txt").write_text("the user's file outside selftest/ stays")
    result = flash.flash_port(board.port, example_cfg, board="virtual")
    assert result.sent == ["/selftest/wifi.mpy"]
    assert result.removed == ["/selftest/old/", "/selftest/old/gone.mpy", "/selftest/probe.py"]
    assert not (board.flash_dir / "selftest" / "probe.py").exists()
    assert not (board.flash_dir / "selftest" / "old").exists()
    assert (board.flash_dir / "user_data.txt").exists()
    assert flash.flash_port(board.port, example_cfg, board="virtual").status == "unchanged"


def test_source_deploy_and_config_change(authprobe_virtual_board, example_cfg):
    board = authprobe_virtual_board
    result = flash.flash_port(board.port, example_cfg, board="virtual", source=True)
    assert "/selftest/probe.py" in result.sent
    changed = {**example_cfg, "device": {**example_cfg["device"], "client_id": "sensor-0043"}}
    result = flash.flash_port(board.port, changed, board="virtual", source=True)
    assert result.sent == ["/authprobe.json"]
    assert b"sensor-0043" in (board.flash_dir / "authprobe.json").read_bytes()


def test_many_boards_one_bad_port(authprobe_virtual_boards, example_cfg):
    boards = [authprobe_virtual_boards() for _ in range(3)]
    ports = [b.port for b in boards] + ["/dev/authprobe-no-such-port"]
    seen: dict[str, int] = {}
    results = flash.flash(ports, example_cfg, board="virtual",
                          progress=lambda port, done, total: seen.__setitem__(port, total))
    assert [r.status for r in results] == ["deployed", "deployed", "deployed", "error"]
    assert "cannot open the port" in results[-1].error
    assert all(seen[b.port] > 0 for b in boards)


def test_board_without_repl_is_a_clear_error(example_cfg, monkeypatch):
    # A pty nobody answers on: what a board in its ROM bootloader or without firmware looks like.
    monkeypatch.setattr(flash, "REPL_TIMEOUT", 0.5)
    master, slave = pty.openpty()
    try:
        result = flash.flash([os.ttyname(slave)], example_cfg, board="virtual")[0]
        assert result.status == "error" and "no MicroPython/CircuitPython REPL answered" in result.error
        assert result.seconds < 5
    finally:
        os.close(master)
        os.close(slave)


def test_circuitpython_drive_deploy(tmp_path, example_cfg):
    drive = tmp_path / "CIRCUITPY"
    (drive / "selftest").mkdir(parents=True)
    (drive / "selftest" / "stale.py").write_text("x = 1\n")
    (drive / "boot_out.txt").write_text("Adafruit CircuitPython 9.2.1\n")
    result = flash.flash_port("/dev/ttyACM0", example_cfg, board="adafruit-feather-esp32s3", drive=str(drive))
    assert result.method == "circuitpy-drive" and result.status == "deployed"
    assert (drive / "code.py").exists() and (drive / "settings.toml").exists()
    assert (drive / "selftest" / "probe.py").exists() and not (drive / "selftest" / "stale.py").exists()
    assert not list(drive.rglob("*.mpy"))          # CircuitPython gets sources
    assert (drive / "boot_out.txt").exists()
    again = flash.flash_port("/dev/ttyACM0", example_cfg, board="adafruit-feather-esp32s3", drive=str(drive))
    assert again.status == "unchanged"


def test_firmware_image_rules(authprobe_virtual_board, tmp_path):
    from authprobe.board import definitions as boards

    image = tmp_path / "ESP32_GENERIC-v1.29.0.bin"
    image.write_bytes(b"\xe9" + bytes(1023))
    with pytest.raises(ConfigError, match="no ROM bootloader"):
        flash.write_firmware(authprobe_virtual_board.port, image, boards.get_board("virtual"))
    uf2 = tmp_path / "image.uf2"
    uf2.write_bytes(b"UF2\n")
    with pytest.raises(ConfigError, match="takes bin images, not .uf2"):
        flash.write_firmware("/dev/ttyUSB0", uf2, boards.get_board("esp32-generic"))
    with pytest.raises(AuthprobeError, match="double-tap RESET"):
        flash.write_firmware("/dev/ttyACM0", uf2, boards.get_board("adafruit-feather-esp32s3"))
    with pytest.raises(ConfigError, match="name the board"):
        flash.write_firmware("/dev/ttyUSB0", image, None)


def test_esptool_against_a_silent_port_fails_with_advice(tmp_path):
    from authprobe.board import definitions as boards

    image = tmp_path / "fw.bin"
    image.write_bytes(b"\xe9" + bytes(1023))
    master, slave = pty.openpty()
    try:
        with pytest.raises(AuthprobeError, match="Hold BOOT while pressing RESET") as err:
            flash.write_firmware(os.ttyname(slave), image, boards.get_board("esp32-generic"), baud=115200,
                                 connect_attempts=1)
        assert "0x1000" in str(err.value)
    finally:
        os.close(master)
        os.close(slave)


def test_cli_flash(authprobe_virtual_boards, capsys):
    a, b = authprobe_virtual_boards(), authprobe_virtual_boards()
    assert cli.main(["flash", "--port", a.port, "--port", b.port, "--config", EXAMPLE, "--board", "virtual"]) == 0
    out = capsys.readouterr().out
    assert out.count("files,") == 2
    assert cli.main(["flash", "--port", a.port, "--config", EXAMPLE, "--board", "virtual"]) == 0
    assert "unchanged, nothing sent" in capsys.readouterr().out
    # A port that does not exist is the user's to fix (2), never an authprobe bug (4).
    assert cli.main(["flash", "--port", a.port, "--port", "/dev/authprobe-missing", "--board", "virtual"]) == 2
    assert "1 of 2 boards failed" in capsys.readouterr().out


def test_cli_flash_bad_config_is_usage_error(authprobe_virtual_board, tmp_path, capsys):
    bad = tmp_path / "device.toml"
    bad.write_text("[device]\nclient_id = ''\n")
    assert cli.main(["flash", "--port", authprobe_virtual_board.port, "--config", str(bad)]) == 2
    assert "device.toml" in capsys.readouterr().err


def test_cli_flash_says_the_warnings_the_board_will_report_before_deploying(authprobe_virtual_board, tmp_path,
                                                                           capsys):
    typo = tmp_path / "device.toml"
    typo.write_text(Path(EXAMPLE).read_text().replace("[wifi]\n", "[wifi]\nssdi = \"lab\"\n"))
    assert cli.main(["flash", "--port", authprobe_virtual_board.port, "--config", str(typo), "--board", "virtual"]) == 0
    err = capsys.readouterr().err
    assert "warning [118] wifi.ssdi: unknown setting wifi.ssdi" in err
    assert b"ssdi" in (authprobe_virtual_board.flash_dir / "authprobe.json").read_bytes()  # deployed as written


def test_nested_folders_are_made_parents_first(authprobe_virtual_board):
    link = flash.ReplLink(authprobe_virtual_board.port)
    try:
        flash.send_files(link, {"/lib/a/b/c.py": b"X = 1\n", "/top.txt": b""}, [], progress=lambda n: None)
    finally:
        link.close()
    assert (authprobe_virtual_board.flash_dir / "lib" / "a" / "b" / "c.py").read_text() == "X = 1\n"
    assert (authprobe_virtual_board.flash_dir / "top.txt").read_bytes() == b""
