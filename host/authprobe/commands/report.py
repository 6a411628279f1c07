"""`authprobe report RUN_ID [RUN_ID...] --html FILE`: one self-contained HTML page for stored runs --
the device's steps and the cloud's events on one time axis, the verdict, the diagnosis with its
evidence and fix. Several runs make one page for the batch; a FILE containing `{run_id}` gets one
page per run instead. `--fleet [--since 24h]` makes the line's page instead (commands/report_fleet).

With --cloud (AWS, or the stand-in's state directory) the runs are correlated first, exactly as
`authprobe correlate` does: AWS IoT's V2 log records and the authorizer function's log lines in each
run's window, and (with --config) the cloud checks of that device's settings; the diagnosis is then
made with that evidence. Events near a run that are not its own (another run's, a replay's) are
drawn apart. A run whose logs may not be delivered yet is marked provisional (exit 3; --wait
waits). Without --cloud the stored report is shown as it is."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from authprobe import root_causes
from authprobe.cloud import open_cloud
from authprobe.cloud.device_settings import load_device_settings
from authprobe.cloud.pipeline import authorizer_function, diagnose_with_cloud
from authprobe.cloud.replays import Replay
from authprobe.commands import report_fleet
from authprobe.commands.correlate import (
    add_window_arguments,
    check_window_arguments,
    store_context,
    stored_report,
    wait_progress,
)
from authprobe.commands.options import check_output_paths
from authprobe.errors import EXIT_INCOMPLETE, EXIT_OK, AuthprobeError, ConfigError
from authprobe.output import write_output
from authprobe.report import html as html_report
from authprobe.report.html import page_events
from authprobe.store import missing_local_store, open_store
from authprobe.store.fleet import GROUPS

RUN_PLACEHOLDER = "{run_id}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="stored runs: full id, unique prefix, or latest")
    parser.add_argument("--html", required=True, metavar="FILE",
                        help="the page to write (- for stdout); put {run_id} in the name for one page per run")
    parser.add_argument("--store", metavar="PATH|URL", help="run store: a SQLite file or postgresql://user@host:port/db (default $AUTHPROBE_STORE or .authprobe/runs.sqlite)")
    parser.add_argument("--cloud", metavar="aws|local:DIR",
                        help="correlate with AWS (aws) or the stand-in's state directory (local:DIR) first; "
                             "without it the stored report is shown as is")
    parser.add_argument("--profile", help="AWS profile (standard credential chain otherwise)")
    parser.add_argument("--region", help="AWS region (default: from the profile / AWS_REGION)")
    parser.add_argument("--authorizer", help="read this authorizer's function logs (default: the account default)")
    parser.add_argument("--function", help="the authorizer function's name (skips DescribeAuthorizer)")
    parser.add_argument("--config", metavar="DEVICE_TOML",
                        help="also run the cloud checks of this device's settings (as cloud-check) as evidence")
    add_window_arguments(parser)
    parser.add_argument("--title", help="page title (default: the run id, or the number of runs)")
    parser.add_argument("--fleet", action="store_true",
                        help="the line's page instead of runs: pass rate over time per station, root causes, "
                             "slowest steps")
    parser.add_argument("--since", metavar="AGE|DATE", help="--fleet: runs started in the last AGE (24h, 7d) or since "
                                                           "a UTC date (default: every run)")
    parser.add_argument("--by", choices=GROUPS, default="station", help="--fleet: the table's rows (default %(default)s)")


def load_reports(store_path: str | os.PathLike[str] | None, refs: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The stored reports for `refs`, and one problem line per reference that names no run (the
    others are still rendered)."""

    path = missing_local_store(store_path)
    if path is not None:
        raise ConfigError(f"no run store at {path}: run `authprobe run` first, or pass --store PATH")
    reports: list[dict[str, Any]] = []
    problems: list[str] = []
    with open_store(store_path) as store:
        for ref in dict.fromkeys(refs):
            try:
                reports.append(stored_report(store, store.resolve(ref)))
            except AuthprobeError as exc:
                problems.append(str(exc))
    return reports, problems


