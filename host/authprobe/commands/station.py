"""`authprobe station`: a hands-off test station. Every board plugged in is identified, flashed,
run, stored (and correlated with --cloud); one line per board. The work is board.station's; this
module parses options and prints: a live view of the slots on a terminal, plain lines when piped,
JSON lines with --json-lines.

Exit code (with --exit-after, or after Ctrl-C: 130): the worst board's, as `authprobe run`."""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import threading
import time
from typing import Any

from authprobe import device_config
from authprobe.board.collect import DEFAULT_TIMEOUT
from authprobe.board.station import (
    BoardOutcome,
    SlotView,
    Station,
    StationEvent,
    StationSettings,
    combined_exit_code,
)
from authprobe.cloud import open_cloud
from authprobe.cloud.device_settings import settings_from_config
from authprobe.cloud.pipeline import diagnose_with_cloud
from authprobe.commands.flash import add_signing_arguments, credentials_note, signer_from
from authprobe.errors import ConfigError
from authprobe.store import open_store

STATE_STYLE = {"waiting": "dim", "identifying": "cyan", "flashing": "cyan", "running": "blue",
               "correlating": "blue", "pass": "bold green", "fail": "bold red", "incomplete": "bold yellow",
               "error": "bold magenta"}
VERDICT_STYLE = {"PASS": "bold green", "FAIL": "bold red", "INCOMPLETE": "bold yellow", "ERROR": "bold magenta"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, metavar="DEVICE_TOML", help="device.toml every board gets")
    parser.add_argument("--watch", metavar="GLOB",
                        help="port paths to watch, e.g. '/dev/serial/by-id/*' (default: every USB serial port a "
                             "board definition matches)")
    parser.add_argument("--board", help="board definition name for every port (default: matched from the USB id)")
    parser.add_argument("--store", metavar="PATH|URL", help="run store: a SQLite file or postgresql://user@host:port/db "
                        "shared by the line (default $AUTHPROBE_STORE or .authprobe/runs.sqlite)")
    parser.add_argument("--station", metavar="NAME", help="this station's name, recorded with every run "
                                                          "(default: the host name)")
    parser.add_argument("--exit-after", type=int, metavar="N", help="stop once N boards have a verdict")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per run (default %(default)s)")
    parser.add_argument("--json-lines", action="store_true",
                        help="one JSON object per line: slot changes and board outcomes, for scripts")
    parser.add_argument("--cloud", default=None, metavar="aws|local:DIR",
                        help="correlate each run with the cloud side: AWS, or the stand-in's state directory")
    parser.add_argument("--profile", help="AWS profile (standard credential chain otherwise)")
    parser.add_argument("--region", help="AWS region (default: from the profile / AWS_REGION)")
    add_signing_arguments(parser)


def correlator(args: argparse.Namespace):
    """(report, the board's config) -> the report diagnosed with the cloud's logs and checks."""
    cloud = open_cloud(args.cloud, profile=args.profile, region=args.region)
    one_at_a_time = threading.Lock()   # a Cloud backend is not promised to be thread-safe

    def correlate(report: dict[str, Any], board_cfg: dict[str, Any]) -> dict[str, Any]:
        with one_at_a_time:
            diagnosed = diagnose_with_cloud([report], cloud, device=settings_from_config(board_cfg, args.config))[0]
        return dict(diagnosed.report, correlation={"source": cloud.label, "matched": diagnosed.joined.counts()})

    return correlate


def board_line(o: BoardOutcome) -> str:
    """One line, identifiers whole: port, uid, verdict, run, and when it did not pass, why and the fix."""
    parts = [o.port, o.uid or "-", o.verdict]
    if o.run_id:
        parts.append(f"run {o.run_id}")
    parts.append(f"{o.seconds:.1f} s")
    if o.verdict != "PASS":
        why = o.root_cause or o.reason or ""
        if o.failed_step:
            why = f"{why} at {o.failed_step}" if why else o.failed_step
        parts.append(f"{why}: {o.fix}" if o.fix else why)
    if o.credentials:
        parts.append(f"(own {credentials_note(o.credentials)})")
    if o.verdict == "ERROR" and o.reason == "no-answer":
        parts.append("(reported once; retried quietly until it answers)")
    return "  ".join(p for p in parts if p)


