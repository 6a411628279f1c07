"""Every command's known failure paths end with the exit code the README documents (0 pass, 1 device
or cloud failure, 2 bad usage or config, 3 incomplete, 4 authprobe bug, 5 cloud unreadable) and a
one-line message, never a traceback: a port that does not exist or that another program holds, an
unmounted CircuitPython drive, nonsense numbers, output files that cannot be written (said before
any board is touched), read-only commands that must not create anything."""

from __future__ import annotations

import os
import pty
from pathlib import Path

import pytest
import serial

from authprobe import cli
from tests.fixtures.chattering_port import ChatteringPort

ROOT = Path(__file__).resolve().parents[2]
DEVICE_TOML = str(ROOT / "examples" / "device.toml")
EMULATOR_TOML = str(ROOT / "examples" / "emulator.toml")
MISSING_PORT = "/dev/authprobe-no-such-port"


@pytest.fixture
def held_port():
    """A pty another program holds open exclusively, as a serial monitor left running does."""
    master, slave = pty.openpty()
    port = os.ttyname(slave)
    holder = serial.Serial(port, exclusive=True)
    try:
        yield port
    finally:
        holder.close()
        os.close(master)
        os.close(slave)


@pytest.fixture
def blocker(tmp_path):
    """A plain file where a folder would have to be."""
    path = tmp_path / "a-file"
    path.write_text("")
    return path


