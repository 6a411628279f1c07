"""The virtual board's REPL as a state machine, byte by byte: friendly and raw REPL, raw-paste, soft
and hard reset, CircuitPython's auto-reload, as ports/esp32 and shared/runtime/pyexec.c behave. It
knows nothing of ptys or processes: the board it drives (board.VirtualBoard, or a test's recorder)
provides the ReplBoard protocol."""

from __future__ import annotations

import re
import struct
import threading
import time
from typing import Protocol

PWRON_RESET = 1
SOFT_RESET = 5

CIRCUITPY_VERSION = "9.2.1"
CP_AUTORELOAD = b"Auto-reload is on. Simply save files over USB to run them or enter REPL to disable.\r\n"
CP_DONE = b"\r\nCode done running.\r\n\r\nPress any key to enter the REPL. Use CTRL-D to reload.\r\n"
CP_ENTRY_FILES = ("code.txt", "code.py", "main.txt", "main.py")

# What the ESP32 ROM bootloader prints before MicroPython starts; a real board's boot noise.
ROM_BOOT = (
    "ets Jul 29 2019 12:21:46\r\n\r\n"
    "rst:{rst},boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
    "configsip: 0, SPIWP:0xee\r\n"
    "clk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n"
    "mode:DIO, clock div:2\r\n"
    "load:0x3fff0030,len:4728\r\n"
    "load:0x40078000,len:14888\r\n"
    "load:0x40080400,len:3368\r\n"
    "entry 0x400805cc\r\n"
)
ROM_RESET_REASON = {PWRON_RESET: "0x1 (POWERON_RESET)", SOFT_RESET: "0xc (SW_CPU_RESET)",
                    4: "0x5 (DEEPSLEEP_RESET)"}
PANIC = ("Guru Meditation Error: Core  1 panic'ed (LoadProhibited). Exception was unhandled.\r\n"
         "\r\nRebooting...\r\n")

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
_RAW_CONTROL = re.compile(rb"[\x01-\x04]")
_PASTE_CONTROL = re.compile(rb"[\x03\x04]")
RAW_PASTE_WINDOW = 256
# How long an interrupted program may take to unwind before the interpreter is restarted instead.
INTERRUPT_GRACE_S = 1.5


class ReplBoard(Protocol):
    """What the REPL needs of the board around it: output, the interpreter, the flash, resets."""

    machine_label: str
    resets: int
    _ready: threading.Event

    def emit(self, data: bytes) -> None: ...

    def spawn(self, reset_cause: int) -> None: ...

    def send_to_agent(self, source: bytes, mode: str, filename: str) -> None: ...

    def interrupt_agent(self) -> None: ...

    def file_on_flash(self, name: str) -> bytes | None: ...

    def reenumerate(self) -> None: ...

    def _kill_child(self) -> None: ...


