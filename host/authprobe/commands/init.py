"""`authprobe init [DIR]`: starter files to edit, in any folder. A commented device.toml; with
--standin also the local stand-in's emulator.toml, the example authorizer and keys, and a
device.toml already pointed at that stand-in. Existing files are kept unless --force."""

from __future__ import annotations

import argparse
from pathlib import Path

from authprobe.drill.starter import DEVICE_TOML, EMULATOR_TOML, write_starter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default=".", metavar="DIR", help="where to write (default: here; made if missing)")
    parser.add_argument("--standin", action="store_true",
                        help="also the local stand-in: emulator.toml, authorizer.py, keys, and a device.toml that "
                             "reaches it")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    for path in write_starter(folder, standin=args.standin, force=args.force):
        print(f"wrote {path}")
    device = folder / DEVICE_TOML
    if args.standin:
        emulator = folder / EMULATOR_TOML
        print("next, in two terminals:")
        print(f"  authprobe emulate --config {emulator}")
        print(f"  authprobe probe --config {device}      # or: authprobe virtual-board, then flash and run a board")
    else:
        print(f"next: fill in {device} (endpoint, authorizer, token, Wi-Fi), then "
              f"`authprobe flash --port PORT --config {device}`")
    return 0
