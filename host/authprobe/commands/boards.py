"""`authprobe boards`: the connected serial ports matched to board definitions (and, with --probe,
the runtime each one reports in its REPL banner), or the definitions themselves (--defs)."""

from __future__ import annotations

import argparse
import json
import sys

from authprobe.board import definitions as boards


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--probe", action="store_true",
                        help="interrupt each board and read its REPL banner to detect the runtime")
    parser.add_argument("--port", "-p", action="append", default=[],
                        help="also look at this port (e.g. a virtual board's pty); repeatable")
    parser.add_argument("--defs", action="store_true", help="list the board definitions instead")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table


    registry = boards.load_boards()
    console = Console()
    if args.defs:
        if args.json:
            sys.stdout.write(json.dumps([b.to_dict() for b in registry.values()], indent=2) + "\n")
            return 0
        table = Table(title="board definitions", show_edge=False)
        for col in ("name", "chip", "runtime", "mpy", "image offset", "deploy", "USB ids", "capabilities"):
            table.add_column(col)
        for b in registry.values():
            caps = ", ".join(c for c, on in b.capabilities.items() if on) or "-"
            table.add_row(b.name, b.chip, b.runtime, b.mpy_version or "source", f"0x{b.image_offset:x}", b.deploy,
                          " ".join(b.usb_ids) or "-", caps)
        console.print(table)
        return 0

    ports = boards.connected(registry)
    known = {p.device for p in ports}
    ports += [boards.identify(p, registry) for p in args.port if p not in known]
    if args.probe:
        for port in ports:
            try:
                found = boards.probe_banner(port.device)
            except Exception as exc:  # a busy or broken port must not hide the others
                port.banner = f"probe failed: {exc}"
                continue
            if found:
                port.runtime = found["runtime"]
                port.banner = f"{found['version']} {found['machine']}"
                same = [n for n in port.candidates if registry[n].runtime == port.runtime]
                port.candidates = same or port.candidates
                if not port.candidates and "virtual board" in found["machine"]:
                    port.candidates = [n for n, b in registry.items() if b.is_virtual and b.runtime == port.runtime]
            else:
                port.banner = "no banner"
    if args.json:
        sys.stdout.write(json.dumps([dict(p.identity(), banner=p.banner) for p in ports], indent=2) + "\n")
        return 0
    if not ports:
        console.print("no USB serial ports found. Plugged in? On Linux your user needs the `dialout` group "
                      "(see README, Real boards).")
        return 0
    table = Table(title="connected boards", show_edge=False)
    for col in ("port", "USB id", "serial number", "location", "board", "runtime", "banner"):
        table.add_column(col)
    for p in ports:
        table.add_row(p.device, p.usb_id or "-", p.serial_number or "-", p.location or "-",
                      ", ".join(p.candidates) or "unknown", p.runtime or ("-" if args.probe else "(--probe)"),
                      p.banner or "")
    console.print(table)
    return 0
