"""`authprobe boards`: the connected serial ports matched to board definitions (and, with --probe,
the runtime each one reports in its REPL banner), or the definitions themselves (--defs)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from authprobe.board import definitions as boards
from authprobe.errors import ConfigError
from authprobe.output import printable
from authprobe.report.terminal import Col, fitted_table

if TYPE_CHECKING:
    from rich.console import Console


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--probe", action="store_true",
                        help="interrupt each board and read its REPL banner to detect the runtime")
    parser.add_argument("--port", "-p", action="append", default=[],
                        help="also look at this port (e.g. a virtual board's pty); repeatable")
    parser.add_argument("--defs", action="store_true", help="list the board definitions instead")
    parser.add_argument("--json", action="store_true", help="print JSON")


DEFS_COLUMNS = (Col("name", identifier=True), Col("chip", identifier=True, drop=2), Col("runtime", identifier=True),
                Col("mpy", drop=4), Col("image offset", drop=5), Col("deploy", identifier=True, drop=3),
                Col("USB ids", drop=1), Col("capabilities", drop=6))
PORTS_COLUMNS = (Col("port", identifier=True), Col("USB id", identifier=True, drop=3),
                 Col("serial number", identifier=True, drop=4), Col("location", identifier=True, drop=5),
                 Col("board"), Col("runtime", drop=2), Col("banner", drop=1))


def render_definitions(registry: dict[str, boards.Board], console: Console) -> None:
    rows = []
    for b in registry.values():
        caps = ", ".join(c for c, on in b.capabilities.items() if on) or "-"
        rows.append([b.name, b.chip, b.runtime, b.mpy_version or "source", f"0x{b.image_offset:x}", b.deploy,
                     " ".join(b.usb_ids) or "-", caps])
    console.print(fitted_table(DEFS_COLUMNS, rows, title="board definitions", show_edge=False, pad_edge=False))


def render_ports(ports: list[boards.Port], probed: bool, console: Console) -> None:
    rows = [[p.device, p.usb_id or "-", p.serial_number or "-", p.location or "-", ", ".join(p.candidates) or "unknown",
             p.runtime or ("-" if probed else "(--probe)"), printable(p.banner or "")] for p in ports]
    console.print(fitted_table(PORTS_COLUMNS, rows, title="connected boards", show_edge=False, pad_edge=False))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    registry = boards.load_boards()
    console = Console()
    if args.defs:
        if args.json:
            sys.stdout.write(json.dumps([b.to_dict() for b in registry.values()], indent=2) + "\n")
            return 0
        render_definitions(registry, console)
        return 0

    for port in args.port:
        if "://" not in port and not os.path.exists(port):
            raise ConfigError(f"--port {port}: no such port; `authprobe boards` alone lists the connected ones")
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
    render_ports(ports, args.probe, console)
    return 0
