"""`authprobe flash`: deploy the self-test (and optionally a firmware image) to one board or many.

An unchanged board costs one round trip and nothing is sent; one board failing never stops the
others. Exit code: 0 when every board holds the self-test, 4 when any failed, 2 for a bad config."""

from __future__ import annotations

import argparse
import sys

from authprobe import device_config
from authprobe.board.definitions import choose_ports
from authprobe.board.flash import flash
from authprobe.errors import EXIT_INCOMPLETE, EXIT_OK, EXIT_TOOL, EXIT_USAGE
from authprobe.terminal import Lines, ProgressBars


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", "-p", action="append", default=[], metavar="PORT",
                        help="serial port or pyserial URL (repeatable)")
    parser.add_argument("--all", action="store_true", help="every connected port that matches a board definition")
    parser.add_argument("--config", "-c", metavar="DEVICE_TOML",
                        help="device.toml to put on the board (without it only the self-test is deployed)")
    parser.add_argument("--board", help="board definition name (default: matched from the USB id)")
    parser.add_argument("--firmware", metavar="IMAGE",
                        help="first write this MicroPython/CircuitPython image (.bin with esptool at the board's "
                             "offset, .uf2 to the bootloader drive)")
    parser.add_argument("--source", action="store_true", help="deploy .py sources instead of mpy-cross bytecode")
    parser.add_argument("--drive", metavar="DIR", help="CircuitPython: the CIRCUITPY drive (default: found by name)")


def run(args: argparse.Namespace) -> int:
    # rich is imported only to draw (a terminal, bytes to send): an unchanged board answers in
    # less time than importing it takes.
    ports = choose_ports(args.port, every_match=args.all)
    cfg = device_config.load(args.config) if args.config else None
    if cfg is None:
        Lines(sys.stderr)("no --config: deploying the self-test only; the board keeps the config it has",
                          style="yellow")
    with ProgressBars(ports, sys.stderr) as bars:
        results = flash(ports, cfg, board=args.board, firmware=args.firmware, source=args.source,
                        drive=args.drive, progress=bars.update)
    say = Lines(sys.stdout)
    for r in results:
        if r.status == "error":
            say(f"{r.port}: failed", f" {r.error}", style="bold red")
            continue
        what = (f"{len(r.sent)} files, {r.bytes_sent} bytes sent" if r.status == "deployed"
                else "unchanged, nothing sent")
        if r.removed:
            what += f", {len(r.removed)} stale removed"
        if r.firmware:
            what = f"{r.firmware}; {what}"
        trips = f"{r.round_trips} round trip{'' if r.round_trips == 1 else 's'}"
        say(r.port, f": {what} ({r.method}, {trips}, {r.seconds:.2f} s)", style="green")
    failed = [r for r in results if r.status == "error"]
    if failed and len(failed) < len(results):
        say(f"{len(failed)} of {len(results)} boards failed; the others are flashed")
    codes = {r.exit_code for r in failed}
    # The worst failure decides: a bug of ours, then bad usage, then a board that did not take it.
    return next((c for c in (EXIT_TOOL, EXIT_USAGE, EXIT_INCOMPLETE) if c in codes), EXIT_OK)


