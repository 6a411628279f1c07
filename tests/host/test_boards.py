"""Board definitions: the shipped files load and say what the brief requires; bad files get one
clear message per problem; USB ids and REPL banners are matched."""

from __future__ import annotations

from pathlib import Path

import pytest

from authprobe.board import definitions as boards
from authprobe.errors import ConfigError


def test_shipped_definitions_load():
    reg = boards.load_boards([boards.BOARDS_DIR])
    assert {"esp32-generic", "esp32-s3-devkitc", "esp32-c3", "adafruit-feather-esp32s3", "virtual"} <= set(reg)
    esp32 = reg["esp32-generic"]
    assert (esp32.chip, esp32.runtime, esp32.image_offset, esp32.mpy_version) == ("esp32", "micropython", 0x1000, "6.3")
    assert {"10c4:ea60", "1a86:7523", "1a86:55d4"} <= set(esp32.usb_ids)
    s3 = reg["esp32-s3-devkitc"]
    assert s3.image_offset == 0 and s3.capabilities["native_usb"] and "303a:1001" in s3.usb_ids
    assert reg["esp32-c3"].image_offset == 0
    feather = reg["adafruit-feather-esp32s3"]
    assert feather.runtime == "circuitpython" and feather.deploy == "circuitpy-drive" and feather.mpy_version == ""
    assert all(not b.capabilities["alpn"] for b in reg.values())
    assert reg["virtual"].is_virtual


def test_every_problem_in_every_file_is_named(tmp_path):
    (tmp_path / "a.toml").write_text(
        'name = "Bad Name"\nchip = "esp8266"\nruntime = "micropython"\nmpy_version = "six"\ndeploy = "ftp"\n'
        '[image]\noffset = "0x1000"\n[usb]\nids = ["10C4:EA60"]\n[capabilities]\nalpn = "no"\nwebsocket = true\n'
        'psram = false\nnative_usb = false\nlasers = true\n')
    (tmp_path / "b.toml").write_text("name = [unclosed\n")
    with pytest.raises(ConfigError) as err:
        boards.load_boards([tmp_path])
    text = str(err.value)
    for needle in ("a.toml: `name` 'Bad Name'", "`chip` is 'esp8266'", "`mpy_version` 'six'", "`deploy` is 'ftp'",
                   "`image.offset` must be a int", "`usb.ids` entry '10C4:EA60'", "`capabilities.alpn` must be true",
                   "`capabilities.lasers` is unknown", "b.toml: not valid TOML"):
        assert needle in text, needle


def test_duplicate_names_are_rejected(tmp_path):
    src = (boards.BOARDS_DIR / "virtual.toml").read_text()
    (tmp_path / "copy.toml").write_text(src)
    with pytest.raises(ConfigError, match="already defined"):
        boards.load_boards([boards.BOARDS_DIR, tmp_path])


def test_usb_match_and_unknown_board():
    reg = boards.load_boards([boards.BOARDS_DIR])
    assert boards.match("10c4:ea60", reg) == ["esp32-c3", "esp32-generic"]
    assert boards.match("239a:811c", reg) == ["adafruit-feather-esp32s3"]
    assert boards.match(None, reg) == []
    with pytest.raises(ConfigError, match="known boards"):
        boards.get_board("esp9000", reg)


def test_parse_banner():
    mp = boards.parse_banner(b"\r\n>>> \r\nMicroPython v1.24.1 on 2024-11-29; Generic ESP32 module with ESP32\r\nType")
    assert mp == {"runtime": "micropython", "version": "v1.24.1", "date": "2024-11-29",
                  "machine": "Generic ESP32 module with ESP32"}
    cp = boards.parse_banner(b"Adafruit CircuitPython 9.2.1 on 2024-11-20; Adafruit Feather ESP32S3 4MB Flash 2MB "
                             b"PSRAM with ESP32S3\r\n>>> ")
    assert cp["runtime"] == "circuitpython" and cp["version"] == "9.2.1"
    assert boards.parse_banner(b"garbage") is None


class FakePortInfo:
    def __init__(self, device, vid=None, pid=None, serial_number=None, location=None, description="n/a"):
        self.device, self.vid, self.pid = device, vid, pid
        self.serial_number, self.location, self.description = serial_number, location, description
        self.manufacturer = self.product = None


def test_connected_ports_are_matched_and_identified(monkeypatch):
    from serial.tools import list_ports

    ports = [FakePortInfo("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "1-1.2", "CP2102 USB to UART"),
             FakePortInfo("/dev/ttyACM0", 0x303A, 0x1001, "F4:12:FA:00:11:22", "1-1.3"),
             FakePortInfo("/dev/ttyACM1", 0x239A, 0x811C, "ABCDEF", "1-1.4"),
             FakePortInfo("/dev/ttyUSB1", 0x1234, 0x5678, None, "1-1.5"),
             FakePortInfo("/dev/ttyS0")]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    reg = boards.load_boards([boards.BOARDS_DIR])
    found = {p.device: p for p in boards.connected(reg)}
    assert "/dev/ttyS0" not in found                       # no USB id: a legacy UART, left out
    assert found["/dev/ttyUSB0"].candidates == ["esp32-c3", "esp32-generic"]
    assert found["/dev/ttyACM0"].candidates == ["esp32-c3", "esp32-s3-devkitc"]
    assert found["/dev/ttyACM1"].candidates == ["adafruit-feather-esp32s3"]
    assert found["/dev/ttyUSB1"].candidates == []
    ident = found["/dev/ttyUSB0"].identity()
    assert ident == {"device": "/dev/ttyUSB0", "usb_id": "10c4:ea60", "serial_number": "0001", "location": "1-1.2",
                     "description": "CP2102 USB to UART", "board_candidates": ["esp32-c3", "esp32-generic"]}
    assert boards.identify("/dev/ttyACM1", reg).serial_number == "ABCDEF"
    assert boards.identify("/dev/pts/7", reg).candidates == []          # a pty: no USB details


def test_circuitpy_drive_of_each_board_on_a_tray(tmp_path):
    # Two CircuitPython boards: each tty and each disk are interfaces of one USB device (1-1.4,
    # 1-1.5); the drive is found through sysfs, never by label alone.
    from authprobe.board.flash import drive_for_port

    sys_root = tmp_path / "sys"
    usb = sys_root / "devices" / "pci0000:00" / "usb1" / "1-1"
    for dev, tty, disk in (("1-1.4", "ttyACM0", "sdb"), ("1-1.5", "ttyACM1", "sdc")):
        iface = usb / dev / f"{dev}:1.0"
        iface.mkdir(parents=True)
        (sys_root / "class" / "tty" / tty).mkdir(parents=True)
        (sys_root / "class" / "tty" / tty / "device").symlink_to(iface)
        block = usb / dev / f"{dev}:1.2" / "host3" / "block" / disk
        (block / f"{disk}1").mkdir(parents=True)
        (sys_root / "block").mkdir(exist_ok=True)
        (sys_root / "block" / disk).symlink_to(block)
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda2 / ext4 rw 0 0\n/dev/sdb1 /media/u/CIRCUITPY vfat rw 0 0\n"
                      "/dev/sdc1 /media/u/CIRCUITPY1 vfat rw 0 0\n")
    assert drive_for_port("/dev/ttyACM0", sys_root=sys_root, proc_mounts=mounts) == Path("/media/u/CIRCUITPY")
    assert drive_for_port("/dev/ttyACM1", sys_root=sys_root, proc_mounts=mounts) == Path("/media/u/CIRCUITPY1")
    assert drive_for_port("/dev/ttyUSB9", sys_root=sys_root, proc_mounts=mounts) is None
