"""`authprobe cloud-check`: the seed checklist's cloud half (and more) for one device config.

Its TestInvokeAuthorizer replay invokes the authorizer function with the device's credentials: the
call is recorded in the run store, so `authprobe correlate` labels its log lines `replay` instead of
taking them for the device's."""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from authprobe.cloud import add_cloud_arguments, open_cloud
from authprobe.cloud.checks import CheckContext, overall, run_checks
from authprobe.cloud.device_settings import load_device_settings
from authprobe.cloud.replays import Replay
from authprobe.errors import EXIT_FAIL, AuthprobeError, ConfigError
from authprobe.report.terminal import Col, fitted_table
from authprobe.store import ENV, open_store

if TYPE_CHECKING:
    from rich.console import Console


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="device.toml", help="the device configuration")
    parser.add_argument("--authorizer", help="authorizer to check (default: the device's, else the default)")
    add_cloud_arguments(parser)
    parser.add_argument("--since", default="1h", metavar="DURATION",
                        help="metrics window ending now, e.g. 30m, 2h, 1d (default 1h)")
    parser.add_argument("--no-replay", action="store_true",
                        help="do not call TestInvokeAuthorizer (it invokes the function for real)")
    parser.add_argument("--store", metavar="PATH|URL",
                        help=f"run store where the replay is recorded for correlation: a SQLite file or "
                             f"postgresql://user@host:port/db (default ${ENV} or .authprobe/runs.sqlite)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def replay_recorder(store_path: str | None):
    """on_replay for the checks: each replay into the run store. A store that cannot be written is
    said once; the check goes on (correlation then cannot tell that replay from the device)."""
    said = []

    def record(replay: Replay) -> None:
        try:
            with open_store(store_path) as store:
                store.add_replay(at=replay.at_ms / 1000, until=replay.until_ms / 1000, authorizer=replay.authorizer,
                                 client_id=replay.client_id, invoked=replay.invoked)
        except (AuthprobeError, sqlite3.Error) as exc:
            if not said:
                said.append(True)
                print(f"authprobe: the replay was not recorded: {exc}", file=sys.stderr)
    return record


def parse_duration(text: str) -> timedelta:
    m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text or "")
    if not m:
        raise ConfigError(f"--since {text!r}: use a number and a unit, e.g. 30m, 2h, 1d")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})


def run(args: argparse.Namespace) -> int:
    window = parse_duration(args.since)
    device = load_device_settings(args.config)
    cloud = open_cloud(args.cloud, profile=args.profile, region=args.region)
    ctx = CheckContext(cloud, device, authorizer_name=args.authorizer, window=window, replay=not args.no_replay,
                       on_replay=replay_recorder(args.store))
    results = run_checks(ctx)
    verdict = overall(results)
    if args.json:
        print(json.dumps({"schema": "authprobe.cloud-check/1", "cloud": cloud.label, "verdict": verdict,
                          "authorizer": (ctx.authorizer or {}).get("authorizerName"),
                          "client_id": device.client_id, "checks": [r.as_dict() for r in results]}, indent=2))
    else:
        render(results, verdict, cloud.label)
    return EXIT_FAIL if verdict == "fail" else 0


_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


# Root-cause ids go into the next command and check ids name the fixes printed below the table;
# titles and evidence are prose and wrap. A narrow terminal keeps status, evidence and root cause.
COLUMNS = (Col("status"), Col("id", identifier=True, drop=2), Col("check", drop=1), Col("evidence"),
           Col("root cause", identifier=True))


def render(results: list[Any], verdict: str, label: str, console: Console | None = None) -> None:
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    # Evidence and fixes quote config sections like [auth]: plain Text, never read as markup.
    rows = [[Text(r.status, style=_STYLE[r.status]), r.id, r.title, "\n".join(r.evidence),
             r.root_cause if r.status in ("fail", "warn") and r.root_cause else ""] for r in results]
    console.print(fitted_table(COLUMNS, rows, title=Text(f"cloud-check ({label}): {verdict}")))
    for r in results:
        if r.status in ("fail", "warn") and r.remediation:
            line = Text(r.status, style=_STYLE[r.status])
            line.append(f" {r.id}: {r.remediation}")
            console.print(line, highlight=False, soft_wrap=True)