def outcome(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse: a usage error exits 2 before any command runs
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text and "internal error" not in text, text
    return code, text


# (argv, exit code, words the message must hold); {tmp}, {file}, {held} are filled in per test.
CASES = [
    # probe
    (["probe", "--config", "{tmp}/absent.toml"], 2, "not found"),
    (["probe", "--config", DEVICE_TOML, "--timeout", "-5"], 2, "--timeout"),
    (["probe", "--config", DEVICE_TOML, "--json", "{file}/report.json"], 2, "--json"),
    # emulate
    (["emulate", "--config", "{tmp}/absent.toml"], 2, "cannot read emulator config"),
    (["emulate", "--config", EMULATOR_TOML, "--listen", "nowhere"], 2, "--listen"),
    # boards
    (["boards", "--port", MISSING_PORT], 2, "no such port"),
    # flash
    (["flash", "--port", MISSING_PORT, "--board", "virtual"], 2, "no such port"),
    (["flash", "--port", "{held}", "--board", "virtual"], 2, "another program"),
    (["flash", "--port", "{held}", "--board", "virtual", "--timeout", "0"], 2, "--timeout"),
    (["flash", "--port", "{held}", "--board", "adafruit-feather-esp32s3", "--drive", "{tmp}/CIRCUITPY"], 2,
     "mount the board's CIRCUITPY drive"),
    (["flash", "--port", "{held}", "--config", "{tmp}/absent.toml"], 2, "not found"),
    # run
    (["run", "--port", MISSING_PORT, "--store", "{tmp}/runs.sqlite"], 2, "no such port"),
    (["run", "--port", "{held}", "--store", "{tmp}/runs.sqlite", "--timeout", "2"], 2, "another program"),
    (["run", "--port", "{held}", "--timeout", "-5"], 2, "--timeout"),
    (["run", "--port", "{held}", "--store", "{tmp}/runs.sqlite", "--json", "{file}/r.json"], 2, "--json"),
    (["run", "--port", "{held}", "--store", "{tmp}/runs.sqlite", "--junit", "{tmp}"], 2, "is a folder"),
    # monitor
    (["monitor", "--port", MISSING_PORT], 2, "no such port"),
    (["monitor", "--port", "{held}"], 2, "another program"),
    (["monitor", "--port", "{held}", "--timeout", "nan"], 2, "--timeout"),
    # runs
    (["runs", "show", "--store", "{tmp}/none/runs.sqlite"], 2, "no run store"),
    (["runs", "--limit", "0"], 2, "--limit"),
    # cloud-check
    (["cloud-check", "--config", "{tmp}/absent.toml", "--cloud", "local:{tmp}"], 2, "not found"),
    (["cloud-check", "--config", DEVICE_TOML, "--since", "soon", "--cloud", "local:{tmp}"], 2, "--since"),
    (["cloud-check", "--config", DEVICE_TOML, "--cloud", "local:{tmp}/no-standin"], 5, "no stand-in state"),
    (["cloud-check", "--config", DEVICE_TOML, "--cloud", "gcp"], 2, "--cloud"),
    # correlate
    (["correlate", "--store", "{tmp}/absent.sqlite"], 2, "no run store"),
    (["correlate", "--skew", "-1"], 2, "--skew"),
    (["correlate", "--max-concurrent", "0"], 2, "--max-concurrent"),
    (["correlate", "--save", "--report", "{tmp}/r.json"], 2, "--save"),
    # sign / verify
    (["sign", "--key", "{tmp}/absent.pem", "--token", "t"], 2, "cannot read private key"),
    (["verify", "--token", "t", "--signature", "AAAA", "--key", "{file}"], 2, "not a usable public key"),
    (["verify", "--token", "t", "--signature", "AAAA"], 2, "no public key"),
    # report
    (["report", "latest", "--store", "{tmp}/absent.sqlite", "--html", "{tmp}/r.html"], 2, "no run store"),
    (["report", "latest", "--html", "{file}/{run_id}.html"], 2, "--html"),
    (["report", "latest", "--store", "{tmp}/absent.sqlite", "--html", "p.html", "--skew", "-3"], 2, "--skew"),
    # drill
    (["drill", "--only", "no-such-fault"], 2, "no case matches"),
    # virtual-board
    (["virtual-board", "--count", "0"], 2, "--count"),
]


@pytest.mark.parametrize(("argv", "code", "words"), CASES, ids=[" ".join(c[0][:2]) + f" #{i}"
                                                               for i, c in enumerate(CASES)])
def test_known_failure_exits_with_its_documented_code(argv, code, words, tmp_path, blocker, held_port, capsys,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing here may touch the checkout's .authprobe/
    filled = [a.replace("{tmp}", str(tmp_path)).replace("{file}", str(blocker)).replace("{held}", held_port)
              for a in argv]
    got, text = outcome(filled, capsys)
    assert got == code, text
    assert words in text, text


def test_a_port_that_chatters_without_a_repl_is_incomplete_not_a_hang(capsys):
    with ChatteringPort() as chatter:
        got, text = outcome(["flash", "--port", chatter.port, "--board", "virtual", "--timeout", "1"], capsys)
    assert got == 3 and "no MicroPython/CircuitPython REPL answered on" in text


def test_output_paths_are_checked_before_the_board_is_touched(tmp_path, blocker, capsys, monkeypatch):
    """A --json that cannot be written stops `run` before the port is opened: the board gets no
    reset keystroke and no run is stored."""
    import select

    monkeypatch.chdir(tmp_path)
    master, slave = pty.openpty()
    try:
        got, _ = outcome(["run", "--port", os.ttyname(slave), "--store", str(tmp_path / "runs.sqlite"),
                          "--json", str(blocker / "r.json")], capsys)
        assert not select.select([master], [], [], 0.3)[0], "the board was sent something"
    finally:
        os.close(master)
        os.close(slave)
    assert got == 2
    assert not (tmp_path / "runs.sqlite").exists()


def test_read_only_commands_create_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "not" / "here" / "runs.sqlite"
    got, text = outcome(["runs", "--store", str(store)], capsys)
    assert got == 0 and "no run store at" in text
    got, text = outcome(["runs", "--store", str(store), "--json"], capsys)
    assert got == 0 and text.strip() == "[]"
    assert outcome(["runs"], capsys)[0] == 0  # the default store, which does not exist here either
    assert outcome(["correlate", "--store", str(store)], capsys)[0] == 2
    assert outcome(["report", "latest", "--store", str(store), "--html", "-"], capsys)[0] == 2
    assert list(tmp_path.iterdir()) == []
