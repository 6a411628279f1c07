"""The virtual board against the unmodified mpremote CLI (a subprocess, as a user runs it) and
pyserial: raw REPL, raw-paste, file system, soft and hard reset, boot.py/main.py, Wi-Fi faults."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

MPREMOTE = [sys.executable, "-m", "mpremote"]


def mpremote(port: str, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=timeout)


def read_until(ser: serial.Serial, marker: bytes, timeout: float = 5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        data += ser.read(ser.in_waiting or 1)
    assert marker in data, data
    return data


def test_mpremote_exec_eval_and_errors(authprobe_virtual_board):
    port = authprobe_virtual_board.port
    r = mpremote(port, "exec", "x = 6 * 7; print('x is', x)", "+", "eval", "x + 1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["x is 42", "43"]
    r = mpremote(port, "exec", "def f():\n  return 1/0\nf()")
    assert r.returncode == 1
    assert 'File "<stdin>", line 3, in <module>' in r.stdout
    assert "ZeroDivisionError: divide by zero" in r.stdout
    assert "agent.py" not in r.stdout


def test_mpremote_run_and_fs_commands(authprobe_virtual_board, tmp_path):
    board = authprobe_virtual_board
    script = tmp_path / "hello.py"
    script.write_text("import os\nprint('cwd', os.getcwd())\nprint(sorted(os.listdir('/')))\n")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 'from flash'\n")
    (pkg / "data.bin").write_bytes(bytes(range(256)) * 20)

    r = mpremote(board.port, "fs", "mkdir", "lib", "+", "fs", "cp", "-r", str(pkg), ":lib/",
                 "+", "fs", "cp", str(script), ":main.py")
    assert r.returncode == 0, r.stderr
    assert (board.flash_dir / "lib" / "pkg" / "data.bin").read_bytes() == bytes(range(256)) * 20
    r = mpremote(board.port, "fs", "ls", "lib/pkg")
    assert r.returncode == 0, r.stderr
    assert "5120 data.bin" in r.stdout and "__init__.py" in r.stdout
    r = mpremote(board.port, "fs", "cat", "main.py")
    assert "print('cwd', os.getcwd())" in r.stdout
    r = mpremote(board.port, "run", str(script))
    assert r.returncode == 0, r.stderr
    assert "cwd /" in r.stdout and "['lib', 'main.py']" in r.stdout   # the flash is the board's root
    r = mpremote(board.port, "exec", "import pkg; print(pkg.VALUE)")
    assert r.stdout.strip() == "from flash"
    r = mpremote(board.port, "fs", "rm", "main.py", "+", "fs", "ls")
    assert r.returncode == 0 and "main.py" not in r.stdout.split("ls :")[1]
    assert not (board.flash_dir / "main.py").exists()
    # Unchanged file: mpremote compares hashes on the board and skips it.
    r = mpremote(board.port, "fs", "cp", str(script), ":again.py", "+", "fs", "cp", str(script), ":again.py")
    assert r.returncode == 0, r.stderr


def test_soft_reset_clears_globals_and_hard_reset_runs_boot_then_main(authprobe_virtual_board):
    board = authprobe_virtual_board
    (board.flash_dir / "boot.py").write_text("print('boot.py ran')\n")
    (board.flash_dir / "main.py").write_text("import machine\nprint('main.py ran, cause', machine.reset_cause())\n")
    r = mpremote(board.port, "exec", "kept = 1", "+", "soft-reset", "+", "exec", "print('kept' in globals())")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("False")
    # Open first (pyserial flushes input on open), then reset with mpremote as a user would.
    with serial.serial_for_url(board.port, timeout=0.05) as ser:
        r = mpremote(board.port, "reset")
        assert r.returncode == 0, r.stderr
        out = read_until(ser, b">>> ")
    text = out.decode(errors="replace")
    assert "rst:0xc (SW_CPU_RESET)" in text   # the ESP32 ROM log of a software reset
    assert text.index("boot.py ran") < text.index("main.py ran, cause 5") < text.index("MicroPython v1.29")


def test_ctrl_c_interrupts_a_running_main_py(authprobe_virtual_board):
    board = authprobe_virtual_board
    (board.flash_dir / "main.py").write_text("import time\nprint('looping')\nwhile True:\n    time.sleep_ms(10)\n")
    board.hard_reset()
    time.sleep(0.3)
    # mpremote interrupts main.py, then talks the raw REPL as usual.
    r = mpremote(board.port, "exec", "print('after interrupt')")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "after interrupt"


def test_raw_paste_flow_control_with_large_program(authprobe_virtual_board):
    body = "\n".join(f"v{i} = {i}" for i in range(600)) + "\nprint(v599 + v1)\n"
    r = mpremote(authprobe_virtual_board.port, "exec", body)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "600"


def test_raw_repl_bytes_as_a_board_sends_them(authprobe_virtual_board):
    with serial.serial_for_url(authprobe_virtual_board.port, timeout=0.05) as ser:
        ser.write(b"\r\x03\x03\r\x01")
        read_until(ser, b"raw REPL; CTRL-B to exit\r\n>")
        ser.write(b"print('a')\nprint(1/0)\x04")
        out = read_until(ser, b"\x04>")
        assert out.startswith(b"OKa\r\n\x04Traceback (most recent call last):\r\n")
        assert out.endswith(b"ZeroDivisionError: divide by zero\r\n\x04>")
        ser.write(b"\x05A\x01")
        answer = read_until(ser, b"R\x01")
        answer += ser.read(4 - len(answer))
        assert answer[:2] == b"R\x01" and int.from_bytes(answer[2:4], "little") == 256
        ser.write(b"print(7)\x04")
        assert read_until(ser, b"\x04>").endswith(b"\x047\r\n\x04\x04>")
        ser.write(b"\x02")
        assert b"MicroPython v1.29" in read_until(ser, b">>> ")


@pytest.mark.parametrize(("fault", "status"), [(None, 1010), ("no-ap", 201), ("wrong-password", 202),
                                                ("timeout", 1001), ("fail", 203)])
def test_wifi_faults(authprobe_virtual_boards, fault, status):
    board = authprobe_virtual_boards(wifi_fault=fault, wifi_delay_ms=20)
    code = ("import network, time\nw = network.WLAN(network.STA_IF)\nw.active(True)\nw.connect('lab', 'pw')\n"
            "time.sleep_ms(60)\nprint(w.status(), w.isconnected(), w.ifconfig()[0])")
    r = mpremote(board.port, "exec", code)
    assert r.returncode == 0, r.stderr
    got, connected, ip = r.stdout.split()
    assert int(got) == status
    assert (connected == "True") == (fault is None)
    assert (ip != "0.0.0.0") == (fault is None)


def test_wifi_networks_in_range_and_live_control_file(authprobe_virtual_boards, tmp_path):
    control = tmp_path / "control.json"
    board = authprobe_virtual_boards(wifi_networks={"lab": "secret"}, wifi_delay_ms=0, control_file=str(control))
    probe = ("import network\nw = network.WLAN(network.STA_IF)\nw.active(True)\n"
             "for ssid, key in (('lab', 'secret'), ('lab', 'nope'), ('cafe', 'x')):\n"
             "    w.connect(ssid, key)\n    print(w.status())")
    r = mpremote(board.port, "exec", probe)
    assert r.stdout.split() == ["1010", "202", "201"]
    control.write_text('{"wifi_fault": "no-ap"}')
    r = mpremote(board.port, "exec", probe)   # mpremote soft-resets first: the control file is re-read
    assert r.stdout.split() == ["201", "201", "201"]


def test_machine_shim_and_board_identity(authprobe_virtual_boards):
    a = authprobe_virtual_boards(name="a")
    b = authprobe_virtual_boards(name="b", uid="a4cf12abcdef")
    code = "import machine, binascii\nprint(binascii.hexlify(machine.unique_id()).decode(), machine.reset_cause())"
    ra, rb = mpremote(a.port, "exec", code), mpremote(b.port, "exec", code)
    assert rb.stdout.split() == ["a4cf12abcdef", "1"]       # power-on reset, as after plugging in
    r = mpremote(b.port, "exec", "import os\nu = os.uname()\nprint(u[0], u[4])")
    assert r.stdout.strip() == "esp32 authprobe virtual board with ESP32"
    assert ra.stdout.split()[0] != "a4cf12abcdef" and len(ra.stdout.split()[0]) == 12


def test_many_boards_at_once(authprobe_virtual_boards):
    boards = [authprobe_virtual_boards(name=f"m{i}") for i in range(4)]
    procs = [subprocess.Popen([*MPREMOTE, "connect", b.port, "exec", f"print({i} * 11)"], stdout=subprocess.PIPE,
                              text=True) for i, b in enumerate(boards)]
    outs = [p.communicate(timeout=30)[0].strip() for p in procs]
    assert outs == ["0", "11", "22", "33"]
    assert len({b.port for b in boards}) == 4


def test_cli_serves_a_tray(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "authprobe.cli", "virtual-board", "--flash", str(tmp_path / "t"),
                             "--count", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ports = [proc.stdout.readline().strip() for _ in range(3)]
        assert len(set(ports)) == 3
        uids = {mpremote(p, "exec", "import machine; print(machine.unique_id().hex())").stdout.strip() for p in ports}
        assert len(uids) == 3
        assert sorted(os.listdir(tmp_path / "t")) == ["virtual0", "virtual1", "virtual2"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_cli_prints_port_first_and_stops_cleanly(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "authprobe.cli", "virtual-board", "--flash", str(tmp_path / "f")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert Path(port).exists()
        r = mpremote(port, "exec", "print('cli board')")
        assert r.stdout.strip() == "cli board"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert not Path(port).exists() or proc.returncode == 0


@pytest.mark.parametrize(("option", "named"), [
    (["--heap", "lots"], "--heap 'lots'"),
    (["--baud", "0"], "--baud 0"),
    (["--flash", "{file}/flash"], "--flash"),
    (["--native-usb", "{file}/link"], "--native-usb"),
])
def test_cli_bad_options_are_clear_errors(tmp_path, capsys, option, named):
    from authprobe import cli

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = [a.replace("{file}", str(blocker)) for a in option]
    rc = cli.main(["virtual-board", *args] if "--flash" in args else ["virtual-board", "--flash", str(tmp_path / "f"),
                                                                        *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert named in err and "Traceback" not in err and "internal error" not in err


def test_boards_probe_reads_the_banner(authprobe_virtual_board, capsys):
    from authprobe import cli

    assert cli.main(["boards", "--port", authprobe_virtual_board.port, "--probe", "--json"]) == 0
    import json

    found = [p for p in json.loads(capsys.readouterr().out) if p["device"] == authprobe_virtual_board.port]
    assert found[0]["runtime"] == "micropython"
    assert found[0]["board_candidates"] == ["virtual"]
    assert "authprobe virtual board" in found[0]["banner"]


def test_monitor_shows_records_live(authprobe_virtual_board, capsys):
    from authprobe import cli
    from tests.fixtures.board_programs import PASSING, install

    install(authprobe_virtual_board.flash_dir, PASSING)
    assert cli.main(["monitor", "--port", authprobe_virtual_board.port, "--reset", "--until-end", "--timeout", "10",
                     "--raw"]) == 0
    out = capsys.readouterr().out
    assert "begin " in out and "config_ok" in out and "end pass" in out
    assert "dev-run" not in out  # the device's own run id: one id per run, and monitor stores none
    assert "rst:0xc (SW_CPU_RESET)" in out       # --raw shows the boot log too
    assert "3 records, 0 damaged" in out


def test_monitor_resets_a_circuitpython_board_the_circuitpython_way(authprobe_virtual_boards, capsys):
    from authprobe import cli
    from selftest import record

    board = authprobe_virtual_boards(runtime="circuitpython")
    line = record.encode({"k": "end", "run": "cp-run", "verdict": "pass"})
    (board.flash_dir / "code.py").write_text(f"print({line!r})\n")
    assert cli.main(["monitor", "--port", board.port, "--reset", "--runtime", "circuitpython", "--until-end",
                     "--timeout", "10"]) == 0
    assert "1 records, 0 damaged" in capsys.readouterr().out


def test_circuitpython_flavour(authprobe_virtual_boards, tmp_path, capsys):
    import json

    from authprobe import cli
    from authprobe.board import flash

    board = authprobe_virtual_boards(runtime="circuitpython")
    (board.flash_dir / "settings.toml").write_text('GREETING = "hello"\nPORT = 443\n')
    (board.flash_dir / "code.py").write_text("import os\nprint('code ran', os.getenv('GREETING'), os.getenv('PORT') + 1)\n")
    with serial.serial_for_url(board.port, timeout=0.05) as ser:
        board.hard_reset()
        out = read_until(ser, b"Use CTRL-D to reload.\r\n").decode()
        assert "code.py output:\r\ncode ran hello 444\r\n" in out and "rst:" not in out
        ser.write(b"x")                                   # any key enters the REPL
        assert b"Adafruit CircuitPython 9.2.1 on" in read_until(ser, b">>> ")
    r = mpremote(board.port, "exec", "import microcontroller, board\nprint(microcontroller.cpu.reset_reason, board.board_id)")
    assert r.stdout.split() == ["microcontroller.ResetReason.POWER_ON", "authprobe_virtual_esp32s3"]
    r = mpremote(board.port, "exec", "import network")              # no ESP32 network module here
    assert "no module named 'network'" in r.stdout
    # Code cannot write the drive; the host can.
    result = flash.flash([board.port], "examples/device.toml", board="virtual-circuitpython")[0]
    assert result.status == "error" and "read-only to code" in result.error
    assert cli.main(["boards", "--port", board.port, "--probe", "--json"]) == 0
    found = [p for p in json.loads(capsys.readouterr().out) if p["device"] == board.port][0]
    assert (found["runtime"], found["board_candidates"]) == ("circuitpython", ["virtual-circuitpython"])
