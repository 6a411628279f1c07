"""`authprobe runs`: list stored runs, or re-render one (`authprobe runs show RUN`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from authprobe.commands.options import count
from authprobe.errors import ConfigError
from authprobe.output import printable
from authprobe.report.render import render_report, render_runs
from authprobe.store import RunStore, default_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=("list", "show"),
                        help="list (default) or show one run")
    parser.add_argument("run_id", nargs="?", default="latest", help="run id, a unique prefix, or latest")
    parser.add_argument("--store", metavar="PATH", help="run store (default .authprobe/runs.sqlite or $AUTHPROBE_STORE)")
    parser.add_argument("--limit", type=count, default=20, help="how many runs to list (default %(default)s)")
    parser.add_argument("--port", help="list: only runs on this port")
    parser.add_argument("--uid", help="list: only runs of the board with this machine.unique_id() (hex)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--raw", action="store_true", help="show: also print every raw line received")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text


    console = Console()
    path = Path(args.store) if args.store else default_path()
    if not path.exists():
        # Reading must not make a store (nor its folder) where the user mistyped a path.
        if args.action == "show":
            raise ConfigError(f"no run store at {path}: run `authprobe run` first, or pass --store PATH")
        if args.json:
            sys.stdout.write("[]\n")
        else:
            console.print(f"no run store at {path} yet; `authprobe run --port PORT` makes it", soft_wrap=True,
                          highlight=False, markup=False)
        return 0
    with RunStore(path) as store:
        if args.action == "list":
            runs = store.list_runs(limit=args.limit, port=args.port, uid=args.uid)
            if args.json:
                sys.stdout.write(json.dumps(runs, indent=2) + "\n")
            elif not runs:
                console.print(f"no runs in {store.path} yet; `authprobe run --port PORT` adds one", soft_wrap=True,
                              highlight=False, markup=False)
            else:
                render_runs(runs, console)
            return 0
        run_id = store.resolve(args.run_id)
        report = store.get_report(run_id)
        if args.json:
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
            return 0
        if args.raw:
            for line in store.get_lines(run_id):
                console.print(Text(f"{line['seq']:>4} {line['kind']:<8} {printable(line['raw'])}", style="dim"),
                              soft_wrap=True)
        render_report(report, console)
    return 0
