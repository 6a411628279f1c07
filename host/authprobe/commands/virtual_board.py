"""`authprobe virtual-board`: serve a virtual MicroPython board on a pty until stopped.

The first line of stdout is the serial port path, so scripts can read one line from the pipe and
keep the process running; with --count N the N ports follow one per line."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading

from authprobe.board.definitions import RUNTIMES
from authprobe.board.virtual import WIFI_FAULTS, VirtualBoard, micropython_path
from authprobe.errors import AuthprobeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flash", metavar="DIR",
                        help="folder used as the board's flash (default: a new temporary folder, removed on exit)")
    parser.add_argument("--name", default="virtual", help="board name (also seeds machine.unique_id())")
    parser.add_argument("--count", type=int, default=1,
                        help="serve this many boards (one port per line, first line first), e.g. a tray")
    parser.add_argument("--uid", metavar="HEX", help="machine.unique_id() as 12 hex digits")
    parser.add_argument("--wifi-fault", choices=WIFI_FAULTS,
                        help="make every Wi-Fi association fail this way")
    parser.add_argument("--wifi", action="append", default=[], metavar="SSID:PASSWORD",
                        help="a network in range (repeatable); without any, every network answers")
    parser.add_argument("--control", metavar="FILE",
                        help='JSON read at every reset, e.g. {"wifi_fault": "no-ap"}, to drill faults live')
    parser.add_argument("--heap", default="256k",
                        help="MicroPython heap (default 256k: about an ESP32's, given 64-bit objects)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="micropython",
                        help="which firmware the board behaves like (default micropython)")
    parser.add_argument("--baud", type=int, default=None,
                        help="limit the line to this UART speed (e.g. 115200) so timings resemble a real board's")
    parser.add_argument("--native-usb", metavar="LINK",
                        help="behave like a native-USB board (ESP32-S3/C3): the port vanishes on every hard reset; "
                             "LINK is the stable path (a symlink re-pointed at each new pty) that is printed")


def _networks(specs: list[str]) -> dict[str, str] | None:
    if not specs:
        return None
    out: dict[str, str] = {}
    for spec in specs:
        ssid, sep, password = spec.partition(":")
        if not sep or not ssid:
            raise AuthprobeError(f"--wifi {spec!r}: expected SSID:PASSWORD (PASSWORD may be empty)")
        out[ssid] = password
    return out


def _check_heap(heap: str) -> None:
    """A heap size the interpreter refuses would make the board crash and reboot at every start."""

    proc = subprocess.run([micropython_path(), "-X", f"heapsize={heap}", "-c", ""], capture_output=True, check=False)
    if proc.returncode != 0:
        raise AuthprobeError(f"--heap {heap!r}: the MicroPython interpreter refuses it; give bytes with an "
                             f"optional K or M, e.g. 256k")


def run(args: argparse.Namespace) -> int:
    if args.uid and (len(args.uid) != 12 or any(c not in "0123456789abcdefABCDEF" for c in args.uid)):
        raise AuthprobeError(f"--uid {args.uid!r}: expected 12 hex digits, e.g. a4cf12000001")
    networks = _networks(args.wifi)
    _check_heap(args.heap)
    if args.count < 1:
        raise AuthprobeError("--count must be at least 1")
    if args.baud is not None and args.baud <= 0:
        raise AuthprobeError(f"--baud {args.baud}: give a UART speed in bits per second, e.g. 115200")
    if args.count > 1 and (args.uid or args.native_usb):
        raise AuthprobeError("--uid and --native-usb name one board; leave them out with --count")
    tmp = None
    flash = args.flash
    if not flash:
        tmp = tempfile.TemporaryDirectory(prefix="authprobe-flash-")
        flash = tmp.name
    boards = []
    for i in range(args.count):
        # A tray: each board its own flash folder, name and unique id.
        name = args.name if args.count == 1 else f"{args.name}{i}"
        folder = flash if args.count == 1 else f"{flash}/{name}"
        try:
            boards.append(VirtualBoard(folder, name=name, uid=args.uid, wifi_fault=args.wifi_fault,
                                       wifi_networks=networks, heap=args.heap, control_file=args.control,
                                       native_usb=bool(args.native_usb), port_link=args.native_usb,
                                       baud=args.baud, runtime=args.runtime))
        except OSError as exc:
            _cleanup(boards, tmp)
            raise AuthprobeError(f"--flash {folder}: cannot make the board's flash folder "
                                 f"({exc.strerror or exc})") from None
    stopped = threading.Event()

    def stop(*_: object) -> None:
        stopped.set()

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for board in boards:
            try:
                port = board.start()
            except OSError as exc:
                where = (f"--native-usb {args.native_usb}: cannot make the port link there" if args.native_usb
                         else f"virtual board {board.name!r}: cannot open a pty")
                raise AuthprobeError(f"{where} ({exc.strerror or exc})") from None
            print(port, flush=True)
            print(f"virtual board {board.name!r} on {port}, flash {board.flash_dir}", file=sys.stderr, flush=True)
        print("Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stopped.wait(0.5):
            pass
    finally:
        _cleanup(boards, tmp)
        for sig, handler in before.items():
            signal.signal(sig, handler)
    return 0


def _cleanup(boards: list, tmp: tempfile.TemporaryDirectory | None) -> None:
    for board in boards:
        board.stop()
    if tmp is not None:
        tmp.cleanup()
