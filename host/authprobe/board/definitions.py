"""Board definitions (boards/*.toml) and what is plugged in.

A board definition is data: chip, runtime, where a firmware image goes, the USB ids it enumerates
with, the .mpy version its firmware loads, capabilities and how the self-test is deployed. The
registry validates every file and names each problem; `connected()` matches serial ports to
definitions, and `probe_banner()` asks a board which runtime it runs (interrupt, read the banner)."""

from __future__ import annotations

import os
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authprobe import bundled
from authprobe.device_config import RUNTIMES
from authprobe.errors import AuthprobeError, ConfigError

BOARDS_DIR = bundled.BOARDS   # boards/*.toml in the repository, built into the package
ENV = "AUTHPROBE_BOARDS"   # extra folders of board definitions, os.pathsep-separated

DEPLOY_METHODS = ("mpremote", "circuitpy-drive", "serial-repl")
RESET_METHODS = ("repl", "soft", "rts", "none")
CHIPS = ("esp32", "esp32s2", "esp32s3", "esp32c3", "esp32c6", "host")
CAPABILITIES = ("alpn", "websocket", "psram", "native_usb")
IMAGE_FORMATS = ("bin", "uf2")
_USB_ID = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{4}$")
_MPY = re.compile(r"^\d+\.\d+$")


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    chip: str
    runtime: str
    mpy_version: str          # "" when sources are deployed (CircuitPython)
    deploy: str
    reset: str
    image_offset: int
    image_formats: tuple[str, ...]
    usb_ids: tuple[str, ...]
    capabilities: dict[str, bool]
    uf2_drive: str | None = None
    path: str = ""

    @property
    def is_virtual(self) -> bool:
        return self.chip == "host"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "chip": self.chip, "runtime": self.runtime,
                "mpy_version": self.mpy_version, "deploy": self.deploy, "reset": self.reset,
                "image_offset": f"0x{self.image_offset:x}", "image_formats": list(self.image_formats),
                "usb_ids": list(self.usb_ids), "capabilities": dict(self.capabilities),
                "uf2_drive": self.uf2_drive}