def correlated(reports: list[dict[str, Any]], cloud_spec: str, *, profile: str | None = None,
               region: str | None = None, authorizer: str | None = None, function: str | None = None,
               config: str | None = None, skew_s: float | None = None, store: str | None = None,
               log_delay_s: float | None = None, wait: bool = False
               ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(report with the cloud-informed diagnosis, its events for the page) per report. The page's
    events are the run's own evidence, then the events near it that are not its own ("nearby")."""
    cloud = open_cloud(cloud_spec, profile=profile, region=region)
    device = load_device_settings(config) if config else None
    if device is not None:
        authorizer = authorizer or device.authorizer
    fn = authorizer_function(cloud, authorizer, function)
    neighbours, replays = store_context(store, reports, [str(r.get("run_id")) for r in reports])

    def record(replay: Replay) -> None:
        # The checks' replay invokes the function for this device: remembered for later correlations.
        with open_store(store) as runs_store:
            runs_store.add_replay(at=replay.at_ms / 1000, until=replay.until_ms / 1000,
                                  authorizer=replay.authorizer, client_id=replay.client_id, invoked=replay.invoked)
    waited: list[float] = []

    def on_wait(runs: list[Any], left_s: float) -> None:
        waited.append(left_s)
        wait_progress(runs, left_s)
    runs = diagnose_with_cloud(reports, cloud, device=device, function=fn, skew_s=skew_s, neighbours=neighbours,
                               replays=replays, on_replay=record, log_delay_s=log_delay_s, wait=wait,
                               on_wait=on_wait, poll_s=10.0 if cloud_spec == "aws" else 0.5)
    if waited:
        print(file=sys.stderr)
    named = {"function": fn, "authorizer": authorizer, "region": cloud.region, "account": cloud.account}
    out = []
    for run in runs:
        report = dict(run.report, diagnosis=root_causes.fill_diagnosis(run.report.get("diagnosis") or [], **named))
        if run.provisional:
            report["correlation"] = dict(report.get("correlation") or {}, provisional=True,
                                         awaiting=run.joined.awaiting)
        out.append((report, page_events(run.evidence.events, fn) + page_events(run.nearby, fn)))
    return out


def _title(reports: list[dict[str, Any]], title: str | None) -> str:
    if title:
        return title
    if len(reports) == 1:
        return f"authprobe report: run {reports[0].get('run_id')}"
    return f"authprobe report: {len(reports)} runs"


def run(args: argparse.Namespace) -> int:
    if args.fleet:
        return report_fleet.run(args)
    if not args.run_ids:
        raise ConfigError("name the runs to report (RUN_ID..., or latest), or pass --fleet for the line's page")
    check_window_arguments(args)
    check_output_paths(html=args.html.replace(RUN_PLACEHOLDER, "run"))
    reports, problems = load_reports(args.store, args.run_ids)
    for p in problems:
        print(f"authprobe: {p}", file=sys.stderr)
    if not reports:
        raise ConfigError("no runs to report" + (" (see above)" if problems else ""))
    if args.cloud:
        runs = correlated(reports, args.cloud, profile=args.profile, region=args.region, authorizer=args.authorizer,
                          function=args.function, config=args.config, skew_s=args.skew, store=args.store,
                          log_delay_s=args.log_delay, wait=args.wait)
    else:
        if args.config:
            raise ConfigError("--config needs --cloud: the checks read the cloud side (aws or local:DIR)")
        if args.wait or args.log_delay is not None:
            raise ConfigError("--wait and --log-delay need --cloud: they are about the cloud's logs")
        runs = [(r, []) for r in reports]
    if RUN_PLACEHOLDER in args.html:
        for report, events in runs:
            target = args.html.replace(RUN_PLACEHOLDER, str(report.get("run_id")))
            write_output(target, html_report.render([(report, events)], _title([report], args.title)))
            print(f"wrote {target}: run {report.get('run_id')}, {report.get('verdict')}", file=sys.stderr)
    else:
        write_output(args.html, html_report.render(runs, _title(reports, args.title)))
        verdicts = ", ".join(f"{r.get('run_id')} {r.get('verdict')}" for r, _ in runs)
        print(f"wrote {args.html}: {verdicts}", file=sys.stderr)
    waiting = [r.get("run_id") for r, _ in runs if (r.get("correlation") or {}).get("provisional")]
    if waiting:
        print(f"authprobe: provisional (logs not delivered yet): {', '.join(map(str, waiting))}; run again later "
              "or with --wait", file=sys.stderr)
        return EXIT_INCOMPLETE
    return EXIT_OK
