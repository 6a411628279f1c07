"""What the package carries besides code (authprobe.bundled): in a checkout, links to the folders one
edits, so the wheel and sdist can never hold a stale second copy (tests/install checks the built
ones); the selftest package as boards get it."""

from __future__ import annotations

from pathlib import Path

import pytest

from authprobe import bundled, device_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["boards", "examples", "firmware"])
def test_the_package_data_links_to_the_folders_one_edits(name):
    link = bundled.DATA / name
    assert link.is_symlink(), f"{link} must stay a link to {ROOT / name}, not a copy"
    assert link.resolve() == (ROOT / name).resolve()


def test_the_named_folders_hold_what_the_tool_reads():
    assert sorted(p.name for p in bundled.BOARDS.glob("*.toml")) == sorted(p.name for p in (ROOT / "boards").glob("*.toml"))
    for name in ("emulator.toml", "authorizer.py", "device.toml", "token-signing-EXAMPLE-private.pem",
                 "drill/standin.toml", "drill/faulty_authorizers.py"):
        assert (bundled.EXAMPLES / name).is_file(), name


def test_the_selftest_package_as_boards_get_it():
    expected = sorted(f"selftest/{p.relative_to(ROOT / 'firmware' / 'selftest').as_posix()}"
                      for p in (ROOT / "firmware" / "selftest").rglob("*.py"))
    assert sorted(bundled.selftest_files()) == expected
    micropython = device_config.firmware_files("micropython")
    circuitpython = device_config.firmware_files("circuitpython")
    assert micropython["main.py"] == (ROOT / "firmware" / "main.py").read_bytes() and "code.py" not in micropython
    assert circuitpython["code.py"] == (ROOT / "firmware" / "code.py").read_bytes() and "main.py" not in circuitpython
    assert "selftest/vendor/umqtt_simple.py" in micropython and "selftest/vendor/umqtt_simple.py" not in circuitpython