def parse_board(data: dict[str, Any], source: str) -> tuple[Board | None, list[str]]:
    """A Board from one parsed TOML file, or the list of every problem in it."""
    problems: list[str] = []

    def need(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
        if key not in table:
            problems.append(f"missing `{where}{key}`")
            return None
        value = table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            problems.append(f"`{where}{key}` must be a {names}, not {value!r}")
            return None
        return value

    def one_of(value: Any, allowed: tuple[str, ...], key: str) -> None:
        if value is not None and value not in allowed:
            problems.append(f"`{key}` is {value!r}; expected one of {', '.join(allowed)}")

    name = need(data, "name", str)
    if name is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        problems.append(f"`name` {name!r} must be lower-case letters, digits and dashes")
    title = data.get("title", name or "")
    chip = need(data, "chip", str)
    one_of(chip, CHIPS, "chip")
    runtime = need(data, "runtime", str)
    one_of(runtime, RUNTIMES, "runtime")
    mpy = need(data, "mpy_version", str)
    if mpy and not _MPY.match(mpy):
        problems.append(f"`mpy_version` {mpy!r} must look like \"6.3\" (or be \"\" to deploy sources)")
    deploy = need(data, "deploy", str)
    one_of(deploy, DEPLOY_METHODS, "deploy")
    reset = data.get("reset", "repl")
    one_of(reset, RESET_METHODS, "reset")
    if runtime == "circuitpython" and mpy:
        problems.append("`mpy_version` must be \"\" for CircuitPython (its .mpy format is its own)")

    image = need(data, "image", dict) or {}
    offset = need(image, "offset", int, "image.") if image else None
    if offset is not None and not 0 <= offset < 1 << 24:
        problems.append(f"`image.offset` 0x{offset:x} is outside the flash")
    formats = image.get("formats", ["bin"]) if image else []
    if not isinstance(formats, list) or any(f not in IMAGE_FORMATS for f in formats):
        problems.append(f"`image.formats` {formats!r}: a list drawn from {', '.join(IMAGE_FORMATS)}")
        formats = []
    uf2_drive = image.get("uf2_drive") if image else None
    if "uf2" in formats and not uf2_drive:
        problems.append("`image.uf2_drive` names the bootloader drive when `uf2` is a format")

    usb = need(data, "usb", dict) or {}
    ids = need(usb, "ids", list, "usb.") if usb else None
    ids = ids or []
    for uid in ids:
        if not isinstance(uid, str) or not _USB_ID.match(uid):
            problems.append(f"`usb.ids` entry {uid!r} must be \"vvvv:pppp\" in lower-case hex")

    caps = need(data, "capabilities", dict) or {}
    for cap in CAPABILITIES:
        if caps and not isinstance(caps.get(cap), bool):
            problems.append(f"`capabilities.{cap}` must be true or false")
    for cap in caps:
        if cap not in CAPABILITIES:
            problems.append(f"`capabilities.{cap}` is unknown; known: {', '.join(CAPABILITIES)}")

    if problems:
        return None, [f"{source}: {p}" for p in problems]
    return Board(name=name, title=str(title), chip=chip, runtime=runtime, mpy_version=mpy, deploy=deploy,
                 reset=reset, image_offset=offset, image_formats=tuple(formats),
                 usb_ids=tuple(ids), capabilities={c: bool(caps[c]) for c in CAPABILITIES},
                 uf2_drive=uf2_drive, path=source), []


def board_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    return [BOARDS_DIR, *extra]


def load_boards(dirs: list[Path] | None = None) -> dict[str, Board]:
    """Every board definition, by name. Raises ConfigError naming every problem in every file."""
    boards: dict[str, Board] = {}
    problems: list[str] = []
    for folder in dirs if dirs is not None else board_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeError, tomllib.TOMLDecodeError) as exc:
                problems.append(f"{path}: not valid TOML ({exc})")
                continue
            board, errs = parse_board(data, str(path))
            problems.extend(errs)
            if board is None:
                continue
            if board.name in boards:
                problems.append(f"{path}: board name {board.name!r} is already defined in "
                                f"{boards[board.name].path}")
                continue
            boards[board.name] = board
    if problems:
        raise ConfigError("invalid board definitions:\n  " + "\n  ".join(problems))
    return boards


def get_board(name: str, boards: dict[str, Board] | None = None) -> Board:
    boards = boards if boards is not None else load_boards()
    if name not in boards:
        raise ConfigError(f"unknown board {name!r}; known boards: {', '.join(sorted(boards))}")
    return boards[name]


# -- what is plugged in -----------------------------------------------------------------------------


@dataclass
class Port:
    device: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    location: str | None = None
    description: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    candidates: list[str] = field(default_factory=list)   # board names whose USB ids match
    runtime: str | None = None                            # from the banner, when probed
    banner: str | None = None

    @property
    def usb_id(self) -> str | None:
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"

    def identity(self) -> dict[str, Any]:
        """How a run records which physical board it came from."""
        return {k: v for k, v in {
            "device": self.device, "usb_id": self.usb_id, "serial_number": self.serial_number,
            "location": self.location, "description": self.description, "board_candidates": self.candidates,
            "runtime": self.runtime,
        }.items() if v not in (None, [], "")}


def match(usb_id: str | None, boards: dict[str, Board]) -> list[str]:
    """Board definitions whose USB ids include this one (a CP210x matches every bridge board)."""
    if not usb_id:
        return []
    return sorted(name for name, b in boards.items() if usb_id.lower() in b.usb_ids)


