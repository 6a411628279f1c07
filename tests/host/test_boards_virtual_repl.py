"""The virtual board's REPL state machine byte by byte, with a recording stand-in for the pty and the
interpreter: the bytes a board sends for the raw REPL, raw-paste flow control, soft and hard resets,
interrupts, and input typed while a program runs."""

from __future__ import annotations

import threading

import pytest

from authprobe.board.virtual import repl as vb


class Recorder:
    """What ReplMachine needs from VirtualBoard, recorded."""

    machine_label = "test board with ESP32"

    def __init__(self, files: dict[str, bytes] | None = None):
        self.out = bytearray()
        self.spawned: list[int] = []
        self.sent: list[tuple[bytes, str, str]] = []
        self.interrupts = 0
        self.files = files or {}
        self.resets = 0
        self._ready = threading.Event()

    def emit(self, data: bytes) -> None:
        self.out += data

    def spawn(self, cause: int) -> None:
        self.spawned.append(cause)

    def send_to_agent(self, source: bytes, mode: str, filename: str) -> None:
        self.sent.append((source, mode, filename))

    def interrupt_agent(self) -> None:
        self.interrupts += 1

    def file_on_flash(self, name: str) -> bytes | None:
        return self.files.get(name)

    def _kill_child(self) -> None:
        pass

    def reenumerate(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.out = bytes(self.out), bytearray()
        return data


def booted(files: dict[str, bytes] | None = None) -> tuple[vb.ReplMachine, Recorder]:
    rec = Recorder(files)
    repl = vb.ReplMachine(rec)  # type: ignore[arg-type]
    repl.power_on()
    repl.agent_event("READY 3.4.0; MicroPython abc on 2026-07-05")
    return repl, rec


def finish(repl: vb.ReplMachine, output: bytes = b"", error: bytes = b"") -> None:
    repl.program_output(output)
    repl.agent_event("OUT")
    repl.program_output(error)
    repl.agent_event("ERR")


def test_power_on_runs_boot_then_main_then_banner():
    repl, rec = booted({"boot.py": b"print('b')", "main.py": b"print('m')"})
    assert rec.spawned == [vb.PWRON_RESET]
    assert b"rst:0x1 (POWERON_RESET)" in rec.take()
    assert rec.sent[-1] == (b"print('b')", "exec", "boot.py")
    finish(repl, b"b\n")
    assert rec.sent[-1][2] == "main.py"
    assert rec.take() == b"b\r\n"                     # a board's stdout turns \n into \r\n
    finish(repl, b"m\n")
    out = rec.take()
    assert out.startswith(b"m\r\nMicroPython v1.29.0-preview on 2026-07-05; test board with ESP32\r\n")
    assert out.endswith(b">>> ") and rec._ready.is_set()


def test_raw_repl_exec_and_error_markers():
    repl, rec = booted()
    rec.take()
    repl.feed(b"\r\x03\r\x01")
    assert rec.take().endswith(b"\r\nraw REPL; CTRL-B to exit\r\n>")
    repl.feed(b"print(1)\x04")
    assert rec.take() == b"OK" and rec.sent[-1] == (b"print(1)", "exec", "<stdin>")
    finish(repl, b"1\n", b"Traceback...\nNameError\n")
    assert rec.take() == b"1\r\n\x04Traceback...\r\nNameError\r\n\x04>"


def test_raw_paste_window_and_end():
    repl, rec = booted()
    repl.feed(b"\x01")
    rec.take()
    repl.feed(b"\x05A\x01")
    assert rec.take() == b"R\x01" + vb.RAW_PASTE_WINDOW.to_bytes(2, "little")
    body = b"x = 1\n" * 100                          # 600 bytes: two windows consumed
    repl.feed(body[:300])
    assert rec.take() == b"\x01"
    repl.feed(body[300:] + b"\x04")
    assert rec.take() == b"\x01\x04"
    assert rec.sent[-1] == (body, "exec", "<stdin>")
    finish(repl)
    assert rec.take() == b"\x04\x04>"


def test_soft_reset_in_raw_repl_skips_main():
    repl, rec = booted({"main.py": b"print('m')"})
    finish(repl)
    repl.feed(b"\x01")
    rec.take()
    repl.feed(b"\x04")
    assert rec.take() == b"OK\r\nMPY: soft reboot\r\n"
    assert rec.spawned == [vb.PWRON_RESET, vb.PWRON_RESET]   # reset cause survives a soft reboot
    repl.agent_event("READY x")
    assert rec.take() == b"raw REPL; CTRL-B to exit\r\n>"
    assert rec.sent[-1][2] == "main.py" and len(rec.sent) == 1  # main.py ran at power-on only


def test_input_while_running_waits_and_ctrl_c_interrupts():
    repl, rec = booted({"main.py": b"while True: pass"})
    rec.take()
    repl.feed(b"\r\x03\r\x01")                      # what mpremote sends to a busy board
    assert rec.interrupts == 1
    finish(repl, b"", b"Traceback (most recent call last):\nKeyboardInterrupt: \n")
    out = rec.take()
    assert b"KeyboardInterrupt" in out and out.endswith(b"raw REPL; CTRL-B to exit\r\n>")


def test_program_ignoring_ctrl_c_gets_a_soft_reboot(monkeypatch):
    repl, rec = booted({"main.py": b"..."})
    rec.take()
    clock = [1000.0]
    monkeypatch.setattr(vb.time, "monotonic", lambda: clock[0])
    repl.feed(b"\x03")
    clock[0] += vb.INTERRUPT_GRACE_S + 0.1
    repl.tick()
    assert b"MPY: soft reboot" in rec.take() and len(rec.spawned) == 2


def test_machine_reset_and_system_exit():
    repl, rec = booted()
    repl.feed(b"\x01import machine\nmachine.reset()\x04")
    rec.take()
    repl.agent_event("RESET")
    assert b"rst:0xc (SW_CPU_RESET)" in rec.take()
    assert rec.spawned[-1] == vb.SOFT_RESET and repl.mode == "friendly"
    repl.agent_event("READY x")
    rec.take()
    repl.feed(b"\x01raise SystemExit\x04")
    rec.take()
    repl.agent_event("OUT")
    repl.agent_event("EXIT")
    assert rec.take() == b"\x04\x04MPY: soft reboot\r\n"


def test_agent_crash_is_a_panic_and_reboot():
    repl, rec = booted()
    rec.take()
    repl.agent_died()
    out = rec.take()
    assert out.startswith(b"Guru Meditation Error") and b"rst:0xc" in out


def test_friendly_repl_editing_and_blocks():
    repl, rec = booted()
    rec.take()
    repl.feed(b"1+x\x08\x7f1\r")
    assert rec.take() == b"1+x\x08 \x08\x08 \x08" + b"1\r\n"
    assert rec.sent[-1] == (b"11", "single", "<stdin>")
    finish(repl, b"11\n")
    assert rec.take() == b"11\r\n>>> "
    repl.feed(b"for i in (1, 2):\r    print(i)\r\r")
    assert rec.take().count(b"... ") == 2
    assert rec.sent[-1] == (b"for i in (1, 2):\n    print(i)\n", "single", "<stdin>")


@pytest.mark.parametrize("byte", [b"\x02", b"\x03"])
def test_friendly_control_keys(byte):
    repl, rec = booted()
    rec.take()
    repl.feed(byte)
    out = rec.take()
    assert out.endswith(b">>> ")
    assert (b"MicroPython v1.29" in out) == (byte == b"\x02")
