"""`authprobe report --fleet [--since 24h] --html line.html`: the line's page (report/fleet_page) from
the figures `authprobe runs stats` prints."""

from __future__ import annotations

import argparse
import sys

from authprobe.errors import EXIT_OK, ConfigError
from authprobe.output import write_output
from authprobe.report import fleet_page
from authprobe.store import missing_local_store, open_store
from authprobe.store.fleet import fleet_stats, parse_since


def run(args: argparse.Namespace) -> int:
    if args.run_ids:
        raise ConfigError("--fleet reports every run of the window: leave out the run ids (narrow it with --since)")
    if args.cloud or args.config:
        raise ConfigError("--fleet reads the stored diagnoses; correlate the runs first with "
                          "`authprobe correlate --save --cloud ...`")
    since = parse_since(args.since) if args.since else None
    missing = missing_local_store(args.store)
    if missing is not None:
        raise ConfigError(f"no run store at {missing}: run `authprobe run` first, or pass --store PATH|URL")
    with open_store(args.store) as store:
        stats = fleet_stats(store, since=since, by=args.by)
    write_output(args.html, fleet_page.render(stats, args.title))
    totals = stats["totals"]
    rate = "-" if totals["pass_rate"] is None else f"{totals['pass_rate'] * 100:.1f}%"
    print(f"wrote {args.html}: {totals['runs']} run(s), pass rate {rate}", file=sys.stderr)
    return EXIT_OK