def connected(boards: dict[str, Board] | None = None, *, include_all: bool = False) -> list[Port]:
    """Serial ports from serial.tools.list_ports, matched to board definitions. Without
    `include_all`, ports with no USB id (legacy ttyS*) are left out."""
    from serial.tools import list_ports

    boards = boards if boards is not None else load_boards()
    out = []
    for info in sorted(list_ports.comports(), key=lambda p: p.device):
        if info.vid is None and not include_all:
            continue
        port = Port(device=info.device, vid=info.vid, pid=info.pid, serial_number=info.serial_number,
                    location=info.location, description=info.description, manufacturer=info.manufacturer,
                    product=info.product)
        port.candidates = match(port.usb_id, boards)
        out.append(port)
    return out


def identify(device: str, boards: dict[str, Board] | None = None) -> Port:
    """The Port record for one device path (USB details when list_ports knows it); a pyserial URL
    (socket://, rfc2217://, loop://) has none."""
    if "://" in device:
        return Port(device=device)
    try:
        for port in connected(boards, include_all=True):
            if port.device == device or os.path.realpath(device) == os.path.realpath(port.device):
                return port
    except (OSError, ImportError):
        pass
    return Port(device=device)


_BANNERS = (
    ("micropython", re.compile(rb"MicroPython (v\S+) on ([^;\r\n]+); ([^\r\n]+)")),
    ("circuitpython", re.compile(rb"Adafruit CircuitPython (\S+) on ([^;\r\n]+); ([^\r\n]+)")),
)


def parse_banner(data: bytes) -> dict[str, str] | None:
    """{runtime, version, date, machine} from a REPL banner anywhere in `data`, or None."""
    for runtime, pattern in _BANNERS:
        m = pattern.search(data)
        if m:
            return {"runtime": runtime, "version": m.group(1).decode(errors="replace"),
                    "date": m.group(2).decode(errors="replace").strip(),
                    "machine": m.group(3).decode(errors="replace").strip()}
    return None


def probe_banner(device: str, timeout: float = 2.0) -> dict[str, str] | None:
    """Interrupt whatever runs and make the REPL print its banner (Ctrl-C, then Ctrl-B, which both
    MicroPython and CircuitPython answer with it). Interrupts a running program: opt-in (--probe)."""
    import serial

    ser = serial.serial_for_url(device, baudrate=115200, timeout=0.05)
    try:
        ser.write(b"\r\x03\x03")
        time.sleep(0.1)
        # CircuitPython waits for a key after Ctrl-C ("Press any key to enter the REPL").
        ser.write(b"\r\x02")
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data += ser.read(ser.in_waiting or 1)
            found = parse_banner(data)
            if found and (b">>> " in data[data.find(found["machine"].encode()):]):
                return found
        return parse_banner(data)
    finally:
        ser.close()


def choose_ports(ports: list[str], *, every_match: bool = False) -> list[str]:
    """The ports named (once each, in order), plus with `every_match` every connected port that a
    board definition matches."""
    chosen = list(dict.fromkeys(ports))
    if every_match:
        found = [p.device for p in connected() if p.candidates]
        if not found:
            raise AuthprobeError("--all: no connected port matches a board definition; "
                                 "`authprobe boards` lists what is plugged in")
        chosen += [p for p in found if p not in chosen]
    if not chosen:
        raise AuthprobeError("name a board: --port PORT (repeatable) or --all")
    return chosen


def port_settings(ports: list[str], board_name: str | None, reset: str | None = None) -> dict[str, dict[str, Any]]:
    """collect.run's per-port keywords: identity, board, runtime, and the reset method (`reset`, else
    the board definition's, else repl)."""
    registry = load_boards()
    chosen = get_board(board_name, registry) if board_name else None
    out = {}
    for port in ports:
        info = identify(port, registry)
        board = chosen
        if board is None and len(info.candidates) >= 1:
            board = registry[info.candidates[0]]
        out[port] = {"identity": info.identity(), "board": board.name if board else None,
                     "runtime": board.runtime if board else "micropython",
                     "reset": reset or (board.reset if board else "repl")}
    return out
