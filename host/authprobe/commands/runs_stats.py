"""`authprobe runs stats`: the fleet view in the terminal (or --json): pass rate and counts per
station, board, root cause, firmware or day, the root-cause histogram and the slowest steps."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from authprobe.store import open_store
from authprobe.store.fleet import fleet_stats, parse_since


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _print_whole(console: Any, table: Any) -> None:
    """Print a table at its natural width even on a narrower terminal: identifiers (stations, uids,
    root causes) and figures are never cut; the terminal wraps the lines instead."""
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    width = console.width
    console.width = max(width, natural)
    try:
        console.print(table)
    finally:
        console.width = width


def render(stats: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    t = stats["totals"]
    window = f"since {stats['since']}" if stats["since"] else "all time"
    console.print(f"[bold]{t['runs']} run(s)[/bold] in {escape(stats['store'])}, {window}: pass rate "
                  f"[bold]{_rate(t['pass_rate'])}[/bold] (pass {t['pass']}, fail {t['fail']}, "
                  f"incomplete {t['incomplete']})", soft_wrap=True, highlight=False)
    if not t["runs"]:
        return
    # Identifiers (stations, uids, root causes) are never cut: those columns do not wrap or shrink.
    groups = Table(title=f"by {stats['by']}", title_justify="left")
    groups.add_column(stats["by"], no_wrap=True)
    for name in ("runs", "pass", "fail", "incompl.", "pass rate"):
        groups.add_column(name, justify="right", no_wrap=True)
    groups.add_column("leading root cause", no_wrap=True)
    groups.add_column("slowest step", no_wrap=True)
    for g in stats["groups"]:
        groups.add_row(escape(g["key"]), str(g["runs"]), str(g["pass"]), str(g["fail"]), str(g["incomplete"]),
                       _rate(g["pass_rate"]), escape(g["root_cause"] or "-"), escape(g["slowest_step"] or "-"))
    _print_whole(console, groups)
    if stats["root_causes"]:
        causes = Table(title="root causes of the runs that did not pass", title_justify="left")
        causes.add_column("root cause", no_wrap=True)
        causes.add_column("runs", justify="right", no_wrap=True)
        causes.add_column("share", justify="right", no_wrap=True)
        causes.add_column("", no_wrap=True, overflow="crop")
        for c in stats["root_causes"]:
            causes.add_row(escape(c["root_cause"]), str(c["runs"]), _rate(c["share"]), "█" * max(1, round(c["share"] * 30)))
        _print_whole(console, causes)
    if stats["steps"]:
        steps = Table(title="steps, slowest first (skipped steps left out)", title_justify="left")
        steps.add_column("step", no_wrap=True)
        for name in ("runs", "median ms", "p95 ms", "max ms", "failed"):
            steps.add_column(name, justify="right", no_wrap=True)
        for s in stats["steps"][:8]:
            steps.add_row(escape(s["step"]), str(s["runs"]), str(s["median_ms"]), str(s["p95_ms"]), str(s["max_ms"]),
                          str(s["fail"]))
        _print_whole(console, steps)


def run(args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since else None
    with open_store(args.store) as store:
        stats = fleet_stats(store, since=since, by=args.by)
    if args.json:
        sys.stdout.write(json.dumps(stats, indent=2) + "\n")
    else:
        render(stats)
    return 0
