"""`authprobe station` as a user meets it: a live view of the slots on a terminal, plain lines
when piped (one per board, identifiers whole), and usage mistakes said before any board is touched."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from authprobe import cli
from authprobe.store import RunStore
from tests.fixtures.station import LINE_KEY, line_device_toml, line_standin


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    emu = line_standin(tmp_path_factory.mktemp("station-cli"))
    yield emu
    emu.close()


@pytest.fixture
def plugged(authprobe_virtual_boards, tmp_path):
    """A native-USB virtual board already plugged in when the station starts."""
    ports = tmp_path / "ports"
    ports.mkdir()
    board = authprobe_virtual_boards(uid="a4cf12000021", native_usb=True,
                                     port_link=ports / "usb-authprobe_a4cf12000021-if00")
    return board, ports


def station_args(standin, tmp_path, ports) -> list[str]:
    config = line_device_toml(standin, tmp_path / "device.toml")
    return ["station", "--config", str(config), "--watch", str(ports / "usb-*-if00"), "--store",
            str(tmp_path / "runs.sqlite"), "--station", "bench-7", "--exit-after", "1", "--sign-key", str(LINE_KEY),
            "--timeout", "30"]


def test_on_a_terminal_the_slots_are_shown_live(standin, plugged, tmp_path):
    board, ports = plugged
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "authprobe.cli", *station_args(standin, tmp_path, ports)],
                            stdout=slave, stderr=slave, env=dict(os.environ, TERM="xterm-256color"))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:   # EIO: the station exited and closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=10) == 0, out[-2000:]
    text = out.decode(errors="replace")
    assert "authprobe station: 1 slot(s)" in text           # the live table's title
    assert "running" in text and "a4cf12000021" in text
    assert f"{board.port}  a4cf12000021  " in text and "PASS" in text


def test_piped_it_prints_one_plain_line_per_board(standin, plugged, tmp_path):
    board, ports = plugged
    proc = subprocess.run([sys.executable, "-m", "authprobe.cli", *station_args(standin, tmp_path, ports)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    port, uid, verdict, run, *_ = line.split("  ")
    assert (port, uid, verdict) == (board.port, "a4cf12000021", "PASS")
    assert run.startswith("run ") and re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6,}", run.split()[1])
    assert "\x1b[" not in proc.stdout and "slot(s)" not in proc.stdout
    assert "station bench-7: 1 board(s): 1 PASS" in proc.stderr

    # The next station to see it finds the self-test and the board's own config in place: one round trip.
    again = subprocess.run([sys.executable, "-m", "authprobe.cli", *station_args(standin, tmp_path, ports),
                            "--json-lines"], capture_output=True, text=True, timeout=60)
    (line,) = [json.loads(ln) for ln in again.stdout.splitlines() if '"board"' in ln]
    assert (line["verdict"], line["flash"], line["flash_round_trips"]) == ("PASS", "unchanged", 1), line


@pytest.mark.parametrize(("extra", "message"), [
    (["--exit-after", "0"], "--exit-after must be at least 1"),
    (["--timeout", "0"], "--timeout must be positive"),
    (["--sign-key", "/nonexistent/line.pem"], "--sign-key /nonexistent/line.pem: cannot read it"),
    (["--passphrase-env", "AUTHPROBE_TEST_UNSET"], "pass --sign-key KEY too"),
    (["--sign-key", str(LINE_KEY), "--board", "esp32-nonesuch"], "unknown board 'esp32-nonesuch'"),
])
def test_usage_mistakes_are_said_before_any_board_is_touched(standin, tmp_path, capsys, extra, message):
    config = line_device_toml(standin, tmp_path / "device.toml")
    rc = cli.main(["station", "--config", str(config), "--watch", str(tmp_path / "none-*"), *extra])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_a_uid_token_without_a_key_is_refused(standin, tmp_path, capsys):
    config = line_device_toml(standin, tmp_path / "device.toml")
    assert cli.main(["station", "--config", str(config), "--watch", str(tmp_path / "none-*")]) == 2
    assert "pass --sign-key KEY" in capsys.readouterr().err


def test_a_board_that_cannot_be_flashed_is_one_error_line_and_a_stored_run(standin, authprobe_virtual_boards,
                                                                            tmp_path):
    # A CircuitPython board on a port no definition matches: its files' form is unknown, so the
    # station says to name its definition, and keeps a record of the board it met.
    ports = tmp_path / "ports"
    ports.mkdir()
    board = authprobe_virtual_boards(uid="a4cf12000031", runtime="circuitpython", native_usb=True,
                                     port_link=ports / "usb-authprobe_a4cf12000031-if00")
    proc = subprocess.run([sys.executable, "-m", "authprobe.cli", *station_args(standin, tmp_path, ports),
                           "--json-lines"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    (line,) = [json.loads(ln) for ln in proc.stdout.splitlines() if '"board"' in ln]
    assert (line["port"], line["uid"], line["verdict"], line["reason"]) == (board.port, "a4cf12000031", "ERROR",
                                                                            "flash-failed")
    assert "--board" in line["fix"] and "circuitpython" in line["fix"]
    with RunStore(tmp_path / "runs.sqlite") as store:
        run = store.get_run(line["run_id"])
    assert (run["status"], run["reason"], run["identity"]["runtime"]) == ("incomplete", "flash-failed", "circuitpython")
    assert run["identity"]["station"] == "bench-7"
