"""`authprobe runs`: list stored runs, re-render one (`authprobe runs show RUN`), the fleet view
(`authprobe runs stats`), or push runs kept while a PostgreSQL store was away (`authprobe runs sync`)."""

from __future__ import annotations

import argparse
import json
import sys

from authprobe.board import line_sample
from authprobe.commands import runs_stats, runs_sync
from authprobe.commands.options import count
from authprobe.errors import ConfigError
from authprobe.output import printable
from authprobe.report.render import render_report, render_runs
from authprobe.store import missing_local_store, open_store
from authprobe.store.fleet import GROUPS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=("list", "show", "stats", "sync"),
                        help="list (default), show one run, stats (the fleet view), or sync (push the runs kept "
                             "here while a PostgreSQL store was out of reach)")
    parser.add_argument("run_id", nargs="?", default="latest", help="run id, a unique prefix, or latest")
    parser.add_argument("--store", metavar="PATH|URL", help="run store: a SQLite file or postgresql://user@host:port/db (default $AUTHPROBE_STORE or .authprobe/runs.sqlite)")
    parser.add_argument("--limit", type=count, default=20, help="how many runs to list (default %(default)s)")
    parser.add_argument("--port", help="list: only runs on this port")
    parser.add_argument("--uid", help="list: only runs of the board with this machine.unique_id() (hex)")
    parser.add_argument("--station", help="list: only runs of this station")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--raw", action="store_true", help="show: also print every raw line received")
    parser.add_argument("--since", metavar="AGE|DATE", help="stats: runs started in the last AGE (24h, 90m, 7d) "
                                                           "or since a UTC date (2026-11-26)")
    parser.add_argument("--by", choices=GROUPS, default="station", help="stats: one row per ... (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text


    if args.action == "stats":
        return runs_stats.run(args)
    if args.action == "sync":
        return runs_sync.run(args)
    console = Console()
    path = missing_local_store(args.store)
    if path is not None:
        # Reading must not make a store (nor its folder) where the user mistyped a path.
        if args.action == "show":
            raise ConfigError(f"no run store at {path}: run `authprobe run` first, or pass --store PATH")
        if args.json:
            sys.stdout.write("[]\n")
        else:
            console.print(f"no run store at {path} yet; `authprobe run --port PORT` makes it", soft_wrap=True,
                          highlight=False, markup=False)
        return 0
    with open_store(args.store) as store:
        if args.action == "list":
            runs = store.list_runs(limit=args.limit, port=args.port, uid=args.uid, station=args.station)
            if args.json:
                sys.stdout.write(json.dumps(runs, indent=2) + "\n")
            elif not runs:
                console.print(f"no runs in {store.where} yet; `authprobe run --port PORT` adds one", soft_wrap=True,
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
                text = printable(line["raw"])
                if line["kind"] == line_sample.OMITTED:
                    text = line_sample.describe(line["reason"])
                console.print(Text(f"{line['seq']:>4} {line['kind']:<8} {text}", style="dim"), soft_wrap=True)
        render_report(report, console)
    return 0