def slot_table(slots: list[SlotView]):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"authprobe station: {len(slots)} slot(s)", expand=False)
    for col in ("port", "state", "uid", "detail", "for", "boards"):
        table.add_column(col, no_wrap=col in ("port", "uid"))
    now = time.monotonic()
    for s in slots:
        table.add_row(s.port, Text(s.state, style=STATE_STYLE.get(s.state, "")), s.uid or "", s.detail,
                      f"{now - s.since:.0f} s", str(s.boards))
    return table


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    if args.exit_after is not None and args.exit_after < 1:
        raise ConfigError("--exit-after must be at least 1")
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive (seconds per run)")
    cfg = device_config.load(args.config)
    signer = signer_from(args)
    correlate = correlator(args) if args.cloud else None
    settings = StationSettings(cfg, watch=args.watch, board=args.board, signer=signer,
                               station=args.station or socket.gethostname(), timeout=args.timeout,
                               exit_after=args.exit_after)
    console = Console(soft_wrap=True, highlight=False)
    live_view = console.is_terminal and not args.json_lines

    def on_event(event: StationEvent) -> None:
        if args.json_lines:
            if event.kind == "board" and event.outcome is not None:
                payload = {"event": "board", **event.outcome.as_dict()}
            else:
                s = event.slot
                payload = {"event": "slot", "port": s.port, "state": s.state, "uid": s.uid, "detail": s.detail}
            print(json.dumps(payload), flush=True)
        elif event.kind == "board" and event.outcome is not None:
            line = Text(board_line(event.outcome))
            line.stylize(VERDICT_STYLE.get(event.outcome.verdict, ""), *_span(line.plain, event.outcome.verdict))
            console.print(line)

    # A line's shared PostgreSQL store out of reach: runs are kept locally (`authprobe runs sync`).
    store = open_store(args.store, station=args.station or socket.gethostname(), spool=True,
                       on_warning=lambda message: print(f"authprobe: {message}", file=sys.stderr))
    station = Station(settings, recorder=store, correlate=correlate, on_event=on_event)
    stop = threading.Event()
    outcomes: list[BoardOutcome] = []
    watcher = threading.Thread(target=lambda: outcomes.extend(station.run(stop)), name="station-watcher")
    interrupted = False
    if args.json_lines:
        print(json.dumps({"event": "station", "state": "watching", "station": settings.station, "watch": args.watch,
                          "exit_after": args.exit_after}), flush=True)
    else:
        print(f"station {settings.station}: watching {args.watch or 'USB serial ports that match a board definition'}"
              f"{f' until {args.exit_after} board(s) are done' if args.exit_after else '; Ctrl-C to stop'}",
              file=sys.stderr, flush=True)
    try:
        with Live(get_renderable=lambda: slot_table(station.slots()), console=console, refresh_per_second=4,
                  transient=True) if live_view else contextlib.nullcontext():
            watcher.start()
            try:
                while watcher.is_alive():
                    watcher.join(0.2)
            except KeyboardInterrupt:
                interrupted = True
                stop.set()   # boards in progress stop; their runs are stored as interrupted
                watcher.join()
    finally:
        store.close()
    code = 130 if interrupted else combined_exit_code(outcomes)
    if args.json_lines:
        print(json.dumps({"event": "station", "state": "stopped", "station": settings.station, "boards": len(outcomes),
                          "verdicts": _counts(outcomes), "exit_code": code}), flush=True)
    else:
        print(f"station {settings.station}: {len(outcomes)} board(s): "
              f"{', '.join(f'{n} {v}' for v, n in _counts(outcomes).items()) or 'none'}", file=sys.stderr)
    return code


def _span(text: str, word: str) -> tuple[int, int]:
    at = text.find(f"  {word}  ")
    return (at + 2, at + 2 + len(word)) if at >= 0 else (0, 0)


def _counts(outcomes: list[BoardOutcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.verdict] = counts.get(o.verdict, 0) + 1
    return counts
