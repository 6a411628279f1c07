"""`authprobe run`: reset boards, collect their self-test reports, store and show them.

Exit code (worst board wins): 0 pass, 1 device failure, 3 incomplete run, 4 tool error."""

from __future__ import annotations

import argparse
import json
import sys

from authprobe.board import collect
from authprobe.board import definitions as boards
from authprobe.board.collect import DEFAULT_TIMEOUT, RESET_METHODS
from authprobe.commands.options import check_output_paths, seconds
from authprobe.output import write_output
from authprobe.report.render import junit_xml, record_line, render_report, render_tray
from authprobe.store import open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", "-p", action="append", default=[], metavar="PORT",
                        help="serial port or pyserial URL (repeatable): /dev/ttyUSB0, /dev/pts/3, socket://host:port")
    parser.add_argument("--all", action="store_true", help="every connected port that matches a board definition")
    parser.add_argument("--board", help="board definition name (default: matched from the USB id)")
    parser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, help="seconds per run (default %(default)s)")
    parser.add_argument("--reset", choices=RESET_METHODS, default=None,
                        help="how to restart the board: repl (machine.reset() from the REPL, default), soft "
                             "(Ctrl-D), rts (EN pin via the bridge's RTS line), none (just listen)")
    parser.add_argument("--json", metavar="FILE", help="write the JSON report (a list for several boards; - for stdout)")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML file (one test case per step)")
    parser.add_argument("--store", metavar="PATH|URL", help="run store: a SQLite file or postgresql://user@host:port/db (default $AUTHPROBE_STORE or .authprobe/runs.sqlite)")
    parser.add_argument("--station", metavar="NAME", help="the station every run records (default: this host's name)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no live records, only the final tables")


def write_outputs(results: list, json_path: str | None, junit_path: str | None) -> None:
    if json_path:
        payload = results[0].report if len(results) == 1 else [r.report for r in results]
        write_output(json_path, json.dumps(payload, indent=2, sort_keys=False) + "\n")
    if junit_path:
        write_output(junit_path, junit_xml(results))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    # Before any board is reset: a report that cannot be written later would cost the run.
    check_output_paths(json=args.json, junit=args.junit)
    ports = boards.choose_ports(args.port, every_match=args.all)
    per_port = boards.port_settings(ports, args.board, args.reset)
    console = Console(stderr=args.json == "-")
    # A PostgreSQL store out of reach does not stop the line: runs go to the SQLite default, and say so.
    store = open_store(args.store, station=args.station, spool=True,
                       on_warning=lambda message: print(f"authprobe: {message}", file=sys.stderr))
    many = len(ports) > 1

    def on_line(port: str, line) -> None:
        if args.quiet:
            return
        if line.kind == "record" and line.record:
            prefix = f"[dim]{port}[/dim] " if many else ""
            console.print(prefix, record_line(line.record), sep="")
        elif line.kind == "vanished":
            console.print(Text(f"{port}: port vanished ({line.reason})", style="magenta"), soft_wrap=True)

    try:
        results = collect.run(ports, timeout=args.timeout, store=store, on_line=on_line, per_port=per_port)
    finally:
        store.close()
    # A tray gets one line per board and full reports only for the boards that did not pass.
    for result in results:
        if many and result.verdict == "pass" and result.status == "complete":
            continue
        if result.status == "error":
            # Nothing was received: the reason is all there is to show (the run is stored all the same).
            console.print(Text(f"{result.port}: {result.error}", style="bold red"), soft_wrap=True)
            continue
        render_report(result.report, console)
    if many:
        render_tray(results, console)
    write_outputs(results, args.json, args.junit)
    if any(r.reason == "interrupted" for r in results):
        console.print("interrupted: the runs collected so far are stored")
        return 130
    return collect.combined_exit_code(results)