class ReplMachine:
    """The board's REPL, as ports/esp32 + shared/runtime/pyexec.c behave, driven byte by byte."""

    def __init__(self, board: ReplBoard):
        self.board = board
        self.mode = "friendly"       # friendly | raw (which REPL the board returns to)
        self.state = "off"           # off | booting | running | idle | paste | resetting
        self.line = bytearray()
        self.block: list[str] = []   # friendly REPL: lines of a compound statement being typed
        self.pending_input = bytearray()
        self.boot_queue: list[str] = []
        self.context = ""            # raw | friendly | file: who asked for the running program
        self.paste_buf = bytearray()
        self.paste_window = 0
        self.version = "v1.29.0"
        self.interrupt_deadline: float | None = None
        self.reset_deadline: float | None = None
        self.in_err = False
        self.agent_ready = False

    # -- outputs -----------------------------------------------------------------------------------

    def emit(self, data: bytes) -> None:
        self.board.emit(data)

    def cooked(self, data: bytes) -> bytes:
        # A board's stdout turns every \n into \r\n.
        return data.replace(b"\n", b"\r\n")

    @property
    def circuitpython(self) -> bool:
        return getattr(self.board, "runtime", "micropython") == "circuitpython"

    def banner(self) -> bytes:
        if self.circuitpython:
            return f"Adafruit CircuitPython {CIRCUITPY_VERSION} on 2026-07-05; {self.board.machine_label}\r\n".encode()
        return (f"MicroPython {self.version}; {self.board.machine_label}\r\n"
                'Type "help()" for more information.\r\n').encode()

    def prompt(self) -> None:
        self.state = "idle"
        self.board._ready.set()
        if self.mode == "raw":
            self.emit(b">")
        else:
            self.emit(b"... " if self.block else b">>> ")
        self.drain_pending()

    # -- resets ------------------------------------------------------------------------------------

    def power_on(self) -> None:
        self.hard_reset(PWRON_RESET, powering_on=True)

    def hard_reset(self, cause: int, powering_on: bool = False) -> None:
        self.board.resets += 1
        if not powering_on:
            self.board._kill_child()
            self.board.reenumerate()
        self.mode = "friendly"
        self.pending_input.clear()
        self.line.clear()
        self.block = []
        if not self.circuitpython:   # CircuitPython's console is USB: the ROM log goes to the UART
            self.emit(ROM_BOOT.format(rst=ROM_RESET_REASON.get(cause, ROM_RESET_REASON[SOFT_RESET])).encode())
        self.start_interpreter(cause, hard=True)

    def soft_reset(self) -> None:
        self.emit(b"soft reboot\r\n" if self.circuitpython else b"MPY: soft reboot\r\n")
        self.line.clear()
        self.block = []
        self.start_interpreter(int(self._last_cause))

    _last_cause = PWRON_RESET

    def start_interpreter(self, cause: int, hard: bool = False) -> None:
        self._last_cause = cause
        self.state = "booting"
        self.board._ready.clear()
        self.context = ""
        self.agent_ready = False
        self.interrupt_deadline = None
        self.board.spawn(cause)
        # Boot files run once the agent says it is ready: boot.py always, main.py only when the
        # board returns to the friendly REPL (the ESP32 port skips main.py after a raw-REPL reboot).
        # CircuitPython runs boot.py only after a hard reset (its output goes to boot_out.txt) and
        # code.py on every reload, except straight back into the raw REPL.
        if self.circuitpython:
            entry = next((n for n in CP_ENTRY_FILES if self.board.file_on_flash(n) is not None), None)
            self.boot_queue = (["boot.py"] if hard else []) + ([entry] if entry and self.mode == "friendly" else [])
        else:
            self.boot_queue = ["boot.py"] + (["main.py"] if self.mode == "friendly" else [])

    def agent_died(self) -> None:
        # The interpreter crashed (or was killed): a board would panic and reboot.
        self.emit(PANIC.encode())
        self.hard_reset(SOFT_RESET)

    # -- events from the interpreter --------------------------------------------------------------------

    def agent_event(self, word: str) -> None:
        if word.startswith("READY"):
            self.agent_ready = True
            self.version = self._version_from(word[6:])
            self.run_next_boot_file()
        elif word == "OUT":
            self.in_err = True
            if self.context == "raw":
                self.emit(b"\x04")
        elif word in ("ERR", "EXIT"):
            self.in_err = False
            self.interrupt_deadline = None
            context, self.context = self.context, ""
            if context == "raw":
                self.emit(b"\x04")
            if word == "EXIT":
                self.soft_reset()
            elif context == "file":
                self.run_next_boot_file()
            else:
                self.prompt()
        elif word == "RESET":
            self.state = "resetting"
            self.reset_deadline = None
            self.hard_reset(SOFT_RESET)
        elif word == "SOFT":
            self.soft_reset()
        elif word.startswith("DEEPSLEEP"):
            ms = int(word.split()[1] or 0)
            self.board._kill_child()
            self.state = "resetting"
            self.reset_deadline = time.monotonic() + ms / 1000

    @staticmethod
    def _version_from(sys_version: str) -> str:
        # sys.version of the unix port: "3.4.0; MicroPython <build> on <date>"
        date = sys_version.rsplit(" on ", 1)[-1].strip()
        return f"v1.29.0-preview on {date}" if date else "v1.29.0-preview"

    def program_output(self, data: bytes) -> None:
        if self.state in ("running", "booting") and not self.silent:
            self.emit(self.cooked(data))

    silent = False    # CircuitPython's boot.py writes to boot_out.txt, not the console
    ran_code = False  # CircuitPython: a code file ran, so the supervisor waits for a key

    def run_next_boot_file(self) -> None:
        self.silent = False
        while self.boot_queue:
            name = self.boot_queue.pop(0)
            source = self.board.file_on_flash(name)
            if source is not None:
                self.context = "file"
                self.state = "booting"
                if self.circuitpython:
                    self.silent = name == "boot.py"
                    if not self.silent:
                        self.emit(CP_AUTORELOAD + f"{name} output:\r\n".encode())
                        self.ran_code = True
                self.board.send_to_agent(source, "exec", name)
                return
        if self.circuitpython and self.mode == "friendly":
            if not self.ran_code:
                self.emit(CP_AUTORELOAD)
            self.ran_code = False
            self.emit(CP_DONE)
            self.state = "waitkey"
            self.board._ready.set()
            self.drain_pending()
            return
        if self.mode == "friendly":
            self.emit(self.banner())
        else:
            self.emit(RAW_BANNER)
        self.prompt()

    def tick(self) -> None:
        now = time.monotonic()
        if self.interrupt_deadline is not None and now >= self.interrupt_deadline:
            # The program did not unwind after Ctrl-C (it swallowed it or was mid-frame): start over.
            self.interrupt_deadline = None
            self.context = ""
            self.soft_reset()
        if self.state == "resetting" and self.reset_deadline is not None and now >= self.reset_deadline:
            self.reset_deadline = None
            self.hard_reset(4)

    def next_deadline_ms(self) -> int | None:
        deadlines = [d for d in (self.interrupt_deadline, self.reset_deadline) if d is not None]
        if not deadlines:
            return None
        return max(0, int((min(deadlines) - time.monotonic()) * 1000) + 1)

    # -- input from the serial port ------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.state in ("off", "resetting"):
            return  # a board in reset hears nothing
        if self.state in ("booting", "running"):
            if b"\x03" in data:
                at = data.index(b"\x03")
                self.pending_input += data[:at]
                self.interrupt()
                # What follows Ctrl-C waits in the input buffer until the REPL reads it.
                self.pending_input += data[at + 1:]
            else:
                self.pending_input += data
            return
        self.pending_input += data
        self.drain_pending()

    def interrupt(self) -> None:
        self.boot_queue = []  # Ctrl-C during boot.py also skips main.py
        if not self.agent_ready:
            return  # nothing runs yet: skipping the boot files is the whole effect
        self.board.interrupt_agent()
        self.interrupt_deadline = time.monotonic() + INTERRUPT_GRACE_S

    def drain_pending(self) -> None:
        if self.state == "waitkey" and self.pending_input:
            # CircuitPython's "Press any key to enter the REPL. Use CTRL-D to reload."
            key = self.pending_input[0]
            del self.pending_input[0]
            if key == 0x04:
                self.soft_reset()
                return
            self.emit(b"\r\n" + self.banner())
            self.prompt()
            return
        while self.pending_input and self.state in ("idle", "paste"):
            # Runs of plain bytes move in bulk (a deploy pushes tens of KB through here); control
            # bytes go one at a time through the state machine.
            if self.state == "paste" and self._paste_bulk():
                continue
            if self.state == "idle" and self.mode == "raw":
                m = _RAW_CONTROL.search(self.pending_input)
                n = m.start() if m else len(self.pending_input)
                if n:
                    self.line += self.pending_input[:n]
                    del self.pending_input[:n]
                    continue
            c = self.pending_input[0]
            del self.pending_input[0]
            if self.state == "paste":
                self.paste_byte(c)
            elif self.mode == "raw":
                self.raw_byte(c)
            else:
                self.friendly_byte(c)

    def _paste_bulk(self) -> bool:
        m = _PASTE_CONTROL.search(self.pending_input)
        n = m.start() if m else len(self.pending_input)
        if not n:
            return False
        while n:
            k = min(n, self.paste_window)
            self.paste_buf += self.pending_input[:k]
            del self.pending_input[:k]
            n -= k
            self.paste_window -= k
            if self.paste_window == 0:
                self.paste_window = RAW_PASTE_WINDOW
                self.emit(b"\x01")
        return True

    def raw_byte(self, c: int) -> None:
        if c == 0x01:  # Ctrl-A: restart the raw REPL, or raw-paste after \x05 A
            if bytes(self.line) == b"\x05A":
                self.line.clear()
                self.state = "paste"
                self.paste_buf = bytearray()
                self.paste_window = RAW_PASTE_WINDOW
                self.emit(b"R\x01" + struct.pack("<H", RAW_PASTE_WINDOW))
                return
            self.line.clear()
            self.emit(RAW_BANNER + b">")
        elif c == 0x02:  # Ctrl-B: back to the friendly REPL
            self.line.clear()
            self.mode = "friendly"
            self.emit(b"\r\n" + self.banner())
            self.prompt()
        elif c == 0x03:
            self.line.clear()
        elif c == 0x04:
            self.emit(b"OK")
            if not self.line:
                self.emit(b"\r\n")
                self.soft_reset()
                return
            source, self.line = bytes(self.line), bytearray()
            self.run(source, "exec", "raw")
        else:
            self.line.append(c)

    def paste_byte(self, c: int) -> None:
        if c in (0x03, 0x04):
            self.state = "running"
            self.emit(b"\x04")
            if c == 0x03:
                self.emit(b"\x04Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n\x04")
                self.prompt()
                return
            source, self.paste_buf = bytes(self.paste_buf), bytearray()
            self.run(source, "exec", "raw")
            return
        self.paste_buf.append(c)
        self.paste_window -= 1
        if self.paste_window == 0:
            self.paste_window = RAW_PASTE_WINDOW
            self.emit(b"\x01")

    def run(self, source: bytes, mode: str, context: str) -> None:
        self.state = "running"
        self.context = context
        self.board.send_to_agent(source, mode, "<stdin>")

    def friendly_byte(self, c: int) -> None:
        if c == 0x01:  # Ctrl-A: raw REPL
            self.line.clear()
            self.block = []
            self.mode = "raw"
            self.emit(b"\r\n" + RAW_BANNER)
            self.prompt()
        elif c == 0x02:
            self.line.clear()
            self.block = []
            self.emit(b"\r\n" + self.banner())
            self.prompt()
        elif c == 0x03:
            self.line.clear()
            self.block = []
            self.emit(b"\r\n")
            self.prompt()
        elif c == 0x04:
            if not self.line and not self.block:
                self.emit(b"\r\n")
                self.soft_reset()
        elif c in (0x08, 0x7F):
            if self.line:
                self.line.pop()
                self.emit(b"\x08 \x08")
        elif c == 0x0D:
            self.emit(b"\r\n")
            text = self.line.decode(errors="replace")
            self.line.clear()
            if self.block or text.rstrip().endswith(":"):
                if text.strip():
                    self.block.append(text)
                    self.prompt()
                    return
                text, self.block = "\n".join(self.block) + "\n", []
            if not text.strip():
                self.prompt()
                return
            self.run(text.encode(), "single", "friendly")
        elif c == 0x0A:
            pass
        elif c >= 0x20 or c == 0x09:
            self.line.append(c)
            self.emit(bytes([c]))
